"""ALDI-style aligned distillation of a warm teacher into content towers for cold items / users.

Huang, Wang, Wang, Zhao & Wang, "Aligning Distillation For Cold-start Item Recommendation"
(ALDI), SIGIR 2023.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_coldstart._utils import check_random_state, resolve_device, torch_generator
from recsys_coldstart.config import at_least, greater_than, one_of
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.foldin import TOWER_FOLD_IN_MODES
from recsys_coldstart.towers.base import (
    ColdStartTowerConfig,
    TowerRecommender,
    base_factors,
    duplicate_mask,
    sample_warm,
    warm_mask,
)
from recsys_coldstart.towers.blocks import Tower, to_torch
from recsys_coldstart.towers.losses import (
    pairwise_alignment_loss,
    sampled_softmax_loss,
    score_distillation_loss,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ALDIConfig(ColdStartTowerConfig):
    """Configuration of :class:`ALDI`.

    The training settings (``n_epochs``, ``lr``, ``batch_size``, ``patience``, ``n_negatives``),
    the new-user fold-in (``fold_in``, ``fold_in_k``, ``fold_in_ridge``; ``fold_in`` defaults to
    ``"tower"`` here), ``random_state``, ``device``, ``show_progress``, the SVD rank ``base_dim``
    and the content map's settings (``content_init``, ``content_ridge``, ``content_neighbors``,
    ``content_blend``) are the fields of :class:`~recsys_coldstart.towers.base.ColdStartTowerConfig`,
    validated at construction.

    Attributes
    ----------
    hidden : tuple of int
        Hidden widths of the content generators (output width = the teacher's).
    alpha_rating, alpha_ranking, alpha_ident : float
        Weights of the rating-distribution, ranking and identification alignment terms.
    task_weight : float
        Weight of the supervised sampled-softmax loss on the real positives.
    gamma : float
        Teacher-qualification weighting ``w_i = tanh(gamma * log(1 + deg_i))``: distillation
        terms trust the teacher more on popular (well-trained) rows.
    temperature : float or None
        Logit scale ``tau`` of the teacher's scores; None = the teacher's own
        ``config.temperature`` if any, else the std of its scores.
    ident_temperature : float
        Temperature of the identification (contrastive, cosine) term.
    fold_in_prior : float
        Weight of the pull towards its content vector ``g(x)`` when a cold row with a few revealed
        interactions is embedded through the generators (``fold_in="tower"`` for users; always for
        items), relative to the mean squared norm of the other side's vectors (the ridge solve of
        :meth:`ALDI._fold_in`). Not ``fold_in_ridge``, the L2 penalty of the learned
        ``fold_in="ridge"`` map of new users; named like BPR's ``fold_in_prior`` (the pull towards
        a prior vector).
    fold_in_max : int
        At most this many revealed interactions are folded in per row.
    content_init : {"map", "random"}
        ``"map"``: each generator is ``g(x) = m(x) + MLP(x)`` with ``m`` the fixed closed-form
        content map from warm rows' features to their teacher vectors
        (:class:`~recsys_coldstart.towers.blocks.ContentMap`) and the MLP's output layer starting
        at zero, so training starts from that map and learns a correction. ``"random"``: a plain
        MLP from a random start.
    """

    hidden: tuple[int, ...] = field(default=(256,), metadata=at_least(1, integer=True, each=True))
    alpha_rating: float = field(default=1.0, metadata=at_least(0.0))
    alpha_ranking: float = field(default=1.0, metadata=at_least(0.0))
    alpha_ident: float = field(default=0.5, metadata=at_least(0.0))
    task_weight: float = field(default=0.5, metadata=at_least(0.0))
    gamma: float = field(default=1.0, metadata=greater_than(0.0))
    temperature: float | None = field(default=None, metadata=greater_than(0.0, none=True))
    ident_temperature: float = field(default=0.1, metadata=greater_than(0.0))
    fold_in_prior: float = field(default=1.0, metadata=at_least(0.0))
    fold_in_max: int = field(default=64, metadata=at_least(1, integer=True))
    fold_in: str = field(default="tower", metadata=one_of(*TOWER_FOLD_IN_MODES))


class ALDI(TowerRecommender):
    """ALDI-style aligned distillation (Huang et al., SIGIR 2023).

    A *warm teacher* (any fitted embedding model: LightGCN, SimGCL, ALS, a
    :class:`~recsys_coldstart.distill.teacher.TwoTowerTeacher`, ...) keeps its vectors for warm
    users and items. Content generators ``g_I(x_i)`` (and ``g_U(f_u)`` when users have features)
    map side features into the teacher's space and are trained on warm rows so that, with the
    teacher's user vectors ``U``:

    - rating distribution alignment: :math:`\\mathrm{KL}(\\mathrm{softmax}(U_u V_C^T/\\tau)\\,\\|\\,
      \\mathrm{softmax}(U_u g(X_C)^T/\\tau))` over the batch candidates ``C``;
    - ranking alignment: :math:`\\mathrm{BCE}(\\sigma(\\Delta^s), \\sigma(\\Delta^t))` on
      positive-minus-negative score gaps (:func:`~recsys_coldstart.towers.losses.pairwise_alignment_loss`);
    - identification alignment: InfoNCE so that ``g(x_i)`` is closest (cosine) to its own teacher
      vector ``V_i`` among the batch;
    - plus a supervised sampled softmax on the real positives;

    the distillation terms weighted per row by the teacher-qualification weight
    ``w = tanh(gamma * log(1 + degree))``. Cold items (and users) get ``g(features)``; a cold
    row with revealed interactions is folded in by ridge regression towards ``g(features)``.
    By default (``content_init="map"``) ``g(x) = m(x) + MLP(x)`` starts at the closed-form content
    map ``m`` from warm rows' features to their teacher vectors (fixed) with the MLP's output at
    zero; early stopping keeps that start if the aligned training does not improve validation.

    Fitted attributes: ``user_factors_`` (n_users, D), ``item_factors_`` (n_items, D),
    ``pos_score_`` (mean teacher score of train positives, the fold-in target), ``history_``.
    """

    config_class = ALDIConfig

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        ALDI (Huang et al., SIGIR 2023, Sec. 4.4): the three alignment weights (rating
        distribution, ranking, identification) are searched on log grids around 1 (here
        0.01-10 each), the teacher-qualification γ in 0-5 (paper's sensitivity study), the
        identification temperature 0.05-1 and the supervised task weight 0-1; Adam lr 1e-4..1e-2.
        """
        return {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "alpha_rating": trial.suggest_float("alpha_rating", 0.01, 10.0, log=True),
            "alpha_ranking": trial.suggest_float("alpha_ranking", 0.01, 10.0, log=True),
            "alpha_ident": trial.suggest_float("alpha_ident", 0.01, 10.0, log=True),
            "gamma": trial.suggest_float("gamma", 0.0, 5.0),
            "ident_temperature": trial.suggest_float("ident_temperature", 0.05, 1.0, log=True),
            "task_weight": trial.suggest_float("task_weight", 0.0, 1.0),
        }

    def _build(self) -> None:
        c = self.config
        nets = {}
        if self.d_item_features_:
            nets["item_gen"] = Tower([self.d_item_features_], c.hidden, self.dim_)
        if self.d_user_features_:
            nets["user_gen"] = Tower([self.d_user_features_], c.hidden, self.dim_)
        if not nets:
            raise ValueError("ALDI needs item or user side features")
        self._nets = nn.ModuleDict(nets)
        if c.content_init == "map":
            for net in self._nets.values():
                net.zero_output_layer()

    def _dev(self):
        return next(self._nets.parameters()).device

    def _gen(self, side: str, feats, b: int, device, rows: np.ndarray | None = None) -> torch.Tensor:
        key = f"{side}_gen"
        if key not in self._nets or feats is None:
            return torch.zeros(b, self.dim_, device=device)
        g = self._nets[key]([to_torch(feats, device)])
        est = self._content_estimate(side, feats, rows, device)
        return g if est is None else g + est

    def _fold_in(self, prior: np.ndarray, observed: sp.csr_matrix | None, table: np.ndarray) -> np.ndarray:
        """Ridge fold-in: ``argmin_x sum_{j in obs} (c - x.v_j)^2 + reg * ||x - prior||^2``.

        Solved in its dual form ``x = prior + V^T (V V^T + reg I)^{-1} (c - V prior)`` on at most
        ``fold_in_max`` revealed rows (the first ones), so the cost per row is O(n^2 d) with n small.
        """
        if observed is None or observed.nnz == 0:
            return prior
        obs = sp.csr_matrix(observed)
        reg = self.config.fold_in_prior * float(np.mean(np.sum(table ** 2, axis=1)))
        out = prior.astype(np.float64)
        cap = self.config.fold_in_max
        for r in np.flatnonzero(np.diff(obs.indptr) > 0):
            cols = obs.indices[obs.indptr[r]:obs.indptr[r + 1]][:cap]
            V = table[cols].astype(np.float64)
            y = self.pos_score_ - V @ out[r]
            alpha = np.linalg.solve(V @ V.T + reg * np.eye(len(cols)), y)
            out[r] = out[r] + V.T @ alpha
        return out.astype(np.float32)

    def _user_forward(self, observed, features) -> torch.Tensor:
        b = observed.shape[0] if observed is not None else features.shape[0]
        prior = self._gen("user", features, b, self._dev()).detach().cpu().numpy()
        return torch.from_numpy(self._fold_in(prior, observed, self.item_factors_))

    def _item_forward(self, observed, features) -> torch.Tensor:
        b = features.shape[0] if features is not None else observed.shape[0]
        prior = self._gen("item", features, b, self._dev()).detach().cpu().numpy()
        return torch.from_numpy(self._fold_in(prior, observed, self.user_factors_))

    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None,
            init_factors: Any = None, support: Interactions | None = None) -> ALDI:
        """Fit the content generators against the warm teacher ``init_factors``.

        Parameters
        ----------
        train : Interactions
        val : Interactions, optional
            Early stopping on Recall@20.
        callback : callable, optional
        init_factors : EmbeddingModel, tuple (U, V) or None
            The warm teacher whose vectors warm rows keep and the generators align to (the same
            keyword as every model that starts from pretrained factors); None = a truncated SVD of
            ``train``.
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
        self._init_features(train)
        U, V = base_factors(train, init_factors, c.base_dim, rng)
        self.dim_ = int(U.shape[1])
        R = train.user_items.tocsr()
        wu, wi = warm_mask(R, 1), warm_mask(R, 0)
        users, items, _, _ = train.to_coo_arrays()
        self.pos_score_ = float(np.mean(np.sum(U[users] * V[items], axis=1)))
        warm_items = np.flatnonzero(wi)
        tau = c.temperature or getattr(getattr(init_factors, "config", None), "temperature", None)
        if tau is None:
            su = rng.integers(0, U.shape[0], 256)
            tau = float(np.std(U[su] @ V[warm_items].T)) or 1.0
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.random.manual_seed(int(rng.integers(2**31)))
            self._build()
        uf = self._features(self._side_matrix(train, "user"), "user")
        itf = self._features(self._side_matrix(train, "item"), "item")
        self._fit_content_maps(train, {"item": (V, wi), "user": (U, wu)}, val)
        self._nets.to(device)
        Ut, Vt = torch.from_numpy(U).to(device), torch.from_numpy(V).to(device)
        qual_u = torch.from_numpy(np.tanh(c.gamma * np.log1p(train.user_degrees())).astype(np.float32)).to(device)
        qual_i = torch.from_numpy(np.tanh(c.gamma * np.log1p(train.item_degrees())).astype(np.float32)).to(device)
        gen = torch_generator(rng, device)
        opt = torch.optim.Adam(self._nets.parameters(), lr=c.lr)
        n = len(users)

        def align(s: torch.Tensor, t: torch.Tensor, b: int, dmask, w_rows: torch.Tensor) -> torch.Tensor:
            loss = c.task_weight * sampled_softmax_loss(s, temperature=tau, mask=dmask)
            loss = loss + c.alpha_rating * score_distillation_loss(s / tau, t / tau, mask=dmask)
            ds = (s.diagonal()[:, None] - s[:, b:]) / tau
            dt = (t.diagonal()[:, None] - t[:, b:]) / tau
            return loss + c.alpha_ranking * pairwise_alignment_loss(ds, dt, w_rows[:, None])

        def ident(g: torch.Tensor, target: torch.Tensor, idx: np.ndarray, w: torch.Tensor) -> torch.Tensor:
            gn = nn.functional.normalize(g, dim=1)
            tn = nn.functional.normalize(target, dim=1)
            logits = gn @ tn.T / c.ident_temperature
            m = idx[:, None] == idx[None, :]
            np.fill_diagonal(m, False)
            logits = logits.masked_fill(torch.from_numpy(m).to(device), float("-inf"))
            per = nn.functional.cross_entropy(logits, torch.arange(len(idx), device=device), reduction="none")
            return (per * w).mean()

        def epoch_fn(epoch: int) -> dict[str, float]:
            self._nets.train()
            total, steps = 0.0, 0
            for sel in self._epoch_batches(n, gen, device):  # this rank's shard under torchrun
                u, i = users[sel], items[sel]
                b = len(sel)
                cand = np.concatenate([i, sample_warm(rng, warm_items, c.n_negatives)])
                tu, tc = torch.from_numpy(u).to(device), torch.from_numpy(cand).to(device)
                dmask = duplicate_mask(i, cand, device)
                t = Ut[tu] @ Vt[tc].T
                loss = torch.zeros((), device=device)
                if "item_gen" in self._nets:
                    g = self._gen("item", itf[cand], len(cand), device, rows=cand)
                    s = Ut[tu] @ g.T
                    loss = loss + align(s, t, b, dmask, qual_i[tc[:b]])
                    uniq = np.unique(cand, return_index=True)[1]
                    loss = loss + c.alpha_ident * ident(g[uniq], Vt[tc[uniq]], cand[uniq], qual_i[tc[uniq]])
                if "user_gen" in self._nets:
                    gu = self._gen("user", uf[u], b, device, rows=u)
                    s = gu @ Vt[tc].T
                    loss = loss + align(s, t, b, dmask, qual_u[tu])
                    uu = np.unique(u, return_index=True)[1]
                    loss = loss + c.alpha_ident * ident(gu[uu], Ut[tu[uu]], u[uu], qual_u[tu[uu]])
                self._step(opt, loss)  # data-parallel: gradients averaged over ranks
                total += float(loss.detach())
                steps += 1
            return {"loss": total / max(steps, 1)}

        def finalize() -> None:
            self._nets.eval()
            dev = self._dev()
            gi = self._batched(lambda r: self._gen("item", None if itf is None else itf[r], len(r), dev, rows=r),
                               train.n_items)
            gu = self._batched(lambda r: self._gen("user", None if uf is None else uf[r], len(r), dev, rows=r),
                               train.n_users)
            self.item_factors_ = np.where(wi[:, None], V, gi).astype(np.float32)
            self.user_factors_ = np.where(wu[:, None], U, gu).astype(np.float32)

        rng = self._data_parallel(rng)  # per-rank sampling under torchrun; rng itself in one process
        self._train_loop(train=train, val=val, epoch_fn=epoch_fn, finalize=finalize, callback=callback,
                         desc="ALDI", support=support)
        return self
