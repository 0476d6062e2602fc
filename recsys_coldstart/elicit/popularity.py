"""Popularity asking: ask the items most warm users rated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class PopularityConfig(PosteriorConfig):
    """Configuration of :class:`PopularityPolicy` (posterior settings only)."""


class PopularityPolicy(BasePolicy):
    """Ask the most-rated items first, the same sequence for every user.

    Rashid et al., "Getting to know you: learning new user preferences in recommender systems",
    IUI 2002 ("Popularity" strategy). Known-item weighting: popularity *is* the known
    probability here (the share of warm users who rated the item), so the policy asks the items
    a new user is most likely to know; ``known_weight`` does not change the order.
    """

    config_class = PopularityConfig
    name = "popularity"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """``P(known)`` broadcast to every user, shape (b, n_items)."""
        p = state.space.known_prob
        return np.broadcast_to(p, (state.n_users, len(p)))
