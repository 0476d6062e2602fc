"""Shared plumbing of the tower models (teacher, student, DropoutNet, Heater, ALDI).

Used by :mod:`recsys_coldstart.distill` and :mod:`recsys_coldstart.coldstart`; the layers live in
:mod:`recsys_coldstart.towers.blocks`, the new-user fold-in in :mod:`recsys_coldstart.foldin`.

- :class:`TowerRecommender`: an :class:`~recsys_coldstart.base.EmbeddingRecommender` whose
  torch modules live in ``self._nets`` (an ``nn.ModuleDict``), saved to ``weights.pt`` and rebuilt
  from fitted scalars on load; embeddings computed in batches on CPU; top-k through
  :class:`recsys_coldstart.retrieval.EmbeddingIndex`.
- :func:`base_factors`: pretrained user / item factors from any fitted embedding model, a
  ``(U, V)`` pair, or (when nothing is given) a quick truncated SVD of the train matrix.
- :class:`TowerConfig` / :class:`ColdStartTowerConfig`: the config fields every tower model
  shares, validated at construction.
- :meth:`TowerRecommender._train_loop`: the models' fit tail on the package's one fit loop
  (:func:`recsys_coldstart.train.fit_loop`): early stopping on ``val_{val_metric}@{eval_k}``
  with the start state as a candidate, best-state restore, ``callback``, progress bar.

Length: TowerRecommender is one class (features, fit tail on the one fit loop, batched embedding,
fold-in, serving through the index, save/load) shared by five models; the free helpers (sampling,
masks, priors) are the split candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from recsys_coldstart.base import EmbeddingRecommender
from recsys_coldstart.config import Config, at_least, between, greater_than, one_of
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.foldin import TOWER_FOLD_IN_MODES, apply_fold_in, fit_fold_in
from recsys_coldstart.towers.blocks import ContentMap, feature_scale, scaled, to_torch
from recsys_coldstart.train import (
    VAL_METRICS,
    ValidationPlan,
    fit_loop,
    log_key,
    score_factors,
    validation_plan,
)
from recsys_coldstart.train.distributed import World, current_world

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"


def base_factors(train: Interactions, base: Any, dim: int = 64,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pretrained ``(user_factors, item_factors)`` to initialise or feed a tower model.

    Parameters
    ----------
    train : Interactions
        The training data (used for the SVD fallback and shape checks).
    base : EmbeddingModel, tuple of two arrays, or None
        A fitted model with ``user_factors_`` (n_users, d) and ``item_factors_`` (n_items, d)
        (LightGCN, SimGCL, ALS, a teacher, ...), or the two arrays. None: a truncated SVD of
        ``train.user_items`` of rank ``dim`` (scaled by the square root of the singular values).
    dim : int
        Rank of the SVD fallback.

    Returns
    -------
    U : np.ndarray of float32, shape (n_users, d)
    V : np.ndarray of float32, shape (n_items, d)
    """
    if base is None:
        from scipy.sparse.linalg import svds

        m = sp.csr_matrix(train.user_items, dtype=np.float64)
        k = max(1, min(dim, min(m.shape) - 1))
        v0 = (rng or np.random.default_rng(0)).random(min(m.shape))
        u, s, vt = svds(m, k=k, v0=v0)
        r = np.sqrt(s)
        return (u * r).astype(np.float32), (vt.T * r).astype(np.float32)
    if isinstance(base, tuple):
        U, V = base
    else:
        U, V = base.user_factors_, base.item_factors_
    U = np.asarray(U, np.float32)
    V = np.asarray(V, np.float32)
    if U.shape[0] != train.n_users or V.shape[0] != train.n_items:
        raise ValueError(f"base factors have {U.shape[0]} users x {V.shape[0]} items, the train data "
                         f"{train.n_users} x {train.n_items}: fit the base model on the same split")
    return U, V


