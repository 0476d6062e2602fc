"""Popularity x entropy asking (Rashid et al. 2002)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class PopEntropyConfig(PosteriorConfig):
    """Configuration of :class:`PopEntropyPolicy` (posterior settings only)."""


class PopEntropyPolicy(BasePolicy):
    """Ask items that many users know *and* that split opinion: ``log(popularity) x entropy``.

    Rashid et al., "Getting to know you: learning new user preferences in recommender systems",
    IUI 2002 ("Pop*Ent" strategy): ``score_i = log(n_ratings_i) x H_i`` where ``H_i`` is the
    entropy of item ``i``'s rating distribution among warm users (an item everyone loves teaches
    little; an item nobody knows is wasted). Known-item weighting: the ``log(n_ratings)`` factor
    is a log-scale known probability; the order is the same for every user. (``log(1 + n)``
    keeps items with a single rating at a non-negative score.)
    """

    config_class = PopEntropyConfig
    name = "pop-entropy"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """``log(1 + n_ratings) * H`` broadcast to every user, shape (b, n_items)."""
        s = state.space
        score = np.log1p(s.n_ratings) * s.rating_entropy
        return np.broadcast_to(score, (state.n_users, len(score)))
