"""Active elicitation: which items to ask a new user about, and offline replay of the protocol.

State and posterior: :class:`ElicitationState`, :class:`ItemSpace`, :class:`PosteriorConfig`.
Policies (one file each): :class:`RandomPolicy`, :class:`PopularityPolicy`,
:class:`PopEntropyPolicy`, :class:`GreedyPolicy`, :class:`LinUCBPolicy`, :class:`ThompsonPolicy`,
:class:`InfoGainPolicy`, :class:`InterviewTreePolicy`, :class:`LookaheadPolicy`, and the
:class:`OraclePolicy` ceiling (replay only). Online: :class:`ElicitationSession`. Offline: :func:`replay`.
"""

from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.greedy import GreedyConfig, GreedyPolicy
from recsys_coldstart.elicit.info_gain import InfoGainConfig, InfoGainPolicy
from recsys_coldstart.elicit.interview_tree import InterviewTreeConfig, InterviewTreePolicy
from recsys_coldstart.elicit.linucb import LinUCBConfig, LinUCBPolicy
from recsys_coldstart.elicit.lookahead import LookaheadConfig, LookaheadPolicy
from recsys_coldstart.elicit.oracle import OracleConfig, OraclePolicy
from recsys_coldstart.elicit.pop_entropy import PopEntropyConfig, PopEntropyPolicy
from recsys_coldstart.elicit.popularity import PopularityConfig, PopularityPolicy
from recsys_coldstart.elicit.random_policy import RandomConfig, RandomPolicy
from recsys_coldstart.elicit.replay import answer_matrix, reference_rows, replay, replay_policies
from recsys_coldstart.elicit.session import ElicitationSession
from recsys_coldstart.elicit.state import ANSWERS, ElicitationState, ItemSpace, PosteriorConfig
from recsys_coldstart.elicit.stats import paired_bootstrap
from recsys_coldstart.elicit.thompson import ThompsonConfig, ThompsonPolicy

__all__ = [
    "ANSWERS", "BasePolicy", "ElicitationSession", "ElicitationState", "GreedyConfig", "GreedyPolicy",
    "InfoGainConfig", "InfoGainPolicy", "InterviewTreeConfig", "InterviewTreePolicy", "ItemSpace",
    "LookaheadConfig", "LookaheadPolicy", "OracleConfig", "OraclePolicy", "LinUCBConfig", "LinUCBPolicy", "PopEntropyConfig",
    "PopEntropyPolicy", "PopularityConfig", "PopularityPolicy", "PosteriorConfig", "RandomConfig", "RandomPolicy",
    "ThompsonConfig", "ThompsonPolicy",
    "answer_matrix", "paired_bootstrap", "reference_rows", "replay", "replay_policies",
]