def log_popularity_prior(user_items: sp.spmatrix, scale: float) -> np.ndarray:
    """Centred log item counts ``scale * (log n_i - mean_{j warm} log n_j)``; 0 for items without
    interactions. float32 of shape (n_items,) (the initial per-item bias of the tower models)."""
    n = np.asarray(sp.csr_matrix(user_items).sum(axis=0), np.float64).ravel()
    out = np.zeros(len(n), np.float32)
    w = n > 0
    if w.any():
        lg = np.log(n[w])
        out[w] = scale * (lg - lg.mean())
    return out


def warm_mask(m: sp.csr_matrix, axis: int) -> np.ndarray:
    """Boolean mask of rows (axis=1) or columns (axis=0) of ``m`` with at least one entry."""
    if axis == 1:
        return np.diff(sp.csr_matrix(m).indptr) > 0
    return np.bincount(sp.csr_matrix(m).indices, minlength=m.shape[1]) > 0


VAL_MAX_USERS = 2000
"""Tower validation scores at most this many val users (the first ones): it runs every epoch."""


def tower_validation_plan(train: Interactions, val: Interactions | None, k: int = 20) -> ValidationPlan | None:
    """The validation plan of a tower model (:func:`recsys_coldstart.train.validation_plan`).

    Every user with a val positive counts (tower models embed users without history from their
    features), at most :data:`VAL_MAX_USERS` of them; on an item-cold split the users rank the
    cold items only, as the ``cold-item`` segment does. None without val positives.
    """
    if val is None or not val.nnz:
        return None
    return validation_plan(train, val, ks=(k,), need_history=False, cold_items=True, max_users=VAL_MAX_USERS,
                           sample_seed=None)


def support_rows(train: Interactions, val: Interactions | None, support: Interactions | None) -> sp.csr_matrix | None:
    """``support``'s positives as a CSR on ``train``'s vocabulary, restricted to users without training
    positives (the cold users: a warm user is embedded from its training row); None when there
    is nothing to use (no val, no support, or no cold val user revealed anything).

    Parameters
    ----------
    train, val, support : Interactions
        One split's parts (``val`` and ``support`` may be None), shape (n_users, n_items).

    Returns
    -------
    scipy.sparse.csr_matrix of float32, shape (n_users, n_items), or None
        Rows of warm users are empty.

    Raises
    ------
    ValueError
        When ``support`` is on another vocabulary than ``train``.
    """
    if support is None or val is None or not getattr(support, "nnz", 0):
        return None
    rev = sp.csr_matrix(support.user_items, dtype=np.float32)
    if rev.shape != train.user_items.shape:
        raise ValueError(f"support has shape {rev.shape}, train {train.user_items.shape}: use one split's parts")
    cold = np.diff(train.user_items.tocsr().indptr) == 0
    rev = sp.diags(cold.astype(np.float32)) @ rev
    rev.eliminate_zeros()
    return rev.tocsr() if rev.nnz else None


def _plus(train: Interactions, reveal: sp.csr_matrix) -> sp.csr_matrix:
    """Train positives plus the revealed ones, CSR (n_users, n_items): what a validation ranking
    leaves out."""
    return (sp.csr_matrix(train.user_items, dtype=np.float32) + reveal).tocsr()


CONTENT_INIT_MODES: tuple[str, ...] = ("map", "random")


