"""Base classes: config handling, ``recommend`` on top of ``score``, embedding models.

A model file defines a frozen ``@dataclass`` config and a subclass of :class:`BaseRecommender`
(or :class:`EmbeddingRecommender`) that sets ``config_class``. ``__init__`` only stores the
config; all work happens in ``fit``.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys_coldstart import inputs
from recsys_coldstart.config import build_config
from recsys_coldstart.exceptions import NotFittedError
from recsys_coldstart.retrieval.ranking import topk  # the one top-k (re-exported)


def _fitted_shape(train: Any) -> dict[str, int]:
    """What a model must know of its training data to check serving inputs (saved with the model)."""
    uf, itf = getattr(train, "user_features", None), getattr(train, "item_features", None)
    return {"n_users_seen_": int(train.n_users), "n_items_seen_": int(train.n_items),
            "n_user_features_": -1 if uf is None else int(uf.n_features),
            "n_item_features_": -1 if itf is None else int(itf.n_features)}


def _seen(model: Any, name: str) -> int | None:
    value = getattr(model, name, None)
    return None if value is None or int(value) < 0 else int(value)


def _guard_fit(fit):
    @functools.wraps(fit)
    def guarded(self, train, *args, **kwargs):
        for name in ("n_users_seen_", "n_items_seen_", "n_user_features_", "n_item_features_"):
            self.__dict__.pop(name, None)  # a refit is not checked against the previous data
        out = fit(self, train, *args, **kwargs)
        if hasattr(train, "n_users") and hasattr(train, "n_items"):
            for name, value in _fitted_shape(train).items():
                object.__setattr__(self, name, value)
        return out
    guarded._guarded = True
    return guarded


def _guard_score(score):
    @functools.wraps(score)
    def guarded(self, user_idx, item_idx=None, *args, **kwargs):
        n_users, n_items = _seen(self, "n_users_seen_"), _seen(self, "n_items_seen_")
        if n_users is not None:
            user_idx = inputs.check_indices(user_idx, n_users, what="user_idx")
        if item_idx is not None and n_items is not None:
            item_idx = inputs.check_indices(item_idx, n_items, what="item_idx")
        return score(self, user_idx, item_idx, *args, **kwargs)
    guarded._guarded = True
    return guarded


def _new_user_inputs(model: Any, observed: Any, features: Any) -> tuple[Any, Any]:
    """New users' revealed items and features, checked against what ``model`` was fitted on."""
    n_items = _seen(model, "n_items_seen_")
    if n_items is None:
        return observed, features
    observed = inputs.check_observed(observed, n_items)
    features = inputs.check_features(features, _seen(model, "n_user_features_"), n_rows=observed.shape[0],
                                     what="user features")
    return observed, features


def _guard_new_users(score_new_users):
    @functools.wraps(score_new_users)
    def guarded(self, observed, features=None, item_idx=None, *args, **kwargs):
        observed, features = _new_user_inputs(self, observed, features)
        n_items = _seen(self, "n_items_seen_")
        if item_idx is not None and n_items is not None:
            item_idx = inputs.check_indices(item_idx, n_items, what="item_idx")
        return score_new_users(self, observed, features, item_idx, *args, **kwargs)
    guarded._guarded = True
    return guarded


def _side_inputs(model: Any, observed: Any, features: Any, side: str) -> tuple[Any, Any]:
    """Optional revealed interactions and features of new users / items (``side``), checked."""
    other, what = ("items", "observed") if side == "user" else ("users", "observed (users of each item)")
    n_other = _seen(model, f"n_{other}_seen_")
    if n_other is None:
        return observed, features
    if observed is not None:
        observed = inputs.check_observed(observed, n_other, what=what)
    if features is not None:
        n = observed.shape[0] if observed is not None else features.shape[0]
        features = inputs.check_features(features, _seen(model, f"n_{side}_features_"), n_rows=n,
                                         what=f"{side} features")
    return observed, features


def _guard_embed_users(embed_users):
    @functools.wraps(embed_users)
    def guarded(self, observed=None, features=None, *args, **kwargs):
        observed, features = _side_inputs(self, observed, features, "user")
        return embed_users(self, observed, features, *args, **kwargs)
    guarded._guarded = True
    return guarded


