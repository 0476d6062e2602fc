"""LinUCB asking: optimism in the face of uncertainty (Li et al. 2010)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys_coldstart.config import at_least
from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class LinUCBConfig(PosteriorConfig):
    """Configuration of :class:`LinUCBPolicy`.

    Parameters
    ----------
    alpha : float
        Width of the confidence bonus, in posterior standard deviations.
    skip_top : int
        Default 10: never ask an item of the user's current top-10 (see ``PosteriorConfig``).
    (plus every field of :class:`~recsys_coldstart.elicit.state.PosteriorConfig`)
    """

    skip_top: int = field(default=10, metadata=at_least(0, integer=True))

    alpha: float = field(default=1.0, metadata=at_least(0.0))


class LinUCBPolicy(BasePolicy):
    """Ask the item with the highest upper confidence bound ``mu^T v + alpha sqrt(v^T Sigma v)``.

    Li, Chu, Langford & Schapire, "A contextual-bandit approach to personalized news article
    recommendation", WWW 2010 (LinUCB with a shared linear model whose arms are the item
    vectors; the ridge posterior here starts from the population prior instead of the identity).
    Known-item weighting: ``P(known)^w x (UCB_i - min_j UCB_j)``.
    Items in the user's current top-``skip_top`` (default 10) by posterior mean are never asked.
    """

    config_class = LinUCBConfig
    name = "linucb"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Known-weighted upper confidence bounds, shape (b, n_items)."""
        ucb = state.mean_scores() + self.config.alpha * np.sqrt(state.quad)
        return self.weighted(state, ucb)
