"""Offline elicitation replay: the protocol of ``shared/BENCHMARKS.md``, vectorised over users.

The test cold users of a user-cold split are onboarded in batches of ``batch_size`` users. At
each step the policy picks one item per user from the whole catalogue; the answer is the
user's real held-out feedback from ``split.source``: *like* if the pair is a positive (rating
>= threshold), *dislike* if it was rated below the threshold, *unknown* if the user never rated
it (on implicit data, such as the LightGCN sets, answers are like or unknown). After each
question (budget 0 = no question, the prior) the policy's user vector scores every item.

Protocol (``benchmarks/README.md``, "Elicitation protocol"):

- **Truth** after ``t`` questions: the user's query positives not yet asked (a like that was
  asked leaves the truth: it was already shown to the user). Users whose truth is empty are
  left out of that budget's means.
- **Raw** metric (``ndcg``, ``recall``, ...): the posterior's ranking, asked and support items
  excluded, on that truth.
- **Prior** metric (``ndcg_prior``, ...): the budget-0 ranking with the *same* exclusions (the
  asked items removed from it) on the *same* truth.
- **Paired lift** (``ndcg_paired``, ...): the mean over users of raw minus prior: what the answers
  taught, with what asking removed from the truth cancelled out. At budget 0 it is 0.
- The **oracle** policy (:class:`~recsys_coldstart.elicit.oracle.OraclePolicy`) asks the user's
  known likes in random order: the ceiling a policy's paired gain is read against.
- ``return_per_user=True`` also returns every user's raw and prior values, for paired bootstrap
  intervals over users (:func:`recsys_coldstart.elicit.stats.paired_bootstrap`).

Speed: a batch keeps dense ``(batch, n_items)`` arrays (predictive variances, asked mask); the
prior's ranking is computed once per batch as its top ``max(ks) + budget`` (at most ``budget``
of them are ever asked), and the truth left is tracked by counting asked truth items, so a step
costs a few dense passes over ``(batch, n_items)``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
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
           policy_name: str | None = None, which: str = "test", show_progress: bool = False,
           batch_size: int = 2048, return_per_user: bool = False):
    """Replay an elicitation policy on the test cold users of a user-cold split.

    See the module notes for the protocol (raw, prior and paired metrics; the oracle).

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
        Seeds the random / Thompson / oracle policies' draws (default 0; one generator shared
        by the batches in order).
    space : ItemSpace, optional
        Prebuilt from ``model`` and ``split.train`` (built here when absent).
    policy_name : str, optional
        Value of the ``policy`` column (default: the policy's ``name``).
    which : {"test", "val"}
        Replay the test cold users (default) or the validation cold users (for tuning).
    show_progress : bool
        tqdm bar over batches.
    batch_size : int
        Users per batch (memory: a few ``batch_size x n_items`` float64 arrays).
    return_per_user : bool
        Also return the per-user values.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``policy, budget, metric, k, value, seed`` with metrics ``ndcg``, ``recall``,
        ``hitrate``, ``mrr`` (raw), the same with suffix ``_prior`` (budget-0 ranking, same truth
        and exclusions) and ``_paired`` (mean of raw minus prior), all means over the users with
        at least one query positive not yet asked; ``n_users`` (how many, k=0) and
        ``like_rate`` / ``known_rate`` (share of the answers so far that were like / not
        unknown, k=0; budget >= 1).
    per_user : dict, only with ``return_per_user``
        ``"users"``: int64 (n,) the replayed users; ``"items"``: int64 (budget, n) the items
        asked at each step; ``"<metric>@<k>"`` and
        ``"<metric>_prior@<k>"``: float64 (budget + 1, n), NaN where the truth left is empty.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    users = replay_users(split, users, which)
    if len(users) == 0:
        raise DataError("no test cold user with query positives to replay")
    n_items = split.train.n_items
    if budget >= n_items:
        raise ValueError(f"budget {budget} must be smaller than the catalogue ({n_items} items)")
    t0 = time.perf_counter()
    space = space or ItemSpace.from_model(model, split.train)
    feats = split.train.user_features
    name = policy_name or getattr(policy, "name", type(policy).__name__)
    seed = split.seed if split.seed is not None else random_state
    rng = check_random_state(getattr(policy.config, "random_state", None) if random_state is None else random_state)
    b = len(users)
    kmax = max(ks)
    raw = {(m, k): np.full((budget + 1, b), np.nan) for m in REPLAY_METRICS for k in ks}
    pri = {(m, k): np.full((budget + 1, b), np.nan) for m in REPLAY_METRICS for k in ks}
    asked_items = np.full((budget, b), -1, np.int64)
    answered = np.zeros((budget + 1, b), np.int64)
    liked = np.zeros((budget + 1, b), np.int64)
    starts = range(0, b, batch_size)
    if show_progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"elicit {name}", leave=False)
    for lo in starts:
        sl = slice(lo, min(lo + batch_size, b))
        ub = users[sl]
        nb = len(ub)
        rows = np.arange(nb)
        state = policy.init_state(space, features=None if feats is None else feats.take(ub), n_users=nb,
                                  random_state=rng)
        oracle = answer_matrix(split, ub)
        state.oracle_answers = oracle
        truth = sp.csr_matrix(_held(split, which).user_items[ub], dtype=np.float32)
        truth.data[:] = 1.0
        truth.eliminate_zeros()
        truth_dense = truth.toarray() > 0
        n_truth = np.diff(truth.indptr).astype(np.int64)
        sup = sp.csr_matrix(split.support.user_items[ub])
        sup_dense = sup.toarray() > 0 if sup.nnz else None
        # the prior's ranking, once: its top kmax + budget (at most `budget` of them get asked)
        prior_top, _ = topk(policy.user_vector(state) @ space.item_factors.T, kmax + budget, exclude=sup_dense,
                            overwrite=True)
        for t in range(budget + 1):
            if t > 0:
                items = policy.select(state)
                resp = oracle[rows, items]
                policy.update(state, items, resp)
                asked_items[t - 1, sl] = items
                n_truth -= truth_dense[rows, items]
                answered[t, sl] = answered[t - 1, sl] + (resp != 0)
                liked[t, sl] = liked[t - 1, sl] + (resp == LIKE)
            excl = state.asked if sup_dense is None else state.asked | sup_dense
            top, _ = topk(policy.user_vector(state) @ space.item_factors.T, kmax, exclude=excl, overwrite=True)
            ptop = _drop_asked(prior_top, state.asked, kmax)
            has = n_truth > 0
            nt = np.maximum(n_truth, 1)
            hits = hits_matrix(top, truth)
            phits = hits_matrix(ptop, truth)
            for m in REPLAY_METRICS:
                for k in ks:
                    kk = min(k, hits.shape[1])
                    raw[m, k][t, sl] = np.where(has, METRIC_FUNCTIONS[m](hits, nt, kk), np.nan)
                    pri[m, k][t, sl] = np.where(has, METRIC_FUNCTIONS[m](phits, nt, kk), np.nan)
    rows_out: list[tuple] = []
    for t in range(budget + 1):
        for m in REPLAY_METRICS:
            for k in ks:
                r, p = raw[m, k][t], pri[m, k][t]
                ok = ~np.isnan(r)
                if not ok.any():
                    continue
                rows_out.append((name, t, m, k, float(r[ok].mean()), seed))
                rows_out.append((name, t, f"{m}_prior", k, float(p[ok].mean()), seed))
                rows_out.append((name, t, f"{m}_paired", k, float((r[ok] - p[ok]).mean()), seed))
        n_ok = int((~np.isnan(raw[REPLAY_METRICS[0], ks[0]][t])).sum())
        if n_ok:
            rows_out.append((name, t, "n_users", 0, float(n_ok), seed))
        if t > 0:
            rows_out.append((name, t, "known_rate", 0, float(answered[t].mean() / t), seed))
            rows_out.append((name, t, "like_rate", 0, float(liked[t].mean() / t), seed))
    logger.info("replayed %s on %d users x %d questions in %.2fs", name, b, budget, time.perf_counter() - t0)
    frame = pd.DataFrame(rows_out, columns=REPLAY_COLUMNS)
    if not return_per_user:
        return frame
    per_user: dict[str, np.ndarray] = {"users": users.copy(), "items": asked_items}
    for (m, k), v in raw.items():
        per_user[f"{m}@{k}"] = v
        per_user[f"{m}_prior@{k}"] = pri[m, k]
    return frame, per_user


def _drop_asked(prior_top: np.ndarray, asked: np.ndarray, width: int) -> np.ndarray:
    """Each row of ``prior_top`` without its asked items (order kept), cut to ``width``; -1 pads."""
    rows = np.arange(prior_top.shape[0])[:, None]
    gone = asked[rows, np.maximum(prior_top, 0)] & (prior_top >= 0)
    order = np.argsort(gone, axis=1, kind="stable")
    out = np.take_along_axis(np.where(gone, -1, prior_top), order, axis=1)[:, :width]
    return out


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