def _guard_embed_items(embed_items):
    @functools.wraps(embed_items)
    def guarded(self, features=None, observed=None, *args, **kwargs):
        observed, features = _side_inputs(self, observed, features, "item")
        return embed_items(self, features, observed, *args, **kwargs)
    guarded._guarded = True
    return guarded


def _guard_recommend(recommend):
    @functools.wraps(recommend)
    def guarded(self, user_idx, *args, k: int = 10, **kwargs):
        k = inputs.check_k(k)
        n_users = _seen(self, "n_users_seen_")
        if n_users is not None:
            checked = inputs.check_indices(user_idx, n_users, what="user_idx")
            user_idx = checked[0] if np.ndim(user_idx) == 0 else checked
        return recommend(self, user_idx, *args, k=k, **kwargs)
    guarded._guarded = True
    return guarded


def _guard_recommend_new_users(recommend_new_users):
    @functools.wraps(recommend_new_users)
    def guarded(self, observed, features=None, *args, k: int = 10, **kwargs):
        k = inputs.check_k(k)
        observed, features = _new_user_inputs(self, observed, features)
        return recommend_new_users(self, observed, features, *args, k=k, **kwargs)
    guarded._guarded = True
    return guarded


_GUARDS = {"fit": _guard_fit, "score": _guard_score, "score_new_users": _guard_new_users,
           "embed_users": _guard_embed_users, "embed_items": _guard_embed_items,
           "recommend": _guard_recommend, "recommend_new_users": _guard_recommend_new_users}