@dataclass(frozen=True)
class TowerConfig(Config):
    """Config fields shared by every tower model, validated at construction.

    The configs of :class:`~recsys_coldstart.distill.TwoTowerTeacher`,
    :class:`~recsys_coldstart.distill.Student` and (through :class:`ColdStartTowerConfig`)
    :class:`~recsys_coldstart.coldstart.DropoutNet`, :class:`~recsys_coldstart.coldstart.Heater`
    and :class:`~recsys_coldstart.coldstart.ALDI` extend it; a model with a different default
    redeclares the field (with the same range check). A value out of range raises
    ``ValueError: <Config>.<field> must be <range>, got <value>``.

    Attributes
    ----------
    n_epochs : int
        Passes over the train positives (>= 0; 0 keeps the starting point, e.g. the content map).
    lr : float
        Adam learning rate (> 0).
    batch_size : int
        Train positives per step (>= 1).
    patience : int or None
        Early stopping: evaluations (one per epoch) without a better ``val_{val_metric}@{eval_k}``
        before stopping (>= 1); None = train all ``n_epochs``. Only used when ``fit`` gets
        ``val``. The state before training (e.g. the content map) is a candidate too.
    val_metric : {"recall", "ndcg"}
        The early-stopping metric (both are logged, from one ranking).
    eval_k : int
        Cutoff of the validation metrics (>= 1).
    n_negatives : int
        Sampled warm items added to each batch's candidates (>= 0).
    fold_in : {"tower", "ridge"}
        How new users are embedded (:data:`recsys_coldstart.foldin.TOWER_FOLD_IN_MODES`):
        ``"tower"`` runs the user tower on their revealed items and features; ``"ridge"`` is the
        learned fold-in of :mod:`recsys_coldstart.foldin`, fitted after training on the warm users.
    fold_in_k : int
        Items each warm user reveals when the ridge fold-in is fitted (>= 1).
    fold_in_ridge : float
        L2 penalty of the ridge fold-in (>= 0).
    random_state : int or None
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    show_progress : bool
    content_init : {"map", "random"}
        ``"map"``: start from the closed-form content map
        (:class:`~recsys_coldstart.towers.blocks.ContentMap`) fitted on the warm rows (each model
        says how); ``"random"``: the paper's plain networks from a random start.
    content_ridge : float
        The map's ridge strength on the scaled features (> 0).
    content_neighbors : int
        The map's number of k-NN neighbours (>= 0).
    content_blend : float or None
        The map's k-NN weight in [0, 1]; None = chosen on ``val`` among 0, 0.25, ..., 1 (0.5
        without val).
    content_history : bool
        With ``content_blend=None``, also offer the content-KNN-style *user-history similarity*
        estimate (:meth:`~recsys_coldstart.towers.blocks.ContentMap.fit_history`: the vector whose
        dot products with the other side reproduce content-KNN's scores) on ``val``, alone and
        half-and-half with the chosen blend, so a map-started model starts no lower on val than
        content-KNN's signal on the same features (dense or sparse).
    """

    n_epochs: int = field(default=30, metadata=at_least(0, integer=True))
    lr: float = field(default=1e-3, metadata=greater_than(0))
    batch_size: int = field(default=1024, metadata=at_least(1, integer=True))
    patience: int | None = field(default=5, metadata=at_least(1, integer=True, none=True))
    val_metric: str = field(default="recall", metadata=one_of(*VAL_METRICS))
    eval_k: int = field(default=20, metadata=at_least(1, integer=True))
    n_negatives: int = field(default=256, metadata=at_least(0, integer=True))
    fold_in: str = field(default="ridge", metadata=one_of(*TOWER_FOLD_IN_MODES))
    fold_in_k: int = field(default=3, metadata=at_least(1, integer=True))
    fold_in_ridge: float = field(default=10.0, metadata=at_least(0))
    random_state: int | None = 0
    device: str = "auto"
    show_progress: bool = False
    content_init: str = field(default="map", metadata=one_of(*CONTENT_INIT_MODES))
    content_ridge: float = field(default=5.0, metadata=greater_than(0))
    content_neighbors: int = field(default=20, metadata=at_least(0, integer=True))
    content_blend: float | None = field(default=None, metadata=between(0.0, 1.0, none=True))
    content_history: bool = True


@dataclass(frozen=True)
class ColdStartTowerConfig(TowerConfig):
    """:class:`TowerConfig` plus the SVD fallback of the models built on pretrained vectors.

    Shared by :class:`~recsys_coldstart.coldstart.DropoutNet`,
    :class:`~recsys_coldstart.coldstart.Heater` and :class:`~recsys_coldstart.coldstart.ALDI`.

    Attributes
    ----------
    base_dim : int
        Rank of the SVD vectors used when ``fit`` gets no ``init_factors`` (>= 1).
    """

    base_dim: int = field(default=64, metadata=at_least(1, integer=True))


