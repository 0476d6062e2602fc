"""Running one benchmark cell: fit + evaluate a model, or replay one elicitation policy.

A cell's records are flat dicts (:func:`recsys_coldstart.evaluate.results.to_records`); the
runner writes them as one cell file, where what they share (provenance, timings) is stored once.
Extra fields a model cell records:

- ``status`` (``"ok"`` / ``"error"``), ``cell``, ``suite``, ``record_type`` (``"metric"``,
  ``"curve"`` for per-epoch training logs, ``"elicitation"`` for one budget of an elicitation
  curve), ``fit_seconds``, ``eval_seconds``, ``n_epochs_run``;
- ``tuned`` (None, or the study's budget and outcome: ``trials``, ``timeout_s``, ``metric``,
  ``best_params``, ``default_won``, ...) and ``tuning`` (``"tuned"``, ``"default"``, or
  ``"no-parameters"`` for a model with a tune budget but no ``search_space``);
- ``capped`` (True when the training time cap, ``max_train_seconds``, stopped training: the
  numbers are not a converged model's) with ``max_train_seconds``; ``stopped_for_time`` is
  the same flag under its older name;
- ``n_params`` (fitted float parameters) and ``latency_ms_per_1k_users`` (scoring 1,000 users
  against the whole catalogue) when they could be measured;
- for the tower models (a closed-form start, then training): ``val_start`` / ``val_best``,
  ``kept_start``, ``best_epoch``, ``n_stored`` and ``dim`` (and ``width_val`` for a student that
  chose its width), see :func:`start_fields`;
- a failed cell is one record with ``status="error"``, ``error`` and ``traceback`` and
  ``metric = value = None``.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsys_coldstart.bench.models import (
    Recorder,
    config_dict,
    count_params,
    model_history,
    resolved_device,
    scoring_latency_ms,
)
from recsys_coldstart.bench.suite import Cell
from recsys_coldstart.evaluate.protocol import RESULT_COLUMNS, evaluate
from recsys_coldstart.evaluate.results import peak_rss_mb, to_records
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.train.validation import split_fit_kwargs
from recsys_coldstart.tune.study import make_model


def lookup(table: Mapping[str, type], name: str, what: str = "model") -> type:
    """``table[name]``, or a :class:`DataError` that lists the choices."""
    try:
        return table[name]
    except KeyError:
        raise DataError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}") from None


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


def _fit(model: Any, split, callback, teacher: Any) -> None:
    extra = split_fit_kwargs(model, split)  # a user-cold split's support, for the models that validate on it
    if teacher is None:
        model.fit(split.train, val=split.val, callback=callback, **extra)
        return
    # the pretrained model a student / cold-start model starts from: ``init_factors=`` (older
    # signatures called it ``teacher=``)
    params = inspect.signature(model.fit).parameters
    key = "init_factors" if "init_factors" in params else "teacher"
    model.fit(split.train, val=split.val, callback=callback, **{key: teacher}, **extra)


def start_fields(model: Any) -> dict[str, Any]:
    """What a model that trains from a closed-form start says about it (the tower models,
    :meth:`~recsys_coldstart.towers.base.TowerRecommender._train_loop`): ``val_start`` /
    ``val_best`` (val logs of the start and of the kept state), ``kept_start`` (training never
    beat the start), ``best_epoch``, ``n_stored`` (numbers kept to serve, content maps included)
    and, for a student, its width ``dim`` and ``width_val`` (val score per width tried). Empty
    for models without them."""
    out: dict[str, Any] = {}
    if hasattr(model, "kept_start_"):
        out["kept_start"] = bool(model.kept_start_)
        out["best_epoch"] = int(getattr(model, "best_epoch_", -1))
        for key in ("val_start", "val_best"):
            out[key] = {k: float(v) for k, v in (getattr(model, f"{key}_", None) or {}).items()}
    if hasattr(model, "n_stored") and hasattr(model, "item_factors_"):
        out["n_stored"] = int(model.n_stored)
        out["dim"] = int(model.item_factors_.shape[1])
    if getattr(model, "width_val_", None):
        out["width_val"] = {str(k): float(v) for k, v in model.width_val_.items()}
    return out


def run_model_cell(cell: Cell, split, *, cls: type, ks: Sequence[int], device: str | None,
                   max_train_seconds: float | None, command: str, extra: Mapping[str, Any],
                   teacher: Any = None, fitted: dict | None = None,
                   config: Mapping[str, Any] | None = None) -> list[dict]:
    """Fit and evaluate one model on one split; returns the records (raises on failure).

    Parameters
    ----------
    cell : Cell
        A ``kind="model"`` cell.
    split : ColdStartSplit
    cls : type
        The model class (injected: the runner never maps names to classes).
    ks : sequence of int
        Cutoffs.
    device : str, optional
        Set on models with a ``device`` config field.
    max_train_seconds : float, optional
        Training time cap; a cell it stopped is recorded with ``capped=True``.
    command : str
        The (portable) command recorded.
    extra : mapping
        Fields added to every record (cell id, suite, spec hash, git commit, ...).
    teacher : fitted model, optional
        Passed to ``fit`` for distilled students.
    fitted : dict, optional
        When given, the fitted model is stored in ``fitted[label]``.
    config : mapping, optional
        The config to run (a tuned one); default: the cell's ``model.config``.

    Returns
    -------
    list of dict
    """
    m = cell.model
    assert m is not None
    t_start = time.perf_counter()
    model = make_model(cls, m.config if config is None else config, seed=cell.seed, device=device)
    rec = Recorder(max_train_seconds)
    _fit(model, split, rec, teacher)
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
            "teacher": m.teacher, "n_params": n_params, "latency_ms_per_1k_users": latency,
            "n_epochs_run": len(rec.epochs) or None, "capped": rec.stopped_for_time,
            "max_train_seconds": max_train_seconds, "stopped_for_time": rec.stopped_for_time,
            "peak_rss_mb": peak_rss_mb()}
    meta.update(start_fields(model))
    role = m.role or getattr(model, "role_", None) or getattr(model, "role", None)
    if isinstance(role, str):
        meta["role"] = role  # teacher / student, for the report's trade-off section
    cfg = config_dict(model)
    dev = resolved_device(model)
    records = to_records(res, config=cfg, command=command, device=dev, seconds=seconds, extra=meta)
    if history:
        base = {"model": m.label, "dataset": cell.dataset.name, "split": cell.split.name, "seed": cell.seed}
        cdf, fields = _curve_frame(history, base)
        records += _with_fields(to_records(cdf, config=cfg, command=command, device=dev, seconds=seconds,
                                           extra={**meta, "record_type": "curve"}), fields)
    return records


def run_elicitation_cell(cell: Cell, split, *, policy_cls: type, ks: Sequence[int], command: str,
                         extra: Mapping[str, Any], base_model: Any, base_seconds: float = 0.0) -> list[dict]:
    """Replay one elicitation policy on a user-cold split (:func:`recsys_coldstart.elicit.replay`).

    Records: one per (budget, metric, k) with ``record_type="elicitation"`` and ``budget``
    (raw metrics, ``<metric>_prior`` and ``<metric>_paired``, see the replay's protocol); the
    raw and prior records of NDCG / Recall also carry ``per_user`` (one value per replayed user,
    None where the user's truth left is empty; users in the order of the ``n_users`` record's
    ``users``), for paired bootstrap intervals; plus, per (metric, k), the mean over budgets
    ``1..min(10, budget)`` in segment ``elicitation``.

    Parameters
    ----------
    cell : Cell
        A ``kind="elicitation"`` cell.
    split : ColdStartSplit
        A user-cold split.
    policy_cls : type
        The policy class (injected).
    ks : sequence of int
    command : str
    extra : mapping
        Fields added to every record.
    base_model : fitted model
        The item space the policy asks from.
    base_seconds : float
        Seconds spent fitting ``base_model`` for this cell (0 when reused).

    Returns
    -------
    list of dict
    """
    from recsys_coldstart.elicit.replay import replay

    e = cell.elicitation
    assert e is not None and cell.policy is not None
    t0 = time.perf_counter()
    policy = policy_cls(**dict(e.policy_config.get(cell.policy, {})))
    from recsys_coldstart.elicit.replay import replay_users

    users = replay_users(split)
    if e.max_users is not None and len(users) > e.max_users:
        users = np.sort(np.random.default_rng(cell.seed).choice(users, e.max_users, replace=False))
    curve, per_user = replay(policy, base_model, split, budget=e.budget, ks=ks, random_state=cell.seed,
                             policy_name=cell.policy, users=users, return_per_user=True)
    seconds = time.perf_counter() - t0 + base_seconds
    need = {"policy", "budget", "metric", "k", "value"}
    if not need <= set(curve.columns):
        raise DataError(f"replay returned columns {list(curve.columns)}; expected {sorted(need)}")

    def frame(df: pd.DataFrame, segment: str) -> pd.DataFrame:
        return pd.DataFrame({"model": df["policy"].astype(str), "dataset": cell.dataset.name,
                             "split": cell.split.name, "segment": segment, "metric": df["metric"],
                             "k": df["k"].astype(int), "value": df["value"].astype(float), "seed": cell.seed})

    meta = {**extra, "model_name": cell.policy, "base_model": e.model, "budget_max": e.budget, "max_users": e.max_users,
            "peak_rss_mb": peak_rss_mb()}
    cfg = {"policy": cell.policy, "policy_config": config_dict(policy), "budget": e.budget, "base_model": e.model,
           "base_model_config": config_dict(base_model)}
    dev = resolved_device(base_model)
    recs = to_records(frame(curve, "elicitation-curve"), config=cfg, command=command, device=dev, seconds=seconds,
                      extra={**meta, "record_type": "elicitation"})
    recs = _with_fields(recs, [{"budget": int(b)} for b in curve["budget"]])
    for r in recs:  # per-user values for paired bootstrap intervals (raw and prior NDCG / Recall)
        key = f"{r['metric']}@{r['k']}"
        if key in per_user and r["metric"].split("_")[0] in ("ndcg", "recall"):
            vals = per_user[key][r["budget"]]
            r["per_user"] = [None if np.isnan(x) else round(float(x), 6) for x in vals]
        elif r["metric"] == "n_users" and r["budget"] == 0:
            r["users"] = [int(u) for u in per_user["users"]]
    lim = min(10, e.budget)
    sub = curve[(curve.budget >= 1) & (curve.budget <= lim)]
    summ = sub.groupby(["policy", "metric", "k"], as_index=False).value.mean()
    recs += to_records(frame(summ, "elicitation"), config=cfg, command=command, device=dev, seconds=seconds,
                       extra={**meta, "record_type": "metric", "budget_mean_over": f"1..{lim}"})
    return recs


def error_record(cell: Cell, exc: BaseException, *, command: str, seconds: float,
                 extra: Mapping[str, Any]) -> dict:
    """The one record of a failed cell: ``status="error"``, the error line and the traceback's tail."""
    from recsys_coldstart.evaluate.results import machine, portable_text, versions

    label = cell.model.label if cell.model is not None else cell.policy
    cfg = dict(cell.model.config) if cell.model is not None else {"policy": cell.policy}
    return {"model": label, "dataset": cell.dataset.name, "split": cell.split.name, "segment": None, "metric": None,
            "k": None, "value": None, "seed": cell.seed, "config": cfg, "command": command, "versions": versions(),
            "machine": machine(), "device": None, "seconds": seconds, **extra, "record_type": "error",
            "status": "error",
            "error": portable_text(f"{type(exc).__name__}: {' '.join(str(exc).split())}")[:2000],
            "traceback": portable_text("".join(traceback.format_exception(type(exc), exc,
                                                                          exc.__traceback__)[-6:]))[-4000:],
            "peak_rss_mb": peak_rss_mb()}
