"""Elicitation state: what was asked, what was answered, and a Gaussian posterior over the user.

The model (Bayesian linear regression in a fitted model's item-embedding space, batched over
users) is

.. math::

    u \\sim \\mathcal{N}(\\mu_0(x), \\Sigma_0), \\qquad
    y_{ui} = v_i^\\top u + \\varepsilon, \\quad \\varepsilon \\sim \\mathcal{N}(0, \\sigma^2)

where ``v_i`` is row ``i`` of ``item_factors_``, ``x`` the user's side features, ``y`` the
numeric target of an answer (``like_value`` / ``dislike_value``; an *unknown* answer adds no
observation unless ``unknown_value`` is set). The prior comes from the warm user population:
``mu_0(x)`` is a ridge regression from side features to the warm users' ``user_factors_`` (the
plain mean without features) and ``Sigma_0`` the empirical covariance of the warm vectors around
it, scaled by ``prior_scale`` plus a small jitter. Each answer is folded in with a rank-1
(Sherman–Morrison) update of ``(mu, Sigma)``, and the per-item predictive variances
``v_i^T Sigma v_i`` are kept up to date with a rank-1 correction as well, so one question costs
``O(b (n_items d + d^2))`` for a batch of ``b`` users instead of a fresh ``O(b n_items d^2)``.

:class:`ItemSpace` also holds what every policy knows about the catalogue from the *warm* users
only: the share of them who rated each item (``known_prob``, the chance that a new user knows
the item at all), rating counts and the entropy of each item's rating distribution.

Every policy asks one not-yet-asked item per user; the model-based ones (greedy, LinUCB,
Thompson, information gain) also skip the user's current top-``skip_top`` recommendations
(default 10): the answer about an item the system would recommend anyway changes little, and a
*like* spends a good recommendation (the replay protocol, like a real user, drops asked items
from what is still worth recommending). On ml-100k this single rule is worth more than any
other setting (see ``benchmarks/results/elicitation_ml100k.md``).

Two-part answers (``PosteriorConfig.exposure=True``): an answer is read as *exposure* (did the
user know the item: like or dislike = known, unknown = not known) and *preference* (like vs
dislike, given known). The preference posterior above learns from known answers only; a second
Gaussian posterior ``(mu_e, Sigma_e)`` in the same item space learns ``P(known | u, i) ~
v_i^T e_u`` from *every* answer (target 1 known, 0 unknown, noise ``exposure_noise_var``), with
its prior fitted on the warm users (a ridge regression of each warm user's known-indicator row
on the item vectors). Ranking scores become ``v_i^T (mu + exposure_weight (mu_e - mu_e0))``:
an unknown answer lowers the items that are known together with the unknown one, and at
budget 0 the ranking is the prior's.

Length: the state and its Gaussian posterior update (the formulas above) are one unit; splitting
them would separate the math from the code that implements it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.config import Config, at_least, greater_than
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.exceptions import DataError, NotFittedError

logger = logging.getLogger(__name__)

LIKE, DISLIKE, UNKNOWN = 1, -1, 0
ANSWERS: dict[str, int] = {"like": LIKE, "dislike": DISLIKE, "unknown": UNKNOWN}


@dataclass(frozen=True)
class PosteriorConfig(Config):
    """Settings of the Bayesian linear regression shared by every policy.

    Parameters
    ----------
    noise_var : float
        ``sigma^2``, the observation noise variance of an answer's target (in score units). Smaller
        trusts each answer more relative to the prior.
    prior_scale : float
        Multiplies the empirical prior covariance ``Sigma_0`` (larger = weaker prior).
    like_value, dislike_value : float
        Regression targets of a *like* and a *dislike* answer. The default dislike target (0.5)
        sits between "not interacted" (0) and "liked" (1): in rating data a dislike still means
        the user chose to watch / buy the item, which an implicit-feedback item space (ALS) reads
        as interest; on ml-100k validation cold users 0.5 and 1 both beat 0 by 2-5 NDCG points.
    unknown_value : float or None
        Target of an *unknown* answer; ``None`` (default) learns nothing from it (the question is
        only spent).
    known_weight : float
        Exponent ``w`` on the per-item probability of being known, ``P(known)^w``, in each
        policy's acquisition (0 ignores it).
    skip_top : int
        Never ask an item in a user's current top-``skip_top`` recommendations (by posterior
        mean); 0 disables. An item the system will recommend anyway is better shown than asked
        about: a *like* confirms what is already known and spends the item.
    random_state : int or None
        Seeds the state's generator (random and Thompson policies).
    exposure : bool
        Two-part answers (see the module notes): keep a second posterior for ``P(known)``,
        updated by every answer, including *unknown*; the preference posterior then ignores
        ``unknown_value``.
    exposure_noise_var : float
        Noise variance of the exposure regression (target 1 known, 0 unknown).
    exposure_weight : float
        Weight of the exposure posterior's shift in the ranking scores.
    """

    noise_var: float = field(default=0.1, metadata=greater_than(0.0))
    prior_scale: float = field(default=1.0, metadata=greater_than(0.0))
    like_value: float = 1.0
    dislike_value: float = 0.5
    unknown_value: float | None = None
    known_weight: float = field(default=1.0, metadata=at_least(0.0))
    skip_top: int = field(default=0, metadata=at_least(0, integer=True))
    random_state: int | None = 0
    exposure: bool = False
    exposure_noise_var: float = field(default=1.0, metadata=greater_than(0.0))
    exposure_weight: float = field(default=0.5, metadata=at_least(0.0))


def _warm_rows(train: Interactions, users: np.ndarray | None) -> np.ndarray:
    if users is not None:
        return np.asarray(users, np.int64)
    # cold users have empty train rows by construction of every split
    return np.flatnonzero(train.user_degrees() > 0).astype(np.int64)


def _rating_entropy(ratings: sp.csr_matrix) -> np.ndarray:
    """Shannon entropy (nats) of each column's distribution of distinct rating values."""
    n_items = ratings.shape[1]
    coo = ratings.tocoo()
    values, inv = np.unique(coo.data, return_inverse=True)
    counts = np.zeros((n_items, len(values)))
    np.add.at(counts, (coo.col, inv), 1.0)
    tot = counts.sum(1, keepdims=True)
    p = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(1)
    return h


