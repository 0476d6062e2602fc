"""Matrix factorisation baselines wrapping the ``implicit`` library: ALS and BPR.

Both are :class:`~recsys_coldstart.base.EmbeddingRecommender` s: after ``fit`` they hold
``user_factors_`` / ``item_factors_`` (float32 numpy, CPU) and score by dot product. New users
are folded in from what they revealed by a batched weighted-ridge solve against the fixed item
factors (:func:`recsys_coldstart.foldin.ridge_fold_in`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state, resolve_device
from recsys_coldstart.base import EmbeddingRecommender
from recsys_coldstart.config import Config, at_least, greater_than
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.foldin import ridge_fold_in
from recsys_coldstart.sparse import as_observed, binary_csr
from recsys_coldstart.train import fit_loop, score_factors, validation_plan

logger = logging.getLogger(__name__)

EVAL_K = 20
"""Cutoff of the validation metrics logged for the callback (``val_ndcg@20``, ``val_recall@20``)."""
VAL_MAX_USERS = 2000
"""Validation scores a fixed random subset of at most this many users (it runs every epoch)."""


def _implicit_gpu_available() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except Exception:  # pragma: no cover - depends on the implicit build
        return False


def _blas_single_thread():
    """Context manager limiting BLAS to one thread (implicit's solvers run their own threads)."""
    # import implicit's extensions first: a BLAS library loaded after the limit is set is not limited
    import implicit.cpu.als  # noqa: F401
    import implicit.cpu.bpr  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


def _mean_user(user_factors: np.ndarray, train: sp.csr_matrix) -> np.ndarray:
    active = np.diff(train.indptr) > 0
    if not active.any():
        return np.zeros(user_factors.shape[1], np.float32)
    return user_factors[active].mean(axis=0).astype(np.float32)


class _ImplicitMF(EmbeddingRecommender):
    """Shared fit loop: one ``implicit`` iteration per epoch so ``callback`` can stop training."""

    def _make_model(self, gpu: bool, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def _confidence(self, train: sp.csr_matrix) -> sp.csr_matrix:
        return train

    def _extract(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(model, "to_cpu"):
            model = model.to_cpu()
        return (np.ascontiguousarray(model.user_factors, dtype=np.float32),
                np.ascontiguousarray(model.item_factors, dtype=np.float32))

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None):
        """Factorise ``train.user_items`` (users x items, binarised).

        One ``implicit`` iteration is one epoch of :func:`recsys_coldstart.train.fit_loop`
        (no early stopping: the last iteration's factors are kept).

        Parameters
        ----------
        train : Interactions
        val : Interactions, optional
            When given together with ``callback``, ``val_ndcg@20`` and ``val_recall@20``
            (:mod:`recsys_coldstart.train.validation`: users with train and val positives, at
            most 2,000, a fixed random subset) are added to the per-epoch logs.
        callback : callable, optional
            ``callback(epoch, logs) -> bool | None`` with ``epoch`` from 1; ``logs`` has
            ``seconds`` (and the val metrics); returning True stops training.

        Returns
        -------
        self
        """
        cfg = self.config
        rng = check_random_state(cfg.random_state)
        device = resolve_device(cfg.device)
        gpu = device.type == "cuda" and _implicit_gpu_available()
        if device.type == "cuda" and not gpu:
            logger.warning("implicit has no CUDA support in this install; fitting %s on the CPU", type(self).__name__)
        x = binary_csr(train.user_items)
        conf = self._confidence(x)
        # validation only feeds the callback (pruning): without one, nothing is scored
        plan = None
        if callback is not None and val is not None:
            plan = validation_plan(x, binary_csr(val.user_items), ks=(EVAL_K,), need_history=True,
                                   max_users=VAL_MAX_USERS, sample_seed=0)
        with _blas_single_thread():
            model = self._make_model(gpu, rng)

            def epoch_fn(epoch: int) -> None:
                if gpu and epoch > 1:  # pragma: no cover - GPU: a fresh int seed per one-epoch fit
                    model.random_state = int(rng.integers(0, 2**31 - 1))
                model.fit(conf, show_progress=False)  # users x items, as implicit expects

            def validate() -> dict[str, float]:
                uf, itf = self._extract(model)
                return score_factors(plan, uf, itf)

            result = fit_loop(epoch_fn, n_epochs=cfg.n_epochs, validate=validate if plan is not None else None,
                              callback=callback, desc=type(self).__name__)
        self.epochs_run_ = int(result.epochs_run)
        self.history_ = result.history
        self.user_factors_, self.item_factors_ = self._extract(model)
        self.mean_user_ = _mean_user(self.user_factors_, x)
        self.item_counts_ = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        return self

    def _fold_in_factors(self) -> np.ndarray:
        return self.item_factors_

    def embed_users(self, observed: sp.csr_matrix | None = None, features: np.ndarray | None = None) -> np.ndarray:
        """Fold new users in from their revealed positives (``features`` are ignored).

        Users with at least one revealed positive get the weighted-ridge solution against the
        fixed item factors (Hu et al. 2008, eq. 4) plus a pull ``fold_in_prior * ||x - mean_user_||^2``
        toward the mean train user, so a user who revealed one or two items is not scored from
        those alone (on ml-100k user-cold with 5 support items this lifts ALS's cold-user
        NDCG@20 from 0.226 to 0.307; 0 gives the plain ALS user update). Users who revealed
        nothing get ``mean_user_``, whose scores are a popularity-like ranking.

        Parameters
        ----------
        observed : scipy CSR, shape (b, n_items)
        features : np.ndarray, shape (b, d_user), optional
            Ignored.

        Returns
        -------
        np.ndarray of float32, shape (b, d)
        """
        self._check_fitted("item_factors_")
        n_rows = None if features is None else len(features)
        obs = as_observed(observed, n_rows, self.n_items_)
        y = self._fold_in_factors()
        u = ridge_fold_in(obs, y, alpha=self._fold_in_alpha(), regularization=self._fold_in_reg(),
                          prior=self.mean_user_[: y.shape[1]], prior_weight=float(self.config.fold_in_prior))
        u = self._finish_fold_in(u)
        empty = np.diff(obs.indptr) == 0
        u[empty] = self.mean_user_
        return u

    def _fold_in_alpha(self) -> float:
        raise NotImplementedError

    def _fold_in_reg(self) -> float:
        raise NotImplementedError

    def _finish_fold_in(self, u: np.ndarray) -> np.ndarray:
        return u


@dataclass(frozen=True)
class ALSConfig(Config):
    """Configuration of :class:`ALS`.

    Attributes
    ----------
    dim : int
        Embedding size ``d`` (implicit's ``factors``).
    reg : float
        L2 weight ``lambda`` (implicit's ``regularization``).
    alpha : float
        Confidence of a positive: ``c_ui = 1 + alpha * r_ui`` (Hu et al. 2008).
    n_epochs : int
        ALS sweeps (each solves users then items).
    fold_in_prior : float
        Weight of the pull toward the mean user when folding in new users (see :meth:`ALS.embed_users`).
    use_cg : bool
        Conjugate-gradient solver (faster) instead of Cholesky.
    num_threads : int
        implicit's threads (0 = all cores). ALS is deterministic for any thread count.
    random_state : int or None
        Seeds the factor initialisation.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``; CUDA is used only when implicit was built with it.
    """

    dim: int = field(default=64, metadata=at_least(1, integer=True))
    reg: float = field(default=0.05, metadata=at_least(0.0))
    alpha: float = field(default=10.0, metadata=at_least(0.0))
    n_epochs: int = field(default=15, metadata=at_least(0, integer=True))
    fold_in_prior: float = field(default=10.0, metadata=at_least(0.0))
    use_cg: bool = True
    num_threads: int = field(default=0, metadata=at_least(0, integer=True))
    random_state: int | None = 0
    device: str = "auto"


class ALS(_ImplicitMF):
    """Weighted matrix factorisation for implicit feedback by alternating least squares.

    Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008;
    conjugate-gradient solver of Takács, Pilászy & Tikk, RecSys 2011 (as implemented by the
    ``implicit`` library, which this class wraps). Minimises

    ``sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum_u ||x_u||^2 + sum_i ||y_i||^2)``

    with ``p_ui = 1`` for train positives, ``c_ui = 1 + alpha`` for positives and 1 otherwise.

    New users (:meth:`embed_users`) are folded in exactly as ALS updates a user: the closed-form
    weighted-ridge solve against the fixed item factors, batched; empty users get the mean
    train-user vector.

    Attributes
    ----------
    user_factors_ : np.ndarray of float32, shape (n_users, dim)
    item_factors_ : np.ndarray of float32, shape (n_items, dim)
    mean_user_ : np.ndarray of float32, shape (dim,)
        Mean vector of users with train positives (the vector of a user who revealed nothing).
    item_counts_ : np.ndarray of float32, shape (n_items,)
    epochs_run_ : int
    history_ : dict of str to np.ndarray of float64, each of shape (epochs_run_,)
        ``epoch``, ``loss`` (NaN: implicit reports none), ``seconds`` and, when fitted with ``val``
        and a callback, ``val_ndcg@20`` / ``val_recall@20``.
    """

    config_class = ALSConfig

    def _make_model(self, gpu: bool, rng: np.random.Generator) -> Any:
        cfg = self.config
        seed = int(rng.integers(0, 2**31 - 1))
        if gpu:  # pragma: no cover - needs an implicit CUDA build
            from implicit.gpu.als import AlternatingLeastSquares

            return AlternatingLeastSquares(factors=cfg.dim, regularization=cfg.reg, alpha=1.0,
                                           iterations=1, random_state=seed)
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(factors=cfg.dim, regularization=cfg.reg, alpha=1.0,
                                       iterations=1, use_cg=cfg.use_cg, num_threads=cfg.num_threads,
                                       random_state=seed)

    def _confidence(self, train: sp.csr_matrix) -> sp.csr_matrix:
        # implicit uses the stored value as the confidence c_ui itself (unobserved: 1)
        conf = train.copy()
        conf.data = (1.0 + self.config.alpha * conf.data).astype(np.float32)
        return conf

    def _fold_in_alpha(self) -> float:
        return float(self.config.alpha)

    def _fold_in_reg(self) -> float:
        return float(self.config.reg)

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Wide enough for the published optima: Rendle et al., "Revisiting the Performance of
        iALS on Item Recommendation Benchmarks" (RecSys 2022) find that large embeddings with
        strong L2 win (dims up to 1024-2048 on ML-20M / MSD; ~16 sweeps suffice), Hu et al.
        (ICDM 2008) use confidence ``alpha`` 40; on our ml-100k warm split a grid picked
        ``reg`` 50 and 128-256 factors (test NDCG@20 0.278, issue 12). So ``reg`` spans
        1e-2..1e3 (implicit's unscaled regularization), ``dim`` 32..512, ``alpha`` 1..100,
        ``n_epochs`` 5..50.
        """
        return {
            "dim": trial.suggest_categorical("dim", [32, 64, 128, 256, 512]),
            "reg": trial.suggest_float("reg", 1e-2, 1e3, log=True),
            "alpha": trial.suggest_float("alpha", 1.0, 100.0, log=True),
            "n_epochs": trial.suggest_int("n_epochs", 5, 50),
            "fold_in_prior": trial.suggest_float("fold_in_prior", 0.1, 1000.0, log=True),
        }


@dataclass(frozen=True)
class BPRConfig(Config):
    """Configuration of :class:`BPR`.

    Attributes
    ----------
    dim : int
        Embedding size ``d`` (implicit adds one item-bias column, so the fitted factors have
        ``d + 1`` columns; the user's extra column is the constant 1).
    lr : float
        SGD step size (implicit's ``learning_rate``).
    reg : float
        L2 weight (implicit's ``regularization``).
    n_epochs : int
        Passes over the train positives.
    verify_negative_samples : bool
        Resample a negative that is a train positive.
    num_threads : int
        implicit's threads; more than 1 runs Hogwild SGD, which is *not* deterministic, so the
        default is 1.
    fold_in_alpha, fold_in_reg, fold_in_prior : float
        Confidence, ridge weight and mean-user pull of the fold-in solve for new users (see
        :meth:`BPR.embed_users`).
    random_state : int or None
    device : str
    """

    dim: int = field(default=64, metadata=at_least(1, integer=True))
    lr: float = field(default=0.01, metadata=greater_than(0.0))
    reg: float = field(default=0.01, metadata=at_least(0.0))
    n_epochs: int = field(default=50, metadata=at_least(0, integer=True))
    verify_negative_samples: bool = True
    num_threads: int = field(default=1, metadata=at_least(0, integer=True))
    fold_in_alpha: float = field(default=10.0, metadata=at_least(0.0))
    fold_in_reg: float = field(default=1.0, metadata=at_least(0.0))
    fold_in_prior: float = field(default=10.0, metadata=at_least(0.0))
    random_state: int | None = 0
    device: str = "auto"


class BPR(_ImplicitMF):
    """Bayesian Personalised Ranking matrix factorisation (SGD on sampled triples).

    Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from
    Implicit Feedback", UAI 2009; wraps ``implicit``'s implementation. Maximises

    ``sum_{(u,i,j)} log sigma(x_u . y_i - x_u . y_j) - lambda ||Theta||^2``

    over triples of a user, a train positive ``i`` and a sampled negative ``j``. The fitted item
    factors carry an item-bias column and the user factors a constant-1 column.

    New users (:meth:`embed_users`): BPR has no closed-form user update, so a user is folded in
    with the same weighted-ridge solve as ALS against the fixed BPR item vectors (bias column
    excluded, user's bias column set to 1; ``fold_in_alpha``, ``fold_in_reg``,
    ``fold_in_prior``), a cheap and deterministic approximation. Users who revealed nothing get
    the mean user vector.

    Attributes
    ----------
    user_factors_ : np.ndarray of float32, shape (n_users, dim + 1)
    item_factors_ : np.ndarray of float32, shape (n_items, dim + 1)
    mean_user_ : np.ndarray of float32, shape (dim + 1,)
    item_counts_ : np.ndarray of float32, shape (n_items,)
    epochs_run_ : int
    history_ : dict of str to np.ndarray of float64
        As :class:`ALS`'s.
    """

    config_class = BPRConfig

    def _make_model(self, gpu: bool, rng: np.random.Generator) -> Any:
        cfg = self.config
        # a Generator (not an int) so successive one-epoch fits draw fresh negatives
        seed_rng = np.random.default_rng(int(rng.integers(0, 2**31 - 1)))
        if gpu:  # pragma: no cover - needs an implicit CUDA build
            from implicit.gpu.bpr import BayesianPersonalizedRanking

            # implicit's GPU random state takes an int seed; fit() draws a new one per epoch
            return BayesianPersonalizedRanking(factors=cfg.dim, learning_rate=cfg.lr,
                                               regularization=cfg.reg, iterations=1,
                                               verify_negative_samples=cfg.verify_negative_samples,
                                               random_state=int(seed_rng.integers(0, 2**31 - 1)))
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(factors=cfg.dim, learning_rate=cfg.lr,
                                           regularization=cfg.reg, iterations=1,
                                           verify_negative_samples=cfg.verify_negative_samples,
                                           num_threads=cfg.num_threads, random_state=seed_rng)

    def _fold_in_factors(self) -> np.ndarray:
        return self.item_factors_[:, :-1]

    def _fold_in_alpha(self) -> float:
        return float(self.config.fold_in_alpha)

    def _fold_in_reg(self) -> float:
        return float(self.config.fold_in_reg)

    def _finish_fold_in(self, u: np.ndarray) -> np.ndarray:
        return np.hstack([u, np.ones((len(u), 1), np.float32)])

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        BPR-MF (Rendle et al., UAI 2009) and implicit's defaults use SGD lr 0.01 and L2 0.01;
        the iALS revisit (Rendle et al. 2022) and Dacrema et al. (RecSys 2019) tune dims up to a
        few hundred, lr 1e-3..1e-1 and L2 1e-5..1e-1, with tens to hundreds of epochs.
        """
        return {
            "dim": trial.suggest_categorical("dim", [32, 64, 128, 256]),
            "lr": trial.suggest_float("lr", 1e-3, 0.2, log=True),
            "reg": trial.suggest_float("reg", 1e-5, 0.1, log=True),
            "n_epochs": trial.suggest_int("n_epochs", 20, 200, log=True),
        }
