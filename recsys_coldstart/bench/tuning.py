"""Tuning inside a suite: one optuna study per (dataset, split, model label) on the validation set
of the first seed's split, then the best config runs on every seed.

The study is stored beside the results (``OUT/tune/<dataset>__<split>__<label>.db``, sqlite) and
resumes after an interruption; when it has finished, its outcome is written to
``OUT/tune/<id>.best.json`` and later cells (other seeds, a resumed run) reuse it without
touching optuna. The default config is the study's trial 0 (:func:`recsys_coldstart.tune.tune`),
so the config run on every seed is a tuned one only when it beat the default on val.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_coldstart.exceptions import DataError

if TYPE_CHECKING:  # suite.py imports this module (TuneSpec), so Cell is imported for typing only
    from recsys_coldstart.bench.suite import Cell

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneSpec:
    """A model's tuning budget inside a suite (see the module docstring).

    Attributes
    ----------
    trials : int
        Total trials of the study, the default config's trial included.
    timeout_s : float or None
        Stop starting new trials after this many seconds.
    metric : str
        Validation metric maximised, ``"<name>@<k>"``.
    segment : str or None
        Scored segment (None: the split kind's first).
    prune : bool
        Median pruning from the per-evaluation ``val_<metric>`` logs.
    """

    trials: int = 20
    timeout_s: float | None = None
    metric: str = "ndcg@20"
    segment: str | None = None
    prune: bool = True

    def budget(self) -> str:
        """The budget as rows are labelled: ``"16 trials / 240 s"``."""
        t = f"{self.trials} trials"
        return t if self.timeout_s is None else f"{t} / {self.timeout_s:g} s"


def tune_spec(value: Any, where: str) -> TuneSpec | None:
    """A :class:`TuneSpec` from a suite's ``tune`` value (a table; ``false`` / absent: None)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: tune must be a table like {{ trials = 20, timeout_s = 600 }} or false")
    allowed = {f.name for f in dataclasses.fields(TuneSpec)}
    bad = set(value) - allowed
    if bad:
        raise DataError(f"{where}: tune has unknown keys {sorted(bad)}; valid: {sorted(allowed)}")
    spec = TuneSpec(**{k: v for k, v in value.items()})
    if int(spec.trials) < 1:
        raise DataError(f"{where}: tune.trials must be >= 1, got {spec.trials}")
    if spec.timeout_s is not None and float(spec.timeout_s) <= 0:
        raise DataError(f"{where}: tune.timeout_s must be > 0, got {spec.timeout_s}")
    from recsys_coldstart.tune.study import parse_metric

    parse_metric(str(spec.metric))
    return TuneSpec(trials=int(spec.trials), timeout_s=None if spec.timeout_s is None else float(spec.timeout_s),
                    metric=str(spec.metric), segment=None if spec.segment is None else str(spec.segment),
                    prune=bool(spec.prune))


def study_id(cell: Cell) -> str:
    """``<dataset>__<split>__<label>``: the study's name and its files' stem."""
    from recsys_coldstart.bench.suite import cell_id

    assert cell.model is not None
    return cell_id(cell.dataset.name, cell.split.name, cell.model.label)


def _hash(cell: Cell, seed: int) -> str:
    m = cell.model
    doc = {"model": m.name, "config": dict(m.config), "tune": None if m.tune is None else vars(m.tune),
           "dataset": cell.dataset.name, "options": dict(cell.dataset.options), "split": vars(cell.split),
           "seed": seed, "teacher": m.teacher}
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def tuned_meta(spec: TuneSpec, outcome: Mapping[str, Any]) -> dict[str, Any]:
    """The ``tuned`` field of a tuned cell's records: budget, best parameters and study counts."""
    return {"trials": spec.trials, "timeout_s": spec.timeout_s, "metric": spec.metric, "budget": spec.budget(),
            **{k: outcome.get(k) for k in ("best_params", "best_value", "default_value", "default_won",
                                            "n_trials_run", "n_complete", "n_pruned", "n_failed", "seconds",
                                            "seed", "study")}}


def tune_cell_config(cell: Cell, split, *, cls: type, out_dir: str | Path, seed: int, device: str | None,
                     fit_kwargs: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The config a tuned model cell runs with, and its ``tuned`` record field.

    Parameters
    ----------
    cell : Cell
        A model cell whose ``model.tune`` is set.
    split : ColdStartSplit
        The split the study tunes on (the first seed's; only its val set is scored).
    cls : type
        The model class.
    out_dir : path
        The suite's results folder (the study goes under ``tune/``).
    seed : int
        Seed of the study (sampler and fitted models).
    device : str, optional
    fit_kwargs : mapping, optional
        Extra ``fit`` keywords of every trial (a student's ``init_factors=`` teacher).

    Returns
    -------
    config : dict
        ``model.config`` updated with the best trial's config (the default when it won).
    tuned : dict or None
        None when the model has no ``search_space`` (nothing to tune: it runs as it is).
    """
    m = cell.model
    assert m is not None and m.tune is not None
    if not callable(getattr(cls, "search_space", None)):
        return dict(m.config), None
    folder = Path(out_dir) / "tune"
    folder.mkdir(parents=True, exist_ok=True)
    sid = study_id(cell)
    best_file = folder / f"{sid}.best.json"
    h = _hash(cell, seed)
    if best_file.is_file():
        try:
            outcome = json.loads(best_file.read_text())
        except (json.JSONDecodeError, OSError):
            outcome = {}
        if outcome.get("spec_hash") == h:
            return {**dict(m.config), **outcome["best_config"]}, tuned_meta(m.tune, outcome)
    from recsys_coldstart.tune.study import tune

    spec = m.tune
    storage = f"sqlite:///{(folder / f'{sid}.db').resolve()}"
    logger.info("tuning %s: %s on val", sid, spec.budget())
    res = tune(cls, split, metric=spec.metric, segment=spec.segment, n_trials=spec.trials, storage=storage,
               study_name=f"{sid}-{h}", timeout=spec.timeout_s, random_state=seed, base_config=m.config,
               device=device, prune=spec.prune, evaluate_default=True, evaluate_test=False,
               fit_kwargs=fit_kwargs)
    outcome = {"spec_hash": h, "study": f"{sid}-{h}", "seed": seed, "best_params": res.best_params,
               "best_config": res.best_config, "best_value": res.best_value, "default_value": res.default_value,
               "default_won": res.default_won, "n_trials_run": len(res.study.trials), "n_complete": res.n_complete,
               "n_pruned": res.n_pruned, "n_failed": res.n_failed, "seconds": res.seconds}
    tmp = best_file.with_name(best_file.name + ".tmp")
    tmp.write_text(json.dumps(outcome, indent=1, default=str))
    tmp.replace(best_file)
    return {**dict(m.config), **res.best_config}, tuned_meta(spec, outcome)
