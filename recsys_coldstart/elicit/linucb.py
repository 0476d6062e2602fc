"""LinUCB asking: optimism in the face of uncertainty (Li et al. 2010)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    skip_top: int = 10

    alpha: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")


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
