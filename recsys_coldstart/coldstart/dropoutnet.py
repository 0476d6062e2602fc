"""DropoutNet: content + preference towers trained with input dropout.

Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems", NeurIPS 2017.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from recsys_coldstart._utils import check_random_state, resolve_device
from recsys_coldstart.config import at_least, between, greater_than
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.towers.base import ColdStartTowerConfig
from recsys_coldstart.towers.blocks import Tower
from recsys_coldstart.towers.losses import score_regression_loss
from recsys_coldstart.towers.preference import PreferenceTowerModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DropoutNetConfig(ColdStartTowerConfig):
    """Configuration of :class:`DropoutNet`.

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
    content_init : {"map", "random"}
        ``"map"``: a closed-form content estimate of the preference vector
        (:class:`~recsys_coldstart.towers.blocks.ContentMap`: ridge + k-NN attribute-to-feature
        maps fitted on the warm rows, fixed) stands in for a missing preference input as the towers'
        *residual*: ``f(p, x) = r + MLP([p ; x])`` with ``r = p`` when the preference input is
        present and the estimate when it is missing (dropped or cold); the MLP's output layer
        starts at zero, so training starts at the map and learns DropoutNet's correction on top.
        ``"random"``: the paper's plain towers.
    """

    lr: float = field(default=1e-4, metadata=greater_than(0))
    dim: int = field(default=128, metadata=at_least(1, integer=True))
    hidden: tuple[int, ...] = field(default=(256,), metadata=at_least(1, integer=True, each=True))
    pref_dim: int | None = field(default=64, metadata=at_least(1, integer=True, none=True))
    dropout_prob: float = field(default=0.5, metadata=between(0.0, 1.0))
    transform_prob: float = field(default=0.2, metadata=between(0.0, 1.0))


class DropoutNet(PreferenceTowerModel):
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

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        DropoutNet (Volkovs et al., NeurIPS 2017, Sec. 4): input dropout 0.5 best on CiteULike
        and RecSys 2017 (swept 0-1), user / item transform used alongside; Adam lr around 1e-3
        (here 1e-4..1e-2), output dim 64-256 (paper 200 on CiteULike).
        """
        return {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "dim": trial.suggest_categorical("dim", [64, 128, 256]),
            "dropout_prob": trial.suggest_float("dropout_prob", 0.1, 0.9),
            "transform_prob": trial.suggest_float("transform_prob", 0.0, 0.5),
        }

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
            init_factors: Any = None, support: Interactions | None = None) -> DropoutNet:
        """Fit on ``train``.

        Parameters
        ----------
        train : Interactions
        val : Interactions, optional
            Early stopping on Recall@20.
        callback : callable, optional
        init_factors : EmbeddingModel, tuple (U, V) or None
            Pretrained preference vectors; None = truncated SVD of ``train``.
        support : Interactions, optional
            A user-cold split's revealed items (``split.support``): cold val users are validated
            through the new-user path on them, as the test scores them.

        Returns
        -------
        self
        """
        c = self.config
        rng = check_random_state(c.random_state)
        device = resolve_device(c.device)
        self._prep(train, init_factors, rng, val)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.random.manual_seed(int(rng.integers(2**31)))
            self._build()
        self._fit_loop(train, val, callback, rng, device, support=support)
        return self
