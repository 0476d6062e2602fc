"""Thompson-sampling asking (Agrawal & Goyal 2013)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys_coldstart.config import at_least
from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class ThompsonConfig(PosteriorConfig):
    """Configuration of :class:`ThompsonPolicy`.

    Parameters
    ----------
    sample_scale : float
        Multiplies the posterior standard deviation of the sample (``v`` in Agrawal & Goyal;
        1 samples the posterior itself).
    skip_top : int
        Default 10: never ask an item of the user's current top-10 (see ``PosteriorConfig``).
    (plus every field of :class:`~recsys_coldstart.elicit.state.PosteriorConfig`)
    """

    skip_top: int = field(default=10, metadata=at_least(0, integer=True))

    sample_scale: float = field(default=1.0, metadata=at_least(0.0))


class ThompsonPolicy(BasePolicy):
    """Sample ``u ~ N(mu, sample_scale^2 Sigma)`` and ask the item the sample likes most.

    Agrawal & Goyal, "Thompson sampling for contextual bandits with linear payoffs", ICML 2013.
    The draw comes from the state's generator, so a run is reproducible under
    ``random_state``. Known-item weighting: ``P(known)^w x (u^T v_i - min_j u^T v_j)``.
    Items in the user's current top-``skip_top`` (default 10) by posterior mean are never asked.
    """

    config_class = ThompsonConfig
    name = "thompson"

    def sample(self, state: ElicitationState) -> np.ndarray:
        """One posterior draw per user, float64 of shape (b, d)."""
        b, d = state.mu.shape
        sig = 0.5 * (state.sigma + np.swapaxes(state.sigma, 1, 2))
        jitter = 1e-9 * np.maximum(np.einsum("bii->b", sig) / d, 1e-12)
        chol = np.linalg.cholesky(sig + jitter[:, None, None] * np.eye(d))
        z = state.rng.standard_normal((b, d))
        return state.mu + self.config.sample_scale * np.einsum("bij,bj->bi", chol, z)

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Known-weighted scores of one posterior sample, shape (b, n_items)."""
        u = self.sample(state)
        return self.weighted(state, u @ state.space.item_factors.T)
