"""Benchmark runner: models x datasets x splits x seeds from one TOML suite file.

A suite file (read with :mod:`tomllib`; ``tomli`` on Python 3.10) looks like::

    name = "ml-100k"
    seeds = [0, 1, 2]
    ks = [10, 20]
    max_train_seconds = 300          # optional: stop a model's training (via its callback) after this

    [[datasets]]
    name = "ml-100k"                 # "synthetic" needs no data folder
    splits = ["warm", "user-cold-k3", "item-cold"]
    # options = { n_users = 400 }    # keyword arguments of make_synthetic (synthetic only)

    [splits.user-cold-k3]            # a named split; a bare kind ("warm") needs no table
    kind = "user-cold"
    n_support = 3
    # predefined = true              # the dataset's own split (load_predefined_split)

    [[models]]
    name = "als"                     # a name of recsys_coldstart.cli.registry.MODELS
    label = "als-64"                 # optional; defaults to name
    config = { factors = 64 }        # optional config overrides
    splits = ["warm", "user-cold-k3"]  # optional restriction (also datasets = [...])
    max_train_seconds = 120          # optional, overrides the suite's
    role = "teacher"                 # optional: teacher / student in the report's trade-off plot
    # teacher = "teacher-label"      # optional: fit(train, teacher=<that model of the same split/seed>)

    [[elicitation]]                  # optional: offline elicitation replay cells
    dataset = "ml-100k"
    split = "user-cold"              # a user-cold split (K = 0 support)
    model = "als"                    # the fitted item space the policies ask from
    model_config = { factors = 32 }
    policies = ["random", "popularity", "greedy"]
    policy_config = { greedy = { known_weight = 1.0 } }   # optional, per policy
    budget = 10

Each cell (one model, dataset, split and seed; or one elicitation policy, dataset, split and
seed) writes ``OUT/cells/<cell id>.json``: a JSON list of the records of ``shared/BENCHMARKS.md``
(``model, dataset, split, segment, metric, k, value, seed`` + ``config, command, versions,
machine, device, seconds, peak_rss_mb``) built with
:func:`recsys_coldstart.evaluate.results.to_records`. Extra record fields:

- ``status`` (``"ok"`` / ``"error"``), ``cell``, ``suite``, ``record_type`` (``"metric"``,
  ``"curve"`` for per-epoch training logs, ``"elicitation"`` for one budget of an elicitation
  curve), ``fit_seconds``, ``eval_seconds``;
- ``n_params`` (fitted float parameters) and ``latency_ms_per_1k_users`` (scoring 1,000 users
  against the whole catalogue) when they could be measured;
- a failed cell writes one record with ``status="error"``, ``error`` and ``traceback`` and
  ``metric = value = None``; the other cells go on.

A run is resumable: cells whose file holds ``status="ok"`` records are skipped (failed cells are
retried, and so are cells whose definition changed since: records carry a ``spec_hash``). ``peak_rss_mb`` is the process's peak so far, because cells run in one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import logging
import re
import subprocess
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_coldstart.evaluate.protocol import RESULT_COLUMNS, evaluate
from recsys_coldstart.evaluate.results import (
    current_command,
    machine,
    peak_rss_mb,
    to_records,
    versions,
    write_json,
)
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

SPLIT_KINDS = ("warm", "user-cold", "item-cold")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


# ---------------------------------------------------------------------------------------------
# suite description
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitSpec:
    """How to cut one split.

    Attributes
    ----------
    name : str
        The label in results (``split`` column) and cell ids.
    kind : {"warm", "user-cold", "item-cold"}
    n_support : int
        Few-shot support size ``K`` for user-cold splits.
    predefined : bool
        Use the dataset's own split (``load_predefined_split``) instead of ``make_split``.
    temporal : bool
        Temporal warm hold-out.
    """

    name: str
    kind: str
    n_support: int = 0
    predefined: bool = False
    temporal: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """One model of a suite: registry ``name``, result ``label``, config overrides, restrictions,
    and an optional training time budget (seconds, enforced through the epoch callback)."""

    name: str
    label: str
    config: Mapping[str, Any] = field(default_factory=dict)
    splits: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None
    segments: tuple[str, ...] | None = None
    max_train_seconds: float | None = None
    role: str | None = None
    teacher: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a suite: loader ``name``, the split names run on it, loader options."""

    name: str
    splits: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ElicitationSpec:
    """Elicitation replay cells: each policy asks ``budget`` questions to the test cold users of a
    user-cold split, from the item space of ``model`` (fitted once per split and seed)."""

    dataset: str
    split: str
    policies: tuple[str, ...]
    model: str = "als"
    model_config: Mapping[str, Any] = field(default_factory=dict)
    policy_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    budget: int = 10


