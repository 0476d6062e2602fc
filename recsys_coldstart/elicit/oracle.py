"""The oracle ceiling: ask the items the user is known to like, in random order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import LIKE, ElicitationState, PosteriorConfig
from recsys_coldstart.exceptions import DataError


@dataclass(frozen=True)
class OracleConfig(PosteriorConfig):
    """Configuration of :class:`OraclePolicy` (posterior settings only; ``skip_top`` is ignored:
    the oracle asks known likes even when they are already recommended)."""


class OraclePolicy(BasePolicy):
    """Ask a random one of the user's known likes (a random unasked item once none is left).

    Not a policy a live system can run: it reads the replay's answer matrix
    (``state.oracle_answers``). It is the ceiling of the elicitation protocol of
    ``shared/BENCHMARKS.md`` ("an oracle that asks known likes"), after the ceiling diagnostic
    of ``benchmarks/elicitation_ceiling.py``; every likes-only answer sequence is as
    informative as answers get under the posterior of :mod:`recsys_coldstart.elicit.state`
    (Elahi, Ricci & Rubens, "A survey of active learning in collaborative filtering recommender
    systems", Computer Science Review 2016, use the same "known ratings" upper bound).
    """

    config_class = OracleConfig
    name = "oracle"

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Random keys in (0, 1), plus 1 on the user's known likes, shape (b, n_items).

        Raises
        ------
        DataError
            Outside the offline replay (no ``state.oracle_answers``).
        """
        if state.oracle_answers is None:
            raise DataError("the oracle policy needs the replay's answers (state.oracle_answers); "
                            "it cannot run in a live session")
        keys = state.rng.random((state.n_users, state.space.n_items))
        return keys + (state.oracle_answers == LIKE)

    def select(self, state: ElicitationState) -> np.ndarray:
        """A random known like per user (never one already asked), int64 of shape (b,)."""
        if state.asked.all(axis=1).any():
            raise ValueError("every item has already been asked")
        acq = self.acquisition(state)
        acq[state.asked] = -np.inf
        return np.argmax(acq, axis=1).astype(np.int64)
