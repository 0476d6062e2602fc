"""Time every dataset loader and predefined split, with peak memory.

    nice -n 10 python benchmarks/bench_load_datasets.py --data-dir ../shared/data --repeats 3

Each measurement runs in a fresh Python process, so ``peak_rss_mb`` is that load's own peak
(``import_rss_mb`` is the same process's peak after importing the package, before loading).
Reports the median over ``--repeats`` runs. Writes
``benchmarks/results/load_datasets.json`` (records: model="loader", metric in
{seconds, peak_rss_mb, import_rss_mb}) and ``load_datasets.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def _one(name: str, split: str, data_dir: str) -> dict:
    """Measure one load in this process (called in a child process)."""
    from recsys_coldstart.data.datasets import load_dataset, load_predefined_split
    from recsys_coldstart.evaluate.results import peak_rss_mb

    base = peak_rss_mb()
    t = time.perf_counter()
    if split == "none":
        d = load_dataset(name, data_dir)
        size = {"n_users": d.n_users, "n_items": d.n_items, "nnz": d.nnz}
    else:
        s = load_predefined_split(name, split, data_dir, random_state=0)
        size = {"n_users": s.source.n_users, "n_items": s.source.n_items, "nnz": s.source.nnz}
    secs = time.perf_counter() - t
    return {"seconds": secs, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": base, **size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "load_datasets"))
    p.add_argument("--one", nargs=2, metavar=("NAME", "SPLIT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.one[0], args.one[1], args.data_dir)))
        return 0

    from recsys_coldstart.data.datasets import DATASETS, dataset_status
    from recsys_coldstart.evaluate.results import (
        current_command,
        to_markdown,
        to_records,
        write_json,
    )

    found = {name: ok for name, ok, _ in dataset_status(args.data_dir)}
    rows, table = [], []
    for name, info in DATASETS.items():
        if not found[name]:
            table.append({"dataset": name, "split": "-", "status": "not found"})
            continue
        for split in ("none", *info.predefined_splits):
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, __file__, "--data-dir", args.data_dir, "--one", name, split],
                                     capture_output=True, text=True, check=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            df = pd.DataFrame(runs)
            med = df.median(numeric_only=True)
            for metric in ("seconds", "peak_rss_mb", "import_rss_mb"):
                rows.append({"model": "loader", "dataset": name, "split": split, "segment": "all", "metric": metric,
                             "k": 0, "value": float(med[metric]), "seed": 0 if split != "none" else None})
            table.append({"dataset": name, "split": split, "status": "ok",
                          "users": f"{int(med.n_users):,}", "items": f"{int(med.n_items):,}",
                          "positives": f"{int(med.nnz):,}", "seconds (median)": f"{med.seconds:.3f}",
                          "seconds (min-max)": f"{df.seconds.min():.3f}-{df.seconds.max():.3f}",
                          "peak RSS MiB": f"{med.peak_rss_mb:.1f}", "RSS after import MiB": f"{med.import_rss_mb:.1f}"})
            print(table[-1], flush=True)
    res = pd.DataFrame(rows)
    out = Path(args.out)
    cmd = current_command()
    write_json(to_records(res, command=cmd, extra={"repeats": args.repeats}), out.with_suffix(".json"))
    from recsys_coldstart.evaluate.results import machine, versions

    md = [
        "# Dataset loader timings",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {json.dumps(machine(), default=str)}  ",
        f"Versions: {json.dumps(versions(), default=str)}  ",
        f"Median of {args.repeats} runs, each in a fresh process; split `none` = `load_dataset`, else "
        "`load_predefined_split` (which loads the data itself). Peak RSS includes the ~import footprint.",
        "",
        to_markdown(pd.DataFrame(table).astype(object).fillna("")),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
