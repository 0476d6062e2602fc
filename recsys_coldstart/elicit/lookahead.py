"""Lookahead by simulation: ask the item whose answer is expected to improve the ranking most."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.config import at_least
from recsys_coldstart.elicit._base import BasePolicy
from recsys_coldstart.elicit.state import (
    DISLIKE,
    LIKE,
    ElicitationState,
    ItemSpace,
    PosteriorConfig,
)
from recsys_coldstart.exceptions import DataError


@dataclass(frozen=True)
class LookaheadConfig(PosteriorConfig):
    """Configuration of :class:`LookaheadPolicy`.

    Parameters
    ----------
    n_candidates : int
        Items whose answers are simulated per user: the top ones by
        ``P(known) log(1 + v^T Sigma v / sigma^2)`` (the information-gain value).
    shortlist : int
        The ranking utility is computed over the user's current top-``shortlist`` items (by
        posterior mean): one answer rarely lifts an item from further down into the top ``k``.
    k : int
        Depth of the ranking utility (expected DCG@k).
    n_calibration_users : int
        Warm users sampled to calibrate ``P(known | score)`` and ``P(like | known, score)``.
    calibration_questions : int
        Known answers folded into each calibration user's posterior before their other
        (held-out) answers are read, so the calibrated scores look like a new user's.
    (plus every field of :class:`~recsys_coldstart.elicit.state.PosteriorConfig`)
    """

    n_candidates: int = field(default=64, metadata=at_least(1, integer=True))
    shortlist: int = field(default=100, metadata=at_least(1, integer=True))
    k: int = field(default=10, metadata=at_least(1, integer=True))
    n_calibration_users: int = field(default=500, metadata=at_least(1, integer=True))
    calibration_questions: int = field(default=3, metadata=at_least(0, integer=True))


def _logistic_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float = 1e-3, n_iter: int = 25) -> np.ndarray:
    """Weighted logistic regression by Newton's method (IRLS); returns the coefficients (p,)."""
    beta = np.zeros(x.shape[1])
    for _ in range(n_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
        g = x.T @ (w * (p - y)) + ridge * beta
        h = (x * (w * p * (1 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(h, g)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


@dataclass(frozen=True)
class Calibration:
    """Calibrated answer probabilities as functions of a posterior score ``s`` and ``log P(known)``.

    Attributes
    ----------
    known_coef : np.ndarray of float64, shape (3,)
        ``P(known) = sigmoid(c0 + c1 s + c2 log p_i)``.
    like_coef : np.ndarray of float64, shape (3,), optional
        ``P(like | known) = sigmoid(...)``; None when the warm answers have no dislikes
        (implicit data: every known answer is a like).
    """

    known_coef: np.ndarray
    like_coef: np.ndarray | None

    @staticmethod
    def _x(scores: np.ndarray, log_p: np.ndarray) -> list[np.ndarray]:
        return [np.ones_like(scores), scores, np.broadcast_to(log_p, scores.shape)]

    def p_known(self, scores: np.ndarray, log_p: np.ndarray) -> np.ndarray:
        """``P(known)`` of each score, same shape as ``scores``."""
        z = sum(c * f for c, f in zip(self.known_coef, self._x(scores, log_p), strict=True))
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def p_like_known(self, scores: np.ndarray, log_p: np.ndarray) -> np.ndarray:
        """``P(like | known)`` of each score, same shape as ``scores``."""
        if self.like_coef is None:
            return np.ones_like(scores)
        z = sum(c * f for c, f in zip(self.like_coef, self._x(scores, log_p), strict=True))
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def calibrate(space: ItemSpace, config: LookaheadConfig) -> Calibration:
    """Fit :class:`Calibration` on warm users' held-out answers.

    Each sampled warm user gets a prior state, ``calibration_questions`` of their known answers
    folded in, and then the posterior-mean score of every other item is paired with the answer
    the user actually gave (known or not, like or dislike). All known pairs are kept and an
    equal-size uniform sample of the unknown ones, reweighted to their true share.
    """
    if space.warm_answers is None:
        raise DataError("the lookahead policy needs an ItemSpace built with the train data (warm users' answers)")
    rng = check_random_state(config.random_state)
    a = space.warm_answers
    n_warm = a.shape[0]
    rows = rng.choice(n_warm, size=min(config.n_calibration_users, n_warm), replace=False)
    log_p = np.log(np.clip(space.known_prob, 1e-6, 1.0))
    xs, yk, yl, ws = [], [], [], []
    state = ElicitationState.initial(space, config, n_users=len(rows), random_state=rng)
    dense = a[rows].toarray()
    for _ in range(config.calibration_questions):
        keys = rng.random(dense.shape) + (dense != 0) - 2.0 * state.asked
        items = np.argmax(keys, axis=1)
        state.observe(items, dense[np.arange(len(rows)), items])
    scores = state.mean_scores()
    for i in range(len(rows)):
        free = ~state.asked[i]
        known = np.flatnonzero(free & (dense[i] != 0))
        unknown = np.flatnonzero(free & (dense[i] == 0))
        take = rng.choice(unknown, size=min(len(unknown), max(len(known), 20)), replace=False)
        idx = np.concatenate([known, take])
        xs.append(np.stack([np.ones(len(idx)), scores[i, idx], log_p[idx]], 1))
        yk.append(np.concatenate([np.ones(len(known)), np.zeros(len(take))]))
        yl.append(np.concatenate([(dense[i, known] == LIKE).astype(float), np.zeros(len(take))]))
        ws.append(np.concatenate([np.ones(len(known)), np.full(len(take), len(unknown) / max(len(take), 1))]))
    x, y_known, y_like, w = (np.concatenate(z) for z in (xs, yk, yl, ws))
    known_coef = _logistic_fit(x, y_known, w / w.mean())
    k = y_known > 0
    like_coef = None
    if (dense == DISLIKE).any() and k.any():
        like_coef = _logistic_fit(x[k], y_like[k], np.ones(int(k.sum())))
    return Calibration(known_coef=known_coef, like_coef=like_coef)


class LookaheadPolicy(BasePolicy):
    """Ask the item with the largest expected gain in the user's ranking quality (one-step lookahead).

    Value-of-information / one-step lookahead for Bayesian preference elicitation (Boutilier,
    Zemel & Marlin, "Active collaborative filtering", UAI 2003: ask the item with the largest
    expected value of information; Chajewska, Koller & Parr, "Making rational decisions using
    adaptive utility elicitation", AAAI 2000). For each candidate item ``i`` the three answers are
    simulated with probabilities ``P(known) P(like | known)``, ``P(known) (1 - P(like | known))``
    and ``1 - P(known)``, each as a rank-1 update of the posterior (the same update as
    :meth:`ElicitationState.observe`); the utility of a posterior is the expected DCG@k of its
    ranking, ``sum_r P(like | score_r) / log2(r + 2)`` over its top ``k`` (item ``i`` excluded,
    since an asked item leaves the ranking whatever the answer), with ``P(like) = P(known)
    P(like | known)`` calibrated by logistic regressions on warm users' held-out answers
    (:func:`calibrate`). The gain is ``E_answer[U(after)] - U(now, without i)``.
    """

    config_class = LookaheadConfig
    name = "lookahead"

    def calibration(self, space: ItemSpace) -> Calibration:
        """The calibration of ``space`` (fitted once per item space)."""
        cached = getattr(self, "_calibration", None)
        if cached is None or cached[0] is not space:
            self._calibration = (space, calibrate(space, self.config))
        return self._calibration[1]

    def expected_gains(self, state: ElicitationState, candidates: np.ndarray | None = None) -> np.ndarray:
        """Expected gain of asking each item, float64 of shape (b, n_items); ``-inf`` off the candidates.

        Parameters
        ----------
        state : ElicitationState
        candidates : np.ndarray of int64, shape (b, c), optional
            Items to simulate per user (default: the top ``n_candidates`` by information-gain
            value among the unasked items).
        """
        c = self.config
        space = state.space
        cal = self.calibration(space)
        v = space.item_factors
        b, n = state.n_users, space.n_items
        log_p = np.log(np.clip(space.known_prob, 1e-6, 1.0))
        scores = state.mean_scores()
        masked = np.where(state.asked, -np.inf, scores)
        m = min(c.shortlist, n)
        short = np.argpartition(-masked, m - 1, axis=1)[:, :m] if m < n else np.tile(np.arange(n), (b, 1))
        if candidates is None:
            value = self.known_weights(state)[None, :] * np.log1p(state.quad / c.noise_var)
            value = np.where(state.asked, -np.inf, value)
            nc = min(c.n_candidates, n - state.n_asked)
            candidates = np.argpartition(-value, nc - 1, axis=1)[:, :nc]
        candidates = np.asarray(candidates, np.int64)
        rows = np.arange(b)[:, None]
        s_short = scores[rows, short]  # (b, m)
        lp_short = log_p[short]
        short_ok = ~state.asked[rows, short]
        vs = v[candidates]  # (b, c, d)
        s = np.matmul(vs, state.sigma)  # (Sigma v)^T for each candidate (Sigma symmetric): (b, c, d)
        cden = c.noise_var + state.quad[rows, candidates]  # (b, c)
        mean_i = scores[rows, candidates]
        delta = np.matmul(s, np.swapaxes(v[short], 1, 2)) / cden[:, :, None]  # d score / d residual: (b, c, m)
        p_known = cal.p_known(mean_i, log_p[candidates])
        p_lk = cal.p_like_known(mean_i, log_p[candidates])
        y_like, _ = state.targets(np.full(1, LIKE))
        y_dis, _ = state.targets(np.full(1, DISLIKE))
        y_unk, unk_obs = state.targets(np.zeros(1, np.int8))
        outcomes = [(p_known * p_lk, float(y_like[0])), (p_known * (1 - p_lk), float(y_dis[0]))]
        base_scores = np.broadcast_to(s_short[:, None, :], delta.shape)
        # item i leaves the ranking once asked, whatever the answer
        not_i = short[:, None, :] != candidates[:, :, None]
        ok = short_ok[:, None, :] & not_i
        disc = 1.0 / np.log2(np.arange(2, c.k + 2))

        def utility(sc: np.ndarray) -> np.ndarray:
            sc = np.where(ok, sc, -np.inf)
            kk = min(c.k, sc.shape[-1])
            # top-kk by a partition, then a sort of those kk only
            part = np.argpartition(-sc, kk - 1, axis=-1)[..., :kk] if kk < sc.shape[-1] else \
                np.broadcast_to(np.arange(kk), sc.shape[:-1] + (kk,))
            top = np.take_along_axis(sc, part, -1)
            o2 = np.argsort(-top, axis=-1, kind="stable")
            top = np.take_along_axis(top, o2, -1)
            lp = np.take_along_axis(lp_short[:, None, :], np.take_along_axis(part, o2, -1), -1)
            fin = np.isfinite(top)
            t0 = np.where(fin, top, 0.0)
            p = cal.p_known(t0, lp) * cal.p_like_known(t0, lp)  # calibrated P(like) of the top items
            return (np.where(fin, p, 0.0) * disc[:kk]).sum(-1)

        now = utility(base_scores)
        exp_u = np.zeros_like(now)
        for prob, y in outcomes:
            exp_u += prob * utility(base_scores + delta * (y - mean_i)[:, :, None])
        if bool(unk_obs[0]):
            exp_u += (1 - p_known) * utility(base_scores + delta * (float(y_unk[0]) - mean_i)[:, :, None])
        else:
            exp_u += (1 - p_known) * now
        out = np.full((b, n), -np.inf)
        out[rows, candidates] = exp_u - now
        return out

    def acquisition(self, state: ElicitationState) -> np.ndarray:
        """Expected ranking-quality gain, shape (b, n_items) (``-inf`` off the candidates)."""
        return self.expected_gains(state)
