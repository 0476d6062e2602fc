"""Helpers shared by the baselines: binarised train matrices, feature normalisation, a cheap
validation metric for per-epoch callbacks, and a weighted-ridge fold-in of new users."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


def binary_csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy of ``matrix`` with every stored entry set to 1 (explicit zeros dropped).

    Parameters
    ----------
    matrix : scipy sparse, shape (n_rows, n_cols)

    Returns
    -------
    scipy CSR of float32, shape (n_rows, n_cols)
    """
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def l2_normalize_rows(x: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); dense in, dense out; sparse in, CSR out.

    Parameters
    ----------
    x : np.ndarray or scipy sparse, shape (n, d)

    Returns
    -------
    np.ndarray of float32 or scipy CSR of float32, shape (n, d)
    """
    if sp.issparse(x):
        m = sp.csr_matrix(x, dtype=np.float32, copy=True)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m, dtype=np.float32)
    a = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0).astype(np.float32, copy=False)


def as_observed(observed: sp.spmatrix | np.ndarray | None, n_rows: int | None, n_items: int) -> sp.csr_matrix:
    """Validate / coerce revealed interactions of new users to a binary CSR of shape (b, n_items)."""
    if observed is None:
        if n_rows is None:
            raise ValueError("observed is None and the number of users is unknown")
        return sp.csr_matrix((n_rows, n_items), dtype=np.float32)
    m = binary_csr(observed)
    if m.shape[1] != n_items:
        raise ValueError(f"observed has {m.shape[1]} item columns, the model was fitted on {n_items}")
    return m


def ridge_fold_in(observed: sp.csr_matrix, item_factors: np.ndarray, *, alpha: float, regularization: float,
                  gram: np.ndarray | None = None, prior: np.ndarray | None = None, prior_weight: float = 0.0,
                  max_floats: int = 1 << 25) -> np.ndarray:
    """Closed-form implicit-feedback user vectors for fixed item factors (Hu, Koren & Volinsky 2008).

    Solves, for every row ``u`` of ``observed``,

    ``x_u = argmin_x  sum_i c_ui (p_ui - x . y_i)^2 + lambda ||x||^2``

    with ``p_ui = 1`` for observed items (0 otherwise) and confidence ``c_ui = 1 + alpha`` for
    observed items (1 otherwise), i.e. ``x_u = (Y^T Y + alpha Y_u^T Y_u + lambda I)^{-1} (1 + alpha) Y_u^T 1``.
    With ``prior_weight = beta > 0`` the penalty ``beta ||x - mu||^2`` toward a prior vector ``mu``
    (e.g. the mean train user) is added: ``A += beta I``, ``b += beta mu``, which pulls a user
    who revealed little toward the population (popularity-like) vector.
    Batched: one ``(b, d, d)`` system solve; the per-user Gram terms are accumulated in chunks
    of at most ``max_floats`` floats. Empty rows give the zero vector (callers substitute a prior).

    Parameters
    ----------
    observed : scipy CSR of float32, shape (b, n_items)
        Binary revealed positives.
    item_factors : np.ndarray of float32, shape (n_items, d)
    alpha : float
        Confidence weight of a positive.
    regularization : float
        ``lambda``.
    gram : np.ndarray, shape (d, d), optional
        Precomputed ``Y^T Y``.
    prior : np.ndarray, shape (d,), optional
        ``mu``; required when ``prior_weight > 0``.
    prior_weight : float
        ``beta``.
    max_floats : int
        Memory bound for the per-interaction outer products.

    Returns
    -------
    np.ndarray of float32, shape (b, d)
    """
    y = np.asarray(item_factors, dtype=np.float64)
    b, d = observed.shape[0], y.shape[1]
    if gram is None:
        gram = y.T @ y
    base = gram + (regularization + prior_weight) * np.eye(d)
    out = np.zeros((b, d), np.float32)
    deg = np.diff(observed.indptr)
    rows = np.flatnonzero(deg > 0)
    if len(rows) == 0:
        return out
    # right-hand side: (1 + alpha) * sum of observed item vectors
    rhs = (1.0 + alpha) * (observed[rows] @ y)
    if prior_weight > 0:
        rhs = rhs + prior_weight * np.asarray(prior, np.float64)[None, :]
    a = np.broadcast_to(base, (len(rows), d, d)).copy()
    # accumulate alpha * Y_u^T Y_u per user in chunks of users so nnz * d * d stays bounded
    sub = observed[rows]
    per_user = max(1, d * d)
    start = 0
    while start < len(rows):
        stop = start + 1
        budget = max_floats // per_user
        cum = sub.indptr[start]
        while stop < len(rows) and sub.indptr[stop + 1] - cum <= budget:
            stop += 1
        lo, hi = sub.indptr[start], sub.indptr[stop]
        yy = y[sub.indices[lo:hi]]
        outer = yy[:, :, None] * yy[:, None, :]
        seg = sub.indptr[start:stop] - lo
        a[start:stop] += alpha * np.add.reduceat(outer, seg, axis=0)
        start = stop
    out[rows] = np.linalg.solve(a, rhs[:, :, None])[:, :, 0].astype(np.float32)
    return out


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
