"""Uniformly random scores: the floor of the "beats random" checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.config import Config
from recsys_coldstart.data.interactions import Interactions


def row_uniform(seed: int, rows: np.ndarray, n_cols: int, cols: np.ndarray | None = None) -> np.ndarray:
    """Deterministic U[0, 1) scores: row ``r`` is drawn from a generator seeded by ``(seed, r)``.

    A pure function of ``(seed, row, col)``, so any batch of rows equals those rows scored one
    by one.

    Parameters
    ----------
    seed : int
    rows : np.ndarray of int64, shape (b,)
        Non-negative row keys (user indices).
    n_cols : int
        Number of items.
    cols : np.ndarray of int64, shape (n,), optional
        Keep only these columns.

    Returns
    -------
    np.ndarray of float32, shape (b, n_cols or n)
    """
    rows = np.asarray(rows, np.int64)
    width = n_cols if cols is None else len(cols)
    out = np.empty((len(rows), width), np.float32)
    for j, r in enumerate(rows):  # one cheap PCG64 stream per user
        full = np.random.Generator(np.random.PCG64([int(seed), int(r)])).random(n_cols, dtype=np.float32)
        out[j] = full if cols is None else full[cols]
    return out


@dataclass(frozen=True)
class RandomConfig(Config):
    """Configuration of :class:`RandomRecommender`.

    Attributes
    ----------
    random_state : int or None
        Seeds the hash; None draws a fresh seed at ``fit``.
    """

    random_state: int | None = 0


class RandomRecommender(BaseRecommender):
    """Scores every (user, item) pair with an independent uniform random number.

    The chance-level floor (e.g. the cold-item segment of an item-cold split, where
    popularity carries no signal). User ``u``'s scores come from a generator seeded by
    ``(seed, u)``, so scoring a batch equals scoring its rows one by one and the same seed gives
    the same ranking. New users get their own streams: row ``r`` of a ``score_new_users``
    batch is drawn as user ``n_users + r``.

    Attributes
    ----------
    seed_ : int
    n_users_ : int
    n_items_ : int
    """

    config_class = RandomConfig

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None) -> RandomRecommender:
        """Draw the seed from ``random_state``; returns self."""
        self.seed_ = int(check_random_state(self.config.random_state).integers(0, 2**62))
        self.n_users_ = int(train.n_users)
        self.n_items_ = int(train.n_items)
        return self

    def _cols(self, item_idx: np.ndarray | None) -> np.ndarray | None:
        return None if item_idx is None else np.asarray(item_idx, np.int64)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Random scores, float32 of shape (len(user_idx), n_items or len(item_idx))."""
        self._check_fitted()
        return row_uniform(self.seed_, np.atleast_1d(np.asarray(user_idx, np.int64)), self.n_items_, self._cols(item_idx))

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Random scores for new users, float32 of shape (b, n_items or len(item_idx))."""
        self._check_fitted()
        b = observed.shape[0] if observed is not None else len(features)
        return row_uniform(self.seed_, self.n_users_ + np.arange(b), self.n_items_, self._cols(item_idx))

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Nothing to tune: an empty dict."""
        return {}
