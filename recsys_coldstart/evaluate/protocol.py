"""The full-ranking evaluation protocol of ``shared/BENCHMARKS.md``, batched over users.

Segments:

- ``warm``: users seen in training, ranked over all items; train (and, for test, val)
  positives excluded.
- ``cold-user``: the split's held-out cold users, scored through ``score_new_users`` from their
  revealed support (and side features); support excluded.
- ``cold-item``: every user with a held-out positive on a cold item, ranked among the cold
  items only (the DropoutNet / ColdRec convention).
- ``all``: for item-cold splits, the same users ranked over cold and warm items together.

Only users with at least one truth item are averaged. Scores are produced ``batch_size`` users
at a time, so memory stays bounded (b x n_items floats) whatever the catalogue size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_coldstart.data.splits import ColdStartSplit
from recsys_coldstart.evaluate.metrics import METRIC_FUNCTIONS, coverage_at_k, hits_matrix
from recsys_coldstart.retrieval import topk

logger = logging.getLogger(__name__)

SEGMENTS: tuple[str, ...] = ("warm", "cold-user", "cold-item", "all")
DEFAULT_KS: tuple[int, ...] = (10, 20)
RESULT_COLUMNS = ["model", "dataset", "split", "segment", "metric", "k", "value", "seed"]

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""``score_fn(rows) -> scores``: rows are positions into the evaluated user list, scores have
shape (len(rows), n_candidates)."""


def default_segments(kind: str) -> tuple[str, ...]:
    """Segments that carry truth for a split kind."""
    return {"warm": ("warm",), "user-cold": ("cold-user",), "item-cold": ("cold-item", "all")}[kind]


def rank_and_score(score_fn: ScoreFn, truth: sp.csr_matrix, *, exclude: sp.csr_matrix | None,
                   candidates: np.ndarray | None, ks: Sequence[int] = DEFAULT_KS,
                   batch_size: int = 1024) -> dict[tuple[str, int], np.ndarray]:
    """Per-user ranking metrics for users ``0..b-1`` of ``truth``.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(rows)`` returns float32 scores of shape (len(rows), n_cols) where the
        columns are ``candidates`` (or all items when ``candidates is None``).
    truth : scipy CSR of shape (b, n_items)
        Relevant items per evaluated user; every row must be non-empty.
    exclude : scipy CSR of shape (b, n_items), optional
        Items removed from each user's ranking (train positives, support, asked items).
    candidates : np.ndarray of int64, optional
        The item indices ranked (default: all).
    ks : sequence of int
    batch_size : int
        Users scored at once.

    Returns
    -------
    dict mapping ``(metric, k)`` to float64 arrays of shape (b,), plus
    ``("coverage", k)`` to a 1-element array.
    """
    truth = sp.csr_matrix(truth)
    b = truth.shape[0]
    n_truth_all = np.diff(truth.indptr)
    if (n_truth_all == 0).any():
        raise ValueError("every evaluated user needs at least one truth item")
    k_max = max(ks)
    out: dict[tuple[str, int], list[np.ndarray]] = {(m, k): [] for m in METRIC_FUNCTIONS for k in ks}
    all_top: list[np.ndarray] = []
    n_cand = truth.shape[1] if candidates is None else len(candidates)
    for start in range(0, b, batch_size):
        rows = np.arange(start, min(start + batch_size, b))
        scores = score_fn(rows)
        ex = None if exclude is None else exclude[rows]
        # the one top-k: never an excluded item; -1 pads a user with fewer than k_max left (a miss)
        ids, _ = topk(scores, k_max, exclude=ex, candidates=candidates)
        tr = truth[rows]
        hits = hits_matrix(ids, tr)
        n_truth = n_truth_all[rows]
        for (m, k), acc in out.items():
            acc.append(METRIC_FUNCTIONS[m](hits, n_truth, min(k, hits.shape[1])))
        all_top.append(ids)
    result = {key: np.concatenate(v) if v else np.zeros(0) for key, v in out.items()}
    top = np.concatenate(all_top) if all_top else np.zeros((0, k_max), np.int64)
    for k in ks:
        result[("coverage", k)] = np.array([coverage_at_k(top, n_cand, min(k, top.shape[1]) or 1)])
    return result


@dataclass
class _SegmentPlan:
    users: np.ndarray
    truth: sp.csr_matrix
    exclude: sp.csr_matrix | None
    candidates: np.ndarray | None
    cold_users: bool


