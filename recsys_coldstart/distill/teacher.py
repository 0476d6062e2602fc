"""Two-tower teacher: pretrained ID embeddings + side-feature MLPs, trained with ID dropout.

References
----------
- Covington, Adams & Sargin, "Deep Neural Networks for YouTube Recommendations", RecSys 2016
  (two towers, sampled softmax); Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large
  Corpus Item Recommendations", RecSys 2019 (in-batch negatives, temperature).
- Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems",
  NeurIPS 2017 (input dropout of the preference / ID part; the *user transform* that replaces
  a user's ID vector by the mean of the item vectors they interacted with).
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
from recsys_coldstart.config import at_least, between, greater_than, one_of
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.distill.losses import bpr_loss
from recsys_coldstart.towers.base import (
    ColdStartTowerConfig,
    TowerRecommender,
    base_factors,
    dropout_modes,
    duplicate_mask,
    log_popularity_prior,
    sample_warm,
    warm_mask,
)
from recsys_coldstart.towers.blocks import (
    Tower,
    drop_entries,
    few_shot_keep_prob,
    fit_dim,
    row_normalize,
    to_torch,
)
from recsys_coldstart.towers.losses import sampled_softmax_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwoTowerTeacherConfig(ColdStartTowerConfig):
    """Configuration of :class:`TwoTowerTeacher`.

    The training settings (``n_epochs``, ``lr``, ``batch_size``, ``patience``, ``n_negatives``),
    the new-user fold-in (``fold_in``, ``fold_in_k``, ``fold_in_ridge``), ``random_state``,
    ``device``, ``show_progress``, the SVD rank ``base_dim`` and the content map's settings
    (``content_init``, ``content_ridge``, ``content_neighbors``, ``content_blend``,
    ``content_history``) are the fields of
    :class:`~recsys_coldstart.towers.base.ColdStartTowerConfig`, validated at construction.

    ``content_init="map"`` (default) makes the teacher *start where its init model is*: the
    towers' output layers start at zero (so ``e = x_id`` for every row with an ID), the
    pretrained vectors are zero-padded to ``dim`` (dot products kept), and a row without an ID
    vector (cold, or its ID dropped in training) takes the closed-form content map's estimate
    of it as its ID input, fitted on the pretrained vectors (ridge / k-NN / content-KNN-style
    history, chosen on val). Before the first step the teacher therefore scores val exactly as
    the init model does on that path (with ``item_bias=False`` and ``dim`` at least the init
    width), and early stopping keeps that start unless an epoch beats it. ``"random"``: the
    former start (random MLPs on top of the ID vectors, zero ID input for cold rows).

    Attributes
    ----------
    dim : int
        Width of the ID embeddings and of both towers' outputs.
    hidden : tuple of int
        Hidden widths of each tower's MLP (2 hidden layers = a 3-layer MLP).
    id_dropout : float
        Probability of zeroing a row's ID part during training (DropoutNet), per side.
    transform_prob : float
        Probability of replacing the ID part by the mean ID vector of the row's (randomly
        thinned) interactions, target removed: the path cold users / items with a few revealed
        interactions take.
    loss : {"softmax", "bpr"}
        Task loss: sampled softmax over in-batch + ``n_negatives`` sampled items, or BPR.
    temperature : float
        Softmax temperature ``tau``.
    weight_decay : float
        Adam's weight decay on every trained parameter (towers and ID embeddings). Named apart from
        the graph models' ``reg`` on purpose: that is an L2 term on the batch's embeddings inside
        the loss, this is the optimiser's decay of all weights.
    dropout : float
        Dropout on hidden activations.
    logq_correction : bool
        Subtract ``log q`` (expected candidate counts) from the softmax logits (Yi et al. 2019).
    few_shot_prob : float
        Probability that a row taking the bag transform keeps only 1..``few_shot_max`` of its
        interactions (in expectation) instead of a uniform 5-100% of them: the regime of cold
        users / items that reveal a handful of interactions (user-cold with ``K`` support items).
    few_shot_max : int
        Largest number of interactions kept by the few-shot thinning.
    item_bias : bool
        Add a learned per-item bias ``b_i`` to the score, ``s(u, i) = e_u . e_i + b_i`` (zero for
        items without train interactions and for items whose ID part is dropped in training, so
        cold items are ranked by their towers alone), initialised to the log-popularity prior
        ``tau * (log n_i - mean_j log n_j)`` over warm items. It lets the model keep item
        popularity, which dot-product towers trained with an in-batch softmax under-weight.
        Served as one extra embedding column: ``[e_u, 1] . [e_i, b_i]``.
    """

    dim: int = field(default=256, metadata=at_least(1, integer=True))
    hidden: tuple[int, ...] = field(default=(256, 256), metadata=at_least(1, integer=True, each=True))
    id_dropout: float = field(default=0.3, metadata=between(0.0, 1.0))
    transform_prob: float = field(default=0.2, metadata=between(0.0, 1.0))
    loss: str = field(default="softmax", metadata=one_of("softmax", "bpr"))
    temperature: float = field(default=0.2, metadata=greater_than(0.0))
    weight_decay: float = field(default=0.0, metadata=at_least(0.0))
    dropout: float = field(default=0.0, metadata=between(0.0, 1.0, high_open=True))
    logq_correction: bool = False
    few_shot_prob: float = field(default=0.0, metadata=between(0.0, 1.0))
    few_shot_max: int = field(default=10, metadata=at_least(1, integer=True))
    item_bias: bool = False


class TwoTowerTeacher(TowerRecommender):
    """Two-tower teacher with ID + side-feature towers and DropoutNet-style ID dropout.

    Each side computes ``e = x_id + MLP([x_id ; x_feat])`` where ``x_id`` is a learnable ID
    embedding initialised from a pretrained model (LightGCN, SimGCL, ALS, ...; dimension
    projected by :func:`~recsys_coldstart.towers.blocks.fit_dim`). During training the ID part
    is zeroed with probability ``id_dropout`` and replaced by the mean ID vector of the row's
    interactions with probability ``transform_prob``, so the same network embeds cold users /
    items from features (and a few revealed interactions). The score is ``e_u . e_i``. New users
    are embedded by default with the learned ridge fold-in (``fold_in="ridge"``: features + mean
    revealed item vector -> user vector, fitted on the warm users' first-``fold_in_k`` reveals);
    ``fold_in="tower"`` runs the user tower on them instead.

    By default (``content_init="map"``, see :class:`TwoTowerTeacherConfig`) the MLPs' output layers
    start at zero and a row without an ID (cold, or dropped in training) takes the content map's
    estimate of its pretrained vector as ID input, so before the first step the teacher scores val
    as its init model does on that path and early stopping (the start is a candidate) never returns
    it worse on val. The former start (random MLPs added to the IDs, cold rows from the MLP alone)
    is why a teacher initialised from a good LightGCN began training at val Recall@20 0.003.

    References: Covington et al. RecSys 2016; Yi et al. RecSys 2019; Volkovs et al. NeurIPS 2017.

    Fitted attributes
    -----------------
    user_factors_ : np.ndarray of float32, shape (n_users, dim)
        Users with train interactions use their ID; users without (cold) use features only.
    item_factors_ : np.ndarray of float32, shape (n_items, dim)
        Same rule; cold items in the vocabulary get feature-only vectors.
    history_ : list of dict
        Per-epoch logs.
    """

    config_class = TwoTowerTeacherConfig

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Sampled-softmax two-tower ranges: temperature 0.05-1 (Yi et al., RecSys 2019, report
        τ ≈ 0.05 as best on YouTube; in-batch softmax recommenders use 0.1-0.2), ID dropout 0-0.7
        (DropoutNet, Volkovs et al. NeurIPS 2017: best 0.5), Adam lr 1e-4..1e-2 around the common
        1e-3, dim 64-256 (the default 256 included), L2 weight decay 0 or up to 1e-4.
        """
        return {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "dim": trial.suggest_categorical("dim", [64, 128, 256]),
            "temperature": trial.suggest_float("temperature", 0.05, 1.0, log=True),
            "id_dropout": trial.suggest_float("id_dropout", 0.0, 0.7),
            "transform_prob": trial.suggest_float("transform_prob", 0.0, 0.5),
            "weight_decay": trial.suggest_categorical("weight_decay", [0.0, 1e-6, 1e-5, 1e-4]),
        }

    def _build(self) -> None:
        c = self.config
        self._nets = nn.ModuleDict({
            "user_emb": nn.Embedding(self.n_users_in_, c.dim),
            "item_emb": nn.Embedding(self.n_items_in_, c.dim),
            "user_tower": Tower([c.dim, self.d_user_features_], c.hidden, c.dim, residual_block=0, dropout=c.dropout),
            "item_tower": Tower([c.dim, self.d_item_features_], c.hidden, c.dim, residual_block=0, dropout=c.dropout),
        })
        if c.item_bias:
            self._nets["item_bias"] = nn.Embedding(self.n_items_in_, 1)
            nn.init.zeros_(self._nets["item_bias"].weight)
        if c.content_init == "map":  # start at the init model: the MLP corrections start at zero
            self._nets["user_tower"].zero_output_layer()
            self._nets["item_tower"].zero_output_layer()

    # ------------------------------------------------------------------ forward helpers
    def _bag(self, obs: sp.csr_matrix, table: nn.Embedding, device) -> torch.Tensor:
        if torch.is_grad_enabled() or device.type != "cpu":
            return torch.sparse.mm(to_torch(row_normalize(obs), device), table.weight)
        # serving on CPU: a scipy sparse x dense product avoids building a torch COO tensor
        return torch.from_numpy(np.asarray(row_normalize(obs) @ table.weight.numpy(), np.float32))

    def _fill_cold(self, side: str, x_id: torch.Tensor, missing: np.ndarray, feats,
                   rows: np.ndarray | None) -> torch.Tensor:
        """``x_id`` (b, dim) with the rows in ``missing`` (no ID input) replaced by the content
        map's estimate (``content_init="map"``; unchanged otherwise). ``rows``: train row ids
        (the training cache, leave-one-out) or None (new rows)."""
        idx = np.flatnonzero(missing)
        if len(idx) == 0 or feats is None:
            return x_id
        est = self._content_estimate(side, feats[idx], None if rows is None else rows[idx], x_id.device)
        if est is None:
            return x_id
        return x_id.index_copy(0, torch.from_numpy(idx).to(x_id.device), est)

    def _user_forward(self, observed, features) -> torch.Tensor:
        dev = next(self._nets.parameters()).device
        b = observed.shape[0] if observed is not None else features.shape[0]
        x_id = (self._bag(observed, self._nets["item_emb"], dev) if observed is not None
                else torch.zeros(b, self.config.dim, device=dev))
        empty = np.ones(b, bool) if observed is None else np.diff(sp.csr_matrix(observed).indptr) == 0
        x_id = self._fill_cold("user", x_id, empty, features, None)
        return self._bias_column(self._nets["user_tower"]([x_id, to_torch(features, dev)]), 1.0)

    def _item_forward(self, observed, features) -> torch.Tensor:
        dev = next(self._nets.parameters()).device
        b = observed.shape[0] if observed is not None else features.shape[0]
        x_id = (self._bag(observed, self._nets["user_emb"], dev) if observed is not None
                else torch.zeros(b, self.config.dim, device=dev))
        empty = np.ones(b, bool) if observed is None else np.diff(sp.csr_matrix(observed).indptr) == 0
        x_id = self._fill_cold("item", x_id, empty, features, None)
        return self._bias_column(self._nets["item_tower"]([x_id, to_torch(features, dev)]), 0.0)

    def _bias_column(self, e: torch.Tensor, value: float) -> torch.Tensor:
        """``[e, value]`` when the model has item biases (users: 1; items without a bias: 0)."""
        if not self.config.item_bias:
            return e
        return torch.cat([e, torch.full((e.shape[0], 1), value, device=e.device)], dim=1)

    def _side_forward(self, side: str, idx: np.ndarray, mode: np.ndarray, R: sp.csr_matrix,
                      target: np.ndarray | None, feats, rng: np.random.Generator, device) -> torch.Tensor:
        """Training forward of one side; ``mode``: 0 ID, 1 zero (cold), 2 bag transform."""
        own = self._nets["user_emb" if side == "user" else "item_emb"]
        other = self._nets["item_emb" if side == "user" else "user_emb"]
        t_idx = torch.from_numpy(idx).to(device)
        x_id = own(t_idx)
        keep = torch.from_numpy(mode == 0).to(device)[:, None].float()
        x_id = x_id * keep
        tr = np.flatnonzero(mode == 2)
        if len(tr):
            thin = rng.uniform(0.05, 1.0, len(tr))
            thin = few_shot_keep_prob(thin, np.diff(R.indptr)[idx[tr]], self.config.few_shot_prob,
                                      self.config.few_shot_max, rng)
            bag_rows = drop_entries(R[idx[tr]], None if target is None else target[tr], thin, rng)
            bag = self._bag(bag_rows, other, device)
            x_id = x_id.index_add(0, torch.from_numpy(tr).to(device), bag)
        x_id = self._fill_cold(side, x_id, mode == 1, None if feats is None else feats[idx], idx)
        f = None if feats is None else to_torch(feats[idx], device)
        tower = self._nets["user_tower" if side == "user" else "item_tower"]
        return tower([x_id, f])

    # ------------------------------------------------------------------ fit
    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None,
            init_factors: Any = None, support: Interactions | None = None) -> TwoTowerTeacher:
        """Train both towers on ``train``'s positives.

        Parameters
        ----------
        train : Interactions
            Warm training data; cold users / items are rows / columns without entries.
        val : Interactions, optional
            Held-out positives for early stopping (Recall@20 over all items).
        callback : callable, optional
            ``callback(epoch, logs) -> stop?``.
        init_factors : EmbeddingModel, tuple (U, V) or None
            Pretrained factors for the ID embeddings; None = truncated SVD of ``train``.
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
        U0, V0 = base_factors(train, init_factors, c.base_dim, rng)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.random.manual_seed(int(rng.integers(2**31)))
            self._build()
        from_map = c.content_init == "map"
        U1 = fit_dim(U0, c.dim, rng, pad_noise=0.0 if from_map else 0.01)
        V1 = fit_dim(V0, c.dim, rng, pad_noise=0.0 if from_map else 0.01)
        with torch.no_grad():
            self._nets["user_emb"].weight.copy_(torch.from_numpy(U1))
            self._nets["item_emb"].weight.copy_(torch.from_numpy(V1))
        R0 = train.user_items
        wu0, wi0 = warm_mask(R0, 1), warm_mask(R0, 0)
        # the content map on the init vectors: cold rows start where the init model's content path puts them
        self._fit_content_maps(train, {"user": (U1 * wu0[:, None], wu0), "item": (V1 * wi0[:, None], wi0)}, val)
        if c.item_bias:  # log-popularity prior: b_i = tau * (log n_i - mean log n), 0 for cold items
            with torch.no_grad():
                self._nets["item_bias"].weight.copy_(torch.from_numpy(
                    log_popularity_prior(train.user_items, c.temperature)[:, None]))
        self._nets.to(device)
        gen = torch_generator(rng, device)
        R = train.user_items.tocsr()
        RT = R.T.tocsr()
        uf = self._features(self._side_matrix(train, "user"), "user")
        itf = self._features(self._side_matrix(train, "item"), "item")
        uf = None if uf is None else sp.csr_matrix(uf) if sp.issparse(uf) else uf
        itf = None if itf is None else sp.csr_matrix(itf) if sp.issparse(itf) else itf
        users, items, _, _ = train.to_coo_arrays()
        warm_items = np.flatnonzero(warm_mask(R, 0))
        item_freq = np.bincount(items, minlength=train.n_items) / max(len(items), 1)
        opt = torch.optim.Adam(self._nets.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        n = len(users)
        if n == 0:
            raise ValueError("train has no interactions")

        def mode_of(b: int) -> np.ndarray:
            return dropout_modes(rng, b, c.id_dropout, c.transform_prob)

        def epoch_fn(epoch: int) -> dict[str, float]:
            self._nets.train()
            total, steps = 0.0, 0
            for sel in self._epoch_batches(n, gen, device):  # this rank's shard under torchrun
                u, i = users[sel], items[sel]
                b = len(sel)
                neg = sample_warm(rng, warm_items, c.n_negatives)
                cand = np.concatenate([i, neg])
                eu = self._side_forward("user", u, mode_of(b), R, i, uf, rng, device)
                cand_mode = mode_of(len(cand))
                ei = self._side_forward("item", cand, cand_mode, RT,
                                        np.concatenate([u, np.full(len(neg), -1)]), itf, rng, device)
                logits = eu @ ei.T
                if c.item_bias:  # b_i only for candidates that kept their ID (cold items have none)
                    keep_b = torch.from_numpy(cand_mode == 0).to(device).float()
                    logits = logits + (self._nets["item_bias"](torch.from_numpy(cand).to(device))[:, 0] * keep_b)[None, :]
                if c.loss == "softmax":
                    lq = None
                    if c.logq_correction:
                        lq = torch.from_numpy(np.log(b * item_freq[cand] + c.n_negatives / len(warm_items))
                                              .astype(np.float32)).to(device)
                    loss = sampled_softmax_loss(logits, temperature=c.temperature,
                                                mask=duplicate_mask(i, cand, device), log_q=lq)
                elif c.loss == "bpr":
                    loss = bpr_loss(logits.diagonal(), logits[:, b:])
                else:
                    raise ValueError(f"unknown loss {c.loss!r}; choose 'softmax' or 'bpr'")
                self._step(opt, loss)  # data-parallel: gradients averaged over ranks
                total += float(loss.detach())
                steps += 1
            return {"loss": total / max(steps, 1)}

        rng = self._data_parallel(rng)  # per-rank sampling under torchrun; rng itself in one process
        self._train_loop(train=train, val=val, epoch_fn=epoch_fn, finalize=lambda: self._finalize(train, uf, itf),
                         callback=callback, desc="teacher", support=support)
        return self

    def _finalize(self, train: Interactions, uf, itf) -> None:
        """Compute ``user_factors_`` / ``item_factors_``: ID path for warm rows, features for cold."""
        self._nets.eval()
        dev = next(self._nets.parameters()).device
        R = train.user_items
        wu = warm_mask(R, 1)
        wi = warm_mask(R, 0)

        def side(name: str, warm: np.ndarray, feats) -> np.ndarray:
            emb = self._nets[f"{name}_emb"]
            tower = self._nets[f"{name}_tower"]

            def fn(rows: np.ndarray) -> torch.Tensor:
                w = torch.from_numpy(warm[rows]).to(dev)[:, None].float()
                x = emb(torch.from_numpy(rows).to(dev)) * w
                x = self._fill_cold(name, x, ~warm[rows], None if feats is None else feats[rows], rows)
                e = tower([x, None if feats is None else to_torch(feats[rows], dev)])
                if not self.config.item_bias:
                    return e
                extra = (torch.ones_like(w) if name == "user"
                         else self._nets["item_bias"](torch.from_numpy(rows).to(dev)) * w)
                return torch.cat([e, extra], dim=1)

            return self._batched(fn, len(warm))

        self.user_factors_ = side("user", wu, uf)
        self.item_factors_ = side("item", wi, itf)
