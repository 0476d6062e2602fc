"""Summarise benchmarks/ddp_cpu.sh runs: a Markdown table of test NDCG@20 / Recall@20 and s/epoch by
model and number of processes (mean ± std over seeds).

Usage: python benchmarks/ddp_cpu_summary.py OUT_DIR [--json FILE]
(``--json``: every run's record, the table's command line, the machine and the versions)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def _sd(a: np.ndarray, j: int) -> str:
    return f" ± {a[:, j].std(ddof=1):.4f}" if len(a) > 1 else ""


def main(out: str, json_out: str | None = None) -> None:
    rows = defaultdict(list)
    runs = []
    for cfg in sorted(Path(out, "models").glob("*/config.json")):
        m = re.match(r"(.+)_([^_]+)_np(\d+)_s(\d+)$", cfg.parent.name)
        if not m:
            continue
        dataset, model, n, seed = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        meta = json.loads(cfg.read_text()).get("meta", {})
        met = meta.get("metrics", {})
        ndcg = next(v for k, v in met.items() if k.startswith("test_") and k.endswith("ndcg@20"))
        rec = next(v for k, v in met.items() if k.startswith("test_") and k.endswith("recall@20"))
        timing = Path(out, cfg.parent.name + ".time")  # GNU time -v, where ddp_cpu.sh found it
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text()) if timing.exists() else None
        rss = int(found.group(1)) / 1024 if found else None
        rows[(dataset, model, n)].append((seed, ndcg, rec, meta["fit_seconds"] / max(meta["epochs"], 1),
                                          meta["epochs"], float("nan") if rss is None else rss))
        runs.append({"run": cfg.parent.name, "dataset": dataset, "model": model, "processes": n, "seed": seed,
                     "test_ndcg@20": ndcg, "test_recall@20": rec, "epochs": meta["epochs"],
                     "fit_seconds": meta["fit_seconds"], "peak_rss_mb": rss,
                     "config": json.loads(cfg.read_text()).get("config")})
    print("| dataset | model | processes | seeds | test NDCG@20 | test Recall@20 | s/epoch (incl. val) | epochs "
          "| peak RSS MB (largest process) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (dataset, model, n), rs in sorted(rows.items()):
        a = np.array([r[1:] for r in rs], float)
        print(f"| {dataset} | {model} | {n} | {','.join(str(r[0]) for r in rs)} | {a[:, 0].mean():.4f}{_sd(a, 0)} | "
              f"{a[:, 1].mean():.4f}{_sd(a, 1)} | {a[:, 2].mean():.2f} | {','.join(str(int(r[4])) for r in rs)} | "
              f"{np.nanmax(a[:, 4]) if np.isfinite(a[:, 4]).any() else float('nan'):.0f} |")
    if json_out:
        import platform

        import torch

        Path(json_out).write_text(json.dumps({
            "command": "python benchmarks/ddp_cpu_summary.py " + " ".join(sys.argv[1:]),
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
            "runs": runs}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None)
