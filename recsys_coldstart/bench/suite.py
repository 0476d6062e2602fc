"""Suite files: the TOML description of a benchmark and the cells it expands to.

A suite file looks like::

    name = "ml-100k"
    seeds = [0, 1, 2]
    ks = [10, 20]
    max_train_seconds = 300          # optional: stop a model's training (via its callback) after this

    [[datasets]]
    name = "ml-100k"                 # "synthetic" needs no data folder
    splits = ["warm", "user-cold-k3", "item-cold"]
    # options = { n_users = 400 }    # keyword arguments of make_synthetic (synthetic only)

    [[datasets]]                     # a variant of a dataset under its own name in results
    name = "ml-100k/dense-user"
    source = "ml-100k"               # the loader's name (default: name)
    splits = ["user-cold-k3"]
    options = { user_features_svd = { n = -1, weighting = "standardize", noise = 8 } }
                                     # or item_features_svd = { n = 64 }: the side features replaced
                                     # by a dense SVD of them (data.features.compress_features)

    [splits.user-cold-k3]            # a named split; a bare kind ("warm") needs no table
    kind = "user-cold"
    n_support = 3
    # predefined = true              # the dataset's own split (load_predefined_split)

    [[models]]
    name = "als"                     # a name of the injected model table (the CLI: cli.registry.MODELS)
    label = "als-64"                 # optional; defaults to name
    config = { dim = 64 }            # optional config overrides
    splits = ["warm", "user-cold-k3"]  # optional restriction (also datasets = [...])
    max_train_seconds = 120          # optional, overrides the suite's
    role = "teacher"                 # optional: teacher / student in the report's trade-off plot
    # teacher = "teacher-label"      # optional: fit(train, init_factors=<that model of the same split/seed>)
    tune = { trials = 16, timeout_s = 240, metric = "ndcg@20" }
                                     # optional: tune on val first (see below); `tune = false` opts out

    [[elicitation]]                  # optional: offline elicitation replay cells
    dataset = "ml-100k"
    split = "user-cold"              # a user-cold split (K = 0 support)
    model = "als"                    # the fitted item space the policies ask from
    model_config = { dim = 32 }
    policies = ["random", "popularity", "greedy"]
    policy_config = { greedy = { known_weight = 1.0 } }   # optional, per policy
    budget = 10
    max_users = 2000                 # optional: a seeded subsample of the test cold users

Tuning inside a suite: a model entry's ``tune`` table (or a top-level ``[tune]`` table, the
default of every model entry) makes the runner run an optuna study on the **validation** set of
the first seed's split (:func:`recsys_coldstart.tune.tune`; the default config is trial 0, the
study lives in ``OUT/tune/<dataset>__<split>__<label>.db`` and resumes), then run the best
config on every seed. Keys: ``trials`` (total, the default trial included), ``timeout_s`` (stop
starting trials after this many seconds), ``metric`` (``"ndcg@20"``), ``segment`` (default: the
split's first), ``prune`` (true). A model without ``search_space`` (no parameters) runs as it is.
Records carry ``tuned = {trials, timeout_s, metric, best_params, ...}`` or ``tuned = null``.

Model and policy names are checked against the tables passed in (``models=``, ``policies=``);
this module never maps a name to a class itself (the CLI does, design rule 6).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_coldstart.bench.tuning import TuneSpec, tune_spec
from recsys_coldstart.exceptions import DataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, packaged as tomli (a dependency there, see pyproject.toml)
    import tomli as tomllib

SPLIT_KINDS = ("warm", "user-cold", "item-cold")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def read_toml(path: str | Path, *, what: str = "file") -> dict[str, Any]:
    """Parse a TOML file: the package's one TOML reader (suites, pretraining configs).

    Parameters
    ----------
    path : path
    what : str
        What the file is, for the error message (``"suite file"``, ``"config file"``).

    Raises
    ------
    DataError
        When the file does not exist or is not valid TOML (one line naming the file).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} not found: {p}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{p}: invalid TOML ({e})") from None


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
    """One model of a suite: table ``name``, result ``label``, config overrides, restrictions,
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
    tune: TuneSpec | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a suite: its ``name`` in results, the split names run on it, loader options,
    and ``source``, the loader's name when it differs from ``name`` (a variant of a dataset)."""

    name: str
    splits: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def loader(self) -> str:
        """The name the data is loaded by: ``source``, else ``name``."""
        return self.source or self.name


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
    max_users: int | None = None


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

    def max_train_seconds(self, suite: Suite) -> float | None:
        """The training time cap of this cell: the model's own, else the suite's (None: no cap)."""
        if self.model is not None and self.model.max_train_seconds is not None:
            return self.model.max_train_seconds
        return suite.max_train_seconds


