"""Offline elicitation replay: the protocol of ``shared/BENCHMARKS.md``, vectorised over users.

The test cold users of a user-cold split are onboarded all at once. At each step the policy
picks one item per user from the whole catalogue; the answer is the user's real held-out
feedback from ``split.source``: *like* if the pair is a positive (rating >= threshold),
*dislike* if it was rated below the threshold, *unknown* if the user never rated it. After each
question (budget 0 = no question, the prior) the posterior mean scores every item, asked items
are excluded, and NDCG/Recall@k are computed on the user's query positives not yet asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_coldstart.data.splits import ColdStartSplit
from recsys_coldstart.elicit.state import DISLIKE, LIKE, ItemSpace
from recsys_coldstart.evaluate.metrics import METRIC_FUNCTIONS, hits_matrix
from recsys_coldstart.evaluate.protocol import rank_and_score
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.retrieval import topk

logger = logging.getLogger(__name__)

REPLAY_COLUMNS = ["policy", "budget", "metric", "k", "value", "seed"]
REPLAY_METRICS: tuple[str, ...] = ("ndcg", "recall", "hitrate", "mrr")


def answer_matrix(split: ColdStartSplit, users: np.ndarray) -> np.ndarray:
    """The replay oracle: each user's answer to every item, int8 of shape (b, n_items).

    +1 like (a positive of ``split.source``), -1 dislike (rated, below the threshold; needs
    ``source.ratings``), 0 unknown (never rated).
    """
    src = split.source
    users = np.asarray(users, np.int64)
    out = np.zeros((len(users), src.n_items), np.int8)
    if src.ratings is not None:
        r = sp.csr_matrix(src.ratings[users])
        r.eliminate_zeros()
        out[r.nonzero()] = DISLIKE
    out[src.user_items[users].nonzero()] = LIKE
    return out


def _held(split: ColdStartSplit, which: str):
    if which not in ("test", "val"):
        raise ValueError(f"which must be 'test' or 'val', got {which!r}")
    return split.test if which == "test" else split.val


def replay_users(split: ColdStartSplit, users: np.ndarray | None = None, which: str = "test") -> np.ndarray:
    """The evaluated users: ``split.test_users`` (``val_users`` for ``which="val"``, or ``users``)
    with at least one query positive."""
    if split.kind != "user-cold":
        raise DataError(f"elicitation replay needs a user-cold split, got {split.kind!r}")
    held = _held(split, which)
    default = split.test_users if which == "test" else split.val_users
    cand = default if users is None else np.asarray(users, np.int64)
    has = np.diff(held.user_items[cand].indptr) > 0
    return np.asarray(cand, np.int64)[has]


def replay(policy, model, split: ColdStartSplit, *, budget: int = 10, ks: Sequence[int] = (10, 20),
           users: np.ndarray | None = None, random_state: int | None = 0, space: ItemSpace | None = None,
           policy_name: str | None = None, which: str = "test", show_progress: bool = False) -> pd.DataFrame:
    """Replay an elicitation policy on the test cold users of a user-cold split.

    Parameters
    ----------
    policy : BasePolicy
        The strategy; its config sets the posterior (noise, prior scale, answer targets).
    model : EmbeddingModel
        Fitted on ``split.train``; ``item_factors_`` is the item space.
    split : ColdStartSplit
        A ``user-cold`` split (``K = 0`` support expected; support items, if any, are only
        excluded from the ranking).
    budget : int
        Questions per user; metrics are reported after 0, 1, ..., ``budget`` questions.
    ks : sequence of int
        Cutoffs.
    users : np.ndarray of int64, optional
        Subset of cold users to replay (default: all of ``split.test_users``).
    random_state : int or None
        Seeds the random / Thompson policies' draws (default 0).
    space : ItemSpace, optional
        Prebuilt from ``model`` and ``split.train`` (built here when absent).
    policy_name : str, optional
        Value of the ``policy`` column (default: the policy's ``name``).
    which : {"test", "val"}
        Replay the test cold users (default) or the validation cold users (for tuning).
    show_progress : bool
        tqdm bar over questions.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``policy, budget, metric, k, value, seed`` with metrics ``ndcg``, ``recall``,
        ``hitrate``, ``mrr`` (means over users with at least one query positive not yet
        asked), ``n_users`` (how many, k=0) and ``like_rate`` / ``known_rate`` (share of the
        answers so far that were like / not unknown, k=0; budget >= 1).
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    users = replay_users(split, users, which)
    if len(users) == 0:
        raise DataError("no test cold user with query positives to replay")
    n_items = split.train.n_items
    if budget >= n_items:
        raise ValueError(f"budget {budget} must be smaller than the catalogue ({n_items} items)")
    t0 = time.perf_counter()
    space = space or ItemSpace.from_model(model, split.train)
    feats = split.train.user_features
    x = None if feats is None else feats.take(users)
    state = policy.init_state(space, features=x, n_users=len(users), random_state=random_state)
    oracle = answer_matrix(split, users)
    truth_all = sp.csr_matrix(_held(split, which).user_items[users], dtype=np.float32)
    truth_all.data[:] = 1.0
    support = sp.csr_matrix(split.support.user_items[users], dtype=np.float32)
    name = policy_name or getattr(policy, "name", type(policy).__name__)
    seed = split.seed if split.seed is not None else random_state
    rows: list[tuple] = []
    steps = range(budget + 1)
    if show_progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"elicit {name}", leave=False)
    b = len(users)
    answered = np.zeros(b, np.int64)
    liked = np.zeros(b, np.int64)
    for t in steps:
        if t > 0:
            items = policy.select(state)
            resp = oracle[np.arange(b), items]
            policy.update(state, items, resp)
            answered += resp != 0
            liked += resp == LIKE
        _metrics_rows(rows, state, truth_all, support, ks, name, t, seed)
        if t > 0:
            rows.append((name, t, "known_rate", 0, float(answered.mean() / t), seed))
            rows.append((name, t, "like_rate", 0, float(liked.mean() / t), seed))
    logger.info("replayed %s on %d users x %d questions in %.2fs", name, b, budget, time.perf_counter() - t0)
    return pd.DataFrame(rows, columns=REPLAY_COLUMNS)


