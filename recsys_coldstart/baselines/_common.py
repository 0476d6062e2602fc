"""Helpers shared by the baselines: a cheap validation metric for per-epoch callbacks.

The sparse helpers (binarised matrices, row normalisation, new users' revealed interactions)
live in :mod:`recsys_coldstart.sparse`; the weighted-ridge fold-in of new users in
:mod:`recsys_coldstart.foldin`.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


def val_metrics(score_fn, train: sp.csr_matrix, val: sp.csr_matrix, *, k: int = 20,
                max_users: int = 2000, seed: int = 0) -> dict[str, float]:
    """``val_ndcg@k`` and ``val_recall@k`` on (up to ``max_users``) users with both train and val
    positives, train positives excluded.

    Feeds per-epoch callbacks (early stopping / optuna pruning) cheaply.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(user_idx) -> (b, n_items)`` scores for known users.
    train, val : scipy CSR, shape (n_users, n_items)
    k : int
    max_users : int
        Evaluate a fixed random subset of at most this many users (seeded by ``seed``).
    seed : int

    Returns
    -------
    dict
        ``{"val_ndcg@k": float, "val_recall@k": float}`` (empty if no user qualifies).
    """
    from recsys_coldstart.evaluate.protocol import rank_and_score

    ok = (np.diff(train.indptr) > 0) & (np.diff(val.indptr) > 0)
    users = np.flatnonzero(ok)
    if len(users) == 0:
        return {}
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    res = rank_and_score(lambda rows: score_fn(users[rows]), val[users], exclude=train[users], candidates=None,
                         ks=(k,))
    return {f"val_{m}@{k}": float(np.mean(res[(m, k)])) for m in ("ndcg", "recall")}
