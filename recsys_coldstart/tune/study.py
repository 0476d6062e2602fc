"""Hyper-parameter tuning with optuna over a model's own ``search_space(trial)``.

Each trial draws config keyword arguments from ``model_cls.search_space(trial)``, fits the model
on ``split.train`` and scores it on the **validation** set with the benchmark protocol
(:func:`recsys_coldstart.evaluate.evaluate` with ``which="val"``). Iterative models report their
per-epoch ``val_<metric>`` log through the fit ``callback``; the study's pruner
(``MedianPruner``) stops unpromising trials there (the callback returns True and the trial ends
as pruned). Sampling is ``TPESampler(seed=random_state)``, so a study is reproducible, and a
study kept in ``storage`` (e.g. ``sqlite:///study.db``) resumes where it stopped.

Bergstra et al., "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011 (TPE); Akiba et al.,
"Optuna: A Next-generation Hyperparameter Optimization Framework", KDD 2019.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_coldstart.evaluate.protocol import default_segments, evaluate, metric_value
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)


def _optuna():
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - optuna is a dependency
        raise ImportError("tuning needs optuna: pip install 'optuna>=3.5'") from e
    return optuna


def parse_metric(metric: str) -> tuple[str, int]:
    """``"ndcg@20"`` -> ``("ndcg", 20)``."""
    m = re.fullmatch(r"\s*([a-z_]+)\s*@\s*(\d+)\s*", metric.lower())
    if not m:
        raise DataError(f"metric must look like 'ndcg@20' or 'recall@10', got {metric!r}")
    return m.group(1), int(m.group(2))


@dataclass(frozen=True)
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    best_params : dict
        The best trial's ``search_space`` draw.
    best_value : float
        Its validation metric.
    study : optuna.Study
    best_config : dict
        ``base_config`` + ``best_params``: the config keyword arguments of the tuned model.
    default_value, default_test_value : float or None
        Validation / test metric of the model's default config (``base_config`` only), same seed.
    test_value : float or None
        Test metric of the tuned config refitted with the same seed (reported, never selected on).
    metric, segment : str
    n_complete, n_pruned, n_failed : int
        Trial counts in the study (all sessions, when resumed from storage).
    seconds : float
    """

    best_params: dict[str, Any]
    best_value: float
    study: Any
    best_config: dict[str, Any] = field(default_factory=dict)
    default_value: float | None = None
    default_test_value: float | None = None
    test_value: float | None = None
    metric: str = "ndcg@20"
    segment: str = "warm"
    n_complete: int = 0
    n_pruned: int = 0
    n_failed: int = 0
    seconds: float = 0.0


def _log_value(logs: Mapping[str, Any] | None, metric: str) -> float | None:
    if not logs:
        return None
    for key in (f"val_{metric}", f"val_{metric.replace('@', '_')}", "val_metric"):
        v = logs.get(key)
        if v is not None:
            try:
                v = float(v)
            except (TypeError, ValueError):
                return None
            return v if math.isfinite(v) else None
    return None


def score_split(model: Any, split, *, metric: str, segment: str, which: str) -> float:
    """One number: ``metric`` (e.g. ``"ndcg@20"``) of a fitted model on ``segment`` of the val / test set."""
    name, k = parse_metric(metric)
    res = evaluate(model, split, segments=[segment], ks=(k,), which=which)
    return metric_value(res, name, k, segment)


def make_model(cls: type, overrides: Mapping[str, Any], *, seed: int | None, device: str | None = None) -> Any:
    """Instantiate ``cls`` with config ``overrides``, setting ``random_state`` to ``seed`` and
    ``device`` when the config has those fields and the overrides do not set them.

    Parameters
    ----------
    cls : type
        A model class (with a dataclass ``config_class``, or taking keyword arguments).
    overrides : mapping
        Config keyword arguments.
    seed : int or None
    device : str, optional

    Returns
    -------
    object
        The unfitted model.
    """
    kwargs = dict(overrides)
    cfg_cls = getattr(cls, "config_class", None)
    if cfg_cls is not None and dataclasses.is_dataclass(cfg_cls):
        names = {f.name for f in dataclasses.fields(cfg_cls)}
        if "random_state" in names and "random_state" not in kwargs and seed is not None:
            kwargs["random_state"] = int(seed)
        if "device" in names and "device" not in kwargs and device is not None:
            kwargs["device"] = device
    return cls(**kwargs)


def _fit(model_cls: type, kwargs: Mapping[str, Any], split, *, random_state: int | None, device: str | None,
         callback=None):
    model = make_model(model_cls, kwargs, seed=random_state, device=device)
    model.fit(split.train, val=split.val, callback=callback)
    return model


