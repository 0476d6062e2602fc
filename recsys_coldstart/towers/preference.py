"""Tower models fed frozen pretrained preference vectors plus content: the base of DropoutNet and Heater."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recsys_coldstart._utils import torch_generator
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.sparse import take_rows
from recsys_coldstart.towers.base import (
    TowerRecommender,
    base_factors,
    dropout_modes,
    sample_warm,
    warm_mask,
)
from recsys_coldstart.towers.blocks import drop_entries, fit_dim, row_normalize, to_torch


class PreferenceTowerModel(TowerRecommender):
    """Base of the models fed frozen pretrained preference vectors plus content (DropoutNet, Heater).

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
            side, take_rows(feats, idx), take_rows(rows, idx), p.device))

    def _pref_bag(self, observed: sp.csr_matrix, side: str) -> np.ndarray:
        table = self.pref_items_ if side == "user" else self.pref_users_
        return np.asarray(row_normalize(observed) @ table, np.float32)

    def _prep(self, train: Interactions, init_factors: Any, rng: np.random.Generator,
              val: Interactions | None = None) -> None:
        c = self.config
        self._init_features(train)
        U, V = base_factors(train, init_factors, c.base_dim, rng)
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

    def _fit_loop(self, train: Interactions, val, callback, rng, device, extra_params=(),
                  support: Interactions | None = None) -> None:
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
            return dropout_modes(rng, k, c.dropout_prob, c.transform_prob)

        def epoch_fn(epoch: int) -> dict[str, float]:
            self._nets.train()
            total, steps = 0.0, 0
            for sel in self._epoch_batches(n, gen, device):  # this rank's shard under torchrun
                u, i = users[sel], items[sel]
                cand = np.concatenate([i, sample_warm(rng, warm_items, c.n_negatives)])
                pu = self._pref_input("user", u, mode_of(len(u)), R, i, rng)
                pc = self._pref_input("item", cand, mode_of(len(cand)), RT,
                                      np.concatenate([u, np.full(len(cand) - len(u), -1)]), rng)
                eu = self._forward_side("user", pu, None if uf is None else uf[u], device, rows=u)
                ei = self._forward_side("item", pc, None if itf is None else itf[cand], device, rows=cand)
                loss = self._train_loss(eu, ei, u, cand, pu, pc, device)
                self._step(opt, loss)  # data-parallel: gradients averaged over ranks
                total += float(loss.detach())
                steps += 1
            return {"loss": total / max(steps, 1)}

        rng = self._data_parallel(rng)  # per-rank sampling under torchrun; rng itself in one process
        self._train_loop(train=train, val=val, epoch_fn=epoch_fn, finalize=lambda: self._finalize(uf, itf),
                         callback=callback, desc=type(self).__name__, support=support)
