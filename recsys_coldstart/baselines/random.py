"""Uniformly random scores: the floor of the "beats random" checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.data.interactions import Interactions

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA 2014): a bijective 64-bit hash."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def hashed_uniform(seed: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Deterministic U[0, 1) floats for every (row, col) pair, a pure function of (seed, row, col).

    Parameters
    ----------
    seed : int
    rows : np.ndarray of int64, shape (b,)
    cols : np.ndarray of int64, shape (n,)

    Returns
    -------
    np.ndarray of float32, shape (b, n)
    """
    r = np.asarray(rows, np.int64).astype(np.uint64)[:, None]
    c = np.asarray(cols, np.int64).astype(np.uint64)[None, :]
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed) ^ _splitmix64(r * np.uint64(0x100000001B3) + c))
    return ((key >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)).astype(np.float32)


@dataclass(frozen=True)
class RandomConfig:
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
    popularity carries no signal). Scores are a hash of ``(seed, user, item)``, so scoring a
    batch equals scoring its rows one by one and the same seed gives the same ranking. New
    users get their own stream: row ``r`` of a ``score_new_users`` batch is hashed as user
    ``n_users + r``.

    Attributes
    ----------
    seed_ : int
    n_users_ : int
    n_items_ : int
    """

    config_class = RandomConfig

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None) -> RandomRecommender:
        """Draw the hash seed from ``random_state``; returns self."""
        self.seed_ = int(check_random_state(self.config.random_state).integers(0, 2**62))
        self.n_users_ = int(train.n_users)
        self.n_items_ = int(train.n_items)
        return self

    def _cols(self, item_idx: np.ndarray | None) -> np.ndarray:
        return np.arange(self.n_items_) if item_idx is None else np.asarray(item_idx, np.int64)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Random scores, float32 of shape (len(user_idx), n_items or len(item_idx))."""
        self._check_fitted()
        return hashed_uniform(self.seed_, np.atleast_1d(np.asarray(user_idx, np.int64)), self._cols(item_idx))

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Random scores for new users, float32 of shape (b, n_items or len(item_idx))."""
        self._check_fitted()
        b = observed.shape[0] if observed is not None else len(features)
        return hashed_uniform(self.seed_, self.n_users_ + np.arange(b), self._cols(item_idx))

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Nothing to tune: an empty dict."""
        return {}