def tune(model_cls: type, split, *, metric: str = "ndcg@20", segment: str | None = None, n_trials: int = 20,
         storage: str | None = None, study_name: str | None = None, timeout: float | None = None,
         random_state: int | None = 0, base_config: Mapping[str, Any] | None = None, device: str | None = None,
         prune: bool = True, n_startup_trials: int = 5, n_warmup_steps: int = 1, evaluate_default: bool = True,
         evaluate_test: bool = True, show_progress: bool = False) -> TuneResult:
    """Tune ``model_cls`` on ``split``'s validation set with an optuna study.

    Parameters
    ----------
    model_cls : type
        A recommender class with a classmethod ``search_space(trial) -> dict`` of config kwargs.
    split : ColdStartSplit
    metric : str
        ``"<name>@<k>"``, e.g. ``"ndcg@20"`` (maximised).
    segment : str, optional
        Evaluated segment (default: the split kind's first, e.g. ``cold-user`` for user-cold).
    n_trials : int
        Total trials of the study: when resumed from ``storage``, only the missing ones run.
    storage : str, optional
        Optuna storage URL (``sqlite:///study.db``); the study is loaded if it exists.
    study_name : str, optional
        Default: ``"<Class>-<dataset>-<split kind>-<segment>-<metric>"``.
    timeout : float, optional
        Stop starting new trials after this many seconds.
    random_state : int or None
        Seeds the TPE sampler and every fitted model.
    base_config : mapping, optional
        Fixed config overrides applied under every trial's draw (and to the default config).
    device : str, optional
        Sets the model's ``device`` field when it has one.
    prune : bool
        Median pruning from the per-epoch ``val_<metric>`` logs.
    n_startup_trials, n_warmup_steps : int
        ``MedianPruner`` settings: no pruning before this many trials / epochs.
    evaluate_default : bool
        Also fit the default config once and report its val (and test) metric.
    evaluate_test : bool
        Refit the best config and report its test metric.
    show_progress : bool
        optuna's progress bar.

    Returns
    -------
    TuneResult
    """
    optuna = _optuna()
    if not callable(getattr(model_cls, "search_space", None)):
        raise DataError(f"{model_cls.__name__} has no search_space(trial): it cannot be tuned")
    parse_metric(metric)
    segment = segment or default_segments(split.kind)[0]
    base = dict(base_config or {})
    name = study_name or f"{model_cls.__name__}-{split.name}-{split.kind}-{segment}-{metric}"
    sampler = optuna.samplers.TPESampler(seed=random_state)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)
              if prune else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="maximize", load_if_exists=True)
    t0 = time.perf_counter()

    def objective(trial) -> float:
        params = model_cls.search_space(trial)
        pruned_at: list[int] = []

        def callback(epoch: int, logs: Mapping[str, Any] | None = None) -> bool:
            v = _log_value(logs, metric)
            if v is None:
                return False
            trial.report(v, int(epoch))
            if trial.should_prune():
                pruned_at.append(int(epoch))
                return True
            return False

        model = _fit(model_cls, {**base, **params}, split, random_state=random_state, device=device,
                     callback=callback)
        if pruned_at:
            raise optuna.TrialPruned(f"pruned at epoch {pruned_at[0]}")
        value = score_split(model, split, metric=metric, segment=segment, which="val")
        trial.set_user_attr("config", {**base, **params})
        return value

    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    remaining = max(0, int(n_trials) - len(done))
    if done:
        logger.info("study %s: %d trials already done, %d to run", name, len(done), remaining)
    if remaining:
        study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(Exception,),
                       show_progress_bar=show_progress)
    states = [t.state for t in study.trials]
    n_complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    if n_complete == 0:
        raise DataError(f"study {name!r}: no trial completed ({len(states)} pruned or failed)")
    best = study.best_trial
    best_config = {**base, **best.params}
    # the stored draw is the search space's output when it returns the trial's params unchanged;
    # otherwise the objective recorded the exact config as a user attribute
    best_config = dict(best.user_attrs.get("config", best_config))
    default_value = default_test = test_value = None
    if evaluate_default:
        model = _fit(model_cls, base, split, random_state=random_state, device=device)
        default_value = score_split(model, split, metric=metric, segment=segment, which="val")
        if evaluate_test:
            default_test = score_split(model, split, metric=metric, segment=segment, which="test")
    if evaluate_test:
        model = _fit(model_cls, best_config, split, random_state=random_state, device=device)
        test_value = score_split(model, split, metric=metric, segment=segment, which="test")
    return TuneResult(best_params=dict(best.params), best_value=float(best.value), study=study,
                      best_config=best_config, default_value=default_value, default_test_value=default_test,
                      test_value=test_value, metric=metric, segment=segment, n_complete=n_complete,
                      n_pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
                      n_failed=sum(s == optuna.trial.TrialState.FAIL for s in states),
                      seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# outputs: a bench-ready TOML file and report records
# ---------------------------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if v is None:
        raise DataError("TOML has no null: drop None-valued config fields")
    raise DataError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def suite_toml(*, model: str, dataset: str, split_kind: str, config: Mapping[str, Any], label: str | None = None,
               n_support: int = 0, seeds: tuple[int, ...] = (0, 1, 2), comments: tuple[str, ...] = (),
               dataset_options: Mapping[str, Any] | None = None) -> str:
    """A one-model suite file for ``coldstart bench`` (see :mod:`recsys_coldstart.bench.suite`)."""
    split_name = split_kind if not n_support else f"{split_kind}-k{n_support}"
    lines = [f"# {c}" for c in comments]
    lines += [f"name = {_toml_value(f'tuned-{label or model}-{dataset}')}", f"seeds = {_toml_value(list(seeds))}", "",
              "[[datasets]]", f"name = {_toml_value(dataset)}", f"splits = {_toml_value([split_name])}"]
    if dataset_options:
        lines.append(f"options = {_toml_value(dict(dataset_options))}")
    lines += ["", f"[splits.{_toml_key(split_name)}]", f"kind = {_toml_value(split_kind)}"]
    if n_support:
        lines.append(f"n_support = {int(n_support)}")
    lines += ["", "[[models]]", f"name = {_toml_value(model)}", f"label = {_toml_value(label or model + '-tuned')}",
              "", "[models.config]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in config.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_best_toml(result: TuneResult, path: str | Path, *, model: str, dataset: str, split_kind: str,
                    n_support: int = 0, label: str | None = None, seeds: tuple[int, ...] = (0, 1, 2),
                    command: str | None = None, dataset_options: Mapping[str, Any] | None = None) -> Path:
    """Write the tuned config as a suite TOML that ``coldstart bench`` runs; returns the path."""
    comments = [f"Best configuration of a {len(result.study.trials)}-trial optuna study "
                f"({result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed)",
                f"study {result.study.study_name!r}: val {result.metric} on {result.segment} = {result.best_value:.5f}"]
    if result.default_value is not None:
        comments.append(f"default config: val {result.metric} = {result.default_value:.5f}")
    if result.test_value is not None:
        comments.append(f"tuned config: test {result.metric} = {result.test_value:.5f} (seed of the study)")
    if command:
        comments.append(f"command: {command}")
    text = suite_toml(model=model, dataset=dataset, split_kind=split_kind, config=result.best_config, label=label,
                      n_support=n_support, seeds=seeds, comments=tuple(comments), dataset_options=dataset_options)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def tune_records(result: TuneResult, *, model: str, dataset: str, split: str, seed: int | None,
                 command: str | None = None, device: str = "cpu") -> list[dict]:
    """Report records of a study: default and tuned config, val and test (``record_type="tune"``)."""
    import pandas as pd

    from recsys_coldstart.evaluate.results import peak_rss_mb, to_records

    name, k = parse_metric(result.metric)
    rows, fields = [], []
    for variant, which, value in (("default", "val", result.default_value), ("tuned", "val", result.best_value),
                                  ("default", "test", result.default_test_value), ("tuned", "test", result.test_value)):
        if value is None:
            continue
        rows.append({"model": model, "dataset": dataset, "split": split, "segment": result.segment, "metric": name,
                     "k": k, "value": float(value), "seed": seed})
        fields.append({"variant": variant, "which": which})
    trials = result.study.trials
    extra = {"record_type": "tune", "status": "ok", "study": result.study.study_name, "cell": f"tune__{model}__{dataset}__{split}",
             "best_params": result.best_params, "n_trials": len(trials), "n_complete": result.n_complete,
             "n_pruned": result.n_pruned, "n_failed": result.n_failed,
             "trial_values": [None if t.value is None else float(t.value) for t in trials],
             "trial_states": [t.state.name for t in trials], "peak_rss_mb": peak_rss_mb()}
    recs = to_records(pd.DataFrame(rows), config=result.best_config, command=command, device=device,
                      seconds=result.seconds, extra=extra)
    for r, f in zip(recs, fields, strict=True):
        r.update(f)
    return recs