def _plan(split: ColdStartSplit, segment: str, which: str) -> _SegmentPlan | None:
    held = (split.test if which == "test" else split.val).user_items
    train = split.train.user_items
    n_items = split.train.n_items
    if segment == "cold-user":
        users = split.test_users if which == "test" else split.val_users
        exclude = split.support.user_items[users]
        truth = held[users]
        cold = True
        candidates = None
    elif segment in ("warm", "all", "cold-item"):
        cold_u = split.cold_users
        warm_mask = np.ones(split.train.n_users, bool)
        warm_mask[cold_u] = False
        users = np.flatnonzero(warm_mask)
        ex = train
        if which == "test" and split.kind == "warm":
            ex = ex + split.val.user_items
        exclude = ex[users]
        truth = held[users]
        cold = False
        candidates = None
        if segment == "cold-item":
            items = split.test_items if which == "test" else split.val_items
            if len(items) == 0:
                return None
            candidates = np.asarray(items, np.int64)
            keep = np.zeros(n_items, bool)
            keep[candidates] = True
            truth = truth.multiply(keep[None, :]).tocsr()
        elif segment == "warm" and split.kind == "item-cold":
            return None
    else:
        raise ValueError(f"unknown segment {segment!r}; choose from {SEGMENTS}")
    truth = sp.csr_matrix(truth)
    truth.eliminate_zeros()
    has = np.diff(truth.indptr) > 0
    if not has.any():
        return None
    sel = np.flatnonzero(has)
    return _SegmentPlan(users=np.asarray(users)[sel], truth=truth[sel], exclude=exclude[sel] if exclude is not None else None,
                        candidates=candidates, cold_users=cold)


def segment_score_fn(model, split: ColdStartSplit, plan: _SegmentPlan) -> ScoreFn:
    """The scoring closure for one segment: known users via ``score``, cold users via
    ``score_new_users`` with their support rows and side features."""
    feats = split.train.user_features
    if plan.cold_users:
        support = split.support.user_items

        def fn(rows: np.ndarray) -> np.ndarray:
            u = plan.users[rows]
            f = None if feats is None else feats.take(u)
            return model.score_new_users(support[u], f, plan.candidates)
    else:
        def fn(rows: np.ndarray) -> np.ndarray:
            return model.score(plan.users[rows], plan.candidates)
    return fn


def evaluate(model, split: ColdStartSplit, *, segments: Sequence[str] | None = None, ks: Sequence[int] = DEFAULT_KS,
             which: str = "test", batch_size: int = 1024, model_name: str | None = None,
             seed: int | None = None) -> pd.DataFrame:
    """Evaluate a fitted recommender on a split, by segment, with full ranking.

    Parameters
    ----------
    model : Recommender
        Fitted on ``split.train``. Cold-user segments call ``model.score_new_users``.
    split : ColdStartSplit
    segments : sequence of str, optional
        Default: the segments the split kind has truth for (:func:`default_segments`).
    ks : sequence of int
        Cutoffs (default 10, 20).
    which : {"test", "val"}
    batch_size : int
        Users scored at once; bounds memory at ``batch_size x n_items`` floats.
    model_name : str, optional
        Default: the class name.
    seed : int, optional
        Recorded in the ``seed`` column (default: the split's seed).

    Returns
    -------
    pandas.DataFrame
        Tidy: ``model, dataset, split, segment, metric, k, value, seed`` (metric values are means
        over evaluated users; ``n_users`` rows give how many were evaluated).
    """
    if which not in ("test", "val"):
        raise ValueError("which must be 'test' or 'val'")
    segs = tuple(segments) if segments is not None else default_segments(split.kind)
    name = model_name or type(model).__name__
    rows = []
    for seg in segs:
        plan = _plan(split, seg, which)
        if plan is None:
            logger.info("segment %s has no %s truth in this %s split; skipped", seg, which, split.kind)
            continue
        t0 = time.perf_counter()
        res = rank_and_score(segment_score_fn(model, split, plan), plan.truth, exclude=plan.exclude,
                             candidates=plan.candidates, ks=ks, batch_size=batch_size)
        logger.info("evaluated %s on %d users of segment %s in %.2fs", name, len(plan.users), seg,
                    time.perf_counter() - t0)
        for (metric, k), vals in res.items():
            rows.append((name, split.name, split.kind, seg, metric, k, float(np.mean(vals)),
                         split.seed if seed is None else seed))
        rows.append((name, split.name, split.kind, seg, "n_users", 0, float(len(plan.users)),
                     split.seed if seed is None else seed))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def metric_value(results: pd.DataFrame, metric: str, k: int, segment: str) -> float:
    """Pick one number out of a tidy results frame (raises ``KeyError`` if absent)."""
    sel = results[(results.metric == metric) & (results.k == k) & (results.segment == segment)]
    if sel.empty:
        raise KeyError(f"no {metric}@{k} for segment {segment!r} in the results")
    return float(sel.value.mean())
