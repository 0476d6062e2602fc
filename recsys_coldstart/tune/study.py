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

Length: the study loop, its resume and default-trial rules and the two outputs built from the same
trial records (bench TOML, report records) share that bookkeeping; the outputs could move to
tune/outputs.py if they grow.
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
from recsys_coldstart.train.validation import split_fit_kwargs

logger = logging.getLogger(__name__)


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
    default_won : bool
        True when the default config (trial 0) is the best trial: ``best_config`` is then the
        default, and no tuned config is presented as better.
    n_resumed : int
        Finished trials found in the storage when the study started (0 for a new study).
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
    default_won: bool = False
    n_resumed: int = 0


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
         callback=None, fit_kwargs: Mapping[str, Any] | None = None):
    model = make_model(model_cls, kwargs, seed=random_state, device=device)
    model.fit(split.train, val=split.val, callback=callback, **{**split_fit_kwargs(model, split), **dict(fit_kwargs or {})})
    return model


class TuneInterrupted(KeyboardInterrupt):
    """Raised by :func:`tune` when Ctrl-C stopped a study: the finished trials are kept in the
    storage (the interrupted one is marked failed) and the same call resumes it.

    Attributes
    ----------
    study_name : str
    n_finished : int
        Complete and pruned trials in the study.
    """

    def __init__(self, study_name: str, n_finished: int) -> None:
        super().__init__(f"study {study_name!r} interrupted with {n_finished} finished trials")
        self.study_name, self.n_finished = study_name, n_finished


DEFAULT_ATTR = "variant"


def _is_default(trial) -> bool:
    return trial.user_attrs.get(DEFAULT_ATTR) == "default"


def _config_fields(model_cls: type) -> set[str]:
    cfg_cls = getattr(model_cls, "config_class", None)
    if cfg_cls is not None and dataclasses.is_dataclass(cfg_cls):
        return {f.name for f in dataclasses.fields(cfg_cls)}
    return set()


class _Unrepresentable(Exception):
    pass


class _FixedParams:
    """Wraps an optuna trial so that the search-space parameters named in ``fixed`` are not
    searched: their ``suggest_*`` returns the fixed value (a ``base_config`` field fixes it)."""

    def __init__(self, trial, fixed: Mapping[str, Any]) -> None:
        self._trial, self._fixed = trial, dict(fixed)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._trial, name)
        if not name.startswith("suggest_"):
            return attr

        def suggest(param: str, *args, **kwargs):
            if param in self._fixed:
                return self._fixed[param]
            return attr(param, *args, **kwargs)

        return suggest


class _DefaultTrial:
    """Stands in for an optuna trial to read the default config's point in a search space: each
    ``suggest_*(name, ...)`` returns the default of config field ``name`` (or its ``base``
    override) when that value lies in the distribution, else gives up."""

    def __init__(self, defaults: Mapping[str, Any]) -> None:
        self.defaults, self.params = dict(defaults), {}

    def _get(self, name: str) -> Any:
        if name not in self.defaults:
            raise _Unrepresentable(name)
        return self.defaults[name]

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)

    def suggest_float(self, name, low, high, *, step=None, log=False):  # noqa: D102
        v = self._get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= float(v) <= high:
            raise _Unrepresentable(name)
        self.params[name] = float(v)
        return float(v)

    def suggest_int(self, name, low, high, step=1, log=False):  # noqa: D102
        v = self._get(name)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise _Unrepresentable(name)
        self.params[name] = int(v)
        return int(v)

    def suggest_categorical(self, name, choices):  # noqa: D102
        v = self._get(name)
        if v not in list(choices):
            raise _Unrepresentable(name)
        self.params[name] = v
        return v


