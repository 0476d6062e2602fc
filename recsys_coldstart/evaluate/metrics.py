"""Full-ranking top-K metrics, pure numpy.

Conventions (those of LightGCN / SimGCL and ``shared/BENCHMARKS.md``):

- ``Recall@K = |top-K ∩ truth| / |truth|``
- ``Precision@K = |top-K ∩ truth| / K``
- ``HitRate@K = 1[|top-K ∩ truth| > 0]``
- ``NDCG@K = DCG@K / IDCG@K`` with binary gains, ``DCG@K = Σ_{r<K} hit_r / log2(r + 2)`` and the
  ideal DCG over ``min(K, |truth|)`` hits
- ``MRR@K = 1 / (rank of the first hit + 1)``, 0 if no hit in the top K
- ``Coverage@K = |∪_u top-K(u)| / n_candidates``

Every per-user function takes the boolean ``hits`` matrix of shape (n_users, K_max) (hit at
rank r of user u) and the truth sizes ``n_truth`` of shape (n_users,), all > 0.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

METRICS: tuple[str, ...] = ("recall", "ndcg", "hitrate", "precision", "mrr")


def hits_matrix(topk_ids: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Which recommended items are in the truth.

    Parameters
    ----------
    topk_ids : np.ndarray of int64, shape (b, K)
        Recommended item indices, best first; ``-1`` is padding (the rule of
        :func:`recsys_coldstart.retrieval.topk`) and never a hit.
    truth : scipy CSR of shape (b, n_items)
        Relevant items, rows aligned with ``topk_ids``.

    Returns
    -------
    np.ndarray of bool, shape (b, K)
    """
    truth = sp.csr_matrix(truth)
    truth.sort_indices()
    b, k = topk_ids.shape
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(truth.indptr))
    keys = rows * (n_items + 1) + truth.indices  # sorted: rows ascending, indices sorted within row
    q = np.arange(b, dtype=np.int64)[:, None] * (n_items + 1) + np.where(topk_ids < 0, n_items, topk_ids)
    pos = np.searchsorted(keys, q.ravel())
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    found = keys[pos] == q.ravel() if len(keys) else np.zeros(q.size, bool)
    return found.reshape(b, k)


def _check(hits: np.ndarray, k: int) -> np.ndarray:
    if k < 1 or k > hits.shape[1]:
        raise ValueError(f"k={k} must be in [1, {hits.shape[1]}]")
    return hits[:, :k]


def recall_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Recall@k per user, float64 of shape (n_users,)."""
    return _check(hits, k).sum(1) / n_truth


def precision_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Precision@k per user, float64 of shape (n_users,)."""
    return _check(hits, k).sum(1) / float(k)


def hitrate_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """HitRate@k per user (0 or 1), float64 of shape (n_users,)."""
    return _check(hits, k).any(1).astype(np.float64)


def ndcg_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per user with binary gains, float64 of shape (n_users,)."""
    h = _check(hits, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * disc).sum(1)
    idcg_table = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = idcg_table[np.minimum(n_truth, k)]
    return dcg / idcg


def mrr_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first hit within the top k (0 if none), shape (n_users,)."""
    h = _check(hits, k)
    first = h.argmax(1)
    return np.where(h.any(1), 1.0 / (first + 1.0), 0.0)


METRIC_FUNCTIONS = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hitrate": hitrate_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
}


def coverage_at_k(topk_ids: np.ndarray, n_candidates: int, k: int) -> float:
    """Share of the candidate items that appear in at least one user's top-k."""
    ids = topk_ids[:, :k]
    return float(len(np.unique(ids[ids >= 0]))) / max(n_candidates, 1)
