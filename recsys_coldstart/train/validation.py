"""The one validation of every iterative model: a plan built once per ``fit``, scored per evaluation.

A :class:`ValidationPlan` fixes, before training, which users are scored, what counts as a hit
and which items each user's ranking leaves out, with the rules of the evaluation protocol
(``shared/BENCHMARKS.md``):

- users: those with a val positive (with ``need_history=True`` only those with a training
  interaction too: a model that cannot embed a user without history would add noise), at most
  ``max_users`` of them (a random subset under ``sample_seed``, or the first ones when it is None);
- items: when every val positive is on an item without training interactions (an item-cold split)
  the users rank the cold items only, as the ``cold-item`` segment does; otherwise all items with
  each user's training items excluded.

:func:`score_plan` ranks once through :func:`recsys_coldstart.evaluate.protocol.rank_and_score`
and returns every ``(metric, k)`` of the plan from that one ranking, keyed
``val_{metric}@{k}`` (e.g. ``val_ndcg@20`` and ``val_recall@20``): the log-key rule of the
package, which ``tune`` and the bench runner read.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.evaluate.protocol import rank_and_score

logger = logging.getLogger(__name__)

VAL_METRICS: tuple[str, ...] = ("ndcg", "recall")
"""Metrics every validation logs (the early-stopping one is chosen among them)."""


def log_key(metric: str, k: int) -> str:
    """The log / history key of a validation metric: ``val_{metric}@{k}`` (e.g. ``val_ndcg@20``)."""
    return f"val_{metric}@{int(k)}"


@dataclass(frozen=True)
class ValidationPlan:
    """Who is scored on what, fixed once per ``fit``.

    Attributes
    ----------
    users : np.ndarray of int64, shape (b,)
        Evaluated user indices (sorted).
    truth : scipy CSR of float32, shape (b, n_items)
        Their val positives.
    exclude : scipy CSR, shape (b, n_items), or None
        Items left out of each ranking (their training items); None when ranking cold items only.
    candidates : np.ndarray of int64, shape (n_cand,), or None
        Items ranked (None: all items).
    ks : tuple of int
        Cutoffs.
    metrics : tuple of str
        Metric names of :data:`recsys_coldstart.evaluate.metrics.METRIC_FUNCTIONS`.
    """

    users: np.ndarray
    truth: sp.csr_matrix
    exclude: sp.csr_matrix | None
    candidates: np.ndarray | None
    ks: tuple[int, ...] = (20,)
    metrics: tuple[str, ...] = VAL_METRICS

    @property
    def keys(self) -> list[str]:
        """Log keys this plan produces, ``val_{metric}@{k}`` for every metric and cutoff."""
        return [log_key(m, k) for m in self.metrics for k in self.ks]


def _csr(x: Any) -> sp.csr_matrix:
    m = getattr(x, "user_items", x)
    return sp.csr_matrix(m)


def validation_plan(train: Any, val: Any, *, ks: Sequence[int] = (20,), metrics: Sequence[str] = VAL_METRICS,
                    need_history: bool = True, cold_items: bool = True, max_users: int | None = None,
                    sample_seed: int | None = 0) -> ValidationPlan | None:
    """Build the validation plan of a ``fit`` (None when ``val`` has nobody to score).

    Parameters
    ----------
    train, val : Interactions or scipy sparse, shape (n_users, n_items)
        Training and validation positives on one vocabulary.
    ks : sequence of int
        Cutoffs (every metric is computed at every cutoff from one ranking).
    metrics : sequence of str
        Metric names, default ``("ndcg", "recall")``.
    need_history : bool
        Score only users with a training interaction (models that cannot embed a user from
        features: graph models, matrix factorisation). Tower models embed users from features
        and pass False.
    cold_items : bool
        Apply the item-cold rule: when every val positive is on an item without training
        interactions, rank among those cold items only. False ranks all items (train excluded)
        whatever the split.
    max_users : int, optional
        Score at most this many users.
    sample_seed : int or None
        With ``max_users``: a sorted random subset drawn under this seed, or (None) the first
        ``max_users`` users.

    Returns
    -------
    ValidationPlan or None
    """
    if val is None:
        return None
    ui = _csr(train)
    truth_all = _csr(val)
    if truth_all.shape != ui.shape:
        raise ValueError(f"val has shape {truth_all.shape}, train {ui.shape}: use one vocabulary")
    has = np.diff(truth_all.indptr) > 0
    if need_history:
        has &= np.diff(ui.indptr) > 0
    users = np.flatnonzero(has).astype(np.int64)
    if len(users) == 0:
        logger.warning("no validation user%s: training without validation",
                       " has training interactions" if need_history else " has val positives")
        return None
    if max_users is not None and len(users) > max_users:
        if sample_seed is None:
            users = users[:max_users]
        else:
            users = np.sort(np.random.default_rng(sample_seed).choice(users, max_users, replace=False))
    truth = truth_all[users]
    exclude, candidates = ui[users], None
    if cold_items:
        cold = np.bincount(ui.indices, minlength=ui.shape[1]) == 0
        if cold[truth.indices].all():
            exclude, candidates = None, np.flatnonzero(cold).astype(np.int64)
    return ValidationPlan(users=users, truth=truth, exclude=exclude, candidates=candidates,
                          ks=tuple(int(k) for k in ks), metrics=tuple(metrics))


ScoreUsers = Callable[[np.ndarray, np.ndarray | None], Any]
"""``score_fn(user_idx, item_idx) -> scores`` of shape (len(user_idx), n_items or len(item_idx)),
numpy or torch; ``item_idx`` None means all items."""


def split_fit_kwargs(model: Any, split: Any) -> dict[str, Any]:
    """What ``model.fit`` takes from ``split`` beyond ``train`` and ``val``: ``{"support":
    split.support}`` when the split's cold users revealed items and the model's ``fit`` has a
    ``support`` parameter (the tower models validate cold val users on them, the way the test
    scores them), else ``{}``.

    Parameters
    ----------
    model : recommender
    split : ColdStartSplit

    Returns
    -------
    dict
    """
    support = getattr(split, "support", None)
    if support is None or not getattr(support, "nnz", 0):
        return {}
    if "support" not in inspect.signature(model.fit).parameters:
        return {}
    return {"support": support}


def score_plan(plan: ValidationPlan, score_fn: ScoreUsers) -> dict[str, float]:
    """Rank once and return every metric of ``plan``, keyed ``val_{metric}@{k}`` (user means).

    Parameters
    ----------
    plan : ValidationPlan
    score_fn : callable
        ``score_fn(user_idx, item_idx)``, see :data:`ScoreUsers`; torch tensors are moved to
        numpy.

    Returns
    -------
    dict of str to float
    """
    def rows_fn(rows: np.ndarray) -> np.ndarray:
        s = score_fn(plan.users[rows], plan.candidates)
        if hasattr(s, "detach"):
            s = s.detach().cpu().numpy()
        return np.asarray(s)

    res = rank_and_score(rows_fn, plan.truth, exclude=plan.exclude, candidates=plan.candidates, ks=plan.ks)
    return {log_key(m, k): float(np.mean(res[(m, k)])) for m in plan.metrics for k in plan.ks}


def score_factors(plan: ValidationPlan, user_factors: Any, item_factors: Any) -> dict[str, float]:
    """:func:`score_plan` for a dot-product model: ``user_factors[u] @ item_factors[items].T``.

    Parameters
    ----------
    plan : ValidationPlan
    user_factors : np.ndarray or torch.Tensor, shape (n_users, d)
    item_factors : np.ndarray or torch.Tensor, shape (n_items, d)
        numpy or torch (on any device: scores are computed there, one batch of users at a time).

    Returns
    -------
    dict of str to float
    """
    torch_in = hasattr(user_factors, "detach")
    if torch_in:
        import torch

        with torch.no_grad():
            dev = user_factors.device
            cand = item_factors if plan.candidates is None else \
                item_factors[torch.as_tensor(plan.candidates, device=dev)]
            vt = cand.T.contiguous()
            u_sel = user_factors[torch.as_tensor(plan.users, device=dev)]

        def fn(users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
            rows = np.searchsorted(plan.users, users)  # plan.users is sorted
            idx = torch.as_tensor(rows, device=dev, dtype=torch.int64)
            with torch.no_grad():
                return (u_sel[idx] @ vt).cpu().numpy()
    else:
        uf = np.asarray(user_factors)
        itf = np.asarray(item_factors)
        v = itf if plan.candidates is None else itf[plan.candidates]

        def fn(users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
            return uf[users] @ v.T

    return score_plan(plan, fn)