def _answer_rows(train: Interactions, rows: np.ndarray) -> sp.csr_matrix:
    """+1 like / -1 dislike answers of the train ``rows``, int8 CSR (absent = unknown)."""
    like = sp.csr_matrix(train.user_items[rows], dtype=np.int8)
    like.data[:] = 1
    if train.ratings is None:
        like.eliminate_zeros()
        return like
    rated = sp.csr_matrix(train.ratings[rows], dtype=np.int8)
    rated.eliminate_zeros()
    rated.data[:] = 1
    # dislike = rated but not a positive: -1 where rated, +2 where also liked -> +1
    out = sp.csr_matrix(like * 2 - rated, dtype=np.int8)
    out.eliminate_zeros()
    return out


@dataclass(frozen=True, eq=False)
class ItemSpace:
    """The catalogue as a policy sees it: item vectors, population prior and item statistics.

    Attributes
    ----------
    item_factors : np.ndarray of float64, shape (n_items, d)
        The fitted model's ``item_factors_``.
    known_prob : np.ndarray of float64, shape (n_items,)
        Share of the warm users who rated (or interacted with) each item, in [0, 1].
    n_ratings : np.ndarray of int64, shape (n_items,)
        Number of warm users who rated each item.
    rating_entropy : np.ndarray of float64, shape (n_items,)
        Entropy (nats) of each item's rating-value distribution among warm users (1 for every
        item with a rating when the data is implicit, so popularity x entropy = popularity).
    prior_mean : np.ndarray of float64, shape (d,)
        Mean warm user vector.
    prior_cov : np.ndarray of float64, shape (d, d)
        Covariance of the warm user vectors (around the feature regression when there is one),
        plus jitter.
    feature_coef : np.ndarray of float64, shape (d_user + 1, d), optional
        Ridge regression (last row: intercept) from user side features to user vectors.
    exposure_mean : np.ndarray of float64, shape (d,), optional
        Mean warm *exposure* vector (ridge of each warm user's known-indicator row on the item
        vectors); used by the two-part posterior (``PosteriorConfig.exposure``).
    exposure_cov : np.ndarray of float64, shape (d, d), optional
        Covariance of the warm exposure vectors, plus jitter.
    warm_answers : scipy.sparse.csr_matrix of int8, shape (n_warm, n_items), optional
        The warm users' answers (+1 like, -1 dislike; absent = unknown): what the interview
        tree and the lookahead calibration learn from.
    warm_vectors : np.ndarray of float64, shape (n_warm, d), optional
        The warm users' fitted vectors (rows aligned with ``warm_answers``).
    """

    item_factors: np.ndarray
    known_prob: np.ndarray
    n_ratings: np.ndarray
    rating_entropy: np.ndarray
    prior_mean: np.ndarray
    prior_cov: np.ndarray
    feature_coef: np.ndarray | None = None
    exposure_mean: np.ndarray | None = None
    exposure_cov: np.ndarray | None = None
    warm_answers: sp.csr_matrix | None = None
    warm_vectors: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        """Number of items."""
        return self.item_factors.shape[0]

    @property
    def dim(self) -> int:
        """Embedding dimension ``d``."""
        return self.item_factors.shape[1]

    @classmethod
    def from_model(cls, model, train: Interactions | None = None, *, users: np.ndarray | None = None,
                   use_features: bool = True, ridge: float = 1.0, jitter: float = 1e-4) -> ItemSpace:
        """Build the item space from a fitted embedding model and the data it was fitted on.

        Parameters
        ----------
        model : EmbeddingModel
            Fitted; provides ``item_factors_`` (n_items, d) and ``user_factors_`` (n_users, d).
        train : Interactions, optional
            The training data. Item statistics use its ``ratings`` (all explicit ratings) or,
            for implicit data, ``user_items``, restricted to the warm ``users``. Without it every
            item is equally likely to be known and the prior uses every row of ``user_factors_``.
        users : np.ndarray of int64, optional
            Warm user indices (default: users with at least one train positive; cold users'
            rows are empty in every split, so their held-out data is never read).
        use_features : bool
            Fit the side-feature regression of the prior mean when ``train.user_features`` exist.
        ridge : float
            L2 penalty of that regression.
        jitter : float
            Added to the prior covariance diagonal, relative to its mean diagonal.

        Returns
        -------
        ItemSpace
        """
        if not hasattr(model, "item_factors_"):
            raise NotFittedError(f"{type(model).__name__} has no item_factors_: fit it (an embedding model) first")
        v = np.asarray(model.item_factors_, np.float64)
        n_items, d = v.shape
        uf = getattr(model, "user_factors_", None)
        if train is not None:
            if train.n_items != n_items:
                raise DataError(f"the model has {n_items} items but the data has {train.n_items}")
            rows = _warm_rows(train, users)
            if len(rows) == 0:
                raise DataError("no warm users with training data to build the elicitation prior from")
            rated = train.ratings if train.ratings is not None else train.user_items
            rated = sp.csr_matrix(rated[rows])
            rated.eliminate_zeros()
            n_ratings = np.bincount(rated.indices, minlength=n_items).astype(np.int64)
            known = n_ratings / float(len(rows))
            if train.ratings is not None:
                entropy = _rating_entropy(rated)
            else:
                entropy = (n_ratings > 0).astype(np.float64)
        else:
            rows = None
            n_ratings = np.zeros(n_items, np.int64)
            known = np.full(n_items, 1.0)
            entropy = np.ones(n_items)
        if uf is None:
            raise NotFittedError(f"{type(model).__name__} has no user_factors_ to build the population prior from")
        uf = np.asarray(uf, np.float64)
        if rows is not None:
            if uf.shape[0] != train.n_users:
                raise DataError(f"the model has {uf.shape[0]} users but the data has {train.n_users}")
            u = uf[rows]
        else:
            u = uf
        mean = u.mean(0)
        coef = None
        resid = u - mean
        if use_features and train is not None and train.user_features is not None:
            x = train.user_features.take(rows).astype(np.float64)
            x1 = np.hstack([x, np.ones((len(x), 1))])
            reg = ridge * np.eye(x1.shape[1])
            reg[-1, -1] = 0.0  # do not shrink the intercept
            coef = np.linalg.solve(x1.T @ x1 + reg, x1.T @ u)
            resid = u - x1 @ coef
        cov = resid.T @ resid / max(len(u) - 1, 1)
        cov += jitter * max(float(np.trace(cov)) / d, 1e-12) * np.eye(d)
        e_mean = e_cov = answers = None
        if train is not None:
            answers = _answer_rows(train, rows)
            # exposure vectors: ridge of each warm user's known-indicator row on the item vectors
            known_rows = sp.csr_matrix(answers, dtype=np.float64)
            known_rows.data[:] = 1.0
            gram = v.T @ v + ridge * np.eye(d)
            e = np.linalg.solve(gram, np.asarray((known_rows @ v).T)).T
            e_mean = e.mean(0)
            e_cov = np.cov(e, rowvar=False).reshape(d, d) if len(e) > 1 else np.eye(d)
            e_cov = e_cov + jitter * max(float(np.trace(e_cov)) / d, 1e-12) * np.eye(d)
        return cls(item_factors=v, known_prob=known.astype(np.float64), n_ratings=n_ratings,
                   rating_entropy=entropy.astype(np.float64), prior_mean=mean, prior_cov=cov, feature_coef=coef,
                   exposure_mean=e_mean, exposure_cov=e_cov, warm_answers=answers, warm_vectors=u)

    def prior_means(self, features: np.ndarray | None, n_users: int) -> np.ndarray:
        """Prior mean of each user's vector, shape (n_users, d).

        Parameters
        ----------
        features : np.ndarray of float, shape (n_users, d_user), optional
            Side features; ignored (with the population mean used) when the space has no
            feature regression.
        n_users : int
        """
        if features is None or self.feature_coef is None:
            return np.broadcast_to(self.prior_mean, (n_users, self.dim)).copy()
        x = np.atleast_2d(np.asarray(features, np.float64))
        if x.shape != (n_users, self.feature_coef.shape[0] - 1):
            raise DataError(f"user features have shape {x.shape}; expected ({n_users}, {self.feature_coef.shape[0] - 1})")
        return np.hstack([x, np.ones((n_users, 1))]) @ self.feature_coef