class TowerRecommender(EmbeddingRecommender):
    """Base of the tower models: feature handling, batched embedding, save / load, serving.

    Subclasses implement ``_build()`` (create ``self._nets`` from fitted scalars) and
    ``_user_forward`` / ``_item_forward``.

    New users (``embed_users``) follow the config's ``fold_in`` (shared by every tower model):

    - ``"tower"``: the user tower runs on their revealed items and features;
    - ``"ridge"``: a ridge regression from [user features, mean revealed item vector, 1] to the
      model's user vector, fitted after training on the warm users, each revealing their
      ``fold_in_k`` earliest positives, with L2 penalty ``fold_in_ridge`` (the graph models'
      default fold-in, :mod:`recsys_coldstart.foldin`).
    """

    _index_backend: ClassVar[str] = "exact"

    # ------------------------------------------------------------------ features
    def _init_features(self, train: Interactions) -> None:
        uf, itf = train.user_features, train.item_features
        self.d_user_features_ = 0 if uf is None else int(uf.n_features)
        self.d_item_features_ = 0 if itf is None else int(itf.n_features)
        self.user_scale_ = feature_scale(uf) if uf is not None else np.zeros(0, np.float32)
        self.item_scale_ = feature_scale(itf) if itf is not None else np.zeros(0, np.float32)
        self.n_users_in_ = int(train.n_users)
        self.n_items_in_ = int(train.n_items)

    def _features(self, x: np.ndarray | sp.spmatrix | None, side: str) -> np.ndarray | sp.csr_matrix | None:
        d = self.d_user_features_ if side == "user" else self.d_item_features_
        if d == 0:
            return None
        if x is None:
            return None
        if x.shape[1] != d:
            raise ValueError(f"expected {d} {side} features, got {x.shape[1]}")
        return scaled(x, self.user_scale_ if side == "user" else self.item_scale_)

    @staticmethod
    def _side_matrix(train: Interactions, side: str) -> np.ndarray | sp.csr_matrix | None:
        f = train.user_features if side == "user" else train.item_features
        return None if f is None else f.values

    # ------------------------------------------------------------------ content map
    def _fit_content_maps(self, train: Interactions, tables: dict[str, tuple[np.ndarray, np.ndarray]],
                          val: Interactions | None = None) -> None:
        """``content_init="map"``: fit a :class:`~recsys_coldstart.towers.blocks.ContentMap` per side.

        ``tables[side] = (vectors (n_rows, p), warm mask (n_rows,))``: the map is fitted on the
        warm rows' scaled features and vectors and stored as fitted attributes ``{side}_cmap_*_``.
        With ``content_blend=None`` its k-NN weight is chosen on ``val`` (the early-stopping
        metric, ``val_{val_metric}@{eval_k}``, of the start:
        warm rows keep their vectors, rows without one get the estimate; 0.5 without val). The
        estimates of every train row are cached for training, leave-one-out for warm rows (a warm
        row is never its own neighbour), so training sees the map as cold rows will.
        """
        c = self.config
        self._train_est: dict[str, np.ndarray] = {}
        if c.content_init != "map":
            return
        for side, (table, warm) in tables.items():
            x = self._features(self._side_matrix(train, side), side)
            rows = np.flatnonzero(warm)
            if x is None or len(rows) == 0:
                continue
            blend = 0.5 if c.content_blend is None else c.content_blend
            cmap = ContentMap.fit(x[rows], table[rows], c.content_ridge, c.content_neighbors, blend)
            own = np.full(x.shape[0], -1, np.int64)
            own[rows] = np.arange(len(rows))
            plan = tower_validation_plan(train, val, c.eval_k) if c.content_blend is None else None
            if plan is not None:
                lin, knn = cmap.parts(x, self_index=own)
                other = tables["item" if side == "user" else "user"][0]
                key = log_key(c.val_metric, c.eval_k)
                hist = None
                if c.content_history:  # content-KNN's own signal, as a candidate start (issue 15)
                    raw = self._side_matrix(train, side)
                    inter = train.user_items if side == "item" else train.user_items.T
                    hist = cmap.fit_history(raw, inter, other)
                    scale = self.user_scale_ if side == "user" else self.item_scale_
                    cmap.hist_idf = (cmap.hist_idf / scale).astype(np.float32)  # serving sees scaled features

                def score(est, side=side, table=table, warm=warm, other=other, plan=plan, key=key):
                    start = np.where(warm[:, None], table, est).astype(np.float32)
                    u, v = (start, other) if side == "user" else (other, start)
                    return score_factors(plan, u, v)[key]

                scores = cmap.select_blend(lin, knn, score, hist=hist)
                logger.info("%s %s content map: val %s by option %s -> blend %.2f, history %.2f", type(self).__name__,
                            side, key, {k: round(v, 4) for k, v in scores.items()}, cmap.blend, cmap.hist_weight)
                est = cmap.blend * knn + (1.0 - cmap.blend) * lin
                if cmap.hist_weight > 0:
                    est = cmap.hist_weight * hist + (1.0 - cmap.hist_weight) * est
                self._train_est[side] = est.astype(np.float32)
                setattr(self, f"{side}_cmap_val_",
                        {(k.replace("=", "_") if isinstance(k, str) else f"blend_{k}"): v for k, v in scores.items()})
            else:  # fixed blend: transform skips the k-NN part when its weight is 0
                self._train_est[side] = cmap.transform(x, self_index=own)
            for name, value in cmap.to_arrays(f"{side}_cmap").items():
                setattr(self, name, value)

    def _content_estimate(self, side: str, feats, rows: np.ndarray | None, device) -> torch.Tensor | None:
        """The content map's estimate, float32 tensor (b, p) on ``device``, for scaled features
        ``feats`` (b, d); read from the training cache when ``rows`` (train row ids, (b,)) are
        given during fit; None without a map or features."""
        if self.config.content_init != "map" or feats is None:
            return None
        cache = getattr(self, "_train_est", {}).get(side)
        if rows is not None and cache is not None:
            return to_torch(cache[rows], device)
        cmap = ContentMap.from_arrays(self, f"{side}_cmap")
        return None if cmap is None else to_torch(cmap.transform(feats), device)

    # ------------------------------------------------------------------ torch state
    def _build(self) -> None:
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        """Number of parameters needed to serve (training-only heads excluded)."""
        self._check_fitted("item_factors_")
        return int(sum(p.numel() for p in self._nets.parameters()))

    @property
    def n_stored(self) -> int:
        """Numbers kept to serve new users and items: :attr:`n_parameters` plus the fitted arrays
        of the content maps (``*_cmap_*_``: ridge weights, the warm rows' features (stored entries
        of sparse ones) and vectors the k-NN and history parts read) and a student's
        ``item_memory_``."""
        total = self.n_parameters
        for name, value in vars(self).items():
            if name.endswith("_") and ("_cmap_" in name or name == "item_memory_"):
                if sp.issparse(value):
                    total += int(value.nnz)
                elif isinstance(value, np.ndarray):
                    total += int(value.size)
        return int(total)

    def _save_extra(self, folder: Path) -> None:
        torch.save(self._nets.state_dict(), Path(folder) / WEIGHTS_FILE)

    def _load_extra(self, folder: Path) -> None:
        self._build()
        state = torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self._nets.load_state_dict(state)
        self._nets.eval()

    def _to_cpu(self) -> None:
        self._nets.to("cpu")
        self._nets.eval()

    def _train_loop(self, *, train: Interactions, val: Interactions | None,
                    epoch_fn: Callable[[int], dict[str, float]], finalize: Callable[[], None],
                    callback: Callable | None, desc: str, support: Interactions | None = None) -> None:
        """The shared fit tail of every tower model.

        Runs :func:`recsys_coldstart.train.fit_loop` (one evaluation per epoch when ``val`` has
        positives: ``val_ndcg@eval_k`` and ``val_recall@eval_k`` of the current factors, early
        stopping on ``val_metric`` with the start state as a candidate), stores ``history_``,
        ``best_epoch_`` (0: the start state was kept), ``val_start_`` / ``val_best_`` (the val logs
        of the start and of the kept state: how far training moved val) and ``kept_start_``, moves the nets to the CPU and calls
        ``finalize()`` once more so ``user_factors_`` / ``item_factors_`` come from the best weights.

        With ``support`` (the revealed items of a user-cold split's cold users, val users among
        them), validation embeds each cold val user the way the test path does
        (:meth:`embed_users` on their support and features: the ridge fold-in, refitted on the
        current warm vectors, or the user tower) and leaves their support out of the ranking;
        without it a cold val user is embedded from features alone, which is not the path a
        revealing user is served by.
        """
        c = self.config
        reveal = support_rows(train, val, support)
        plan = tower_validation_plan(train if reveal is None else _plus(train, reveal), val, c.eval_k)
        if plan is not None and reveal is not None:
            cold_val = plan.users[np.diff(reveal[plan.users].indptr) > 0]
            reveal = reveal if len(cold_val) else None
        uf_all = train.user_features.values if train.user_features is not None else None

        calls: list[dict[str, float]] = []

        def validate() -> dict[str, float]:
            finalize()
            users = self.user_factors_
            if reveal is not None:  # cold val users: the new-user path on what they revealed
                self._fit_fold_in(train)
                users = users.copy()
                users[cold_val] = self.embed_users(reveal[cold_val], None if uf_all is None else uf_all[cold_val])
            logs = score_factors(plan, users, self.item_factors_)
            calls.append(logs)
            return logs

        result = fit_loop(epoch_fn, n_epochs=c.n_epochs, validate=validate if plan is not None else None,
                          monitor=log_key(c.val_metric, c.eval_k), eval_every=1, patience=c.patience,
                          score_start=True, module=self._nets, callback=callback, show_progress=c.show_progress,
                          desc=desc, diverged_hint=f" (lr={c.lr}); lower the learning rate",
                          world=self._dp[0], on_epoch_start=self._dp[1])
        self._dp = (World(), None)
        self.history_ = result.history
        self.best_epoch_ = int(result.best_epoch)
        # the start state's val (fit_loop scores it first) and the kept state's: how far training moved
        self.val_start_ = dict(calls[0]) if calls else {}
        self.val_best_ = dict(calls[0] if self.best_epoch_ == 0 else {
            k: float(v[self.best_epoch_ - 1]) for k, v in self.history_.items() if k.startswith("val_")}) if calls else {}
        self.kept_start_ = bool(calls) and self.best_epoch_ == 0
        if calls:
            logger.info("%s: val start %s, best %s (epoch %d)%s", desc, self.val_start_, self.val_best_,
                        self.best_epoch_, " = start (training did not improve val)" if self.kept_start_ else "")
        self._to_cpu()
        finalize()
        self._train_est = {}  # training-only cache of the content map's estimates
        self._fit_fold_in(train)

    # ------------------------------------------------------------------ data-parallel training
    _dp: tuple[World, Callable[[int], None] | None] = (World(), None)

    def _data_parallel(self, rng: np.random.Generator) -> np.random.Generator:
        """Join the running ``torch.distributed`` group, if any, for this fit
        (:mod:`recsys_coldstart.train.distributed`); returns the numpy generator this rank samples
        negatives, dropout and thinning from: ``rng`` itself in one process, else a per-rank
        generator re-seeded every epoch. Call it after the shared draws (initialisation, the
        permutation generator) and before training."""
        world = current_world()
        _, rank_rng, hook = world.sampling_streams(numpy_rng=rng)
        self._dp = (world, hook)
        return rank_rng

    def _epoch_batches(self, n: int, gen: torch.Generator, device) -> list[np.ndarray]:
        """This rank's batches (int64 index arrays into the ``n`` train positives) of one epoch: a
        permutation from ``gen`` (the same on every rank), this rank's strided shard of it, cut into
        ``batch_size / world_size`` (one process: the permutation in ``batch_size`` slices)."""
        world = self._dp[0]
        perm = world.shard(torch.randperm(n, generator=gen, device=device).cpu().numpy())
        bs = world.local_batch(self.config.batch_size)
        return [perm[s:s + bs] for s in range(0, len(perm), bs)]

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``: zero the gradients, backpropagate, average the gradients
        over ranks (nothing in one process), step. Every tower model's batch ends here."""
        optimizer.zero_grad()
        loss.backward()
        self._dp[0].average_gradients(optimizer)
        optimizer.step()

    def _fit_fold_in(self, train: Interactions) -> None:
        """``fold_in="ridge"``: fit the amortised fold-in of new users on the warm users.

        The map from a new user's side features and revealed items to a user vector is a ridge
        regression onto the warm users' final vectors, each warm user revealing their
        ``fold_in_k`` earliest positives (:func:`recsys_coldstart.foldin.fit_fold_in`),
        the way a user-cold split picks a cold user's support set.
        """
        c = self.config
        if c.fold_in != "ridge":
            return
        ui = train.user_items.tocsr()
        if not (np.diff(ui.indptr) > 0).any():
            raise ValueError("fold_in='ridge' needs warm users (train rows with positives)")
        feats = train.user_features.values if train.user_features is not None else None
        self.fold_in_coef_, self.fold_in_fill_ = fit_fold_in(
            ui, train.timestamps, feats, self.user_factors_, self.item_factors_, k=c.fold_in_k,
            ridge=c.fold_in_ridge, random_state=c.random_state)

    # ------------------------------------------------------------------ embedding
    def _batched(self, fn: Callable[[np.ndarray], torch.Tensor], n: int, batch_size: int = 4096) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                rows = np.arange(start, min(start + batch_size, n))
                out.append(fn(rows).detach().cpu().numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self._dim()), np.float32)

    def _dim(self) -> int:
        return int(self.item_factors_.shape[1]) if hasattr(self, "item_factors_") else 0

    @staticmethod
    def _t(x, device) -> torch.Tensor | None:
        return to_torch(x, device)

    def embed_users(self, observed: sp.csr_matrix | None = None, features: np.ndarray | None = None) -> np.ndarray:
        """Vectors for new users from revealed items and / or side features.

        Parameters
        ----------
        observed : scipy CSR of shape (b, n_items), optional
            Each user's revealed positives (rows may be empty).
        features : np.ndarray of float32, shape (b, d_user), or CSR, optional

        Returns
        -------
        np.ndarray of float32, shape (b, d)

        Notes
        -----
        With ``config.fold_in == "ridge"`` the vector is the learned fold-in fitted on the warm
        users (see :meth:`_fit_fold_in`); otherwise the user tower embeds the revealed items' bag
        and the features.
        """
        self._check_fitted("item_factors_")
        if observed is None and features is None:
            raise ValueError("embed_users needs observed interactions or features")
        b = observed.shape[0] if observed is not None else features.shape[0]
        obs = None if observed is None else sp.csr_matrix(observed, dtype=np.float32)
        if obs is not None and obs.shape[1] != self.n_items_in_:
            raise ValueError(f"observed has {obs.shape[1]} columns, the model {self.n_items_in_} items")
        if self.config.fold_in == "ridge":
            self._check_fitted("fold_in_coef_")
            if features is not None and features.shape[1] != self.d_user_features_:
                raise ValueError(f"expected {self.d_user_features_} user features, got {features.shape[1]}")
            obs = sp.csr_matrix((b, self.n_items_in_), dtype=np.float32) if obs is None else obs
            return apply_fold_in(obs, features, self.item_factors_, self.fold_in_coef_, self.fold_in_fill_)
        feats = self._features(features, "user")
        self._nets.eval()
        return self._batched(lambda r: self._user_forward(
            None if obs is None else obs[r], None if feats is None else feats[r]), b)

    def embed_items(self, features: np.ndarray | sp.spmatrix | None, observed: sp.csr_matrix | None = None) -> np.ndarray:
        """Vectors for new items from side features and / or the users who interacted.

        Parameters
        ----------
        features : np.ndarray of float32 or CSR, shape (b, d_item)
        observed : scipy CSR of shape (b, n_users), optional
            Users known to like each item (rows may be empty).

        Returns
        -------
        np.ndarray of float32, shape (b, d)
        """
        self._check_fitted("item_factors_")
        if observed is None and features is None:
            raise ValueError("embed_items needs features or observed interactions")
        b = features.shape[0] if features is not None else observed.shape[0]
        obs = None if observed is None else sp.csr_matrix(observed, dtype=np.float32)
        feats = self._features(features, "item")
        self._nets.eval()
        return self._batched(lambda r: self._item_forward(
            None if obs is None else obs[r], None if feats is None else feats[r]), b)

    def _user_forward(self, observed, features) -> torch.Tensor:
        raise NotImplementedError

    def _item_forward(self, observed, features) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ serving
    def index(self):
        """The :class:`recsys_coldstart.retrieval.EmbeddingIndex` over ``item_factors_`` (built once)."""
        self._check_fitted("item_factors_")
        idx = getattr(self, "_index", None)
        if idx is None or getattr(self, "_index_of", None) is not self.item_factors_:
            from recsys_coldstart.retrieval import EmbeddingIndex

            idx = EmbeddingIndex(self.item_factors_, backend=self._index_backend)
            self._index, self._index_of = idx, self.item_factors_
        return idx

    def _search(self, query: np.ndarray, k: int, exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        return self.index().search(query, k, exclude=exclude)

    def recommend(self, user_idx, *, k: int = 10, exclude: sp.csr_matrix | None = None,
                  candidates: np.ndarray | None = None):
        """Top-``k`` items for known users, served through ``EmbeddingIndex`` (see base class)."""
        if candidates is not None:
            return super().recommend(user_idx, k=k, exclude=exclude, candidates=candidates)
        self._check_fitted("item_factors_")
        scalar = np.isscalar(user_idx)
        users = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        ids, vals = self._search(self.user_factors_[users], k, exclude)
        return (ids[0], vals[0]) if scalar else (ids, vals)

    def recommend_new_users(self, observed: sp.csr_matrix, features: np.ndarray | None = None, *, k: int = 10,
                            exclude_observed: bool = True, candidates: np.ndarray | None = None):
        """Top-``k`` items for new users (``embed_users`` then ``EmbeddingIndex.search``)."""
        if candidates is not None:
            return super().recommend_new_users(observed, features, k=k, exclude_observed=exclude_observed,
                                               candidates=candidates)
        observed = sp.csr_matrix(observed)
        q = self.embed_users(observed=observed, features=features)
        return self._search(q, k, observed if exclude_observed else None)


def dropout_modes(rng: np.random.Generator, n: int, drop_prob: float, transform_prob: float) -> np.ndarray:
    """DropoutNet-style input modes of ``n`` rows (Volkovs et al. 2017), int64 of shape (n,): 1 = the
    preference / ID input is dropped (the row trains as a cold one) with probability ``drop_prob``,
    2 = it is replaced by the mean of its neighbours' ("transform") with ``transform_prob``, 0 = kept."""
    r = rng.random(n)
    return np.where(r < drop_prob, 1, np.where(r < drop_prob + transform_prob, 2, 0))


def sample_warm(rng: np.random.Generator, warm_idx: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices drawn uniformly from ``warm_idx`` (int64)."""
    return warm_idx[rng.integers(0, len(warm_idx), n)]


def duplicate_mask(pos: np.ndarray, cand: np.ndarray, device) -> torch.Tensor:
    """(b, n_cand) bool: candidate equals the row's positive but is not its own column ``r``."""
    m = pos[:, None] == cand[None, :]
    b = len(pos)
    m[np.arange(b), np.arange(b)] = False
    return torch.from_numpy(m).to(device)
