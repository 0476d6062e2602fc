"""What the graph pretraining models (LightGCN, SGL, SimGCL, XSimGCL) share: config, epoch, fold-in.

:class:`GraphRecommender` owns everything the models have in common; a model only defines its
config, :meth:`GraphRecommender._batch_loss` and, optionally, :meth:`GraphRecommender._epoch_start`
(SGL draws its augmented graphs there). The epochs run in the package's one fit loop,
:func:`recsys_coldstart.train.fit_loop`.

One epoch (LightGCN / SELFRec convention: one pass over the training interactions in shuffled
mini-batches of ``batch_size`` positives):

1. shuffle the interaction ids on the device (``torch.randperm`` with the model's generator);
2. for each batch: users and positives are the batch's interactions, one uniform negative per
   positive is drawn on the device with ``torch.randint`` and re-drawn (up to 10 rounds) where it
   hits a training positive (vectorised ``searchsorted`` on sorted ``user * n_items + item`` keys);
3. Adam step on the model's loss; a non-finite loss raises
   :class:`~recsys_coldstart.exceptions.TrainingDivergedError` naming the epoch and batch.

Then the loop: every ``eval_every`` epochs ``val_ndcg@eval_k`` and ``val_recall@eval_k`` on
``val`` (full ranking, train positives excluded, users with train interactions only,
:mod:`recsys_coldstart.train.validation`); the best layer-0 embeddings by ``val_metric`` are kept
and restored at the end; ``patience`` evaluations without improvement stop training;
``callback(epoch, logs)`` (True stops); checkpoints with a run fingerprint
(:mod:`recsys_coldstart.train.checkpoint`).

Length: GraphRecommender's shared config, epoch (full or neighbour-sampled, data-parallel) and
fold-in are one base class that four model files of 50-200 lines build on; the config
(GraphTrainConfig and its documentation) is the split candidate.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recsys_coldstart._utils import check_random_state, resolve_device, torch_generator
from recsys_coldstart.base import EmbeddingRecommender
from recsys_coldstart.config import Config, at_least, greater_than, one_of
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.exceptions import DataError, TrainingDivergedError
from recsys_coldstart.foldin import GRAPH_FOLD_IN_MODES as FOLD_IN_MODES
from recsys_coldstart.foldin import apply_fold_in, fit_fold_in
from recsys_coldstart.graph.convert import BipartiteGraph
from recsys_coldstart.graph.encoders import LightGCNEncoder, layer_mean, lightgcn_layers
from recsys_coldstart.graph.losses import bpr_loss, l2_reg
from recsys_coldstart.graph.sampling import BipartiteNeighborSampler, SampledBlocks
from recsys_coldstart.train import (
    CHECKPOINT_FILE,
    RESUME_MODES,
    VAL_METRICS,
    Checkpointer,
    TorchGeneratorState,
    fit_loop,
    log_key,
    run_fingerprint,
    score_factors,
    validation_plan,
)
from recsys_coldstart.train.distributed import current_world, local_device
from recsys_coldstart.types import EpochCallback

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FILE", "FOLD_IN_MODES", "OPTIMIZERS", "SAMPLERS", "TABLES", "GraphRecommender", "GraphTrainConfig", "TrainContext"]

SAMPLERS: tuple[str, ...] = ("full", "neighbor")
OPTIMIZERS: tuple[str, ...] = ("adam", "adagrad", "sgd")
TABLES: tuple[str, ...] = ("dense", "sharded")


@dataclass(frozen=True)
class GraphTrainConfig(Config):
    """Options shared by every graph pretraining model (each model's config extends it).

    The defaults are chosen for a small, dense table (ml-100k-sized: ~1k users, ~2k items,
    ~50k positives) from measurements on ml-100k warm, seeds 0-2
    (``benchmarks/results/pretrain_ml100k.md``, ``benchmarks/results/defaults_ml100k.md``):
    lr 1e-2 with early stopping every 5 epochs and a patience of 3 evaluations beats ALS within
    a few minutes on 2 CPU cores, where the papers' lr 1e-3 / 1000 epochs ran 15 minutes. For
    big graphs (gowalla, yelp2018, amazon-book) the published settings (lr 1e-3, more epochs,
    longer patience) are in ``benchmarks/configs/*.toml``; pass them with
    ``coldstart pretrain --config FILE`` or ``--set key=value``.

    Parameters
    ----------
    dim : int
        Embedding size.
    n_layers : int
        Propagation layers ``L``.
    lr : float
        Learning rate (Adam: 1e-2 for ml-100k-sized tables; the papers use 1e-3 on big graphs).
    optimizer : {"adam", "adagrad", "sgd"}
        ``torch.optim.Adam`` (default, the papers'), ``Adagrad`` or ``SGD`` over the embedding
        tables; with ``tables="sharded"`` fbgemm's fused kernels of the same rule (``"adam"`` there
        needs CUDA, see :mod:`recsys_coldstart.train.sharded`).
    batch_size : int
        Positives per mini-batch (one sampled negative each).
    reg : float
        Weight of the L2 penalty on the batch's layer-0 embeddings.
    n_epochs : int
        Maximum number of epochs (300; early stopping ends ml-100k runs after 35-140).
    eval_every : int
        Evaluate on ``val`` every this many epochs (default 5).
    patience : int
        Stop after this many evaluations without a better val metric (default 3, i.e. 15 epochs
        at lr 1e-2; at the papers' lr 1e-3 val NDCG plateaus near popularity for the first
        ~10-20 epochs, so raise it to 10 with ``lr=1e-3``).
    eval_k : int
        Cutoff of the validation metrics (both ``val_ndcg@eval_k`` and ``val_recall@eval_k``
        are logged).
    val_metric : {"ndcg", "recall"}
        The early-stopping metric.
    max_batches : int or None
        Cap on batches per epoch (speed measurements); None = a full pass.
    fold_in : {"ridge", "graph", "local"}
        How :meth:`GraphRecommender.embed_users` folds new users in (see there).
    fold_in_k : int
        ``fold_in="ridge"``: revealed items simulated per warm user when fitting the fold-in
        regression (match the new users' support size; 3 = the K=3 user-cold protocol).
    fold_in_ridge : float
        ``fold_in="ridge"``: L2 penalty of that regression (10: best mean val cold-user NDCG@20
        of {0.1, 1, 10, 100} on ml-100k user-cold K=3, seeds 0-2; 1 is within 0.003).
    checkpoint_dir : str or None
        Folder for ``checkpoint.pt``. A checkpoint there is resumed only when it was written by
        the same run (model, config, seed, train and val data: the fingerprint of
        :mod:`recsys_coldstart.train.checkpoint`); see ``resume``.
    checkpoint_every : int or None
        With ``checkpoint_dir``: save every this many epochs; None (default) saves after every
        evaluation (every ``eval_every`` epochs). 0 with a ``checkpoint_dir`` is an error (it
        would write nothing).
    resume : {"auto", "must", "never"}
        ``"auto"``: resume a matching checkpoint, refuse one of another run; ``"must"``: a
        matching checkpoint must exist; ``"never"``: start fresh and replace any checkpoint.
    show_progress : bool
        tqdm progress bars (the CLI turns them on).
    sampler : {"full", "neighbor"}
        ``"full"`` (default): every batch propagates the whole graph. ``"neighbor"``: every
        batch propagates only a neighbour-sampled ``n_layers``-hop subgraph around its users,
        positives and negatives (:mod:`recsys_coldstart.graph.sampling`; global-degree
        normalisation, unbiased; equal to full propagation when ``fan_out`` takes every
        neighbour), so batch memory and work are bounded by ``batch_size`` and ``fan_out``, not
        by the graph. Validation and the final factors still propagate the full graph (no
        autograd). Models that support it: LightGCN, SimGCL.
    fan_out : tuple of int or None
        ``sampler="neighbor"``: neighbours sampled per node at hop 1..``n_layers`` (``-1`` = all);
        None = 10 per hop.
    tables : {"dense", "sharded"}
        ``"dense"`` (default): every process holds both embedding tables. ``"sharded"``: under a
        ``torch.distributed`` group, the tables are row-wise sharded over the ranks with TorchRec
        (:mod:`recsys_coldstart.train.sharded`; optional install) and trained by a fused optimiser
        that keeps gradients and optimiser state on each row's owner only. Needs
        ``sampler="neighbor"`` (a batch looks up only its sampled subgraph's rows). Validation
        and the fitted factors gather the whole tables once per epoch (one float copy per rank,
        no gradient or optimiser state); checkpoints are not written in this mode.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    random_state : int or None
    """

    dim: int = field(default=64, metadata=at_least(1, integer=True))
    n_layers: int = field(default=3, metadata=at_least(0, integer=True))
    lr: float = field(default=1e-2, metadata=greater_than(0.0))
    batch_size: int = field(default=2048, metadata=at_least(1, integer=True))
    reg: float = field(default=1e-4, metadata=at_least(0.0))
    n_epochs: int = field(default=300, metadata=at_least(0, integer=True))
    eval_every: int = field(default=5, metadata=at_least(1, integer=True))
    patience: int = field(default=3, metadata=at_least(1, integer=True))
    eval_k: int = field(default=20, metadata=at_least(1, integer=True))
    val_metric: str = field(default="ndcg", metadata=one_of(*VAL_METRICS))
    max_batches: int | None = field(default=None, metadata=at_least(1, integer=True, none=True))
    fold_in: str = field(default="ridge", metadata=one_of(*FOLD_IN_MODES))
    fold_in_k: int = field(default=3, metadata=at_least(1, integer=True))
    fold_in_ridge: float = field(default=10.0, metadata=at_least(0.0))
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = field(default=None, metadata=at_least(0, integer=True, none=True))
    resume: str = field(default="auto", metadata=one_of(*RESUME_MODES))
    show_progress: bool = False
    sampler: str = field(default="full", metadata=one_of(*SAMPLERS))
    fan_out: tuple[int, ...] | None = None
    optimizer: str = field(default="adam", metadata=one_of(*OPTIMIZERS))
    tables: str = field(default="dense", metadata=one_of(*TABLES))
    device: str = "auto"
    random_state: int | None = 0

    def _check(self) -> None:
        super()._check()
        if self.fan_out is not None and (len(self.fan_out) != self.n_layers
                                         or any(int(f) == 0 or int(f) < -1 for f in self.fan_out)):
            raise ValueError(f"fan_out must have n_layers={self.n_layers} entries, each >= 1 or -1 (all "
                             f"neighbours), got {self.fan_out!r}")
        if self.tables == "sharded" and self.sampler != "neighbor":
            raise ValueError("tables='sharded' needs sampler='neighbor': full-graph propagation reads every row of "
                             "both tables at every step, which sharded tables exist to avoid")
        if self.tables == "sharded" and self.checkpoint_dir:
            raise ValueError("tables='sharded' does not write checkpoints (the fused optimiser's state lives in "
                             "the shards); drop checkpoint_dir or use tables='dense'")
        if self.checkpoint_dir and self.checkpoint_every == 0:
            raise ValueError("checkpoint_every=0 with a checkpoint_dir would write nothing: give checkpoint_every "
                             ">= 1, or None to checkpoint after every evaluation")


@dataclass
class TrainContext:
    """What a model's loss sees during ``fit``.

    Attributes
    ----------
    graph : BipartiteGraph
    adj : torch sparse CSR (n_users + n_items, n_users + n_items)
        The full normalised training graph.
    encoder : LightGCNEncoder
    generator : torch.Generator
    device : torch.device
    state : dict
        Per-epoch model state (e.g. SGL's augmented graphs; ``"tables"``: the
        :class:`~recsys_coldstart.train.sharded.ShardedTables` of ``tables="sharded"``).
    """

    graph: BipartiteGraph
    adj: torch.Tensor
    encoder: LightGCNEncoder
    generator: torch.Generator
    device: torch.device
    state: dict

    def layer0(self, blocks: SampledBlocks) -> torch.Tensor:
        """Differentiable layer-0 rows of a sampled subgraph's nodes, shape (n_sampled, dim): from
        the sharded tables when training with ``tables="sharded"``, else from the encoder's."""
        tables = self.state.get("tables")
        if tables is not None:
            return tables.lookup(blocks.node, self.graph.n_users)
        return blocks.gather(self.encoder.user_emb, self.encoder.item_emb, self.graph.n_users)


class GraphRecommender(EmbeddingRecommender):
    """Base of the LightGCN-family models: shared ``fit``, fold-in, save/load.

    Attributes after ``fit``
    ------------------------
    user_factors_ : np.ndarray of float32, shape (n_users, dim)
        Final (layer-mean) user representations on the training graph.
    item_factors_ : np.ndarray of float32, shape (n_items, dim)
    user_emb0_, item_emb0_ : np.ndarray of float32, shapes (n_users, dim), (n_items, dim)
        Learned layer-0 embeddings (also written to ``weights.pt`` on save).
    train_ui_ : scipy CSR of float32, shape (n_users, n_items)
        The training graph, kept so fold-in can add new edges to it.
    history_ : dict of str to np.ndarray of float64, each of shape (epochs_run,)
        Per-epoch record: ``epoch``, ``loss``, ``seconds``, ``val_ndcg@K``, ``val_recall@K``
        (NaN where not evaluated).
    best_epoch_ : int
        Epoch (1-based) whose weights were kept (the last one without validation).
    """

    include_input: ClassVar[bool] = True
    """Whether layer 0 enters the layer mean (LightGCN, SGL) or not (SimGCL, XSimGCL)."""

    samplers: ClassVar[tuple[str, ...]] = ("full",)
    """The ``sampler`` values the model implements (``"neighbor"``: :meth:`_sampled_batch_loss`)."""

    @classmethod
    def backbone_space(cls, trial, n_layers: int | None = None) -> dict:
        """The search-space part every graph model shares: optimiser and its lr, L2 weight, dim,
        layers (``n_layers`` when the caller drew it already) and the batch sampler.

        - ``optimizer``: Adam (LightGCN, He et al., SIGIR 2020: lr 1e-3; here 1e-4..1e-2) or
          Adagrad (the optimiser of the BPR-MF line, Rendle et al. UAI 2009, and of row-sparse
          embedding training; lr 1e-2..0.3, drawn as ``adagrad_lr``). On ml-100k warm, sampled
          LightGCN with Adagrad lr 0.1 reached test NDCG@20 0.2675 at otherwise default settings
          against 0.2561 for tuned Adam (``benchmarks/results/scale_sharded.json``).
        - ``reg``: the L2 weight, 1e-6..1e-2 (LightGCN's grid, best 1e-4); ``dim`` 32-256;
          ``n_layers`` 1-4 (LightGCN's best: 3).
        - ``sampler``: ``"full"`` or ``"neighbor"`` for the models that implement both.
        """
        optimizer = trial.suggest_categorical("optimizer", ["adam", "adagrad"])
        lr = (trial.suggest_float("lr", 1e-4, 1e-2, log=True) if optimizer == "adam"
              else trial.suggest_float("adagrad_lr", 1e-2, 0.3, log=True))
        space = {
            "optimizer": optimizer,
            "lr": lr,
            "reg": trial.suggest_float("reg", 1e-6, 1e-2, log=True),
            "dim": trial.suggest_categorical("dim", [32, 64, 128, 256]),
            "n_layers": n_layers if n_layers is not None else trial.suggest_int("n_layers", 1, 4),
        }
        if len(cls.samplers) > 1:
            space["sampler"] = trial.suggest_categorical("sampler", list(cls.samplers))
        return space

    # ------------------------------------------------------------------ model hooks
    def _setup(self, ctx: TrainContext) -> None:
        """Called once after the encoder is built (before any resume)."""

    def _epoch_start(self, ctx: TrainContext) -> None:
        """Called at the start of every epoch (e.g. SGL draws its two augmented graphs)."""

    def _batch_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                    neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of one mini-batch of (user, positive, negative) triples, each int64 of shape (b,).

        Returns the scalar loss and a dict of its parts (for logging).
        """
        raise NotImplementedError

    def _sampled_batch_loss(self, ctx: TrainContext, blocks: SampledBlocks, users: torch.Tensor, pos: torch.Tensor,
                            neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``sampler="neighbor"``: loss of one batch on its sampled subgraph ``blocks``; ``users``,
        ``pos``, ``neg`` are *local* seed rows (int64 of shape (b,))."""
        raise NotImplementedError

    def _local_rec_loss(self, x0: torch.Tensor, final: torch.Tensor, users: torch.Tensor, pos: torch.Tensor,
                        neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_rec_loss` on a sampled subgraph: rows are local (``x0``, ``final`` indexed by seed row)."""
        u, i, j = final[users], final[pos], final[neg]
        bpr = bpr_loss((u * i).sum(1), (u * j).sum(1))
        reg = self.config.reg * l2_reg(x0[users], x0[pos], x0[neg], batch_size=len(users))
        return bpr, reg

    def _neighbor_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                       neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sample the batch's subgraph around its users, positives and negatives, then
        :meth:`_sampled_batch_loss` on local rows."""
        nu, b = ctx.graph.n_users, len(users)
        seeds, inv = torch.unique(torch.cat([users, pos + nu, neg + nu]), return_inverse=True)
        blocks = ctx.state["sampler"].sample_blocks(seeds)
        return self._sampled_batch_loss(ctx, blocks, inv[:b], inv[b:2 * b], inv[2 * b:])

    def _rec_loss(self, ctx: TrainContext, emb0: torch.Tensor, final: torch.Tensor, users: torch.Tensor,
                  pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BPR on the final representations + L2 on the batch's layer-0 embeddings: ``(bpr, reg)``."""
        nu = ctx.graph.n_users
        u, i, j = final[users], final[nu + pos], final[nu + neg]
        bpr = bpr_loss((u * i).sum(1), (u * j).sum(1))
        reg = self.config.reg * l2_reg(emb0[users], emb0[nu + pos], emb0[nu + neg], batch_size=len(users))
        return bpr, reg

    # ------------------------------------------------------------------ fit
    def fit(self, train: Interactions, *, val: Interactions | None = None,
            callback: EpochCallback | None = None) -> GraphRecommender:
        """Train on ``train``'s interaction graph; early-stop on ``val`` if given.

        Runs :func:`recsys_coldstart.train.fit_loop` with one pass over the training
        interactions as the epoch (see the module docstring).

        Parameters
        ----------
        train : Interactions
            Training positives (cold users / items: empty rows / columns).
        val : Interactions, optional
            Held-out positives on the same vocabulary, for early stopping.
        callback : callable, optional
            ``callback(epoch, logs) -> bool`` with ``epoch`` from 1; ``logs`` has ``loss``,
            ``seconds`` and, on evaluation epochs, ``val_ndcg@K`` and ``val_recall@K``. True
            stops training.

        Returns
        -------
        self
        """
        cfg = self.config
        if train.nnz == 0:
            raise DataError(f"{type(self).__name__}: the training data has no interactions")
        if cfg.sampler not in self.samplers:
            raise ValueError(f"{type(self).__name__} does not support sampler={cfg.sampler!r}; it supports "
                             f"{self.samplers} (neighbour sampling: LightGCN, SimGCL)")
        rng = check_random_state(cfg.random_state)
        world = current_world()  # one process unless a torch.distributed group is running
        device = local_device(cfg.device)
        gen = torch_generator(rng, device)
        # negatives / augmentations: gen itself in one process, a per-rank generator under DDP
        sample_gen, _, reseed = world.sampling_streams(torch_gen=gen)
        ui = train.user_items
        graph = BipartiteGraph(ui, device)
        encoder = LightGCNEncoder(graph.n_users, graph.n_items, cfg.dim, cfg.n_layers,
                                  include_input=self.include_input, generator=gen, device=device)
        ctx = TrainContext(graph=graph, adj=graph.adjacency(), encoder=encoder, generator=sample_gen, device=device,
                           state={})
        self._setup(ctx)
        batch_loss = self._batch_loss
        if cfg.sampler == "neighbor":
            fan_out = cfg.fan_out if cfg.fan_out is not None else (10,) * cfg.n_layers
            ctx.state["sampler"] = BipartiteNeighborSampler(graph, fan_out, generator=sample_gen)
            batch_loss = self._neighbor_loss
        tables = None
        if cfg.tables == "sharded":  # TorchRec row-wise shards + fused optimiser; encoder = a gathered mirror
            from recsys_coldstart.train.sharded import ShardedTables

            tables = ShardedTables(encoder.user_emb.detach(), encoder.item_emb.detach(), lr=cfg.lr,
                                   optimizer=cfg.optimizer, device=device)
            ctx.state["tables"] = tables
            opt = None
        else:
            opt = _optimizer(cfg.optimizer, encoder.parameters(), cfg.lr)
        pos_keys = graph.edge_user * graph.n_items + graph.edge_item  # sorted: CSR is row-major, sorted
        local_batch = world.local_batch(cfg.batch_size)  # batch_size is the global batch
        n_batches = math.ceil(math.ceil(graph.n_edges / world.world_size) / local_batch)
        if cfg.max_batches is not None:
            n_batches = min(n_batches, int(cfg.max_batches))
        # graph models cannot embed users without edges, and rank all items (numbers as before)
        plan = validation_plan(ui, val, ks=(cfg.eval_k,), need_history=True, cold_items=False)
        name = type(self).__name__

        def epoch_fn(epoch: int) -> dict[str, float]:
            encoder.train()
            self._epoch_start(ctx)
            perm = world.shard(torch.randperm(graph.n_edges, generator=gen, device=device))
            total = torch.zeros((), device=device)
            inner = range(n_batches)
            if cfg.show_progress and n_batches >= 50:
                from tqdm.auto import tqdm

                inner = tqdm(inner, desc=f"epoch {epoch}", unit="batch", leave=False)
            for b in inner:
                idx = perm[b * local_batch:(b + 1) * local_batch]
                users, pos = graph.edge_user[idx], graph.edge_item[idx]
                neg = _sample_negatives(users, graph.n_items, pos_keys, sample_gen)
                loss, _ = batch_loss(ctx, users, pos, neg)
                if opt is not None:
                    opt.zero_grad(set_to_none=True)
                loss.backward()  # sharded tables: row gradients go to their owners, whose fused optimiser steps
                loss = world.average_gradients(opt, loss)  # DDP: mean grads (and loss) over ranks
                if not torch.isfinite(loss):  # every rank sees the averaged loss: all stop together
                    raise TrainingDivergedError(
                        f"{name}: the training loss became {loss.item()} at epoch {epoch}, "
                        f"batch {b + 1}/{n_batches} (lr={cfg.lr}); lower the learning rate or check the data")
                if opt is not None:
                    opt.step()
                total += loss.detach()
            if tables is not None:  # every rank: the mirror that validation, early stopping and the factors read
                with torch.no_grad():
                    users_t, items_t = tables.full()
                    encoder.user_emb.copy_(users_t)
                    encoder.item_emb.copy_(items_t)
            return {"loss": float(total.item()) / n_batches}

        def validate() -> dict[str, float]:
            encoder.eval()
            with torch.no_grad():
                u, v = self._final(ctx.adj, encoder.emb0(), graph.n_users)
            return score_factors(plan, u, v)

        checkpoint = None
        if cfg.checkpoint_dir:
            checkpoint = Checkpointer(cfg.checkpoint_dir, run_fingerprint(self, train, val, world_size=world.world_size),
                                      every=cfg.checkpoint_every or cfg.eval_every, resume=cfg.resume)
        result = fit_loop(
            epoch_fn, n_epochs=cfg.n_epochs, validate=validate if plan is not None else None,
            monitor=log_key(cfg.val_metric, cfg.eval_k), eval_every=cfg.eval_every, patience=cfg.patience,
            module=encoder, callback=callback, checkpoint=checkpoint,
            resumable={"encoder": encoder, "generator": TorchGeneratorState(gen),
                       **({"optimizer": opt} if opt is not None else {})},
            on_epoch_start=reseed, world=world, show_progress=cfg.show_progress, desc=name, diverged_hint=f" (lr={cfg.lr}); lower the learning rate")
        self.history_ = result.history
        self.best_epoch_ = int(result.best_epoch)
        self.train_ui_ = sp.csr_matrix(ui, dtype=np.float32)
        with torch.no_grad():
            self.user_emb0_ = encoder.user_emb.detach().cpu().numpy().astype(np.float32)
            self.item_emb0_ = encoder.item_emb.detach().cpu().numpy().astype(np.float32)
            users_f, items_f = self._final(ctx.adj, encoder.emb0(), graph.n_users)
        self.user_factors_ = users_f.cpu().numpy().astype(np.float32)
        self.item_factors_ = items_f.cpu().numpy().astype(np.float32)
        self._layers_cache = None
        feats = train.user_features.values if train.user_features is not None else None
        self.fold_in_coef_, self.fold_in_fill_ = fit_fold_in(
            ui, train.timestamps, feats, self.user_factors_, self.item_factors_, k=cfg.fold_in_k,
            ridge=cfg.fold_in_ridge, random_state=rng)
        return self

    # ------------------------------------------------------------------ inference helpers
    def _final(self, adj: torch.Tensor, emb0: torch.Tensor, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Unperturbed final representations (users (n_users, d), items (n_items, d))."""
        final = layer_mean(lightgcn_layers(adj, emb0, self.config.n_layers), include_input=self.include_input)
        return final[:n_users], final[n_users:]

    # ------------------------------------------------------------------ fold-in
    def embed_users(self, observed: sp.csr_matrix | None = None, features: np.ndarray | None = None) -> np.ndarray:
        """Embed users unseen at fit time from their observed items, without retraining.

        A new user's layer-0 embedding is the mean of the layer-0 embeddings of the items they
        interacted with (zeros if none: such a user scores every item 0). Then:

        - ``fold_in="ridge"`` (default): a ridge regression from the user's side features and the
          mean of their revealed items' final vectors to a user vector, fitted at the end of
          ``fit`` on the warm users, each revealing their ``fold_in_k`` earliest positives
          (see :mod:`recsys_coldstart.foldin`). Uses ``features`` (imputed with the
          warm mean when None); a user who revealed nothing gets the feature prior.
        - ``fold_in="graph"``: the new users are appended to the training graph with
          their edges, the augmented graph is re-normalised and the learned layer-0 embeddings are
          propagated through it exactly as in training; the new users' rows of the layer mean are
          returned. New users in one call share the graph (they can influence each other through
          common items at layer >= 3, by O(1/degree)).
        - ``fold_in="local"``: only the new user's own aggregation uses the new edges:
          ``e_u^(k) = Σ_{i∈N(u)} e_i^(k-1) / sqrt(|N(u)| (d_i + 1))`` with the items' layer
          embeddings of the training graph, so every user is embedded independently of the batch.

        Parameters
        ----------
        observed : scipy CSR of shape (b, n_items)
            Each new user's revealed positives.
        features : np.ndarray or scipy sparse, shape (b, d_user), optional
            Side features; used by ``fold_in="ridge"`` only.

        Returns
        -------
        np.ndarray of float32, shape (b, dim)
        """
        self._check_fitted("item_factors_")
        if observed is None:
            raise ValueError(f"{type(self).__name__}.embed_users needs observed interactions")
        obs = sp.csr_matrix(observed, dtype=np.float32)
        if obs.shape[1] != self.n_items_:
            raise ValueError(f"observed has {obs.shape[1]} columns for {self.n_items_} items")
        obs.data[:] = 1.0
        obs.eliminate_zeros()
        if self.config.fold_in == "ridge":
            self._check_fitted("fold_in_coef_")
            return apply_fold_in(obs, features, self.item_factors_, self.fold_in_coef_, self.fold_in_fill_)
        deg = np.diff(obs.indptr).astype(np.float32)
        e0 = (obs @ self.item_emb0_) / np.maximum(deg, 1.0)[:, None]
        if self.config.fold_in == "graph":
            return self._fold_in_graph(obs, e0.astype(np.float32))
        return self._fold_in_local(obs, deg, e0.astype(np.float32))

    def _fold_in_graph(self, obs: sp.csr_matrix, e0: np.ndarray) -> np.ndarray:
        device = resolve_device(self.config.device)
        n_users = self.train_ui_.shape[0]
        aug = sp.vstack([sp.csr_matrix(self.train_ui_), obs], format="csr")
        adj = BipartiteGraph(aug, device).adjacency()
        emb0 = torch.from_numpy(np.concatenate([self.user_emb0_, e0, self.item_emb0_])).to(device)
        with torch.no_grad():
            users, _ = self._final(adj, emb0, n_users + obs.shape[0])
        return users[n_users:].cpu().numpy().astype(np.float32)

    def _item_layers(self) -> list[np.ndarray]:
        cache = getattr(self, "_layers_cache", None)
        if cache is None:
            device = resolve_device(self.config.device)
            adj = BipartiteGraph(self.train_ui_, device).adjacency()
            emb0 = torch.from_numpy(np.concatenate([self.user_emb0_, self.item_emb0_])).to(device)
            n_users = self.train_ui_.shape[0]
            with torch.no_grad():
                layers = lightgcn_layers(adj, emb0, self.config.n_layers)
            cache = [x[n_users:].cpu().numpy() for x in layers]
            self._layers_cache = cache
        return cache

    def _fold_in_local(self, obs: sp.csr_matrix, deg: np.ndarray, e0: np.ndarray) -> np.ndarray:
        item_layers = self._item_layers()
        d_item = np.bincount(self.train_ui_.indices, minlength=self.n_items_).astype(np.float32) + 1.0
        w = obs.copy()
        rows = np.repeat(np.arange(obs.shape[0]), np.diff(obs.indptr))
        w.data = (1.0 / np.sqrt(np.maximum(deg[rows], 1.0) * d_item[w.indices])).astype(np.float32)
        layers = [e0] + [np.asarray(w @ item_layers[k - 1]) for k in range(1, self.config.n_layers + 1)]
        sel = layers if (self.include_input or self.config.n_layers == 0) else layers[1:]
        return np.mean(sel, axis=0).astype(np.float32)

    # ------------------------------------------------------------------ save / load
    def _save_extra(self, folder: Path) -> None:
        """Write the layer-0 embeddings as a torch ``state_dict`` to ``weights.pt``."""
        torch.save({"user_emb": torch.from_numpy(np.ascontiguousarray(self.user_emb0_)),
                    "item_emb": torch.from_numpy(np.ascontiguousarray(self.item_emb0_))}, Path(folder) / "weights.pt")

    def _load_extra(self, folder: Path) -> None:
        """Read ``weights.pt`` (``torch.load(weights_only=True)``) back into the layer-0 embeddings."""
        f = Path(folder) / "weights.pt"
        if f.is_file():
            state = torch.load(f, map_location="cpu", weights_only=True)
            self.user_emb0_ = state["user_emb"].numpy().astype(np.float32)
            self.item_emb0_ = state["item_emb"].numpy().astype(np.float32)
        self._layers_cache = None

    def config_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for result records)."""
        return dataclasses.asdict(self.config)


def _optimizer(kind: str, params, lr: float) -> torch.optim.Optimizer:
    """``torch.optim`` optimiser ``kind`` (``"adam"``, ``"adagrad"``, ``"sgd"``) with learning rate ``lr``."""
    if kind == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _sample_negatives(users: torch.Tensor, n_items: int, pos_keys: torch.Tensor, gen: torch.Generator,
                      max_rounds: int = 10) -> torch.Tensor:
    """One uniform negative item per user, re-drawn where it is a training positive.

    Parameters
    ----------
    users : torch.Tensor of int64, shape (b,)
    n_items : int
    pos_keys : torch.Tensor of int64, shape (nnz,)
        Sorted ``user * n_items + item`` of the training positives.
    gen : torch.Generator

    Returns
    -------
    torch.Tensor of int64, shape (b,)
        After ``max_rounds`` a (rare) remaining collision is kept.
    """
    neg = torch.randint(n_items, users.shape, generator=gen, device=users.device)
    last = len(pos_keys) - 1
    for _ in range(max_rounds):
        keys = users * n_items + neg
        hit = pos_keys[torch.searchsorted(pos_keys, keys).clamp(max=last)] == keys
        if not bool(hit.any()):
            break
        neg = torch.where(hit, torch.randint(n_items, users.shape, generator=gen, device=users.device), neg)
    return neg