@dataclass(eq=False)
class ElicitationState:
    """Batched elicitation state of ``b`` users (mutable; policies update it in place).

    Attributes
    ----------
    space : ItemSpace
    mu : np.ndarray of float64, shape (b, d)
        Posterior mean of each user's vector.
    sigma : np.ndarray of float64, shape (b, d, d)
        Posterior covariance.
    quad : np.ndarray of float64, shape (b, n_items)
        Predictive variance ``v_i^T Sigma_b v_i`` of every item's score (kept in sync with
        ``sigma``).
    asked : np.ndarray of bool, shape (b, n_items)
        Items already asked (never asked again, excluded from recommendations).
    items : list of np.ndarray of int64, each shape (b,)
        Items asked at each step.
    responses : list of np.ndarray of int8, each shape (b,)
        Answers at each step: +1 like, -1 dislike, 0 unknown.
    config : PosteriorConfig
    rng : numpy.random.Generator
    mu_e, sigma_e : np.ndarray of float64, shapes (b, d) and (b, d, d), optional
        Exposure posterior (``config.exposure``); ``mu_e0`` its prior mean (b, d).
    extra : dict
        Per-policy bookkeeping (e.g. the interview tree's node of each user).
    oracle_answers : np.ndarray of int8, shape (b, n_items), optional
        Every answer of each user, set only by the offline replay for the oracle policy.
    """

    space: ItemSpace
    mu: np.ndarray
    sigma: np.ndarray
    quad: np.ndarray
    asked: np.ndarray
    config: PosteriorConfig
    rng: np.random.Generator
    items: list[np.ndarray] = field(default_factory=list)
    responses: list[np.ndarray] = field(default_factory=list)
    mu_e: np.ndarray | None = None
    sigma_e: np.ndarray | None = None
    mu_e0: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    oracle_answers: np.ndarray | None = None

    @classmethod
    def initial(cls, space: ItemSpace, config: PosteriorConfig | None = None, *, features: np.ndarray | None = None,
                n_users: int | None = None, random_state: int | np.random.Generator | None = None) -> ElicitationState:
        """The prior state of ``n_users`` new users (before any question).

        Parameters
        ----------
        space : ItemSpace
        config : PosteriorConfig, optional
        features : np.ndarray, shape (n_users, d_user), optional
            Side features shifting each user's prior mean.
        n_users : int, optional
            Default: ``len(features)``, else 1.
        random_state : int, Generator or None
            Default: ``config.random_state``.
        """
        config = config or PosteriorConfig()
        if n_users is None:
            n_users = 1 if features is None else int(np.atleast_2d(features).shape[0])
        mu = space.prior_means(features, n_users)
        cov = space.prior_cov * config.prior_scale
        sigma = np.broadcast_to(cov, (n_users, space.dim, space.dim)).copy()
        q0 = np.einsum("nd,de,ne->n", space.item_factors, cov, space.item_factors)
        quad = np.broadcast_to(q0, (n_users, space.n_items)).copy()
        rng = check_random_state(config.random_state if random_state is None else random_state)
        state = cls(space=space, mu=mu, sigma=sigma, quad=quad, asked=np.zeros((n_users, space.n_items), bool),
                    config=config, rng=rng)
        if config.exposure:
            if space.exposure_mean is None:
                raise DataError("exposure=True needs an ItemSpace built with the train data (warm exposure prior)")
            state.mu_e0 = np.broadcast_to(space.exposure_mean, (n_users, space.dim)).copy()
            state.mu_e = state.mu_e0.copy()
            state.sigma_e = np.broadcast_to(space.exposure_cov, (n_users, space.dim, space.dim)).copy()
        return state

    @property
    def n_users(self) -> int:
        """Batch size ``b``."""
        return self.mu.shape[0]

    @property
    def n_asked(self) -> int:
        """Questions asked so far (per user; equal across the batch)."""
        return len(self.items)

    def score_vector(self) -> np.ndarray:
        """The vector that ranks items, float64 of shape (b, d): ``mu``, plus
        ``exposure_weight (mu_e - mu_e0)`` with the two-part posterior."""
        if self.mu_e is None:
            return self.mu
        return self.mu + self.config.exposure_weight * (self.mu_e - self.mu_e0)

    def mean_scores(self) -> np.ndarray:
        """Posterior mean score of every item, ``score_vector() @ V^T``, float64 of shape (b, n_items)."""
        return self.score_vector() @ self.space.item_factors.T

    def known_probs(self) -> np.ndarray:
        """``P(known | u, i)`` of every item, float64 of shape (b, n_items), in [0.001, 0.999]:
        the exposure posterior's mean ``v_i^T mu_e`` with ``exposure=True``, else the warm
        population's ``known_prob`` (the same for every user)."""
        if self.mu_e is None:
            p = np.broadcast_to(self.space.known_prob, (self.n_users, self.space.n_items))
        else:
            p = self.mu_e @ self.space.item_factors.T
        return np.clip(p, 1e-3, 1 - 1e-3)

    def targets(self, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Regression targets and an "observed" mask for answers ``responses`` (b,) in {-1, 0, 1}."""
        c = self.config
        r = np.asarray(responses)
        y = np.where(r == LIKE, c.like_value, c.dislike_value).astype(np.float64)
        observed = r != UNKNOWN
        if c.unknown_value is not None:
            y = np.where(r == UNKNOWN, c.unknown_value, y)
            observed = np.ones_like(observed)
        return y, observed

    def observe(self, items: np.ndarray, responses: np.ndarray) -> ElicitationState:
        """Fold one answer per user into the posterior (rank-1 Sherman–Morrison update).

        With ``s = Sigma v``, ``c = sigma^2 + v^T s``:
        ``mu <- mu + s (y - v^T mu) / c``, ``Sigma <- Sigma - s s^T / c``,
        ``v_j^T Sigma v_j <- v_j^T Sigma v_j - (v_j^T s)^2 / c``.

        Parameters
        ----------
        items : np.ndarray of int64, shape (b,)
            The item each user was asked.
        responses : np.ndarray of int, shape (b,)
            +1 like, -1 dislike, 0 unknown.

        Returns
        -------
        ElicitationState
            ``self``, updated in place.
        """
        items = np.asarray(items, np.int64).reshape(-1)
        responses = np.asarray(responses).reshape(-1)
        b = self.n_users
        if items.shape != (b,) or responses.shape != (b,):
            raise ValueError(f"need one item and one response per user ({b}); got {items.shape} and {responses.shape}")
        if (items < 0).any() or (items >= self.space.n_items).any():
            raise DataError(f"item index out of range [0, {self.space.n_items})")
        if not np.isin(responses, (LIKE, DISLIKE, UNKNOWN)).all():
            raise ValueError("responses must be +1 (like), -1 (dislike) or 0 (unknown)")
        rows = np.arange(b)
        if self.asked[rows, items].any():
            raise ValueError("an item was asked twice to the same user")
        self.asked[rows, items] = True
        self.items.append(items.copy())
        self.responses.append(responses.astype(np.int8))
        y, observed = self.targets(responses)
        if self.mu_e is not None:
            observed = responses != UNKNOWN  # the preference part learns from known answers only
            self._observe_exposure(items, (responses != UNKNOWN).astype(np.float64))
        if observed.any():
            sel = np.flatnonzero(observed)
            v = self.space.item_factors[items[sel]]  # (m, d)
            sig = self.sigma[sel]
            s = np.einsum("bij,bj->bi", sig, v)
            c = self.config.noise_var + np.einsum("bi,bi->b", v, s)
            resid = y[sel] - np.einsum("bi,bi->b", v, self.mu[sel])
            self.mu[sel] += s * (resid / c)[:, None]
            self.sigma[sel] = sig - np.einsum("bi,bj->bij", s, s) / c[:, None, None]
            vs = s @ self.space.item_factors.T  # (m, n_items)
            self.quad[sel] = np.maximum(self.quad[sel] - vs * vs / c[:, None], 0.0)
        return self

    def _observe_exposure(self, items: np.ndarray, known: np.ndarray) -> None:
        v = self.space.item_factors[items]
        s = np.einsum("bij,bj->bi", self.sigma_e, v)
        c = self.config.exposure_noise_var + np.einsum("bi,bi->b", v, s)
        resid = known - np.einsum("bi,bi->b", v, self.mu_e)
        self.mu_e += s * (resid / c)[:, None]
        self.sigma_e -= np.einsum("bi,bj->bij", s, s) / c[:, None, None]
