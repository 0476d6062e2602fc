"""Result records (the JSON schema of ``shared/BENCHMARKS.md``), cell files, and environment capture.

Two file layouts are read back by :func:`read_results`:

- a **records list** ``[{record}, ...]``: each record holds the tidy columns ``model, dataset,
  split, segment, metric, k, value, seed`` plus its provenance (:func:`to_records`);
- a **cell file** ``{"format": CELL_FORMAT, "cell": {...}, "provenance": {...}, "records": [...]}``
  (:func:`write_cell`, written by the benchmark runner): what every record of one cell shares
  is stored once (``provenance``: config, command, versions, machine, device, git commit;
  ``cell``: id, status, timings, ...), and each record keeps the tidy columns and what is its
  own. Reading joins them back, so both layouts give the same DataFrame rows.

Commands are recorded with :func:`portable_command`: a dataset folder becomes
``$RECSYS_COLDSTART_DATA`` and paths inside the repository are relative, never a machine's
absolute path.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from recsys_coldstart.evaluate.protocol import RESULT_COLUMNS

logger = logging.getLogger(__name__)

CELL_FORMAT = "recsys_coldstart.cell/1"
PROVENANCE_FIELDS: tuple[str, ...] = ("config", "command", "versions", "machine", "device", "git_commit")
DATA_ENV = "RECSYS_COLDSTART_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[2]


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


def current_command(*, data_dir: str | os.PathLike | None = None) -> str:
    """The command line of this process, shell-quoted and made portable (:func:`portable_command`)."""
    prog = os.path.basename(sys.argv[0]) if sys.argv else "python"
    return portable_command([prog, *sys.argv[1:]], data_dir=data_dir)


def _prefixes(paths: Sequence[str | os.PathLike | None]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if not p:
            continue
        for q in (os.path.abspath(os.path.expanduser(str(p))), os.path.realpath(os.path.expanduser(str(p)))):
            q = q.rstrip("/") or "/"
            if q != "/" and q not in out:
                out.append(q)
    return sorted(out, key=len, reverse=True)  # the most specific prefix first


def _under(path: str, prefix: str) -> str | None:
    """``path`` relative to ``prefix`` ('' when equal), or None when it is not inside it."""
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1:]
    return None


def _portable_path(value: str, data: list[str], roots: list[str], home: str | None) -> str:
    if value.startswith("$" + DATA_ENV):
        return value  # already portable
    if "/" not in value or "://" in value:
        return shlex.quote(value)
    absolute = os.path.isabs(value) or value.startswith("~")
    full = os.path.abspath(os.path.expanduser(value))
    for prefix in data:
        rest = _under(full, prefix)
        if rest is not None:
            return "$" + DATA_ENV + (shlex.quote("/" + rest) if rest else "")
    if not absolute:
        return shlex.quote(value)  # already relative
    for prefix in roots:
        rest = _under(full, prefix)
        if rest is not None:
            return shlex.quote(rest or ".")
    if home:
        rest = _under(full, home)
        if rest is not None:
            return "~" + (shlex.quote("/" + rest) if rest else "")
    return shlex.quote(value)


def portable_text(text: str, *, data_dirs: Sequence[str | os.PathLike | None] = (),
                  roots: Sequence[str | os.PathLike] | None = None) -> str:
    """``text`` (an error message, a traceback, a Markdown note) with machine paths replaced:
    data folders (``data_dirs`` and ``$RECSYS_COLDSTART_DATA``) by ``$RECSYS_COLDSTART_DATA``,
    the repository root / working folder by a relative path, the home folder by ``~``.

    Parameters
    ----------
    text : str
    data_dirs : sequence of paths
    roots : sequence of paths, optional
        Default: the repository root and the current working folder.

    Returns
    -------
    str
    """
    for prefix in _prefixes([*data_dirs, os.environ.get(DATA_ENV)]):
        text = text.replace(prefix, "$" + DATA_ENV)
    for prefix in _prefixes(list(roots) if roots is not None else [_REPO_ROOT, os.getcwd()]):
        text = text.replace(prefix + "/", "").replace(prefix, ".")
    home = os.path.expanduser("~").rstrip("/")
    if home and home != "~":
        text = text.replace(home + "/", "~/")
    return text


def portable_command(command: str | Sequence[str] | None = None, *, data_dir: str | os.PathLike | None = None,
                     roots: Sequence[str | os.PathLike] | None = None) -> str:
    """A command line that names no machine's absolute path.

    Every argument that is a path (holds a ``/``; also the value of ``--option=path``) is
    rewritten: inside the
    data folder (``data_dir`` or ``$RECSYS_COLDSTART_DATA``) it becomes
    ``$RECSYS_COLDSTART_DATA/...``; an absolute path inside the repository or the working
    folder becomes relative to it; one under the home folder starts with ``~``. Other
    arguments are kept, shell-quoted.

    Parameters
    ----------
    command : str or sequence of str, optional
        The command (a string is split with :func:`shlex.split`); default: this process's
        ``sys.argv`` with the program's base name.
    data_dir : path, optional
        The data folder of the run (in addition to ``$RECSYS_COLDSTART_DATA``).
    roots : sequence of paths, optional
        Folders whose paths are written relative (default: the repository root and the
        current working folder).

    Returns
    -------
    str
    """
    if command is None:
        command = [os.path.basename(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    if isinstance(command, str):
        try:
            tokens = shlex.split(command)
        except ValueError:  # unbalanced quotes: keep the words as they are
            tokens = command.split()
    else:
        tokens = [str(t) for t in command]
    data = _prefixes([data_dir, os.environ.get(DATA_ENV)])
    root_list = _prefixes(list(roots) if roots is not None else [_REPO_ROOT, os.getcwd()])
    home = os.path.expanduser("~")
    home = home if home not in ("", "/", "~") else None
    out = []
    for tok in tokens:
        if tok.startswith("-") and "=" in tok:
            opt, _, val = tok.partition("=")
            out.append(shlex.quote(opt) + "=" + _portable_path(val, data, root_list, home))
        else:
            out.append(_portable_path(tok, data, root_list, home))
    return " ".join(out)


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
        Default: this process's command line. Either way it is made portable
        (:func:`portable_command`).
    device : str
    seconds : float, optional
        Wall-clock seconds of the run.
    extra : mapping, optional
        Anything else to attach (e.g. ``peak_rss_mb``).
    """
    missing = [c for c in RESULT_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"results lack columns {missing}")
    meta = {"config": dict(config or {}), "command": current_command() if command is None
            else portable_command(command), "versions": versions(),
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
    """Read one records file or cell file (or every ``*.json`` in a folder) back into a DataFrame.

    Unlike :func:`read_results`, an unreadable file raises.
    """
    p = Path(path)
    files = sorted(p.rglob("*.json")) if p.is_dir() else [p]
    recs: list[dict] = []
    for f in files:
        recs.extend(r for r in flatten_records(json.loads(f.read_text())) if "metric" in r)
    return pd.DataFrame(recs)


def cell_document(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Factor one cell's records into a cell file document (see the module docstring).

    A field with the same value in every record is stored once: under ``provenance`` for
    :data:`PROVENANCE_FIELDS`, else under ``cell`` (the record field ``cell``, the cell id, is
    stored as ``cell.id``). Each record keeps the tidy columns and its own fields.
    :func:`flatten_records` inverts it exactly.

    Parameters
    ----------
    records : sequence of dict
        The flat records of one cell (as :func:`to_records` builds them).

    Returns
    -------
    dict
        ``{"format", "cell", "provenance", "records"}``.
    """
    recs = [dict(r) for r in records]
    shared: dict[str, Any] = {}
    if recs:
        first = recs[0]
        for key, val in first.items():
            if key in RESULT_COLUMNS:
                continue
            if all(key in r and _same(r[key], val) for r in recs[1:]):
                shared[key] = val
    provenance = {k: shared.pop(k) for k in PROVENANCE_FIELDS if k in shared}
    cell = {"id": shared["cell"]} if "cell" in shared else {}
    cell.update((k, v) for k, v in shared.items() if k != "cell")
    own = [{k: v for k, v in r.items() if k not in shared and k not in provenance} for r in recs]
    return {"format": CELL_FORMAT, "cell": cell, "provenance": provenance, "records": own}


def _same(a: Any, b: Any) -> bool:
    try:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return False


def flatten_records(doc: Any) -> list[dict]:
    """The flat records of a parsed results file: a records list as it is, a cell file with its
    ``cell`` and ``provenance`` fields joined into every record; anything else gives ``[]``."""
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict) and "model" in r]
    if isinstance(doc, dict) and doc.get("format") == CELL_FORMAT:
        cell = {("cell" if k == "id" else k): v for k, v in dict(doc.get("cell") or {}).items()}
        prov = dict(doc.get("provenance") or {})
        return [{**cell, **prov, **r} for r in doc.get("records") or [] if isinstance(r, dict)]
    return []


def dumps_cell(doc: Mapping[str, Any]) -> str:
    """A cell document as JSON text: the header indented, then one record per line (small
    enough to read on GitHub, one line per number in a diff)."""
    head = {k: v for k, v in doc.items() if k != "records"}
    text = json.dumps(head, indent=1, default=str)
    recs = ",\n".join("  " + json.dumps(r, default=str) for r in doc.get("records", []))
    return text[:-2] + ',\n "records": [\n' + recs + "\n ]\n}\n"


def write_cell(records: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write one cell's records as a cell file (:func:`cell_document`, :func:`dumps_cell`);
    returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dumps_cell(cell_document(records)))
    tmp.replace(p)  # a crash mid-write never leaves half a cell that resume would trust
    return p


def read_cell_records(path: str | os.PathLike) -> list[dict]:
    """The flat records of one results file (cell file or records list); ``[]`` if unreadable."""
    try:
        return flatten_records(json.loads(Path(path).read_text()))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return []


def read_results(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Every record under ``out_dir`` (recursively; or of one JSON file) as a tidy DataFrame.

    Columns: ``model, dataset, split, segment, metric, k, value, seed`` plus the per-cell and
    provenance fields joined in (``cell``, ``status``, ``config``, ``command``, ...). Failed
    cells are included (``status == "error"``); unreadable files are skipped with a warning.
    """
    rows: list[dict] = []
    p = Path(out_dir)
    for f in sorted(p.rglob("*.json")) if p.is_dir() else [p]:
        try:
            data = json.loads(f.read_text())
        except (json.JSONDecodeError, OSError, UnicodeDecodeError):
            logger.warning("skipping unreadable results file %s", f)
            continue
        rows.extend(r for r in flatten_records(data) if "metric" in r)
    return pd.DataFrame(rows)


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