def check_name(name: str, table: Mapping[str, Any] | None, what: str = "model") -> None:
    """Raise a :class:`DataError` listing the choices when ``name`` is not a key of ``table``
    (no check when ``table`` is None: names are then checked when the suite runs)."""
    if table is not None and name not in table:
        raise DataError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}")


def _tuple(value: Any, what: str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise DataError(f"suite: {what} must be a list, got {type(value).__name__}")


def split_spec(name: str, table: Mapping[str, Any] | None = None) -> SplitSpec:
    """A :class:`SplitSpec` from a split's name and its ``[splits.<name>]`` table (a bare kind
    such as ``"warm"`` needs no table)."""
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


def _datasets(doc: Mapping[str, Any], source: str, used_splits: set[str]) -> list[DatasetSpec]:
    out = []
    for d in doc.get("datasets", []) or []:
        if isinstance(d, str):
            d = {"name": d}
        if "name" not in d:
            raise DataError(f"{source}: every [[datasets]] entry needs a name")
        names = _tuple(d.get("splits", ["warm"]), "datasets.splits")
        used_splits.update(names)
        extra = set(d) - {"name", "splits", "options", "source"}
        if extra:
            raise DataError(f"{source}: dataset {d['name']!r} has unknown keys {sorted(extra)}")
        out.append(DatasetSpec(name=str(d["name"]), splits=names, options=dict(d.get("options", {})),
                               source=None if d.get("source") is None else str(d["source"])))
    return out


def _elicitations(doc: Mapping[str, Any], source: str, used_splits: set[str], models, policies
                  ) -> list[ElicitationSpec]:
    out = []
    for e in doc.get("elicitation", []) or []:
        extra = set(e) - {"dataset", "split", "policies", "budget", "model", "model_config", "policy_config",
                          "max_users"}
        if extra or "dataset" not in e or "policies" not in e:
            raise DataError(f"{source}: [[elicitation]] needs dataset and policies (unknown keys: {sorted(extra)})")
        sp_name = str(e.get("split", "user-cold"))
        used_splits.add(sp_name)
        check_name(str(e.get("model", "als")), models, "model")
        pols = _tuple(e["policies"], "elicitation.policies")
        for pol in pols:
            check_name(str(pol), policies, "elicitation policy")
        out.append(ElicitationSpec(dataset=str(e["dataset"]), split=sp_name, policies=pols,
                                   model=str(e.get("model", "als")), model_config=dict(e.get("model_config", {})),
                                   policy_config={k: dict(v) for k, v in dict(e.get("policy_config", {})).items()},
                                   budget=int(e.get("budget", 10)),
                                   max_users=None if e.get("max_users") is None else int(e["max_users"])))
    return out


def _models(doc: Mapping[str, Any], source: str, splits: Mapping[str, SplitSpec], models) -> list[ModelSpec]:
    out: list[ModelSpec] = []
    default_tune = doc.get("tune")
    labels: set[str] = set()
    for m in doc.get("models", []) or []:
        if isinstance(m, str):
            m = {"name": m}
        extra = set(m) - {"name", "label", "config", "splits", "datasets", "segments", "max_train_seconds",
                          "role", "teacher", "tune"}
        if extra or "name" not in m:
            raise DataError(f"{source}: [[models]] entry {m!r} needs a name (unknown keys: {sorted(extra)})")
        name = str(m["name"])
        check_name(name, models, "model")  # fail fast on typos, before any cell runs
        label = str(m.get("label", name))
        if label in labels:
            raise DataError(f"{source}: two models are labelled {label!r}; give one a distinct label")
        labels.add(label)
        for s in _tuple(m.get("splits"), "models.splits"):
            if s not in splits:
                raise DataError(f"{source}: model {label!r} names split {s!r}, which no dataset uses")
        out.append(ModelSpec(
            name=name, label=label, config=dict(m.get("config", {})),
            splits=_tuple(m["splits"], "models.splits") if "splits" in m else None,
            datasets=_tuple(m["datasets"], "models.datasets") if "datasets" in m else None,
            segments=_tuple(m["segments"], "models.segments") if "segments" in m else None,
            max_train_seconds=None if m.get("max_train_seconds") is None else float(m["max_train_seconds"]),
            role=None if m.get("role") is None else str(m["role"]),
            teacher=None if m.get("teacher") is None else str(m["teacher"]),
            tune=tune_spec(m.get("tune", default_tune), f"{source}: model {label!r}")))
    for ms in out:
        if ms.teacher is not None and ms.teacher not in labels:
            raise DataError(f"{source}: model {ms.label!r} distils from teacher {ms.teacher!r}, which is not the "
                            f"label of a model of the suite ({sorted(labels)})")
    return out


def parse_suite(doc: Mapping[str, Any], *, source: str = "<suite>", models: Mapping[str, Any] | None = None,
                policies: Mapping[str, Any] | None = None) -> Suite:
    """Validate a suite mapping (the parsed TOML) into a :class:`Suite`.

    Parameters
    ----------
    doc : mapping
        Parsed TOML.
    source : str
        Where it came from (for error messages).
    models, policies : mapping of str to class, optional
        The name tables the suite's model and policy names must come from (the CLI passes
        :func:`recsys_coldstart.cli.registry.model_classes`); None skips that check.

    Raises
    ------
    DataError
        On unknown keys, unknown model / policy names or split kinds, or missing sections.
    """
    known = {"name", "description", "seeds", "ks", "datasets", "splits", "models", "elicitation",
             "max_train_seconds", "device", "tune"}
    bad = set(doc) - known
    if bad:
        raise DataError(f"{source}: unknown top-level keys {sorted(bad)}; valid: {sorted(known)}")
    split_tables = doc.get("splits", {}) or {}
    if not isinstance(split_tables, Mapping):
        raise DataError(f"{source}: [splits] must be a table of named splits")
    used_splits: set[str] = set()
    datasets = _datasets(doc, source, used_splits)
    elicit = _elicitations(doc, source, used_splits, models, policies)
    splits = {n: split_spec(n, split_tables.get(n)) for n in sorted(used_splits | set(split_tables))}
    model_specs = _models(doc, source, splits, models)
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


def load_suite(path: str | Path, *, models: Mapping[str, Any] | None = None,
               policies: Mapping[str, Any] | None = None) -> Suite:
    """Read and validate a suite TOML file (see :func:`parse_suite`)."""
    doc = read_toml(path, what="suite file")
    return parse_suite(doc, source=str(path), models=models, policies=policies)


def cell_id(*parts: Any) -> str:
    """A file-name-safe cell id: the parts joined by ``__``."""
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
                    cells.append(Cell(id=cell_id(ds.name, sname, m.label, f"s{seed}"), kind="model",
                                      dataset=ds, split=sp_spec, seed=seed, model=m))
    by_name = {d.name: d for d in suite.datasets}
    for e in suite.elicitation:
        ds = by_name.get(e.dataset, DatasetSpec(name=e.dataset, splits=(e.split,)))
        for seed in suite.seeds:
            for pol in e.policies:
                cells.append(Cell(id=cell_id(ds.name, e.split, "elicit", pol, f"s{seed}"), kind="elicitation",
                                  dataset=ds, split=suite.splits[e.split], seed=seed, policy=pol, elicitation=e))
    return cells
