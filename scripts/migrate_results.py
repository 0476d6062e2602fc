"""One-off migration of committed benchmark results to portable, deduplicated cell files.

1. Every ``benchmarks/results/**/cells/*.json`` written as a list of flat records (provenance
   repeated in every record) is rewritten as one cell file
   (:func:`recsys_coldstart.evaluate.results.cell_document`): provenance and shared fields
   once, each record keeping the tidy columns and its own fields. The numbers are not touched
   (JSON floats round-trip exactly; the script checks that ``read_results`` gives the same
   rows before and after). Cells whose training a time cap stopped (``stopped_for_time``) get
   ``capped: true`` and the cap in seconds, read from the suite file in ``benchmarks/suites``
   whose ``name`` matches the records' ``suite`` (the model's ``max_train_seconds``, else the
   suite's).
2. In every results file (``.json``, ``.md``, ``.toml``, ``.html``), a machine's absolute path
   is replaced: the data folder by ``$RECSYS_COLDSTART_DATA`` (so is ``../shared/data``, the
   same folder named from the repository root), the repository root by a relative path, another
   home folder (``/home/<user>``, ``/root``) by ``~``.

Usage (from the repository root)::

    python scripts/migrate_results.py [--results benchmarks/results] [--data-dir /work/shared/data]
                                      [--repo-root /work/main] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd

from recsys_coldstart.bench import read_toml
from recsys_coldstart.evaluate.results import (
    CELL_FORMAT,
    DATA_ENV,
    cell_document,
    dumps_cell,
    read_results,
)

logger = logging.getLogger("migrate_results")

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = (".json", ".md", ".toml", ".html", ".txt")


def scrub(text: str, data_dirs: list[str], roots: list[str]) -> str:
    """Replace machine paths in ``text`` (see the module docstring)."""
    for d in sorted({p.rstrip("/") for p in data_dirs if p}, key=len, reverse=True):
        text = re.sub(re.escape(d) + r"(?=[/\s\"'`),;:]|$)", "$" + DATA_ENV, text, flags=re.M)
    # the data folder given relative to the repository root (this checkout's neighbour)
    text = re.sub(r"(?<=[\s=])\.\./shared/data(?=[/\s\"'`),;:]|$)", "$" + DATA_ENV, text, flags=re.M)
    for r in sorted({p.rstrip("/") for p in roots if p}, key=len, reverse=True):
        text = text.replace(r + "/", "")
        text = re.sub(re.escape(r) + r"(?=[\s\"'`),;:]|$)", ".", text, flags=re.M)
    text = re.sub(r"(?<![\w.~-])/home/[^/\s\"'`]+/", "~/", text)
    return re.sub(r"(?<![\w.~-])/root/", "~/", text)


def suite_caps(suites_dir: Path) -> dict[str, dict]:
    """``suite name -> {"default": cap or None, "models": {label: cap}}`` from the suite files."""
    out = {}
    for f in sorted(suites_dir.glob("*.toml")):
        doc = read_toml(f, what="suite file")
        models = {}
        for m in doc.get("models", []) or []:
            if isinstance(m, dict):
                models[str(m.get("label", m.get("name")))] = m.get("max_train_seconds")
        out[str(doc.get("name", f.stem))] = {"default": doc.get("max_train_seconds"), "models": models}
    return out


def migrate_cell(records: list[dict], caps: dict[str, dict]) -> dict:
    """A legacy records list -> a cell document, with ``capped`` (and its cap) added."""
    for r in records:
        if r.get("record_type") in ("metric", "curve") and "stopped_for_time" in r and "capped" not in r:
            r["capped"] = bool(r["stopped_for_time"])
            if r["capped"] and "max_train_seconds" not in r:
                suite = caps.get(str(r.get("suite")), {})
                cap = suite.get("models", {}).get(str(r.get("model")))
                r["max_train_seconds"] = cap if cap is not None else suite.get("default")
    return cell_document(records)


def _frame(path: Path) -> pd.DataFrame:
    df = read_results(path)
    cols = ["model", "dataset", "split", "segment", "metric", "k", "value", "seed"]
    return df[cols].astype(str) if not df.empty else df


def main(argv: list[str] | None = None) -> int:
    """Run the migration; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--data-dir", action="append", default=None,
                    help="data folder(s) to write as $RECSYS_COLDSTART_DATA (default: /work/shared/data and "
                         "$RECSYS_COLDSTART_DATA)")
    ap.add_argument("--repo-root", action="append", default=None,
                    help="repository root(s) to make relative (default: this checkout and /work/main)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = Path(args.results)
    data_dirs = args.data_dir or ["/work/shared/data", os.environ.get(DATA_ENV, "")]
    roots = args.repo_root or [str(REPO), "/work/main"]
    caps = suite_caps(REPO / "benchmarks" / "suites")
    n_cells = n_text = 0
    for f in sorted(results.rglob("cells/*.json")):
        data = json.loads(f.read_text())
        before = _frame(f)
        if isinstance(data, list):
            doc = migrate_cell(data, caps)
        elif isinstance(data, dict) and data.get("format") == CELL_FORMAT:
            doc = data  # already migrated: only the layout is rewritten
        else:
            continue
        text = scrub(dumps_cell(doc), data_dirs, roots)
        if json.loads(text).get("format") != CELL_FORMAT:
            raise RuntimeError(f"{f}: migration produced no cell file")
        if not args.dry_run:
            f.write_text(text)
            after = _frame(f)
            if not before.reset_index(drop=True).equals(after.reset_index(drop=True)):
                raise RuntimeError(f"{f}: the records changed in migration")
        n_cells += 1
    for f in sorted(results.rglob("*")):
        if not f.is_file() or f.suffix not in TEXT_SUFFIXES:
            continue
        text = f.read_text()
        new = scrub(text, data_dirs, roots)
        if new != text:
            if f.suffix == ".json":
                json.loads(new)  # still valid JSON
            if not args.dry_run:
                f.write_text(new)
            n_text += 1
            logger.info("paths made portable in %s", f.relative_to(results))
    logger.info("%d cell files rewritten, %d files with machine paths cleaned", n_cells, n_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
