"""EASE: embarrassingly shallow autoencoder (Steck, "Embarrassingly Shallow Autoencoders for Sparse
Data", WWW 2019).

An item-item linear model ``S = X B`` whose weight matrix has a closed form. With the item Gram
matrix ``G = X^T X`` and ``P = (G + λ I)^{-1}``, the minimiser of
``||X - X B||_F^2 + λ ||B||_F^2`` subject to ``diag(B) = 0`` is::

    B = I - P · diag(1 / diag(P)),   i.e.  B_ij = -P_ij / P_jj  (i != j),  B_jj = 0.

One ``n_items x n_items`` inverse, no iterations: the cost is memory (a few dense float32 item x
item matrices), so :class:`EASE` refuses up front, naming the memory it would need, when they do
not fit. New users are scored from what they revealed (``observed @ B``) without refitting; items
without training interactions get an all-zero column (EASE cannot score cold items).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.config import Config, greater_than
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

# Dense float32 item x item matrices alive at the peak of fit: the Gram matrix and its inverse
# (LAPACK's inverse works on a copy), plus slack for the sparse product and numpy temporaries.
_PEAK_MATRICES = 2.5


@dataclass(frozen=True)
class EASEConfig(Config):
    """Configuration of :class:`EASE`.

    Attributes
    ----------
    reg : float
        L2 penalty ``λ`` added to the Gram matrix's diagonal (> 0). Steck (2019) reports 200-1000 as
        best on ML-20M, Netflix and MSD; on our ml-100k warm split val selects 300-500.
    max_memory_gb : float or None
        Refuse to fit when the dense item x item matrices would need more than this; None = 80% of
        the memory available when ``fit`` starts (``psutil.virtual_memory().available``).
    """

    reg: float = field(default=500.0, metadata=greater_than(0.0))
    max_memory_gb: float | None = field(default=None, metadata=greater_than(0.0, none=True))


def ease_memory_gb(n_items: int) -> float:
    """Peak memory in GB that :meth:`EASE.fit` needs for ``n_items`` items (float32 dense matrices)."""
    return _PEAK_MATRICES * float(n_items) ** 2 * 4 / 1e9


def ease_weights(user_items: sp.spmatrix, reg: float) -> np.ndarray:
    """The EASE weight matrix ``B`` (Steck 2019, eq. 8) of a binary users x items matrix.

    Parameters
    ----------
    user_items : scipy sparse, shape (n_users, n_items)
        Training positives (any non-zero counts as 1).
    reg : float
        ``λ`` > 0.

    Returns
    -------
    np.ndarray of float32, shape (n_items, n_items)
        ``B`` with a zero diagonal; ``X @ B`` are the scores.
    """
    x = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray().astype(np.float32, copy=False)
    gram[np.diag_indices_from(gram)] += np.float32(reg)
    p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    del gram
    d = np.diag(p).copy()
    p /= -d[None, :]
    p[np.diag_indices_from(p)] = 0.0
    return np.ascontiguousarray(p, dtype=np.float32)


class EASE(BaseRecommender):
    """EASE (Steck, WWW 2019): a closed-form item-item model, a strong warm-start baseline.

    Attributes after ``fit``
    ------------------------
    item_weights_ : np.ndarray of float32, shape (n_items, n_items)
        ``B``; zero diagonal, zero columns and rows for items without training interactions.
    train_ui_ : scipy CSR of float32, shape (n_users, n_items)
        The binary training matrix (known users are scored from their training rows).

    Examples
    --------
    >>> from recsys_coldstart.data import make_synthetic, make_split
    >>> split = make_split(make_synthetic(n_users=100, n_items=50, random_state=0), "warm")
    >>> ids, scores = EASE(reg=100.0).fit(split.train).recommend([0, 1], k=5)
    """

    config_class = EASEConfig

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None) -> EASE:
        """Solve for ``B`` on ``train`` (``val`` and ``callback`` are unused: there is no iteration).

        Raises
        ------
        DataError
            When the dense item x item matrices would not fit in ``max_memory_gb``.
        """
        cfg = self.config
        n_items = int(train.n_items)
        need = ease_memory_gb(n_items)
        if cfg.max_memory_gb is None:
            import psutil

            budget = 0.8 * psutil.virtual_memory().available / 1e9
        else:
            budget = float(cfg.max_memory_gb)
        if need > budget:
            raise DataError(f"EASE on {n_items:,} items needs about {need:.1f} GB for its dense item x item "
                            f"matrices, more than the {budget:.1f} GB allowed (max_memory_gb); use ALS or "
                            f"ItemKNN for a catalogue this size")
        logger.info("EASE: inverting a %d x %d Gram matrix (about %.2f GB)", n_items, n_items, need)
        ui = sp.csr_matrix(train.user_items, dtype=np.float32, copy=True)
        ui.data[:] = 1.0
        self.item_weights_ = ease_weights(ui, cfg.reg)
        self.train_ui_ = ui
        self.n_items_ = n_items
        return self

    def score(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        """``X[user_idx] @ B``: float32 of shape (len(user_idx), n_items or len(item_idx))."""
        self._check_fitted("item_weights_")
        return self._scores(self.train_ui_[np.atleast_1d(np.asarray(user_idx, np.int64))], item_idx)

    def score_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None,
                        item_idx: np.ndarray | None = None) -> np.ndarray:
        """``observed @ B`` for users unseen at fit time (features are unused).

        Parameters
        ----------
        observed : scipy CSR of shape (b, n_items)
        features : ignored
        item_idx : np.ndarray of int64, optional

        Returns
        -------
        np.ndarray of float32, shape (b, n_items or len(item_idx))
        """
        self._check_fitted("item_weights_")
        obs = sp.csr_matrix(observed, dtype=np.float32, copy=True)
        if obs.shape[1] != self.n_items_:
            raise ValueError(f"observed has {obs.shape[1]} columns for {self.n_items_} items")
        obs.data[:] = 1.0
        return self._scores(obs, item_idx)

    def _scores(self, rows: sp.csr_matrix, item_idx: np.ndarray | None) -> np.ndarray:
        w = self.item_weights_ if item_idx is None else self.item_weights_[:, np.asarray(item_idx, np.int64)]
        return np.asarray(rows @ w, dtype=np.float32)

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: ``reg`` log-uniform in [1, 1e4] (Steck 2019: best 200-1000 on ML-20M,
        Netflix, MSD; ml-100k val: 300-500)."""
        return {"reg": trial.suggest_float("reg", 1.0, 1e4, log=True)}
