"""Training-pair sampling for implicit feedback: BPR triples and uniform negative sampling.

Pure numpy / scipy, vectorised, randomness only through an explicit ``numpy.random.Generator``
(or a seed resolved by :func:`recsys_coldstart._utils.check_random_state`).

BPR (S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme, "BPR: Bayesian Personalized
Ranking from Implicit Feedback", UAI 2009) trains on triples ``(u, i, j)``: ``i`` a positive of
``u`` and ``j`` an item ``u`` has no positive for, drawn uniformly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

RandomState = int | np.random.Generator | None


class NegativeSampler:
    """Uniform negatives for a fixed positive matrix (membership tests by binary search).

    Parameters
    ----------
    user_items : scipy sparse, shape (n_users, n_items)
        Stored entries are the positives to avoid.
    max_rounds : int
        Rejection-sampling rounds before the few remaining draws are made exactly from each
        user's complement.

    Examples
    --------
    >>> import scipy.sparse as sp, numpy as np
    >>> s = NegativeSampler(sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]])))
    >>> s.sample(np.array([1, 1]), 2, np.random.default_rng(0)).tolist()
    [[0, 0], [0, 0]]
    """

    def __init__(self, user_items: sp.spmatrix, *, max_rounds: int = 50) -> None:
        ui = sp.csr_matrix(user_items)
        ui.sum_duplicates()
        ui.sort_indices()
        self.n_users, self.n_items = ui.shape
        self.indptr = ui.indptr.astype(np.int64)
        self.indices = ui.indices.astype(np.int64)
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))
        # Row-major CSR with sorted indices: these keys are already sorted.
        self._keys = rows * self.n_items + self.indices
        self.degrees = np.diff(self.indptr)
        self.max_rounds = max_rounds

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each ``(users[k], items[k])`` is a stored positive; bool array of shape (m,)."""
        q = np.asarray(users, np.int64) * self.n_items + np.asarray(items, np.int64)
        pos = np.searchsorted(self._keys, q)
        pos = np.minimum(pos, max(len(self._keys) - 1, 0))
        return (self._keys[pos] == q) if len(self._keys) else np.zeros(q.shape, bool)

    def sample(self, users: np.ndarray, n_neg: int = 1, rng: RandomState = None) -> np.ndarray:
        """Uniform negatives for each user.

        Parameters
        ----------
        users : np.ndarray of int, shape (m,)
            User indices (repeats allowed).
        n_neg : int
            Negatives per user (drawn independently, with replacement).
        rng : int, Generator or None

        Returns
        -------
        np.ndarray of int64, shape (m, n_neg)
            Item indices that are not positives of the matching user.

        Raises
        ------
        DataError
            If a user has a positive for every item (no negative exists).
        """
        rng = check_random_state(rng)
        users = np.asarray(users, np.int64)
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            raise DataError(f"user index out of range [0, {self.n_users})")
        full = self.degrees[users] >= self.n_items
        if full.any():
            raise DataError(f"user {int(users[np.argmax(full)])} has every item as a positive: no negative to sample")
        flat_u = np.repeat(users, n_neg)
        neg = rng.integers(0, self.n_items, len(flat_u), dtype=np.int64)
        todo = np.flatnonzero(self.is_positive(flat_u, neg))
        rounds = 0
        while len(todo) and rounds < self.max_rounds:
            neg[todo] = rng.integers(0, self.n_items, len(todo), dtype=np.int64)
            todo = todo[self.is_positive(flat_u[todo], neg[todo])]
            rounds += 1
        for k in todo:  # only very dense users get here; draw from the exact complement
            u = flat_u[k]
            mask = np.ones(self.n_items, bool)
            mask[self.indices[self.indptr[u]:self.indptr[u + 1]]] = False
            neg[k] = rng.choice(np.flatnonzero(mask))
        return neg.reshape(len(users), n_neg)


def sample_negatives(user_items: sp.spmatrix, users: np.ndarray, n_neg: int = 1, *,
                     random_state: RandomState = None) -> np.ndarray:
    """Uniform negatives (non-positive items) for each user; shape (len(users), n_neg), int64.

    Builds a :class:`NegativeSampler`; reuse one directly when sampling repeatedly.
    """
    return NegativeSampler(user_items).sample(users, n_neg, random_state)


def bpr_triples(user_items: sp.spmatrix, *, n_samples: int | None = None, mode: Literal["pairs", "users"] = "pairs",
                random_state: RandomState = None,
                sampler: NegativeSampler | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw BPR triples ``(u, i, j)``.

    Parameters
    ----------
    user_items : scipy sparse, shape (n_users, n_items)
        Positives.
    n_samples : int, optional
        Number of triples; default ``nnz`` (one epoch).
    mode : {"pairs", "users"}
        ``"pairs"``: positive pairs uniformly (without replacement while ``n_samples <= nnz``:
        with the default, every positive exactly once, shuffled). ``"users"``: a user uniformly
        among users with a positive, then one of their positives uniformly (LightGCN's sampler).
    random_state : int, Generator or None
    sampler : NegativeSampler, optional
        Prebuilt sampler for ``user_items``.

    Returns
    -------
    users, pos_items, neg_items : np.ndarray of int64, each of shape (n_samples,)
    """
    rng = check_random_state(random_state)
    sampler = sampler or NegativeSampler(user_items)
    nnz = len(sampler.indices)
    if nnz == 0:
        raise DataError("no positives to sample BPR triples from")
    n = nnz if n_samples is None else int(n_samples)
    rows = np.repeat(np.arange(sampler.n_users, dtype=np.int64), sampler.degrees)
    if mode == "pairs":
        pick = rng.permutation(nnz)[:n] if n <= nnz else rng.integers(0, nnz, n)
        u, i = rows[pick], sampler.indices[pick]
    elif mode == "users":
        active = np.flatnonzero(sampler.degrees > 0)
        u = active[rng.integers(0, len(active), n)]
        off = (rng.random(n) * sampler.degrees[u]).astype(np.int64)
        i = sampler.indices[sampler.indptr[u] + off]
    else:
        raise ValueError(f"mode must be 'pairs' or 'users', not {mode!r}")
    j = sampler.sample(u, 1, rng)[:, 0]
    return u, i, j


def iter_bpr_batches(user_items: sp.spmatrix, batch_size: int, *, n_samples: int | None = None,
                     mode: Literal["pairs", "users"] = "pairs", random_state: RandomState = None,
                     sampler: NegativeSampler | None = None,
                     ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of BPR triples in mini-batches of ``batch_size`` (the last may be smaller).

    Yields
    ------
    users, pos_items, neg_items : np.ndarray of int64, each of shape (<= batch_size,)
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    u, i, j = bpr_triples(user_items, n_samples=n_samples, mode=mode, random_state=random_state, sampler=sampler)
    for s in range(0, len(u), batch_size):
        yield u[s:s + batch_size], i[s:s + batch_size], j[s:s + batch_size]
