"""Resuming a suite: where a cell's file lives, the hash of its definition, and whether it is done."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from recsys_coldstart.bench.suite import Cell, Suite
from recsys_coldstart.evaluate.results import read_cell_records


def cell_path(out_dir: str | Path, cell: Cell) -> Path:
    """Where a cell's records live: ``OUT/cells/<id>.json``."""
    return Path(out_dir) / "cells" / f"{cell.id}.json"


def cell_spec_hash(cell: Cell, suite: Suite) -> str:
    """A short hash of everything that defines a cell's result (model, config, split, cutoffs,
    time cap, elicitation settings): a finished cell whose spec changed is run again on resume."""
    doc = {"kind": cell.kind, "dataset": dataclasses.asdict(cell.dataset), "split": dataclasses.asdict(cell.split),
           "seed": cell.seed, "ks": list(suite.ks), "model": None if cell.model is None else
           dataclasses.asdict(cell.model), "policy": cell.policy, "elicitation": None if cell.elicitation is None
           else dataclasses.asdict(cell.elicitation), "max_train_seconds": suite.max_train_seconds}
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cell_done(path: Path, spec_hash: str | None = None) -> bool:
    """True when ``path`` holds the records of a finished (status ok) cell whose ``spec_hash``
    matches (records written without a hash count as finished). Reads cell files and the older
    records lists alike."""
    recs = read_cell_records(path) if Path(path).is_file() else []
    if not recs or not all(r.get("status") == "ok" for r in recs):
        return False
    stored = recs[0].get("spec_hash")
    return spec_hash is None or stored is None or stored == spec_hash
