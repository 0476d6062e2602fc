"""Content-based k-NN: items scored by side-feature similarity to the user's items."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.baselines.knn import topk_item_similarity
from recsys_coldstart.config import Config, at_least
from recsys_coldstart.data.features import clipped_idf
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.sparse import as_observed, binary_csr, l2_normalize_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContentKNNConfig(Config):
    """Configuration of :class:`ContentKNN`.

    Attributes
    ----------
    n_neighbors : int or None
        Keep only each target item's ``n_neighbors`` most similar items (a sparse
        ``n_items x n_items`` matrix, built in blocks; default 50). None: every history item
        contributes its cosine (a linear model, scores ``(history @ F) @ F^T``, no item-item
        matrix; for very large catalogues). On ml-100k item-cold (seeds 0, 1) the cold-item
        NDCG@20 is 0.250 / 0.198 with 50 neighbours against 0.169 / 0.147 with None.
    idf : bool
        Weight feature columns by ``log(n_items / (1 + df))`` before the cosine, so features
        every item has (e.g. a common genre) count less.
    normalize_history : bool
        Divide a user's score by the size of their history (does not change a user's ranking;
        keeps scores comparable across users).
    batch_size : int
        Items per block when building the neighbour matrix.
    random_state : int or None
        Unused (deterministic); kept for a uniform interface.
    """

    n_neighbors: int | None = field(default=50, metadata=at_least(1, integer=True, none=True))
    idf: bool = True
    normalize_history: bool = True
    batch_size: int = field(default=1024, metadata=at_least(1, integer=True))
    random_state: int | None = 0


class ContentKNN(BaseRecommender):
    """Content-based nearest-neighbour recommender on item side features.

    Item-item similarity is the cosine between (optionally idf-weighted) item feature vectors
    (Lops, de Gemmis & Semeraro, "Content-based recommender systems: state of the art and
    trends", Recommender Systems Handbook 2011; the content-KNN floor of cold-start studies
    such as Gantner et al., "Learning attribute-to-feature mappings for cold-start
    recommendations", ICDM 2010):

    ``score(u, i) = (1/|H_u|) sum_{j in H_u} cos(f_i, f_j)``  (restricted to the top
    ``n_neighbors`` of ``i`` when set).

    Because only features are used, cold items (empty train columns, features known) are scored
    exactly like warm ones. Works with dense features and with sparse CSR features (e.g. tf-idf
    tag bags): neither form densifies ``F``.

    Attributes
    ----------
    item_features_ : np.ndarray of float32, shape (n_items, d_item), or scipy CSR
        Row-normalised (idf-weighted) item features.
    similarity_ : scipy CSR of float32, shape (n_items, n_items)
        Only when ``n_neighbors`` is set: ``similarity_[j, i] = cos(f_i, f_j)`` for neighbours.
    user_items_ : scipy CSR of float32, shape (n_users, n_items)
    n_items_ : int
    """

    config_class = ContentKNNConfig

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None) -> ContentKNN:
        """Normalise ``train.item_features`` (which cover every item, cold ones included); returns self.

        Raises
        ------
        DataError
            If ``train`` has no item features.
        """
        cfg = self.config
        feats = train.item_features
        if feats is None or feats.n_features == 0:
            raise DataError(f"ContentKNN needs item features; dataset {train.name!r} has none")
        f = feats.values
        if cfg.idf:
            w = clipped_idf(f)  # features on every item get idf 0 (all ones if that kills everything)
            f = sp.csr_matrix(f) @ sp.diags(w) if sp.issparse(f) else f * w[None, :]
        self.item_features_ = l2_normalize_rows(f)
        self.user_items_ = binary_csr(train.user_items)
        self.n_items_ = int(train.n_items)
        if cfg.n_neighbors is not None:
            ft = sp.csr_matrix(self.item_features_.T)  # features x items: columns are items
            self.similarity_ = topk_item_similarity(ft, n_neighbors=cfg.n_neighbors, batch_size=cfg.batch_size)
        return self

    def _score_rows(self, rows: sp.csr_matrix, item_idx: np.ndarray | None) -> np.ndarray:
        cfg = self.config
        items = None if item_idx is None else np.asarray(item_idx, np.int64)
        if cfg.n_neighbors is not None:
            w = self.similarity_ if items is None else self.similarity_[:, items]
            s = np.asarray((rows @ w).toarray(), np.float32)
        else:
            f = self.item_features_
            profile = rows @ f  # (b, d_item)
            if sp.issparse(profile):
                profile = profile.toarray()
            target = f if items is None else f[items]
            s = target @ np.asarray(profile).T  # (n_cand, b); sparse @ dense stays cheap
            s = np.asarray(s, np.float32).T
        if cfg.normalize_history:
            deg = np.diff(rows.indptr).astype(np.float32)
            s = s / np.maximum(deg, 1.0)[:, None]
        return np.ascontiguousarray(s, dtype=np.float32)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Content similarity to each user's train items, float32 of shape (b, n_items or len(item_idx))."""
        self._check_fitted()
        return self._score_rows(self.user_items_[np.atleast_1d(np.asarray(user_idx, np.int64))], item_idx)

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Content similarity to each new user's revealed items (zero for a user who revealed nothing).

        Returns
        -------
        np.ndarray of float32, shape (b, n_items or len(item_idx))
        """
        self._check_fitted()
        n_rows = None if features is None else len(features)
        return self._score_rows(as_observed(observed, n_rows, self.n_items_), item_idx)

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Its few parameters: all items or the top 10-500 neighbours by feature cosine (the
        content-KNN range of Dacrema et al., RecSys 2019), with or without idf weighting.
        """
        use_k = trial.suggest_categorical("use_neighbors", [False, True])
        return {
            "n_neighbors": trial.suggest_int("n_neighbors", 10, 500, log=True) if use_k else None,
            "idf": trial.suggest_categorical("idf", [True, False]),
        }
