"""Feature-conditioned popularity: the cold-user floor that uses user side features."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.config import Config, at_least, greater_than
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.sparse import binary_csr, l2_normalize_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturePopularityConfig(Config):
    """Configuration of :class:`FeaturePopularity`.

    Attributes
    ----------
    power : float
        Sharpness of the user-user kernel ``w = max(cos, 0) ** power``; large values approach
        "popularity within the exact same feature group".
    shrinkage : float
        Dirichlet smoothing toward global popularity, in pseudo-interactions (``m`` below).
    standardize : bool
        Centre and scale each dense feature column (z-score) before the cosine, so a column with
        a large range (e.g. an activity count) does not swamp one-hot groups. Sparse features
        are only scaled (never densified).
    batch_size : int
        New users scored at once against all train users.
    random_state : int or None
        Unused (deterministic); kept for a uniform interface.
    """

    power: float = field(default=1.0, metadata=greater_than(0.0))
    shrinkage: float = field(default=100.0, metadata=at_least(0.0))
    standardize: bool = True
    batch_size: int = field(default=512, metadata=at_least(1, integer=True))
    random_state: int | None = 0


class FeaturePopularity(BaseRecommender):
    """Popularity among the train users who look like the target user (by side features).

    A kernel-weighted (Nadaraya-Watson) popularity, the demographic-filtering floor of
    cold-start studies (Pazzani, "A framework for collaborative, content-based and demographic
    filtering", AI Review 1999; Lam et al., "Addressing cold-start problem in recommendation
    systems", ICUIMC 2008). For a user with features ``f``:

    ``w_v = max(cos(f, f_v), 0) ** power`` over train users ``v``,
    ``score_i = (sum_v w_v r_vi + m * p_i) / (sum_v w_v |r_v| + m)``

    where ``p_i`` is item ``i``'s share of all train positives and ``m = shrinkage``: a smoothed
    estimate of ``P(item | features)``. Users without features (or a model fitted without user
    features) get plain popularity ``p_i``. Known users are scored by their own stored features
    the same way; what a new user revealed is not used (it is excluded from the ranking by the
    evaluation).

    Attributes
    ----------
    user_features_ : np.ndarray of float32, shape (n_users, d_user), or CSR
        Normalised train-user features (empty (n_users, 0) array when there are none).
    feature_mean_, feature_scale_ : np.ndarray of float32, shape (d_user,)
        Standardisation applied to every feature vector before the cosine.
    user_items_ : scipy CSR of float32, shape (n_users, n_items)
    item_prob_ : np.ndarray of float32, shape (n_items,)
        Global popularity share ``p_i``.
    n_items_ : int
    """

    config_class = FeaturePopularityConfig

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None) -> FeaturePopularity:
        """Store normalised user features and the train matrix; returns self."""
        cfg = self.config
        x = binary_csr(train.user_items)
        self.user_items_ = x
        self.n_items_ = int(x.shape[1])
        counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        self.item_prob_ = (counts / max(counts.sum(), 1.0)).astype(np.float32)
        feats = train.user_features
        if feats is None or feats.n_features == 0:
            logger.warning("FeaturePopularity: train has no user features; it reduces to popularity")
            self.user_features_ = np.zeros((train.n_users, 0), np.float32)
            self.feature_mean_ = np.zeros(0, np.float32)
            self.feature_scale_ = np.zeros(0, np.float32)
            return self
        vals = feats.values
        active = np.diff(x.indptr) > 0
        ref = vals[np.flatnonzero(active)] if active.any() else vals
        d = feats.n_features
        if cfg.standardize and not sp.issparse(vals):
            mean = ref.mean(axis=0)
            std = ref.std(axis=0)
        elif cfg.standardize:
            mean = np.zeros(d)
            sq = np.asarray(ref.multiply(ref).mean(axis=0)).ravel()
            std = np.sqrt(sq)
        else:
            mean, std = np.zeros(d), np.ones(d)
        self.feature_mean_ = np.asarray(mean, np.float32)
        self.feature_scale_ = np.where(std > 1e-12, 1.0 / np.maximum(std, 1e-12), 0.0).astype(np.float32)
        self.user_features_ = self._transform(vals)
        return self

    def _transform(self, f: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
        if sp.issparse(f):
            z = sp.csr_matrix(f, dtype=np.float32) @ sp.diags(self.feature_scale_)
        else:
            z = (np.asarray(f, np.float32) - self.feature_mean_) * self.feature_scale_
        return l2_normalize_rows(z)

    def _popularity(self, b: int, item_idx: np.ndarray | None) -> np.ndarray:
        prior = self.item_prob_ if item_idx is None else self.item_prob_[np.asarray(item_idx, np.int64)]
        return np.broadcast_to(prior, (b, len(prior))).astype(np.float32)

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Feature-conditioned popularity for known users (their stored features).

        Returns
        -------
        np.ndarray of float32, shape (len(user_idx), n_items or len(item_idx))
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(user_idx, np.int64))
        if self.user_features_.shape[1] == 0:
            return self._popularity(len(users), item_idx)
        return self._score_transformed(self.user_features_[users], item_idx)

    def _score_transformed(self, z: np.ndarray | sp.spmatrix, item_idx: np.ndarray | None) -> np.ndarray:
        cfg = self.config
        items = slice(None) if item_idx is None else np.asarray(item_idx, np.int64)
        prior = self.item_prob_[items]
        deg = np.diff(self.user_items_.indptr).astype(np.float32)
        r = self.user_items_ if item_idx is None else self.user_items_[:, items]
        b = z.shape[0]
        out = np.empty((b, len(prior)), np.float32)
        for start in range(0, b, cfg.batch_size):
            stop = min(start + cfg.batch_size, b)
            sim = z[start:stop] @ self.user_features_.T
            sim = sim.toarray() if sp.issparse(sim) else np.asarray(sim)
            w = np.maximum(sim, 0.0, dtype=np.float32) ** cfg.power
            num = np.asarray(sp.csr_matrix(r).T @ w.T).T
            den = w @ deg
            out[start:stop] = (num + cfg.shrinkage * prior[None, :]) / (den[:, None] + cfg.shrinkage)
        return out

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores for new users from their side features (``observed`` only gives the batch size).

        Parameters
        ----------
        observed : scipy CSR, shape (b, n_items)
        features : np.ndarray of float32, shape (b, d_user), or CSR; optional
            Without features every user gets global popularity.
        item_idx : np.ndarray of int64, optional

        Returns
        -------
        np.ndarray of float32, shape (b, n_items or len(item_idx))
        """
        self._check_fitted()
        b = observed.shape[0] if observed is not None else len(features)
        if features is None or self.user_features_.shape[1] == 0:
            return self._popularity(b, item_idx)
        if features.shape[1] != self.user_features_.shape[1]:
            raise ValueError(f"features have {features.shape[1]} columns, the model was fitted on "
                             f"{self.user_features_.shape[1]}")
        return self._score_transformed(self._transform(features), item_idx)

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Its two parameters: the sharpening power of the feature-segment popularity and the
        shrinkage of a segment's mean towards the global one (0.5-16 and 1-1000, log scale:
        a segment of a few users needs strong shrinkage, large ones almost none).
        """
        return {
            "power": trial.suggest_float("power", 0.5, 16.0, log=True),
            "shrinkage": trial.suggest_float("shrinkage", 1.0, 1000.0, log=True),
        }
