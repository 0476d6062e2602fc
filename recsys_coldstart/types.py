"""Protocols shared by every model and policy (structural typing, no inheritance required).

Indices everywhere are contiguous ``int64`` indices into a split's vocabularies
(``*_idx``); raw ids only appear at the edges (loaders, CLI, ``IdVocab``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.data.interactions import Interactions

EpochCallback = Callable[[int, dict[str, float]], bool | None]
"""``callback(epoch, logs) -> stop?``: called after every epoch with e.g. ``{"loss": .., "val_ndcg@20": ..}``;
returning True stops training (used by optuna pruning)."""


@runtime_checkable
class Recommender(Protocol):
    """Anything that fits on ``Interactions`` and scores items for users.

    Methods
    -------
    fit(train, *, val=None, callback=None) -> self
    score(user_idx, item_idx=None) -> np.ndarray of float32, shape (n_users_batch, n_items or len(item_idx))
    score_new_users(observed, features=None, item_idx=None) -> np.ndarray, shape (b, n_items)
        Users unseen at fit time: ``observed`` is a CSR (b, n_items) of what they revealed
        (possibly empty rows), ``features`` their side features (b, d_user) or None.
    recommend(user_idx, *, k=10, exclude=None, candidates=None) -> (ids, scores)
        Top-``k`` item indices (b, k) int64 and scores (b, k) float32.
    """

    def fit(self, train: Interactions, *, val: Interactions | None = None,
            callback: EpochCallback | None = None) -> Recommender:
        """Fit on ``train`` (early stopping on ``val`` where supported); returns self."""

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores of known users, shape (len(user_idx), n_items or len(item_idx))."""

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores of users unseen at fit time from what they revealed, shape (b, n_items)."""

    def recommend(self, user_idx: np.ndarray, *, k: int = 10, exclude: sp.csr_matrix | None = None,
                  candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices (b, k) and scores (b, k)."""


@runtime_checkable
class EmbeddingModel(Recommender, Protocol):
    """A recommender whose score is a dot product of fitted factors.

    Attributes
    ----------
    user_factors_ : np.ndarray of float32, shape (n_users, d)
    item_factors_ : np.ndarray of float32, shape (n_items, d)
    """

    user_factors_: np.ndarray
    item_factors_: np.ndarray


@runtime_checkable
class ColdStartModel(EmbeddingModel, Protocol):
    """An embedding model that also embeds entities it never saw in training.

    Methods
    -------
    embed_users(observed=None, features=None) -> np.ndarray, shape (b, d)
        From revealed interactions ``observed`` (CSR (b, n_items)) and/or side features (b, d_user).
    embed_items(features, observed=None) -> np.ndarray, shape (b, d)
        From item side features (b, d_item) and/or revealed interactions (CSR (b, n_users)).
    """

    def embed_users(self, observed: sp.csr_matrix | None = None,
                    features: np.ndarray | None = None) -> np.ndarray:
        """Vectors of new users, shape (b, d)."""

    def embed_items(self, features: np.ndarray, observed: sp.csr_matrix | None = None) -> np.ndarray:
        """Vectors of (possibly new) items from their side features, shape (b, d)."""


@runtime_checkable
class ElicitationPolicy(Protocol):
    """Chooses which item to ask a new user about next.

    Methods
    -------
    select(state) -> int or np.ndarray
        The next item index to ask (per user for a batched state).
    update(state, items, responses) -> state
        Fold the answers in (``responses``: +1 like, -1 dislike, 0 unknown).
    user_vector(state) -> np.ndarray, shape (d,) or (b, d)
        Current estimate of the user's vector in item-embedding space.
    """

    def select(self, state: Any) -> Any:
        """The next item index to ask each user about."""

    def update(self, state: Any, items: Any, responses: Any) -> Any:
        """Fold the answers into ``state``; returns the state."""

    def user_vector(self, state: Any) -> np.ndarray:
        """Current estimate of each user's vector, shape (d,) or (b, d)."""
