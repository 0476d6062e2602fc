"""Result records (the JSON schema of ``shared/BENCHMARKS.md``) and environment capture."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_coldstart.evaluate.protocol import RESULT_COLUMNS


def versions() -> dict[str, str]:
    """Versions of Python and the main dependencies (those importable)."""
    out = {"python": platform.python_version()}
    import importlib.metadata as md

    for pkg in ("recsys_coldstart", "numpy", "scipy", "pandas", "torch", "torch_geometric", "implicit",
                "faiss-cpu", "faiss-gpu-cu12", "optuna"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    """A description of this machine: OS, CPU, core count, memory, GPU (if torch sees one)."""
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # pragma: no cover - psutil is a dependency, but never fail a run over it
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # pragma: no cover
        pass
    return info


def current_command() -> str:
    """The command line of this process, shell-quoted."""
    prog = os.path.basename(sys.argv[0]) if sys.argv else "python"
    return " ".join([prog] + [shlex.quote(a) for a in sys.argv[1:]])


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def to_records(results: pd.DataFrame, *, config: Mapping[str, Any] | None = None, command: str | None = None,
               device: str = "cpu", seconds: float | None = None, extra: Mapping[str, Any] | None = None) -> list[dict]:
    """One JSON-able record per result row, with provenance.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results (``model, dataset, split, segment, metric, k, value, seed``).
    config : mapping, optional
        The model configuration.
    command : str, optional
        Default: this process's command line.
    device : str
    seconds : float, optional
        Wall-clock seconds of the run.
    extra : mapping, optional
        Anything else to attach (e.g. ``peak_rss_mb``).
    """
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"results lack columns {missing}")
    meta = {"config": dict(config or {}), "command": command or current_command(), "versions": versions(),
            "machine": machine(), "device": str(device), "seconds": seconds}
    if extra:
        meta.update(extra)
    recs = []
    for row in results[RESULT_COLUMNS].itertuples(index=False):
        rec = dict(zip(RESULT_COLUMNS, row, strict=True))
        rec["k"] = int(rec["k"])
        rec["value"] = float(rec["value"])
        rec["seed"] = None if pd.isna(rec["seed"]) else int(rec["seed"])
        rec.update(meta)
        recs.append(rec)
    return recs


def write_json(records: list[dict], path: str | os.PathLike) -> Path:
    """Write records as a JSON list (creating folders); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(records, indent=1, default=str))
    return p


def read_json(path: str | os.PathLike) -> pd.DataFrame:
    """Read one records file (or every ``*.json`` in a folder) back into a DataFrame."""
    p = Path(path)
    files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
    recs: list[dict] = []
    for f in files:
        data = json.loads(f.read_text())
        if isinstance(data, list):
            recs.extend(r for r in data if isinstance(r, dict) and "metric" in r)
    return pd.DataFrame(recs)


def summary_table(results: pd.DataFrame, *, metrics: tuple[str, ...] = ("recall", "ndcg"),
                  ks: tuple[int, ...] = (10, 20)) -> pd.DataFrame:
    """Mean ± std over seeds, one row per (model, dataset, split, segment), one column per metric@k."""
    sel = results[results.metric.isin(metrics) & results.k.isin(ks)]
    if sel.empty:
        return pd.DataFrame()
    g = sel.groupby(["model", "dataset", "split", "segment", "metric", "k"]).value
    agg = g.agg(["mean", "std", "count"]).reset_index()
    agg["cell"] = [f"{m:.4f} ± {s:.4f}" if c > 1 else f"{m:.4f}" for m, s, c in
                   zip(agg["mean"], agg["std"].fillna(0.0), agg["count"], strict=True)]
    agg["col"] = agg.metric + "@" + agg.k.astype(str)
    return agg.pivot_table(index=["model", "dataset", "split", "segment"], columns="col", values="cell",
                           aggfunc="first").reset_index()


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a small DataFrame (no extra dependency)."""
    if df.empty:
        return "_no results_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)
