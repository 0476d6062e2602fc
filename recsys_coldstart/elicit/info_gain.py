"""Expected-information-gain asking: reduce posterior uncertainty the most."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys_coldstart.config import at_least
from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import ElicitationState, PosteriorConfig


@dataclass(frozen=True)
class InfoGainConfig(PosteriorConfig):
    """Configuration of :class:`InfoGainPolicy`: the posterior settings of
    :class:`~recsys_coldstart.elicit.state.PosteriorConfig`, with ``skip_top`` defaulting to 10
    (never ask what the current top-10 would recommend anyway)."""

    skip_top: int = field(default=10, metadata=at_least(0, integer=True))


class InfoGainPolicy(BasePolicy):
    """Ask the item whose answer shrinks the posterior the most, if the user knows it.

    Bayesian experimental design / uncertainty sampling for elicitation (Rubens & Sugiyama,
    "Influence-based collaborative active learning", RecSys 2007; Elahi, Ricci & Rubens, CSR
    2016): for Bayesian linear regression the information an answer on item ``i`` carries
    about ``u`` is ``1/2 log det(Sigma) - 1/2 log det(Sigma') = 1/2 log(1 + v_i^T Sigma v_i /
    sigma^2)`` (matrix determinant lemma). An unknown answer carries none, so the expected
    gain is ``P(known)^w x log(1 + v_i^T Sigma v_i / sigma^2)`` (constant 1/2 dropped).
    Items in the user's current top-``skip_top`` (default 10) by posterior mean are never asked.
    """

    config_class = InfoGainConfig
    name = "info-gain"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Known-weighted expected log-det reduction, shape (b, n_items)."""
        gain = np.log1p(state.quad / self.config.noise_var)
        return self.known_weights(state)[None, :] * gain