def default_params(model_cls: type, base_config: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The default config as a point of ``model_cls.search_space`` (``{param: value}``), or None
    when some drawn parameter is not a config field or its default lies outside the range.

    Parameters
    ----------
    model_cls : type
    base_config : mapping, optional
        Overrides of the config defaults; a search-space parameter named here is fixed (not a
        parameter of the point).

    Returns
    -------
    dict or None
    """
    cfg_cls = getattr(model_cls, "config_class", None)
    if cfg_cls is None or not dataclasses.is_dataclass(cfg_cls):
        return None
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(cfg_cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    base = dict(base_config or {})
    defaults.update(base)
    fake = _DefaultTrial(defaults)
    try:
        model_cls.search_space(_FixedParams(fake, base))
    except (_Unrepresentable, TypeError, ValueError):
        return None
    return fake.params


def tune(model_cls: type, split, *, metric: str = "ndcg@20", segment: str | None = None, n_trials: int = 20,
         storage: str | None = None, study_name: str | None = None, timeout: float | None = None,
         random_state: int | None = 0, base_config: Mapping[str, Any] | None = None, device: str | None = None,
         prune: bool = True, n_startup_trials: int = 5, n_warmup_steps: int = 1, evaluate_default: bool = True,
         evaluate_test: bool = True, show_progress: bool = False, echo=None,
         fit_kwargs: Mapping[str, Any] | None = None) -> TuneResult:
    """Tune ``model_cls`` on ``split``'s validation set with an optuna study.

    With ``evaluate_default`` (the default) the model's default config (``base_config`` only) is
    trial 0 of a new study (enqueued, marked ``user_attrs["variant"] = "default"``), so a tuned
    config is reported as best only when it beats the default on val; ``TuneResult.default_won``
    says when it did not. A study resumed from ``storage`` runs only its missing trials, with the
    sampler seeded from ``random_state`` *and* the number of trials already in the study, so
    it never replays the draws of the earlier session.

    Parameters
    ----------
    model_cls : type
        A recommender class with a classmethod ``search_space(trial) -> dict`` of config kwargs.
    split : ColdStartSplit
    metric : str
        ``"<name>@<k>"``, e.g. ``"ndcg@20"`` (maximised). Iterative models log
        ``val_<name>@<k>`` per evaluation; when the model's config has an ``eval_k`` field (and
        ``base_config`` does not set it) it is set to ``k`` so the pruner sees that key.
    segment : str, optional
        Evaluated segment (default: the split kind's first, e.g. ``cold-user`` for user-cold).
    n_trials : int
        Total trials of the study, the default trial included: when resumed from ``storage``,
        only the missing ones run.
    storage : str, optional
        Optuna storage URL (``sqlite:///study.db``); the study is loaded if it exists.
    study_name : str, optional
        Default: ``"<Class>-<dataset>-<split kind>-<segment>-<metric>"``.
    timeout : float, optional
        Stop starting new trials after this many seconds.
    random_state : int or None
        Seeds the TPE sampler and every fitted model.
    base_config : mapping, optional
        Fixed config overrides of every trial (and of the default config). A field that is also
        a search-space parameter is fixed: it is not searched (e.g. ``{"dim": 64}`` tunes the
        rest at dim 64).
    device : str, optional
        Sets the model's ``device`` field when it has one.
    prune : bool
        Median pruning from the per-epoch ``val_<metric>`` logs.
    n_startup_trials, n_warmup_steps : int
        ``MedianPruner`` settings: no pruning before this many trials / epochs.
    evaluate_default : bool
        Make the default config trial 0 (and report its val, and test, metric).
    evaluate_test : bool
        Refit the best (and the default) config and report its test metric.
    show_progress : bool
        optuna's progress bar.
    echo : callable, optional
        ``echo(line)`` receives the lines meant for a person (the CLI passes ``typer.echo``):
        the "resuming study ..." line.
    fit_kwargs : mapping, optional
        Extra keywords of every ``fit`` (e.g. ``init_factors=`` a fitted teacher for a student).

    Returns
    -------
    TuneResult

    Raises
    ------
    TuneInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``), after the study's storage is consistent.
    """
    import optuna  # a core dependency; imported here to keep ``import recsys_coldstart`` fast

    if not callable(getattr(model_cls, "search_space", None)):
        raise DataError(f"{model_cls.__name__} has no search_space(trial): it cannot be tuned")
    _, k = parse_metric(metric)
    segment = segment or default_segments(split.kind)[0]
    base = dict(base_config or {})
    if "eval_k" in _config_fields(model_cls) and "eval_k" not in base:
        base["eval_k"] = k  # the pruner reads val_<metric>@<k>: make the model log that k
    name = study_name or f"{model_cls.__name__}-{split.name}-{split.kind}-{segment}-{metric}"
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)
              if prune else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=name, storage=storage, pruner=pruner, direction="maximize",
                                load_if_exists=True)
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = [t for t in study.trials if t.state in finished_states]
    n_before = len(study.trials)
    # a resumed session must not replay the first session's draws: seed from the trial count too
    seed = None if random_state is None else int(random_state) + 1_000_003 * n_before
    study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(1, int(n_trials) // 3)))
    remaining = max(0, int(n_trials) - len(done))
    if n_before:
        msg = f"resuming study {name} with {len(done)} finished trials ({remaining} to run)"
        logger.info(msg)
        if echo is not None:
            echo(msg)
    if evaluate_default and remaining and not any(_is_default(t) for t in study.trials):
        # trial 0 = the default config: as a point of the search space when it is one (the
        # sampler then learns from it), else fitted from base_config alone
        point = default_params(model_cls, base)
        study.enqueue_trial(point or {}, user_attrs={DEFAULT_ATTR: "default", "in_space": point is not None})
    t0 = time.perf_counter()
    interrupted: list[bool] = []

    def objective(trial) -> float:
        try:
            outside = _is_default(trial) and not trial.user_attrs.get("in_space")
            params = {} if outside else model_cls.search_space(_FixedParams(trial, base))
            pruned_at: list[int] = []
            reported: list[int] = []

            def callback(epoch: int, logs: Mapping[str, Any] | None = None) -> bool:
                v = _log_value(logs, metric)
                if v is None:
                    return False
                reported.append(int(epoch))
                trial.report(v, int(epoch))
                if trial.should_prune():
                    pruned_at.append(int(epoch))
                    return True
                return False

            model = _fit(model_cls, {**base, **params}, split, random_state=random_state, device=device,
                         callback=callback, fit_kwargs=fit_kwargs)
            if pruned_at:
                raise optuna.TrialPruned(f"pruned at epoch {pruned_at[0]}")
            value = score_split(model, split, metric=metric, segment=segment, which="val")
            trial.set_user_attr("config", _storable({**base, **params}))
            trial.set_user_attr("n_reports", len(reported))
            return value
        except KeyboardInterrupt:
            # end quietly: no optuna traceback; the trial is recorded as failed (not finished) and
            # the caller raises TuneInterrupted once the study is consistent
            interrupted.append(True)
            optuna.logging.set_verbosity(optuna.logging.CRITICAL)
            trial.study.stop()
            return float("nan")

    verbosity = optuna.logging.get_verbosity()
    try:
        if remaining:
            study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(Exception,),
                           show_progress_bar=show_progress)
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if interrupted:
        n_fin = sum(t.state in finished_states for t in study.trials)
        raise TuneInterrupted(name, n_fin)
    states = [t.state for t in study.trials]
    n_complete = sum(s == optuna.trial.TrialState.COMPLETE for s in states)
    if n_complete == 0:
        raise DataError(f"study {name!r}: no trial completed ({len(states)} pruned or failed)")
    best = study.best_trial
    default_trial = next((t for t in study.trials if _is_default(t)
                          and t.state == optuna.trial.TrialState.COMPLETE), None)
    default_won = default_trial is not None and best.number == default_trial.number
    # the objective recorded the exact config as a user attribute (a search space may map draws)
    best_config = dict(best.user_attrs.get("config", {**base, **best.params}))
    default_value = None if default_trial is None else float(default_trial.value)
    default_test = test_value = None
    if evaluate_default and default_trial is None:
        model = _fit(model_cls, base, split, random_state=random_state, device=device, fit_kwargs=fit_kwargs)
        default_value = score_split(model, split, metric=metric, segment=segment, which="val")
    if evaluate_test:
        model = _fit(model_cls, best_config, split, random_state=random_state, device=device, fit_kwargs=fit_kwargs)
        test_value = score_split(model, split, metric=metric, segment=segment, which="test")
        if evaluate_default:
            if default_won:
                default_test = test_value
            else:
                model = _fit(model_cls, base, split, random_state=random_state, device=device, fit_kwargs=fit_kwargs)
                default_test = score_split(model, split, metric=metric, segment=segment, which="test")
    return TuneResult(best_params=dict(best.params), best_value=float(best.value), study=study,
                      best_config=best_config, default_value=default_value, default_test_value=default_test,
                      test_value=test_value, metric=metric, segment=segment, n_complete=n_complete,
                      n_pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
                      n_failed=sum(s == optuna.trial.TrialState.FAIL for s in states),
                      seconds=time.perf_counter() - t0, default_won=default_won, n_resumed=len(done))


# ---------------------------------------------------------------------------------------------
# outputs: a bench-ready TOML file and report records
# ---------------------------------------------------------------------------------------------
def _as_table(v: Any) -> Any:
    """A nested config object (e.g. a student's distillation strategy) as its ``{field: value}``
    table (:func:`recsys_coldstart.io.config_to_dict`, the form ``config.json`` stores and the
    configs rebuild the object from); any other value unchanged."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        from recsys_coldstart.io import config_to_dict

        return config_to_dict(v)
    return v


def _storable(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as optuna's storage can hold it (JSON): nested config objects as tables."""
    return {k: _as_table(v) for k, v in config.items()}


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
    if dataclasses.is_dataclass(v) and not isinstance(v, type):  # a nested config, e.g. a distillation strategy
        return _toml_value(_as_table(v))
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
    if result.default_won:
        comments.append(f"the default config won: no tried config beat its val {result.metric} "
                        f"{result.default_value:.5f}, so this is the default config")
    elif result.default_value is not None:
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
             "n_pruned": result.n_pruned, "n_failed": result.n_failed, "default_won": result.default_won,
             "trial_values": [None if t.value is None else float(t.value) for t in trials],
             "trial_states": [t.state.name for t in trials], "peak_rss_mb": peak_rss_mb()}
    recs = to_records(pd.DataFrame(rows), config=result.best_config, command=command, device=device,
                      seconds=result.seconds, extra=extra)
    for r, f in zip(recs, fields, strict=True):
        r.update(f)
    return recs
