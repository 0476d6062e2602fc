"""Popularity baseline: every user gets the most-interacted items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.data.interactions import Interactions


class Popularity(BaseRecommender):
    """Scores every item by its number of training positives, for every user (known or new).

    The floor every model must beat. Attributes after ``fit``: ``item_counts_`` (float32, shape
    (n_items,)) and ``n_items_``.
    """

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None) -> Popularity:
        """Count positives per item in ``train``; returns self."""
        self.item_counts_ = train.item_degrees().astype(np.float32)
        self.n_items_ = train.n_items
        return self

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Item popularity broadcast to every user: shape (len(user_idx), n_items or len(item_idx))."""
        self._check_fitted()
        c = self.item_counts_ if item_idx is None else self.item_counts_[np.asarray(item_idx, np.int64)]
        return np.broadcast_to(c, (len(np.atleast_1d(user_idx)), len(c))).copy()

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Same as :meth:`score`: popularity ignores what a new user revealed."""
        return self.score(np.zeros(observed.shape[0], np.int64), item_idx)