def _metrics_rows(rows: list[tuple], state, truth_all: sp.csr_matrix, support: sp.csr_matrix, ks: Sequence[int],
                  name: str, t: int, seed) -> None:
    asked = sp.csr_matrix(state.asked, dtype=np.float32)
    truth = truth_all - truth_all.multiply(asked)
    truth = sp.csr_matrix(truth)
    truth.eliminate_zeros()
    keep = np.flatnonzero(np.diff(truth.indptr) > 0)
    if len(keep) == 0:
        return
    scores = state.mean_scores()[keep]  # a fresh array: topk may mask it in place
    excluded = state.asked[keep]
    if support.nnz:
        excluded = excluded | (support[keep].toarray() > 0)
    truth = truth[keep]
    # the one top-k: asked and support items never ranked; -1 pads (a miss) when too few remain
    top, _ = topk(scores, max(ks), exclude=excluded, overwrite=True)
    hits = hits_matrix(top, truth)
    n_truth = np.diff(truth.indptr)
    for metric in REPLAY_METRICS:
        for k in ks:
            vals = METRIC_FUNCTIONS[metric](hits, n_truth, min(k, hits.shape[1]))
            rows.append((name, t, metric, k, float(np.mean(vals)), seed))
    rows.append((name, t, "n_users", 0, float(len(keep)), seed))


def replay_policies(policies: dict[str, object], model, split: ColdStartSplit, *, budget: int = 10,
                    ks: Sequence[int] = (10, 20), users: np.ndarray | None = None, random_state: int | None = 0,
                    which: str = "test", show_progress: bool = False) -> pd.DataFrame:
    """:func:`replay` for several named policies on one shared :class:`ItemSpace`; one tidy frame."""
    space = ItemSpace.from_model(model, split.train)
    frames = [replay(p, model, split, budget=budget, ks=ks, users=users, random_state=random_state, space=space,
                     policy_name=n, which=which, show_progress=show_progress) for n, p in policies.items()]
    return pd.concat(frames, ignore_index=True)


def reference_rows(model, split: ColdStartSplit, *, name: str, ks: Sequence[int] = (10, 20),
                   users: np.ndarray | None = None, seed: int | None = None, which: str = "test") -> pd.DataFrame:
    """A non-eliciting model (e.g. feature popularity) scored on the same users, as budget-0 rows.

    ``model.score_new_users`` gets each user's support row (empty for ``K = 0``) and features.
    """
    users = replay_users(split, users, which)
    feats = split.train.user_features
    x = None if feats is None else feats.take(users)
    support = sp.csr_matrix(split.support.user_items[users], dtype=np.float32)
    truth = sp.csr_matrix(_held(split, which).user_items[users], dtype=np.float32)
    scores = np.asarray(model.score_new_users(support, x), np.float32)
    res = rank_and_score(lambda r: scores[r], truth, exclude=support, candidates=None, ks=ks, batch_size=len(users))
    s = split.seed if seed is None else seed
    rows = [(name, 0, m, k, float(np.mean(v)), s) for (m, k), v in res.items() if m in REPLAY_METRICS]
    rows.append((name, 0, "n_users", 0, float(len(users)), s))
    return pd.DataFrame(rows, columns=REPLAY_COLUMNS)
