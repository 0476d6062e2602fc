"""Greedy (exploit-only) asking: ask what the current estimate likes most."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys_coldstart.config import at_least
from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class GreedyConfig(PosteriorConfig):
    """Configuration of :class:`GreedyPolicy`: the posterior settings of
    :class:`~recsys_coldstart.elicit.state.PosteriorConfig`, with ``skip_top`` defaulting to 10
    (never ask what the current top-10 would recommend anyway)."""

    skip_top: int = field(default=10, metadata=at_least(0, integer=True))


class GreedyPolicy(BasePolicy):
    """Ask the item with the highest posterior mean score ``mu^T v_i`` (pure exploitation).

    The greedy / "exploit" arm of the bandit literature (Li et al., "A contextual-bandit approach
    to personalized news article recommendation", WWW 2010, with ``alpha = 0``); in elicitation
    it is the "items the user will most likely rate" strategy of Elahi, Ricci & Rubens, "A survey
    of active learning in collaborative filtering recommender systems", CSR 2016. Known-item
    weighting: ``P(known)^w x (mu^T v_i - min_j mu^T v_j)``.
    Items in the user's current top-``skip_top`` (default 10) by posterior mean are never asked.
    """

    config_class = GreedyConfig
    name = "greedy"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Known-weighted posterior mean scores, shape (b, n_items)."""
        return self.weighted(state, state.mean_scores())