@dataclass(frozen=True)
class Suite:
    """A parsed suite file (see the module docstring for the TOML layout)."""

    name: str
    datasets: tuple[DatasetSpec, ...]
    splits: Mapping[str, SplitSpec]
    models: tuple[ModelSpec, ...]
    seeds: tuple[int, ...] = (0,)
    ks: tuple[int, ...] = (10, 20)
    elicitation: tuple[ElicitationSpec, ...] = ()
    max_train_seconds: float | None = None
    device: str = "auto"
    description: str = ""


@dataclass(frozen=True)
class Cell:
    """One unit of work: ``kind`` is ``"model"`` or ``"elicitation"``."""

    id: str
    kind: str
    dataset: DatasetSpec
    split: SplitSpec
    seed: int
    model: ModelSpec | None = None
    policy: str | None = None
    elicitation: ElicitationSpec | None = None


def _tuple(value: Any, what: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise DataError(f"suite: {what} must be a list, got {type(value).__name__}")


def _split_spec(name: str, table: Mapping[str, Any] | None) -> SplitSpec:
    table = dict(table or {})
    kind = table.pop("kind", name)
    if kind not in SPLIT_KINDS:
        raise DataError(f"suite: split {name!r} has unknown kind {kind!r}; choose one of {SPLIT_KINDS} "
                        f"(or define [splits.{name}] with a kind)")
    allowed = {f.name for f in dataclasses.fields(SplitSpec)} - {"name", "kind"}
    bad = set(table) - allowed
    if bad:
        raise DataError(f"suite: split {name!r} has unknown options {sorted(bad)}; valid: {sorted(allowed)}")
    return SplitSpec(name=name, kind=kind, **table)


def parse_suite(doc: Mapping[str, Any], *, source: str = "<suite>",
                models: Mapping[str, type] | None = None) -> Suite:
    """Validate a suite mapping (the parsed TOML) into a :class:`Suite`.

    Parameters
    ----------
    doc : mapping
        Parsed TOML.
    source : str
        Where it came from (for error messages).
    models : mapping of str to class, optional
        Extra model classes by name, checked before the registry (Python API only).

    Raises
    ------
    DataError
        On unknown keys, unknown model names or split kinds, or missing sections.
    """
    known = {"name", "description", "seeds", "ks", "datasets", "splits", "models", "elicitation",
             "max_train_seconds", "device"}
    bad = set(doc) - known
    if bad:
        raise DataError(f"{source}: unknown top-level keys {sorted(bad)}; valid: {sorted(known)}")
    split_tables = doc.get("splits", {}) or {}
    if not isinstance(split_tables, Mapping):
        raise DataError(f"{source}: [splits] must be a table of named splits")
    datasets = []
    used_splits: set[str] = set()
    for d in doc.get("datasets", []) or []:
        if isinstance(d, str):
            d = {"name": d}
        if "name" not in d:
            raise DataError(f"{source}: every [[datasets]] entry needs a name")
        names = _tuple(d.get("splits", ["warm"]), "datasets.splits")
        used_splits.update(names)
        extra = set(d) - {"name", "splits", "options"}
        if extra:
            raise DataError(f"{source}: dataset {d['name']!r} has unknown keys {sorted(extra)}")
        datasets.append(DatasetSpec(name=str(d["name"]), splits=names, options=dict(d.get("options", {}))))
    elicit = []
    for e in doc.get("elicitation", []) or []:
        extra = set(e) - {"dataset", "split", "policies", "budget", "model", "model_config", "policy_config"}
        if extra or "dataset" not in e or "policies" not in e:
            raise DataError(f"{source}: [[elicitation]] needs dataset and policies (unknown keys: {sorted(extra)})")
        sp_name = str(e.get("split", "user-cold"))
        used_splits.add(sp_name)
        resolve_model(str(e.get("model", "als")), models)
        for pol in _tuple(e["policies"], "elicitation.policies"):
            resolve_policy(str(pol))
        elicit.append(ElicitationSpec(dataset=str(e["dataset"]), split=sp_name,
                                      policies=_tuple(e["policies"], "elicitation.policies"),
                                      model=str(e.get("model", "als")), model_config=dict(e.get("model_config", {})),
                                      policy_config={k: dict(v) for k, v in dict(e.get("policy_config", {})).items()},
                                      budget=int(e.get("budget", 10))))
    splits = {n: _split_spec(n, split_tables.get(n)) for n in sorted(used_splits | set(split_tables))}
    model_specs = []
    labels: set[str] = set()
    for m in doc.get("models", []) or []:
        if isinstance(m, str):
            m = {"name": m}
        extra = set(m) - {"name", "label", "config", "splits", "datasets", "segments", "max_train_seconds",
                          "role", "teacher"}
        if extra or "name" not in m:
            raise DataError(f"{source}: [[models]] entry {m!r} needs a name (unknown keys: {sorted(extra)})")
        name = str(m["name"])
        resolve_model(name, models)  # fail fast on typos, before any cell runs
        label = str(m.get("label", name))
        if label in labels:
            raise DataError(f"{source}: two models are labelled {label!r}; give one a distinct label")
        labels.add(label)
        for s in _tuple(m.get("splits"), "models.splits"):
            if s not in splits:
                raise DataError(f"{source}: model {label!r} names split {s!r}, which no dataset uses")
        model_specs.append(ModelSpec(
            name=name, label=label, config=dict(m.get("config", {})),
            splits=_tuple(m["splits"], "models.splits") if "splits" in m else None,
            datasets=_tuple(m["datasets"], "models.datasets") if "datasets" in m else None,
            segments=_tuple(m["segments"], "models.segments") if "segments" in m else None,
            max_train_seconds=None if m.get("max_train_seconds") is None else float(m["max_train_seconds"]),
            role=None if m.get("role") is None else str(m["role"]),
            teacher=None if m.get("teacher") is None else str(m["teacher"])))
    for ms in model_specs:
        if ms.teacher is not None and ms.teacher not in labels:
            raise DataError(f"{source}: model {ms.label!r} distils from teacher {ms.teacher!r}, which is not the "
                            f"label of a model of the suite ({sorted(labels)})")
    if not datasets and not elicit:
        raise DataError(f"{source}: the suite has no [[datasets]] (and no [[elicitation]])")
    if datasets and not model_specs and not elicit:
        raise DataError(f"{source}: the suite has datasets but no [[models]]")
    mts = doc.get("max_train_seconds")
    return Suite(name=str(doc.get("name", Path(source).stem)), datasets=tuple(datasets), splits=splits,
                 models=tuple(model_specs), seeds=tuple(int(s) for s in _tuple(doc.get("seeds", [0]), "seeds")),
                 ks=tuple(int(k) for k in _tuple(doc.get("ks", [10, 20]), "ks")), elicitation=tuple(elicit),
                 max_train_seconds=None if mts is None else float(mts), device=str(doc.get("device", "auto")),
                 description=str(doc.get("description", "")))


def load_suite(path: str | Path, *, models: Mapping[str, type] | None = None) -> Suite:
    """Read and validate a suite TOML file (see :func:`parse_suite`)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError("reading suite files on Python 3.10 needs tomli: pip install tomli") from None
    p = Path(path)
    if not p.is_file():
        raise DataError(f"suite file not found: {p}")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{p}: invalid TOML ({e})") from None
    return parse_suite(doc, source=str(p), models=models)


def resolve_model(name: str, models: Mapping[str, type] | None = None) -> type:
    """The model class for ``name``: ``models`` first, then the CLI registry."""
    if models and name in models:
        return models[name]
    from recsys_coldstart.cli.registry import MODELS, model_class

    if name.strip().lower() not in MODELS:
        extra = sorted(models) if models else []
        raise DataError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS) + extra)}")
    return model_class(name)


def _cell_id(*parts: Any) -> str:
    return "__".join(_SAFE.sub("-", str(p)) for p in parts)


def suite_cells(suite: Suite) -> list[Cell]:
    """Every cell of a suite, ordered dataset -> split -> seed -> model (so splits are reused)."""
    cells: list[Cell] = []
    for ds in suite.datasets:
        for sname in ds.splits:
            sp_spec = suite.splits[sname]
            for seed in suite.seeds:
                for m in suite.models:
                    if m.splits is not None and sname not in m.splits:
                        continue
                    if m.datasets is not None and ds.name not in m.datasets:
                        continue
                    cells.append(Cell(id=_cell_id(ds.name, sname, m.label, f"s{seed}"), kind="model",
                                      dataset=ds, split=sp_spec, seed=seed, model=m))
    by_name = {d.name: d for d in suite.datasets}
    for e in suite.elicitation:
        ds = by_name.get(e.dataset, DatasetSpec(name=e.dataset, splits=(e.split,)))
        for seed in suite.seeds:
            for pol in e.policies:
                cells.append(Cell(id=_cell_id(ds.name, e.split, "elicit", pol, f"s{seed}"), kind="elicitation",
                                  dataset=ds, split=suite.splits[e.split], seed=seed, policy=pol, elicitation=e))
    return cells


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def load_data(name: str, data_dir: str | Path | None = None, **options: Any):
    """Load a dataset by name: ``"synthetic"`` (``make_synthetic(**options)``) or a real one.

    Returns
    -------
    Interactions
    """
    if name == "synthetic":
        from recsys_coldstart.data import make_synthetic

        return make_synthetic(**options)
    from recsys_coldstart.data.datasets import load_dataset

    return load_dataset(name, None if data_dir is None else str(data_dir), **options)


def load_split(dataset: str, spec: SplitSpec | str, seed: int, *, data_dir: str | Path | None = None,
               data=None, options: Mapping[str, Any] | None = None):
    """Cut (or load) the split ``spec`` of ``dataset`` with ``seed``.

    Parameters
    ----------
    dataset : str
    spec : SplitSpec or str
        A split spec or a bare kind.
    seed : int
    data_dir : path, optional
        Default: ``$RECSYS_COLDSTART_DATA`` (the loaders' own default).
    data : Interactions, optional
        Already loaded data (skips loading).
    options : mapping, optional
        Loader options (``make_synthetic`` keywords for ``"synthetic"``).

    Returns
    -------
    ColdStartSplit
    """
    if isinstance(spec, str):
        spec = _split_spec(spec, None)
    if spec.predefined:
        from recsys_coldstart.data.datasets import load_predefined_split

        split = load_predefined_split(dataset, spec.kind, None if data_dir is None else str(data_dir),
                                      random_state=seed)
        if split is None:
            raise DataError(f"dataset {dataset!r} has no predefined {spec.kind} split")
        return split
    from recsys_coldstart.data import make_split

    if data is None:
        data = load_data(dataset, data_dir, **dict(options or {}))
    return make_split(data, spec.kind, random_state=seed, n_support=spec.n_support, temporal=spec.temporal)


# ---------------------------------------------------------------------------------------------
# per-cell helpers
# ---------------------------------------------------------------------------------------------
def config_dict(model: Any) -> dict[str, Any]:
    """The model's config as a JSON-able dict (``{}`` for models without one)."""
    from recsys_coldstart.io import config_to_dict

    try:
        return config_to_dict(getattr(model, "config", None))
    except TypeError:
        return {"repr": repr(getattr(model, "config", None))}


def make_model(cls: type, overrides: Mapping[str, Any], *, seed: int | None, device: str | None = None) -> Any:
    """Instantiate ``cls`` with config ``overrides``, setting ``random_state`` to ``seed`` and
    ``device`` when the config has those fields and the overrides do not set them."""
    kwargs = dict(overrides)
    cfg_cls = getattr(cls, "config_class", None)
    if cfg_cls is not None and dataclasses.is_dataclass(cfg_cls):
        names = {f.name for f in dataclasses.fields(cfg_cls)}
        if "random_state" in names and "random_state" not in kwargs and seed is not None:
            kwargs["random_state"] = int(seed)
        if "device" in names and "device" not in kwargs and device is not None:
            kwargs["device"] = device
    return cls(**kwargs)


def resolved_device(model: Any) -> str:
    """The device a model trains on: its config's ``device`` resolved, else ``"cpu"``."""
    dev = getattr(getattr(model, "config", None), "device", None)
    if dev is None:
        return "cpu"
    try:
        from recsys_coldstart._utils import resolve_device

        return str(resolve_device(dev))
    except Exception:  # noqa: BLE001 - the record keeps what was asked for
        return str(dev)


def count_params(model: Any) -> int | None:
    """Fitted float parameters of ``model``: ``n_params_`` / ``n_parameters()`` when defined, else
    the size of every fitted float array (CSR values included)."""
    n = getattr(model, "n_params_", None)
    if n is None and callable(getattr(model, "n_parameters", None)):
        try:
            n = model.n_parameters()
        except Exception:  # noqa: BLE001
            n = None
    if n is not None:
        return int(n)
    try:
        from recsys_coldstart.io import fitted_arrays

        arrays = fitted_arrays(model)
    except Exception:  # noqa: BLE001
        return None
    total = sum(a.size for k, a in arrays.items()
                if isinstance(a, np.ndarray) and a.dtype.kind == "f" and not k.startswith("history"))
    return int(total) or None


def scoring_latency_ms(model: Any, n_users: int, *, n_probe: int = 1000, repeats: int = 3) -> float | None:
    """Median milliseconds to score ``n_probe`` known users against the whole catalogue (scaled to
    1,000 users when fewer exist)."""
    users = np.arange(min(n_probe, n_users), dtype=np.int64)
    if len(users) == 0:
        return None
    times = []
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.score(users)
            times.append(time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - a model may only score new users
        return None
    return float(np.median(times) * 1000.0 * 1000.0 / len(users))


def model_history(model: Any) -> dict[str, list[float]]:
    """Per-epoch logs a fitted model exposes: a ``history_`` dict of lists, or ``history_<name>_``
    arrays (e.g. ``history_loss_``)."""
    out: dict[str, list[float]] = {}
    h = getattr(model, "history_", None)
    if isinstance(h, Mapping):
        for k, v in h.items():
            try:
                out[str(k)] = [float(x) for x in v]
            except (TypeError, ValueError):
                continue
    elif isinstance(h, (list, tuple)) and h and isinstance(h[0], Mapping):
        out.update(_logs_to_history(list(h)))
    for name, val in vars(model).items():
        if name.startswith("history_") and name.endswith("_") and name != "history_":
            try:
                out[name[len("history_"):-1]] = [float(x) for x in np.ravel(np.asarray(val, dtype=float))]
            except (TypeError, ValueError):
                continue
    return out


def _logs_to_history(logs: list[Mapping[str, Any]]) -> dict[str, list[float]]:
    keys: list[str] = []
    for row in logs:
        keys.extend(k for k in row if k not in keys and k != "epoch")
    out = {}
    for k in keys:
        vals = []
        for row in logs:
            v = row.get(k)
            try:
                vals.append(float(v) if v is not None else float("nan"))
            except (TypeError, ValueError):
                vals.append(float("nan"))
        out[k] = vals
    return out


class _Recorder:
    """The per-epoch callback passed to ``fit``: keeps the logs, enforces a time budget and
    chains an optional user callback."""

    def __init__(self, max_seconds: float | None = None, inner: Callable | None = None) -> None:
        self.logs: list[dict[str, Any]] = []
        self.epochs: list[int] = []
        self.max_seconds = max_seconds
        self.inner = inner
        self.t0 = time.perf_counter()
        self.stopped_for_time = False

    def __call__(self, epoch: int, logs: Mapping[str, Any] | None = None) -> bool:
        self.epochs.append(int(epoch))
        self.logs.append({k: v for k, v in dict(logs or {}).items() if isinstance(v, (int, float, np.number))})
        stop = bool(self.inner(epoch, logs)) if self.inner is not None else False
        if self.max_seconds is not None and time.perf_counter() - self.t0 > self.max_seconds:
            self.stopped_for_time = True
            stop = True
        return stop

    def history(self) -> dict[str, list[float]]:
        return _logs_to_history(self.logs)


def _base_meta(cell: Cell, suite_name: str, run_meta: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "ok", "cell": cell.id, "suite": suite_name, **run_meta}


def _with_fields(records: list[dict], fields: Sequence[Mapping[str, Any]]) -> list[dict]:
    for r, f in zip(records, fields, strict=True):
        r.update(f)
    return records


def _curve_frame(history: Mapping[str, list[float]], base: Mapping[str, Any]) -> tuple[pd.DataFrame, list[dict]]:
    rows, fields = [], []
    for key, vals in history.items():
        if not vals:
            continue
        finite = [v for v in vals if np.isfinite(v)]
        rows.append({**base, "segment": "train", "metric": key, "k": 0,
                     "value": float(finite[-1]) if finite else float("nan")})
        fields.append({"record_type": "curve", "epochs": list(range(1, len(vals) + 1)),
                       "curve": [None if not np.isfinite(v) else float(v) for v in vals]})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), fields


def run_model_cell(cell: Cell, split, *, cls: type, ks: Sequence[int], device: str | None,
                   max_train_seconds: float | None, command: str, extra: Mapping[str, Any],
                   teacher: Any = None, fitted: dict | None = None) -> list[dict]:
    """Fit and evaluate one model on one split; returns the records (raises on failure).

    ``teacher`` (a fitted model) is passed to ``fit(..., teacher=teacher)`` for distilled
    students; the fitted model is stored in ``fitted[label]`` when a dict is given.
    """
    m = cell.model
    assert m is not None
    t_start = time.perf_counter()
    model = make_model(cls, m.config, seed=cell.seed, device=device)
    rec = _Recorder(max_train_seconds)
    if teacher is not None:
        model.fit(split.train, val=split.val, callback=rec, teacher=teacher)
    else:
        model.fit(split.train, val=split.val, callback=rec)
    fit_s = time.perf_counter() - t_start
    if fitted is not None:
        fitted[m.label] = model
    t1 = time.perf_counter()
    res = evaluate(model, split, segments=m.segments, ks=ks, which="test", model_name=m.label, seed=cell.seed)
    eval_s = time.perf_counter() - t1
    res["split"] = cell.split.name
    res["dataset"] = cell.dataset.name
    if res.empty:
        raise DataError(f"no segment of split {cell.split.name!r} had test truth")
    latency = scoring_latency_ms(model, split.train.n_users)
    n_params = count_params(model)
    history = rec.history() or model_history(model)
    seconds = time.perf_counter() - t_start
    meta = {**extra, "record_type": "metric", "model_name": m.name, "fit_seconds": fit_s, "eval_seconds": eval_s,
            "teacher": m.teacher,
            "n_params": n_params, "latency_ms_per_1k_users": latency, "n_epochs_run": len(rec.epochs) or None,
            "stopped_for_time": rec.stopped_for_time, "peak_rss_mb": peak_rss_mb()}
    role = m.role or getattr(model, "role_", None) or getattr(model, "role", None)
    if isinstance(role, str):
        meta["role"] = role  # teacher / student, for the report's trade-off section
    cfg = config_dict(model)
    dev = resolved_device(model)
    records = to_records(res, config=cfg, command=command, device=dev, seconds=seconds, extra=meta)
    if history:
        base = {"model": m.label, "dataset": cell.dataset.name, "split": cell.split.name, "seed": cell.seed}
        cdf, fields = _curve_frame(history, base)
        curve_meta = {**meta, "record_type": "curve"}
        records += _with_fields(to_records(cdf, config=cfg, command=command, device=dev, seconds=seconds,
                                           extra=curve_meta), fields)
    return records


def resolve_policy(name: str) -> type:
    """The elicitation policy class for ``name``: the CLI registry's ``POLICIES`` table, else the
    policy classes exported by :mod:`recsys_coldstart.elicit` whose ``name`` matches."""
    from recsys_coldstart.cli.registry import POLICIES, resolve

    if name.strip().lower() in POLICIES:
        return resolve(POLICIES, name, "policy")
    import recsys_coldstart.elicit as elicit

    found = {}
    for attr in getattr(elicit, "__all__", []):
        obj = getattr(elicit, attr, None)
        pname = getattr(obj, "name", None)
        if isinstance(obj, type) and isinstance(pname, str) and hasattr(obj, "select") and pname != "policy":
            found[pname] = obj
    if name in found:
        return found[name]
    raise DataError(f"unknown elicitation policy {name!r}; choose one of: {', '.join(sorted(set(POLICIES) | set(found)))}")


def run_elicitation_cell(cell: Cell, split, *, ks: Sequence[int], command: str, extra: Mapping[str, Any],
                         base_model: Any, base_seconds: float = 0.0) -> list[dict]:
    """Replay one elicitation policy on a user-cold split (:func:`recsys_coldstart.elicit.replay`).

    Records: one per (budget, metric, k) with ``record_type="elicitation"`` and ``budget``,
    plus, per (metric, k), the mean over budgets ``1..min(10, budget)`` in segment ``elicitation``.
    """
    from recsys_coldstart.elicit.replay import replay

    e = cell.elicitation
    assert e is not None and cell.policy is not None
    t0 = time.perf_counter()
    pcfg = dict(e.policy_config.get(cell.policy, {}))
    policy = resolve_policy(cell.policy)(**pcfg)
    curve = replay(policy, base_model, split, budget=e.budget, ks=ks, random_state=cell.seed, policy_name=cell.policy)
    seconds = time.perf_counter() - t0 + base_seconds
    need = {"policy", "budget", "metric", "k", "value"}
    if not need <= set(curve.columns):
        raise DataError(f"replay returned columns {list(curve.columns)}; expected {sorted(need)}")
    curve = curve.copy()
    df = pd.DataFrame({"model": curve["policy"].astype(str), "dataset": cell.dataset.name, "split": cell.split.name,
                       "segment": "elicitation-curve", "metric": curve["metric"], "k": curve["k"].astype(int),
                       "value": curve["value"].astype(float), "seed": cell.seed})
    meta = {**extra, "model_name": cell.policy, "base_model": e.model, "budget_max": e.budget,
            "peak_rss_mb": peak_rss_mb()}
    cfg = {"policy": cell.policy, "policy_config": config_dict(policy), "budget": e.budget, "base_model": e.model,
           "base_model_config": config_dict(base_model)}
    recs = to_records(df, config=cfg, command=command, device=resolved_device(base_model), seconds=seconds,
                      extra={**meta, "record_type": "elicitation"})
    recs = _with_fields(recs, [{"budget": int(b)} for b in curve["budget"]])
    lim = min(10, e.budget)
    sub = curve[(curve.budget >= 1) & (curve.budget <= lim)]
    summ = sub.groupby(["policy", "metric", "k"], as_index=False).value.mean()
    sdf = pd.DataFrame({"model": summ["policy"].astype(str), "dataset": cell.dataset.name, "split": cell.split.name,
                        "segment": "elicitation", "metric": summ["metric"], "k": summ["k"].astype(int),
                        "value": summ["value"].astype(float), "seed": cell.seed})
    recs += to_records(sdf, config=cfg, command=command, device=resolved_device(base_model), seconds=seconds,
                       extra={**meta, "record_type": "metric", "budget_mean_over": f"1..{lim}"})
    return recs


def _error_record(cell: Cell, exc: BaseException, *, command: str, seconds: float,
                  extra: Mapping[str, Any]) -> dict:
    label = cell.model.label if cell.model is not None else cell.policy
    cfg = dict(cell.model.config) if cell.model is not None else {"policy": cell.policy}
    return {"model": label, "dataset": cell.dataset.name, "split": cell.split.name, "segment": None, "metric": None,
            "k": None, "value": None, "seed": cell.seed, "config": cfg, "command": command, "versions": versions(),
            "machine": machine(), "device": None, "seconds": seconds, **extra, "record_type": "error",
            "status": "error", "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:2000],
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])[-4000:],
            "peak_rss_mb": peak_rss_mb()}


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
    matches (records written without a hash count as finished)."""
    if not path.is_file():
        return False
    try:
        recs = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return False
    if not recs or not all(isinstance(r, dict) and r.get("status") == "ok" for r in recs):
        return False
    stored = recs[0].get("spec_hash")
    return spec_hash is None or stored is None or stored == spec_hash


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


@dataclass
class RunSummary:
    """What :func:`run_suite` did: cell ids run ok, failed, and skipped (already finished)."""

    out_dir: Path
    ok: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_suite(suite: Suite | str | Path, out_dir: str | Path, *, data_dir: str | Path | None = None,
              resume: bool = True, only: str | None = None, device: str | None = None,
              models: Mapping[str, type] | None = None, command: str | None = None,
              show_progress: bool = False) -> RunSummary:
    """Run every cell of a suite, writing ``OUT/cells/<cell>.json`` after each.

    Parameters
    ----------
    suite : Suite or path to a TOML file
    out_dir : path
        Results folder (created).
    data_dir : path, optional
        Folder that contains the dataset folders (``ml-100k/``, ...); not needed for synthetic.
    resume : bool
        Skip cells whose records already exist with status ok.
    only : str, optional
        fnmatch pattern on cell ids (e.g. ``"ml-100k__warm__*"``).
    device : str, optional
        Overrides the suite's device for models with a ``device`` field.
    models : mapping of str to class, optional
        Extra model classes by name (checked before the registry).
    command : str, optional
        The command recorded in each record (default: this process's command line).
    show_progress : bool
        tqdm bar with the time left.

    Returns
    -------
    RunSummary
    """
    if not isinstance(suite, Suite):
        suite = load_suite(suite, models=models)
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    cmd = command or current_command()
    cells = suite_cells(suite)
    if only:
        cells = [c for c in cells if fnmatch.fnmatch(c.id, only)]
    summary = RunSummary(out_dir=out)
    todo = []
    for c in cells:
        if resume and cell_done(cell_path(out, c), cell_spec_hash(c, suite)):
            summary.skipped.append(c.id)
        else:
            todo.append(c)
    logger.info("suite %s: %d cells, %d already done, %d to run", suite.name, len(cells), len(summary.skipped),
                len(todo))
    run_meta = {"git_commit": _git_commit()}
    dev = device or suite.device
    t_suite = time.perf_counter()
    bar = None
    redirect = contextlib.nullcontext()
    if show_progress:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        bar = tqdm(total=len(cells), initial=len(summary.skipped), desc=f"bench {suite.name}", unit="cell")
        redirect = logging_redirect_tqdm()
    with redirect:
        _run_cells(todo, suite, out, summary, bar=bar, data_dir=data_dir, device=dev, models=models, command=cmd,
                   run_meta=run_meta)
    summary.seconds = time.perf_counter() - t_suite
    return summary


def _run_cells(todo: list[Cell], suite: Suite, out: Path, summary: RunSummary, *, bar, data_dir, device, models,
               command: str, run_meta: Mapping[str, Any]) -> None:
    cmd, dev = command, device
    data_cache: dict[str, Any] = {}
    split_cache: dict[tuple, Any] = {}
    base_cache: dict[tuple, Any] = {}
    fitted: dict[str, Any] = {}  # label -> fitted model of the current (dataset, split, seed)
    current = None
    try:
        for cell in todo:
            key = (cell.dataset.name, cell.split.name, cell.seed)
            if key != current:
                fitted.clear()
                current = key
            if bar is not None:
                bar.set_postfix_str(cell.id[-60:], refresh=True)
            t0 = time.perf_counter()
            extra = {**_base_meta(cell, suite.name, run_meta), "spec_hash": cell_spec_hash(cell, suite)}
            try:
                split = _get_split(cell, data_dir, data_cache, split_cache)
                if cell.kind == "model":
                    cls = resolve_model(cell.model.name, models)
                    teacher = None
                    if cell.model.teacher is not None:
                        teacher = _teacher_model(cell, suite, split, dev, models, fitted)
                    recs = run_model_cell(cell, split, cls=cls, ks=suite.ks, device=dev, teacher=teacher,
                                          fitted=fitted,
                                          max_train_seconds=(cell.model.max_train_seconds
                                                             if cell.model.max_train_seconds is not None
                                                             else suite.max_train_seconds),
                                          command=cmd, extra=extra)
                else:
                    base, base_s = _base_model(cell, split, dev, models, base_cache)
                    recs = run_elicitation_cell(cell, split, ks=suite.ks, command=cmd, extra=extra,
                                                base_model=base, base_seconds=base_s)
                summary.ok.append(cell.id)
            except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the suite
                logger.warning("cell %s failed: %s: %s", cell.id, type(exc).__name__, exc)
                recs = [_error_record(cell, exc, command=cmd, seconds=time.perf_counter() - t0, extra=extra)]
                summary.failed.append(cell.id)
            write_json(recs, cell_path(out, cell))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _teacher_model(cell: Cell, suite: Suite, split, device, models, fitted: dict) -> Any:
    """The fitted teacher of a student cell: the same split and seed's model labelled
    ``cell.model.teacher`` (fitted here when its own cell was skipped or failed)."""
    label = cell.model.teacher
    if label not in fitted:
        spec = next(m for m in suite.models if m.label == label)
        model = make_model(resolve_model(spec.name, models), spec.config, seed=cell.seed, device=device)
        model.fit(split.train, val=split.val)
        fitted[label] = model
    return fitted[label]


def _base_model(cell: Cell, split, device, models, cache: dict) -> tuple[Any, float]:
    """The elicitation cell's item-space model, fitted once per (dataset, split, seed)."""
    e = cell.elicitation
    key = (cell.dataset.name, cell.split.name, cell.seed, e.model, json.dumps(dict(e.model_config), sort_keys=True))
    if key not in cache:
        cache.clear()
        t0 = time.perf_counter()
        model = make_model(resolve_model(e.model, models), e.model_config, seed=cell.seed, device=device)
        model.fit(split.train)
        cache[key] = (model, time.perf_counter() - t0)
        return cache[key]
    return cache[key][0], 0.0


def _get_split(cell: Cell, data_dir, data_cache: dict, split_cache: dict):
    key = (cell.dataset.name, cell.split, cell.seed, tuple(sorted(cell.dataset.options.items())))
    if key in split_cache:
        return split_cache[key]
    split_cache.clear()  # cells are ordered so a split is used by consecutive cells only
    data = None
    if not cell.split.predefined:
        dkey = cell.dataset.name
        if dkey not in data_cache:
            data_cache.clear()
            data_cache[dkey] = load_data(cell.dataset.name, data_dir, **dict(cell.dataset.options))
        data = data_cache[dkey]
    split = load_split(cell.dataset.name, cell.split, cell.seed, data_dir=data_dir, data=data,
                       options=cell.dataset.options)
    split_cache[key] = split
    return split


def read_results(out_dir: str | Path) -> pd.DataFrame:
    """Every record under ``out_dir`` (recursively; or of one JSON file) as a DataFrame, failed
    cells included."""
    rows: list[dict] = []
    p = Path(out_dir)
    for f in sorted(p.rglob("*.json")) if p.is_dir() else [p]:
        try:
            data = json.loads(f.read_text())
        except (json.JSONDecodeError, OSError, UnicodeDecodeError):
            logger.warning("skipping unreadable results file %s", f)
            continue
        if isinstance(data, list):
            rows.extend(r for r in data if isinstance(r, dict) and "model" in r and "metric" in r)
    return pd.DataFrame(rows)
