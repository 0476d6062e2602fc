"""Random asking: the baseline every active policy must beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class RandomConfig(PosteriorConfig):
    """Configuration of :class:`RandomPolicy` (the posterior settings of
    :class:`~recsys_coldstart.elicit.state.PosteriorConfig`)."""


class RandomPolicy(BasePolicy):
    """Ask items at random, with probability proportional to ``P(known)^w``.

    The random baseline of the elicitation literature (Rashid et al., "Getting to know you:
    learning new user preferences in recommender systems", IUI 2002, "Random" strategy).
    Known-item weighting: items are drawn without replacement with probability ``∝ P(known)^w``
    (the Efraimidis–Spirakis key ``log(U) / P(known)^w``), so ``known_weight=0`` is uniform
    random asking and the default ``1`` asks items in proportion to how many warm users rated
    them.
    """

    config_class = RandomConfig
    name = "random"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Random keys ``log(U) / P(known)^w``, shape (b, n_items); argmax is a weighted draw."""
        w = self.known_weights(state)
        u = state.rng.random((state.n_users, state.space.n_items))
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(u, 1e-300)) / np.maximum(w, 1e-12)[None, :]

    def select(self, state: ElicitationState) -> np.ndarray:
        """One weighted draw per user, int64 of shape (b,), never an item already asked.

        Draws ``i ~ P(known)^w`` by inverse CDF and redraws the users whose item was already
        asked (``O(b log n_items)`` per question instead of a key per item); once half of a
        user's catalogue is asked (or with ``skip_top``) it falls back to the keys of
        :meth:`acquisition`.
        """
        if state.asked.all(axis=1).any():
            raise ValueError("every item has already been asked")
        n = state.space.n_items
        if 2 * (state.n_asked + 1) > n or self.config.skip_top > 0:
            return super().select(state)
        w = np.maximum(self.known_weights(state), 1e-12)
        cdf = np.cumsum(w)
        out = np.empty(state.n_users, np.int64)
        todo = np.arange(state.n_users)
        while len(todo):
            draw = np.searchsorted(cdf, state.rng.random(len(todo)) * cdf[-1], side="right")
            draw = np.minimum(draw, n - 1)
            ok = ~state.asked[todo, draw]
            out[todo[ok]] = draw[ok]
            todo = todo[~ok]
        return out
