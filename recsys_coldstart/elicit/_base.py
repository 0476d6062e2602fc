"""Shared plumbing of the elicitation policies: config handling, masking, known-item weighting.

A policy is a strategy object: a frozen config (a subclass of
:class:`~recsys_coldstart.elicit.state.PosteriorConfig`) plus three verbs, ``select(state)``,
``update(state, items, responses)`` and ``user_vector(state)``. Every policy keeps the same
Bayesian posterior (and recommends from its mean); policies differ only in which item they ask.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from recsys_coldstart.config import build_config
from recsys_coldstart.elicit.state import ElicitationState, ItemSpace, PosteriorConfig
from recsys_coldstart.retrieval import topk


class BasePolicy:
    """Base class of the elicitation policies (see :class:`recsys_coldstart.types.ElicitationPolicy`).

    Subclasses set ``config_class`` and ``name`` and implement :meth:`acquisition`.
    """

    config_class: ClassVar[type] = PosteriorConfig
    name: ClassVar[str] = "policy"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        self.config = build_config(type(self).__name__, self.config_class, config, kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # -- state ------------------------------------------------------------------------
    def init_state(self, space: ItemSpace, *, features: np.ndarray | None = None, n_users: int | None = None,
                   random_state: int | np.random.Generator | None = None) -> ElicitationState:
        """The prior state of new users under this policy's posterior settings.

        Parameters
        ----------
        space : ItemSpace
        features : np.ndarray, shape (b, d_user), optional
        n_users : int, optional
        random_state : int, Generator or None
            Default: ``config.random_state``.

        Returns
        -------
        ElicitationState
        """
        return ElicitationState.initial(space, self.config, features=features, n_users=n_users,
                                        random_state=random_state)

    # -- the three verbs --------------------------------------------------------------
    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Value of asking each item, float64 of shape (b, n_items) (higher = ask first)."""
        raise NotImplementedError

    def select(self, state: ElicitationState) -> np.ndarray:
        """The next item to ask each user, int64 of shape (b,); never an item already asked.

        Raises
        ------
        ValueError
            When a user has been asked about every item.
        """
        if state.asked.all(axis=1).any():
            raise ValueError("every item has already been asked")
        acq = np.array(self.acquisition(state), dtype=np.float64, copy=True)
        acq[state.asked] = -np.inf
        skip = min(int(self.config.skip_top), state.space.n_items - 1 - state.n_asked)
        if skip > 0:
            # the user's current top-`skip` recommendations (the one top-k over the posterior mean)
            top, _ = topk(state.mean_scores(), skip, exclude=state.asked, overwrite=True)
            rows = np.broadcast_to(np.arange(state.n_users)[:, None], top.shape)
            acq[rows[top >= 0], top[top >= 0]] = -np.inf
        # one question per user: the argmax of the acquisition value, not a ranking
        return np.argmax(acq, axis=1).astype(np.int64)

    def update(self, state: ElicitationState, items: np.ndarray, responses: np.ndarray) -> ElicitationState:
        """Fold the answers in (``responses``: +1 like, -1 dislike, 0 unknown); returns ``state``."""
        return state.observe(items, responses)

    def user_vector(self, state: ElicitationState) -> np.ndarray:
        """Posterior mean of each user's vector, float64 of shape (b, d) (with the two-part
        posterior: the ranking vector of :meth:`ElicitationState.score_vector`)."""
        return state.score_vector().copy()

    # -- helpers ----------------------------------------------------------------------
    def known_weights(self, state: ElicitationState) -> np.ndarray:
        """``P(known)^w`` per item, shape (n_items,) (all ones when ``known_weight == 0``)."""
        w = self.config.known_weight
        p = state.space.known_prob
        return np.ones_like(p) if w == 0 else np.power(p, w)

    def weighted(self, state: ElicitationState, value: np.ndarray) -> np.ndarray:
        """``P(known)^w x (value - min value over the items not yet asked)``, shape (b, n_items).

        Shifting by each user's minimum makes the value non-negative, so the product reads as
        "expected value of the answer = P(the user knows the item) x its value if known": an
        obscure item needs a much higher value to be asked.
        """
        masked = np.where(state.asked, np.inf, value)
        low = masked.min(axis=1, keepdims=True)
        return self.known_weights(state)[None, :] * (value - low)
