"""DropoutNet: content + preference towers trained with input dropout.

Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems", NeurIPS 2017.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_coldstart._utils import check_random_state, resolve_device, torch_generator
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.distill._base import (
    TowerRecommender,
    base_factors,
    sample_warm,
    warm_mask,
)
from recsys_coldstart.distill.losses import score_regression_loss
from recsys_coldstart.distill.towers import (
    Tower,
    drop_entries,
    fit_dim,
    row_normalize,
    to_torch,
)

logger = logging.getLogger(__name__)


def _take(x, idx: np.ndarray):
    """Rows ``idx`` of an array / sparse matrix, None passing through."""
    return None if x is None else x[idx]


@dataclass(frozen=True)
class DropoutNetConfig:
    """Configuration of :class:`DropoutNet`.

    Attributes
    ----------
    dim : int
        Output width of both towers (with ``content_init="map"`` the towers output ``pref_dim``).
    hidden : tuple of int
        Hidden widths.
    pref_dim : int or None
        Width the pretrained preference vectors are brought to (PCA / padding); None = their own.
    dropout_prob : float
        Probability of zeroing a row's preference input during training (the paper's key idea).
    transform_prob : float
        Probability of the *user / item transform*: the preference input is replaced by the mean
        preference vector of the row's (thinned) interactions.
    n_negatives : int
        Sampled warm items added to each batch's candidates.
    batch_size, n_epochs, lr, patience : training settings (Adam).
    base_dim : int
        Rank of the SVD preference vectors when no pretrained model is given.
    fold_in, fold_in_k, fold_in_ridge : {"tower", "ridge"}, int, float
        How new users are embedded (see :class:`~recsys_coldstart.distill._base.TowerRecommender`).
    content_init : {"map", "random"}
        ``"map"``: a closed-form content estimate of the preference vector
        (:class:`~recsys_coldstart.distill.towers.ContentMap`: ridge + k-NN attribute-to-feature
        maps fitted on the warm rows, fixed) stands in for a missing preference input as the towers'
        *residual*: ``f(p, x) = r + MLP([p ; x])`` with ``r = p`` when the preference input is
        present and the estimate when it is missing (dropped or cold); the MLP's output layer
        starts at zero, so training starts at the map and learns DropoutNet's correction on top.
        ``"random"``: the paper's plain towers.
    content_ridge, content_neighbors, content_blend : float, int, float or None
        The map's ridge strength (on the scaled features), number of neighbours and k-NN weight
        (None = chosen on ``val`` among 0, 0.25, ..., 1; 0.5 without val).
    random_state : int or None
    device : str
    show_progress : bool
    """

    dim: int = 128
    hidden: tuple[int, ...] = (256,)
    pref_dim: int = 64
    dropout_prob: float = 0.5
    transform_prob: float = 0.2
    n_negatives: int = 256
    batch_size: int = 1024
    n_epochs: int = 30
    lr: float = 1e-3
    patience: int | None = 5
    base_dim: int = 64
    fold_in: str = "ridge"
    fold_in_k: int = 3
    fold_in_ridge: float = 10.0
    content_init: str = "map"
    content_ridge: float = 5.0
    content_neighbors: int = 20
    content_blend: float | None = None
    random_state: int | None = 0
    device: str = "auto"
    show_progress: bool = False


class _PreferenceTowerModel(TowerRecommender):
    """Shared code of models fed frozen pretrained preference vectors plus content.

    Fitted arrays ``pref_users_`` (n_users, p) and ``pref_items_`` (n_items, p) hold the
    (normalised) pretrained vectors; cold rows are zero. With ``content_init="map"`` the
    ``{user,item}_cmap_*_`` arrays hold the content maps to those vectors (sides with features).
    """

    @property
    def _pref_width(self) -> int:
        return int(self.pref_users_.shape[1])

    @property
    def _out_dim(self) -> int:
        return self._pref_width if self.config.content_init == "map" else int(self.config.dim)

    def _fill_missing(self, p: torch.Tensor, content: Callable[[np.ndarray], torch.Tensor | None]) -> torch.Tensor:
        """``p`` (b, w) with its all-zero rows (preference input dropped, or none: cold) replaced by
        ``content(idx)`` (len(idx), w), computed for those rows only (serving warm rows costs nothing)."""
        idx = np.flatnonzero((p.abs().sum(1) == 0).cpu().numpy())
        fill = content(idx) if len(idx) else None
        if fill is None:
            return p
        out = p.clone()
        out[torch.from_numpy(idx).to(p.device)] = fill
        return out

    def _residual(self, side: str, p: torch.Tensor, feats, rows: np.ndarray | None) -> torch.Tensor:
        """``p`` where a row has a preference input, else the content map's estimate."""
        return self._fill_missing(p, lambda idx: self._content_estimate(
            side, _take(feats, idx), _take(rows, idx), p.device))

    def _pref_bag(self, observed: sp.csr_matrix, side: str) -> np.ndarray:
        table = self.pref_items_ if side == "user" else self.pref_users_
        return np.asarray(row_normalize(observed) @ table, np.float32)

    def _prep(self, train: Interactions, base: Any, rng: np.random.Generator,
              val: Interactions | None = None) -> None:
        c = self.config
        self._init_features(train)
        U, V = base_factors(train, base, c.base_dim, rng)
        R = train.user_items
        p = int(c.pref_dim or U.shape[1])
        wu, wi = warm_mask(R, 1), warm_mask(R, 0)
        self.pref_users_ = fit_dim(U, p, rng) * wu[:, None]
        self.pref_items_ = fit_dim(V, p, rng) * wi[:, None]
        self._fit_content_maps(train, {"user": (self.pref_users_, wu), "item": (self.pref_items_, wi)}, val)

    def _pref_input(self, side: str, idx: np.ndarray, mode: np.ndarray, R: sp.csr_matrix,
                    target: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Preference input with dropout (mode 1) and transform (mode 2), float32 (b, p)."""
        table = self.pref_users_ if side == "user" else self.pref_items_
        x = table[idx] * (mode == 0)[:, None]
        tr = np.flatnonzero(mode == 2)
        if len(tr):
            bag = drop_entries(R[idx[tr]], None if target is None else target[tr],
                               rng.uniform(0.05, 1.0, len(tr)), rng)
            x[tr] = self._pref_bag(bag, side)
        return x.astype(np.float32)

    def _forward_side(self, side: str, pref: np.ndarray, feats, device, rows: np.ndarray | None = None) -> torch.Tensor:
        p = to_torch(pref, device)
        out = self._nets[f"{side}_tower"]([p, to_torch(feats, device)])
        return out + self._residual(side, p, feats, rows) if self.config.content_init == "map" else out

    def _user_forward(self, observed, features) -> torch.Tensor:
        b = observed.shape[0] if observed is not None else features.shape[0]
        pref = self._pref_bag(observed, "user") if observed is not None else np.zeros((b, self._pref_width), np.float32)
        return self._forward_side("user", pref, features, self._dev())

    def _item_forward(self, observed, features) -> torch.Tensor:
        b = features.shape[0] if features is not None else observed.shape[0]
        pref = self._pref_bag(observed, "item") if observed is not None else np.zeros((b, self._pref_width), np.float32)
        return self._forward_side("item", pref, features, self._dev())

    def _dev(self):
        return next(self._nets.parameters()).device

    def _finalize(self, uf, itf) -> None:
        self._nets.eval()
        dev = self._dev()
        self.user_factors_ = self._batched(lambda r: self._forward_side(
            "user", self.pref_users_[r], None if uf is None else uf[r], dev, rows=r), self.n_users_in_)
        self.item_factors_ = self._batched(lambda r: self._forward_side(
            "item", self.pref_items_[r], None if itf is None else itf[r], dev, rows=r), self.n_items_in_)

    def _train_loss(self, eu, ei, u, cand, pu, pc, device) -> torch.Tensor:
        raise NotImplementedError

    def _fit_loop(self, train: Interactions, val, callback, rng, device, extra_params=()) -> None:
        c = self.config
        self._nets.to(device)
        gen = torch_generator(rng, device)
        R = train.user_items.tocsr()
        RT = R.T.tocsr()
        uf = self._features(self._side_matrix(train, "user"), "user")
        itf = self._features(self._side_matrix(train, "item"), "item")
        users, items, _, _ = train.to_coo_arrays()
        warm_items = np.flatnonzero(warm_mask(R, 0))
        n = len(users)
        opt = torch.optim.Adam(list(self._nets.parameters()) + list(extra_params), lr=c.lr)

        def mode_of(k: int) -> np.ndarray:
            r = rng.random(k)
            return np.where(r < c.dropout_prob, 1, np.where(r < c.dropout_prob + c.transform_prob, 2, 0))

        def epoch_fn(epoch: int) -> dict[str, float]:
            self._nets.train()
            perm = torch.randperm(n, generator=gen, device=device).cpu().numpy()
            total, steps = 0.0, 0
            for start in range(0, n, c.batch_size):
                sel = perm[start:start + c.batch_size]
                u, i = users[sel], items[sel]
                cand = np.concatenate([i, sample_warm(rng, warm_items, c.n_negatives)])
                pu = self._pref_input("user", u, mode_of(len(u)), R, i, rng)
                pc = self._pref_input("item", cand, mode_of(len(cand)), RT,
                                      np.concatenate([u, np.full(len(cand) - len(u), -1)]), rng)
                eu = self._forward_side("user", pu, None if uf is None else uf[u], device, rows=u)
                ei = self._forward_side("item", pc, None if itf is None else itf[cand], device, rows=cand)
                loss = self._train_loss(eu, ei, u, cand, pu, pc, device)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
                steps += 1
            return {"loss": total / max(steps, 1)}

        self._train_loop(train=train, val=val, epoch_fn=epoch_fn, finalize=lambda: self._finalize(uf, itf),
                         callback=callback, desc=type(self).__name__)


class DropoutNet(_PreferenceTowerModel):
    """DropoutNet (Volkovs, Yu & Poutanen, NeurIPS 2017).

    User and item towers ``f_U([U_u ; Phi_u])``, ``f_V([V_i ; Phi_i])`` read a frozen pretrained
    preference vector (``U``, ``V`` from any fitted embedding model, or an SVD) and content
    features. Training reproduces the pretrained scores,

    .. math:: \\min \\sum_{(u,i)} (U_u V_i^T - f_U(U_u, \\Phi_u) f_V(V_i, \\Phi_i)^T)^2,

    over each batch's users x (in-batch + sampled warm) items, with the preference input
    dropped (set to zero) with probability ``dropout_prob`` and replaced by the mean preference
    of the row's interactions with probability ``transform_prob``. Cold users / items therefore
    go through the content path (and the transform path when they revealed a few interactions).
    By default (``content_init="map"``) each tower is residual over ``p`` or, when ``p`` is
    missing, the closed-form content estimate (see :class:`DropoutNetConfig`), so training starts
    at the attribute-to-feature map and early stopping keeps that start when the learned
    correction does not improve the validation recall.
    New *users* are embedded by default with the learned ridge fold-in on the fitted vectors
    (``fold_in="ridge"``, see :class:`DropoutNetConfig`); ``fold_in="tower"`` uses the towers.

    Fitted attributes: ``user_factors_`` (n_users, dim), ``item_factors_`` (n_items, dim),
    ``pref_users_``, ``pref_items_``, ``history_``.
    """

    config_class = DropoutNetConfig

    def _build(self) -> None:
        c = self.config
        p = self._pref_width
        self._nets = nn.ModuleDict({
            "user_tower": Tower([p, self.d_user_features_], c.hidden, self._out_dim),
            "item_tower": Tower([p, self.d_item_features_], c.hidden, self._out_dim),
        })
        if c.content_init == "map":
            for tower in self._nets.values():
                tower.zero_output_layer()

    def _train_loss(self, eu, ei, u, cand, pu, pc, device) -> torch.Tensor:
        target = torch.from_numpy(self.pref_users_[u] @ self.pref_items_[cand].T).to(device)
        return score_regression_loss(eu @ ei.T, target)

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None,
            base: Any = None) -> DropoutNet:
        """Fit on ``train``.

        Parameters
        ----------
        train : Interactions
        val : Interactions, optional
            Early stopping on Recall@20.
        callback : callable, optional
        base : EmbeddingModel, tuple (U, V) or None
            Pretrained preference vectors; None = truncated SVD of ``train``.

        Returns
        -------
        self
        """
        c = self.config
        rng = check_random_state(c.random_state)
        device = resolve_device(c.device)
        self._prep(train, base, rng, val)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.random.manual_seed(int(rng.integers(2**31)))
            self._build()
        self._fit_loop(train, val, callback, rng, device)
        return self
