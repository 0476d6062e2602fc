"""Heater: mixture-of-experts content transform + randomized training.

Zhu, Sharma, Pasumarthi, Jiang, Tang & Zhang, "Recommendation for New Users and New Items via
Randomized Training and Mixture-of-Experts Transformation", SIGIR 2020.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from recsys_coldstart._utils import check_random_state, resolve_device
from recsys_coldstart.config import at_least, between, greater_than
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.sparse import take_rows
from recsys_coldstart.towers.base import ColdStartTowerConfig
from recsys_coldstart.towers.blocks import Tower, to_torch
from recsys_coldstart.towers.losses import embedding_alignment_loss, score_regression_loss
from recsys_coldstart.towers.preference import PreferenceTowerModel


@dataclass(frozen=True)
class HeaterConfig(ColdStartTowerConfig):
    """Configuration of :class:`Heater`.

    The training settings (``n_epochs``, ``lr``, ``batch_size``, ``patience``, ``n_negatives``),
    the new-user fold-in (``fold_in``, ``fold_in_k``, ``fold_in_ridge``), ``random_state``,
    ``device``, ``show_progress``, the SVD rank ``base_dim`` and the content map's settings
    (``content_init``, ``content_ridge``, ``content_neighbors``, ``content_blend``) are the fields of
    :class:`~recsys_coldstart.towers.base.ColdStartTowerConfig`, validated at construction.

    Attributes
    ----------
    lr : float
        Adam learning rate, 1e-4 here: the towers learn a correction on top of the closed-form
        content map, and at 1e-3 the score-regression objective overfits within one epoch on ml-100k
        item-cold (val Recall@20 0.257 at the map -> 0.235 / 0.247 after epoch 1 for DropoutNet /
        Heater), while at 1e-4 epoch 1 (2) beats the map (0.271 / 0.261) (issue 15).
    dim : int
        Output width.
    hidden : tuple of int
        Hidden widths of the shared transformation MLP after the CF / content representation.
    pref_dim : int or None
        Width of the (normalised) pretrained CF vectors and of each expert's output; None = their own.
    n_experts : int
        Number of experts in the mixture-of-experts content transform.
    dropout_prob : float
        Randomized training: probability that a warm row's CF vector is replaced by its
        content-based representation (the paper's ``p``).
    transform_prob : float
        Probability that the CF vector is replaced by the mean CF vector of the row's interactions
        (the few-shot path).
    alpha : float
        Weight of the similarity constraint ``||Z - P||^2`` between content and CF representations.
    content_init : {"map", "random"}
        ``"map"``: the content representation is ``Z = m(x) + MoE(x)`` with ``m`` the fixed
        closed-form content map to the CF vectors
        (:class:`~recsys_coldstart.towers.blocks.ContentMap`) and the experts starting at zero,
        and the transformation is residual, ``T(r) = r + MLP(r)`` with the MLP's output layer at
        zero (so the towers output ``pref_dim``): training starts at the attribute-to-feature map
        and learns Heater's correction. ``"random"``: the paper's plain MoE and MLP.
    """

    lr: float = field(default=1e-4, metadata=greater_than(0))
    dim: int = field(default=128, metadata=at_least(1, integer=True))
    hidden: tuple[int, ...] = field(default=(256,), metadata=at_least(1, integer=True, each=True))
    pref_dim: int | None = field(default=64, metadata=at_least(1, integer=True, none=True))
    n_experts: int = field(default=5, metadata=at_least(1, integer=True))
    dropout_prob: float = field(default=0.5, metadata=between(0.0, 1.0))
    transform_prob: float = field(default=0.2, metadata=between(0.0, 1.0))
    alpha: float = field(default=1.0, metadata=at_least(0.0))


class MixtureOfExperts(nn.Module):
    """``Z = sum_k softmax(x W_g)_k * tanh(x W_k + b_k)``: content (b, d_in) -> (b, d_out).

    Parameters
    ----------
    d_in, d_out, n_experts : int
    """

    def __init__(self, d_in: int, d_out: int, n_experts: int) -> None:
        super().__init__()
        self.gate = Tower([d_in], (), n_experts)
        self.experts = Tower([d_in], (), d_out * n_experts)
        self.n_experts, self.d_out = n_experts, d_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mix the experts for a batch ``x`` (dense or sparse), returns (b, d_out)."""
        g = torch.softmax(self.gate([x]), dim=1)
        e = torch.tanh(self.experts([x])).view(-1, self.n_experts, self.d_out)
        return (g[:, :, None] * e).sum(1)


class Heater(PreferenceTowerModel):
    """Heater (Zhu et al., SIGIR 2020).

    Each side has a pretrained CF vector ``P`` (frozen, from any fitted embedding model or an SVD)
    and a content representation ``Z = MoE(features)`` (a mixture of experts). The representation
    fed to the shared transformation MLP ``T`` is ``P`` for warm rows and ``Z`` for cold rows; during
    *randomized training* a warm row uses ``Z`` with probability ``dropout_prob``. The loss is

    .. math:: \\sum_{(u,i)} (P_u P_i^T - T_U(r_u) T_I(r_i)^T)^2
              + \\alpha \\big(\\lVert Z_u - P_u \\rVert^2 + \\lVert Z_i - P_i \\rVert^2\\big)

    (reconstruction of the pretrained scores, as in DropoutNet, plus Heater's similarity
    constraint). A side without features has ``Z = 0``. By default (``content_init="map"``)
    ``Z`` and ``T`` start at the closed-form content map and the identity (see :class:`HeaterConfig`).

    Fitted attributes: ``user_factors_`` (n_users, dim), ``item_factors_`` (n_items, dim),
    ``pref_users_``, ``pref_items_``, ``history_``.
    """

    config_class = HeaterConfig

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Heater (Zhu et al., SIGIR 2020, Sec. 5): 5 experts in the randomized mixture (swept
        1-10), dropout 0.5 (swept 0-1), the similarity-constraint weight α searched on a log
        grid around 1 (here 0.01-10); Adam lr around 1e-3, dim 64-256 (paper 200).
        """
        return {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "dim": trial.suggest_categorical("dim", [64, 128, 256]),
            "n_experts": trial.suggest_int("n_experts", 1, 10),
            "dropout_prob": trial.suggest_float("dropout_prob", 0.1, 0.9),
            "alpha": trial.suggest_float("alpha", 0.01, 10.0, log=True),
        }

    def _build(self) -> None:
        c = self.config
        p, from_map = self._pref_width, c.content_init == "map"
        res = 0 if from_map else None
        nets = {
            "user_tower": Tower([p], c.hidden, self._out_dim, residual_block=res),
            "item_tower": Tower([p], c.hidden, self._out_dim, residual_block=res),
        }
        if self.d_user_features_:
            nets["user_moe"] = MixtureOfExperts(self.d_user_features_, p, c.n_experts)
        if self.d_item_features_:
            nets["item_moe"] = MixtureOfExperts(self.d_item_features_, p, c.n_experts)
        self._nets = nn.ModuleDict(nets)
        if from_map:
            for key, net in self._nets.items():
                (net.experts if key.endswith("_moe") else net).zero_output_layer()

    def _content(self, side: str, feats, b: int, device, rows: np.ndarray | None = None) -> torch.Tensor:
        key = f"{side}_moe"
        if key not in self._nets or feats is None:
            return torch.zeros(b, self._pref_width, device=device)
        z = self._nets[key](to_torch(feats, device))
        est = self._content_estimate(side, feats, rows, device)
        return z if est is None else z + est

    def _forward_side(self, side: str, pref: np.ndarray, feats, device, rows: np.ndarray | None = None) -> torch.Tensor:
        p = to_torch(pref, device)  # rows dropped or without a CF vector take the content path
        r = self._fill_missing(p, lambda idx: self._content(side, take_rows(feats, idx), len(idx), device, take_rows(rows, idx)))
        return self._nets[f"{side}_tower"]([r])

    def _train_loss(self, eu, ei, u, cand, pu, pc, device) -> torch.Tensor:
        target = torch.from_numpy(self.pref_users_[u] @ self.pref_items_[cand].T).to(device)
        loss = score_regression_loss(eu @ ei.T, target)
        if self.config.alpha > 0:
            for side, idx, feats in (("user", u, self._train_uf), ("item", cand, self._train_itf)):
                if f"{side}_moe" in self._nets and feats is not None:
                    table = self.pref_users_ if side == "user" else self.pref_items_
                    z = self._content(side, feats[idx], len(idx), device, rows=idx)
                    loss = loss + self.config.alpha * embedding_alignment_loss(
                        z, torch.from_numpy(table[idx]).to(device), kind="mse")
        return loss

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None,
            init_factors: Any = None, support: Interactions | None = None) -> Heater:
        """Fit on ``train``; ``init_factors`` gives the pretrained CF vectors and ``support`` a
        user-cold split's revealed items (see :class:`DropoutNet`).

        Returns
        -------
        self
        """
        c = self.config
        rng = check_random_state(c.random_state)
        device = resolve_device(c.device)
        self._prep(train, init_factors, rng, val)
        self._train_uf = self._features(self._side_matrix(train, "user"), "user")
        self._train_itf = self._features(self._side_matrix(train, "item"), "item")
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.random.manual_seed(int(rng.integers(2**31)))
            self._build()
        try:
            self._fit_loop(train, val, callback, rng, device, support=support)
        finally:
            del self._train_uf, self._train_itf
        return self