class BaseRecommender:
    """Shared plumbing for recommenders: config, fitted checks, input checks, ``recommend``.

    Subclasses set ``config_class`` and implement ``fit`` and ``score``; they may implement
    ``score_new_users`` for users unseen at fit time.

    Input checks (one place for every model): each subclass's ``fit``, ``score``,
    ``score_new_users``, ``embed_users``, ``embed_items``, ``recommend`` and
    ``recommend_new_users`` are wrapped when the class is defined (``__init_subclass__``), so a
    model that serves top-k its own way (e.g. through an index) is checked too. After ``fit`` the model records ``n_users_seen_``,
    ``n_items_seen_``, ``n_user_features_`` and ``n_item_features_`` (-1 = no such features;
    saved with the model); calls then refuse, with a :class:`~recsys_coldstart.exceptions.DataError`
    naming the argument, user / item indices out of range or not integers, revealed-item matrices
    of the wrong width, and feature blocks of the wrong width, the wrong number of rows or with
    NaN / infinite values (:mod:`recsys_coldstart.inputs`), and ``k < 1`` in ``recommend`` /
    ``recommend_new_users``.
    """

    config_class: ClassVar[type | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, guard in _GUARDS.items():
            fn = cls.__dict__.get(name)
            if fn is not None and callable(fn) and not getattr(fn, "_guarded", False):
                setattr(cls, name, guard(fn))

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        cls = self.config_class
        if cls is None:
            if config is not None or kwargs:
                raise TypeError(f"{type(self).__name__} takes no configuration")
            self.config = None
            return
        self.config = build_config(type(self).__name__, cls, config, kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})" if self.config is not None else f"{type(self).__name__}()"

    # -- fitted state -------------------------------------------------------------------
    def _check_fitted(self, attr: str = "n_items_") -> None:
        if not hasattr(self, attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(train) first")

    # -- scoring ------------------------------------------------------------------------
    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores, float32 of shape (len(user_idx), n_items or len(item_idx))."""
        raise NotImplementedError

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """Scores for users unseen at fit time.

        Parameters
        ----------
        observed : scipy CSR of shape (b, n_items)
            Each new user's revealed positives (rows may be empty).
        features : np.ndarray of float32, shape (b, d_user), optional
            Their side features.
        item_idx : np.ndarray of int64, optional
            Score only these items.

        Returns
        -------
        np.ndarray of float32, shape (b, n_items or len(item_idx))
        """
        raise NotImplementedError(f"{type(self).__name__} cannot score new users")

    def recommend(self, user_idx: np.ndarray | int, *, k: int = 10, exclude: sp.csr_matrix | None = None,
                  candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for known users.

        Parameters
        ----------
        user_idx : int or np.ndarray of int64, shape (b,)
        k : int
        exclude : scipy CSR of shape (b, n_items), optional
            Items not to recommend, rows aligned with ``user_idx`` (e.g. ``train.user_items[user_idx]``).
        candidates : np.ndarray of int64, optional
            Restrict the ranking to these items.

        Returns
        -------
        ids : np.ndarray of int64, shape (b, k) (or (k,) for a scalar ``user_idx``)
            Best first, never an excluded item; ``-1`` (score ``-inf``) pads a row with fewer
            than ``k`` items left (:func:`recsys_coldstart.retrieval.topk`; ``k`` is clipped to
            the number of items ranked).
        scores : np.ndarray of float32, same shape
        """
        k = inputs.check_k(k)
        scalar = np.ndim(user_idx) == 0
        users = np.atleast_1d(np.asarray(user_idx))
        s = self.score(users, candidates)
        ids, vals = topk(s, k, exclude=exclude, candidates=candidates)
        return (ids[0], vals[0]) if scalar else (ids, vals)

    def recommend_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None, *, k: int = 10,
                            exclude_observed: bool = True,
                            candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for new users from what they revealed (see :meth:`score_new_users`).

        Returns
        -------
        ids : np.ndarray of int64, shape (b, k)
            As for :meth:`recommend` (``-1`` / ``-inf`` padding).
        scores : np.ndarray of float32, shape (b, k)
        """
        k = inputs.check_k(k)
        observed = sp.csr_matrix(observed)
        s = self.score_new_users(observed, features, candidates)
        return topk(s, k, exclude=observed if exclude_observed else None, candidates=candidates)


class EmbeddingRecommender(BaseRecommender):
    """A recommender that scores by ``user_factors_ @ item_factors_.T``.

    Subclasses set ``user_factors_`` (n_users, d) and ``item_factors_`` (n_items, d), float32
    numpy, in ``fit``, and implement :meth:`embed_users` for new users.
    """

    user_factors_: np.ndarray
    item_factors_: np.ndarray

    @property
    def n_items_(self) -> int:  # type: ignore[override]
        """Number of items seen at fit time."""
        if not hasattr(self, "item_factors_"):
            raise AttributeError("n_items_")
        return self.item_factors_.shape[0]

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """Dot-product scores, float32 of shape (len(user_idx), n_items or len(item_idx))."""
        self._check_fitted("item_factors_")
        u = self.user_factors_[np.asarray(user_idx, dtype=np.int64)]
        v = self.item_factors_ if item_idx is None else self.item_factors_[np.asarray(item_idx, np.int64)]
        return (u @ v.T).astype(np.float32, copy=False)

    def embed_users(self, observed: sp.csr_matrix | None = None, features: np.ndarray | None = None) -> np.ndarray:
        """Vectors for new users, shape (b, d); see :class:`recsys_coldstart.types.ColdStartModel`."""
        raise NotImplementedError(f"{type(self).__name__} cannot embed new users")

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None, *, out: np.ndarray | None = None) -> np.ndarray:
        """``embed_users(observed, features) @ item_factors_.T``, float32 (b, n_items or len(item_idx)).

        ``out``: a float32 C-contiguous array of that shape to write the scores into and return. A
        serving loop that reuses one buffer avoids allocating (and page-faulting) a fresh
        ``b x n_items`` array per call, which for a small embedding costs as much as the product.
        """
        self._check_fitted("item_factors_")
        u = np.asarray(self.embed_users(observed=observed, features=features), np.float32)
        v = self.item_factors_ if item_idx is None else self.item_factors_[np.asarray(item_idx, np.int64)]
        if out is None:
            return (u @ v.T).astype(np.float32, copy=False)
        shape = (u.shape[0], v.shape[0])
        if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}")
        return np.matmul(u, np.asarray(v, np.float32).T, out=out)
