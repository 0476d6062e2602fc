"""Lightweight student towers trained with ``lam * L_distill + (1 - lam) * L_task``.

References
----------
- Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015 (score distillation).
- Tang & Wang, "Ranking Distillation: Learning Compact Ranking Models With High Performance for
  Recommender System", KDD 2018 (the teacher's top-K as weighted positives).
- Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015 (embedding / hint alignment).
- Gantner et al., "Learning Attribute-to-Feature Mappings for Cold-Start Recommendations", ICDM
  2010 (the closed-form item map a feature-only student starts from).
- Eckart & Young, "The approximation of one matrix by another of lower rank", Psychometrika 1936
  (the rank-``dim`` score basis a narrower student starts on).

Length: Student is one class (two towers, the closed-form map start, the serving projection, the
fit over strategy objects); StudentConfig and student_split_defaults are the split candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_coldstart._utils import check_random_state, resolve_device, torch_generator
from recsys_coldstart.config import at_least, between, greater_than, one_of
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.distill.strategies import (
    STRATEGIES,
    DistillStrategy,
    EmbeddingAlignment,
    RankingDistillation,
    ScoreDistillation,
    StudentBatch,
    TeacherTargets,
    strategy_from_dict,
)
from recsys_coldstart.towers.base import (
    CONTENT_INIT_MODES,
    TowerConfig,
    TowerRecommender,
    duplicate_mask,
    log_popularity_prior,
    sample_warm,
    tower_validation_plan,
    warm_mask,
)
from recsys_coldstart.towers.blocks import (
    Tower,
    drop_entries,
    few_shot_keep_prob,
    fold_in_inverse,
    row_normalize,
    score_basis,
    score_directions,
    to_torch,
)
from recsys_coldstart.towers.losses import sampled_softmax_loss
from recsys_coldstart.train import log_key, score_factors

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class StudentConfig(TowerConfig):
    """Configuration of :class:`Student`.

    The training settings (``n_epochs``, ``lr``, ``batch_size``, ``patience``, ``n_negatives``),
    the new-user fold-in (``fold_in``, ``fold_in_k``, ``fold_in_ridge``), the content map's
    settings (``content_ridge``, ``content_neighbors``, ``content_blend``, ``content_history``),
    ``random_state``, ``device`` and ``show_progress`` are the fields of
    :class:`~recsys_coldstart.towers.base.TowerConfig` (``lr`` defaults to 3e-3 here), validated at construction.

    Attributes
    ----------
    dim : int
        Output width of both towers.
    hidden : tuple of int
        Hidden widths (one hidden layer by default).
    item_ids : bool
        Hybrid student: add a ``dim``-wide item ID embedding (dropped with ``id_dropout`` so cold
        items still work). False = feature-only items.
    lam : float
        ``lambda`` in ``lambda * L_distill + (1 - lambda) * L_task`` (ignored without a teacher).
    distill : ScoreDistillation, RankingDistillation or EmbeddingAlignment
        The distillation strategy and its settings (:mod:`recsys_coldstart.distill.strategies`):
        score distillation with temperature ``T`` (default), the teacher's top-K as weighted
        positives, or embedding alignment through training-only projections.
    task_temperature : float
        Temperature of the sampled-softmax task loss.
    teacher_temperature : float or None
        Scale of the teacher's logits (``t / teacher_temperature``) before distillation; None =
        the teacher's own ``config.temperature`` when it has one, else ``1 / std`` of its scores.
    id_dropout : float
        Item-ID dropout (hybrid students).
    history_dropout : float
        Probability of emptying a user's history bag during training (cold users with no support).
    few_shot_prob : float
        Probability of thinning a user's history to 1..``few_shot_max`` items during training (the
        few-shot support of cold users); 0 = off.
    few_shot_max : int
    item_bias : bool
        Add a learned per-item bias ``b_i`` to the score, ``s(u, i) = e_u . e_i + b_i`` (zero for
        items without train interactions, and for dropped item IDs in training; initialised to the
        log-popularity prior ``task_temperature * (log n_i - mean_j log n_j)``); served as one
        extra embedding column ``[e_u, 1] . [e_i, b_i]``. With a teacher that has biases too
        (``TwoTowerTeacherConfig.item_bias``) the bias is distilled with the scores.
    logq_correction : bool
        Subtract ``log q`` (expected candidate counts) from the task logits (Yi et al. 2019).
    tie_item_inputs : bool
        The user tower's bag-of-item-features input and the item tower's feature input share one
        weight matrix (both map item features to the first hidden layer), so the wide first layer
        is stored once: with tens of thousands of tag columns it is most of the student's size.
    weight_decay : float
        Adam's weight decay on every trained parameter (towers and ID embeddings). Named apart from
        the graph models' ``reg`` on purpose: that is an L2 term on the batch's embeddings inside
        the loss, this is the optimiser's decay of all weights.
    content_init : {"random", "map"}
        ``"map"`` (feature-only students with a teacher): start at the teacher distilled in closed
        form (:meth:`Student._map_start`): the teacher's item vectors brought to width ``dim`` by
        :func:`~recsys_coldstart.towers.blocks.score_basis` (the best rank-``dim`` approximation of
        its scores) are kept for the warm items (``item_memory_``, (n_items, dim)); any other item
        gets a content map's estimate from its features (ridge, k-NN over features or the
        content-KNN-style history, chosen on val as the cold-start models choose theirs); users
        are the fold-in ``A mean_{j in H_u} m_j`` of their history's memory rows. The trained
        parts (``user_map`` starting at ``A``, the towers' MLPs with zero output layers) start
        at that point, and early stopping (the start is a
        candidate) never returns the student worse on val than that start. ``"random"``:
        randomly initialised towers.
    keep_teacher : float or None
        With a teacher and val data: widen the student from ``dim`` (doubling, up to the
        teacher's width) until the teacher brought to that width keeps this share of its own
        val score (:meth:`Student._choose_width`); the width used is ``dim_``. None = ``dim``.
        A teacher whose quality needs many dimensions (CiteULike-a's 400-d ALS) cannot be held
        by a 32-d student; this picks the smallest width that can, on val alone.
    fold_in_prior : float
        Ridge strength of the user fold-in ``A = (M^T M + fold_in_prior * tr(M^T M) / dim I)^-1``
        over the warm items' memory rows ``M`` (> 0).
    """

    dim: int = field(default=32, metadata=at_least(1, integer=True))
    hidden: tuple[int, ...] = field(default=(32,), metadata=at_least(1, integer=True, each=True))
    item_ids: bool = False
    lam: float = field(default=0.5, metadata=between(0.0, 1.0))
    distill: ScoreDistillation | RankingDistillation | EmbeddingAlignment = field(default_factory=ScoreDistillation)
    task_temperature: float = field(default=0.2, metadata=greater_than(0))
    teacher_temperature: float | None = field(default=None, metadata=greater_than(0, none=True))
    id_dropout: float = field(default=0.3, metadata=between(0.0, 1.0, high_open=True))
    history_dropout: float = field(default=0.3, metadata=between(0.0, 1.0))
    few_shot_prob: float = field(default=0.0, metadata=between(0.0, 1.0))
    logq_correction: bool = False
    item_bias: bool = False
    tie_item_inputs: bool = False
    few_shot_max: int = field(default=10, metadata=at_least(1, integer=True))
    lr: float = field(default=3e-3, metadata=greater_than(0))
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    content_init: str = field(default="random", metadata=one_of(*CONTENT_INIT_MODES))
    keep_teacher: float | None = field(default=None, metadata=between(0.0, 1.0, low_open=True, none=True))
    fold_in_prior: float = field(default=0.1, metadata=greater_than(0))

    def __post_init__(self) -> None:
        if isinstance(self.distill, Mapping):  # the stored / TOML form {kind = "score", temperature = 2.0}
            object.__setattr__(self, "distill", strategy_from_dict(self.distill))
        super().__post_init__()

    def _check(self) -> None:
        super()._check()
        if not isinstance(self.distill, DistillStrategy):
            names = ", ".join(f"{cls.__name__}()" for cls in STRATEGIES)
            raise ValueError(f"{type(self).__name__}.distill must be a distillation strategy object ({names}), "
                             f"got {self.distill!r}")
        if self.content_init == "map" and self.item_ids:
            raise ValueError(f"{type(self).__name__}(content_init='map') starts a feature-only student at the "
                             "teacher's closed-form item map; a hybrid student (item_ids=True) has item IDs "
                             "to learn instead: use content_init='random' or item_ids=False")


def student_split_defaults(split_kind: str, item_ids: bool) -> dict[str, Any]:
    """The :class:`StudentConfig` fields a split kind changes from the config defaults.

    On a ``user-cold`` split every item is warm, so a hybrid student (``item_ids=True``) has no
    reason to drop item IDs: ``id_dropout=0`` (the 0.3 default trains the item tower for cold
    items that never come); and its items are the teacher's items, so it learns from the
    teacher's scores alone: ``lam=1``. Measured on the own-data walk-through (ml-100k ratings
    >= 4, user-cold K=3, cold-user test NDCG@20, teacher from LightGCN, validation on the val
    users' support; ``benchmarks/student_user_cold.py``, results in
    ``benchmarks/results/student_user_cold.md``), seeds 0 / 1 / 2:

    ==========================  ======  ======  ======
    student (32-d)              0       1       2
    ==========================  ======  ======  ======
    id_dropout 0.3, lam 0.5     0.2888  0.3068  0.3530
    id_dropout 0, lam 0.5       0.3206  0.3233  0.3936
    id_dropout 0, lam 1         0.3207  0.3487  0.4049
    teacher                     0.3330  0.3510  0.4101
    popularity                  0.3161  0.3132  0.3404
    ==========================  ======  ======  ======

    On an ``item-cold`` split a feature-only student starts at the teacher distilled in closed
    form (``content_init="map"``, :meth:`Student._map_start`), so early stopping never returns it
    below that start on val, and it widens from 32 until the teacher brought to its width keeps
    95% of the teacher's val score (``keep_teacher=0.95``, :meth:`Student._choose_width`).
    Measured in the issue-15 suite (``benchmarks/suites/coldstart_hold.toml``, 3 seeds, defaults,
    cold-item test NDCG@20, report in ``benchmarks/results/report_coldstart_hold/``): on ml-100k
    item-cold the student stays 32-d and keeps 99.6% of the teacher (0.3000 vs 0.3011); on
    CiteULike-a, whose 400-d ALS teacher projected on 32 dims scores 0.12-0.17 val Recall@20
    against 0.23-0.33 at full width, it widens to 400 dims on the tags (99.6%, 0.3294 vs 0.3309)
    and to 256-400 on 64 SVD dimensions of them (98.0%, 0.2357 vs 0.2406).

    Warm splits: nothing changes.

    Parameters
    ----------
    split_kind : str
        ``ColdStartSplit.kind``.
    item_ids : bool
        Whether the student is hybrid.

    Returns
    -------
    dict
    """
    if split_kind == "user-cold" and item_ids:
        return {"id_dropout": 0.0, "lam": 1.0}
    if split_kind == "item-cold" and not item_ids:
        return {"content_init": "map", "keep_teacher": 0.95}
    return {}


class Student(TowerRecommender):
    """Small two-tower student with no per-user parameters.

    - item tower: ``e_i = MLP([x_feat ; x_id])`` (``x_id`` only when ``item_ids=True``)
    - user tower: ``e_u = MLP([mean_{j in H_u} x_feat_j ; mean_{j in H_u} x_id_j ; x_user_feat])``
      over the user's history ``H_u`` (train items for warm users, revealed support for cold
      users, empty for users who revealed nothing), so the same network serves warm and cold users;
      by default (``fold_in="ridge"``) new users are embedded by the learned ridge fold-in fitted on
      the warm users' first-``fold_in_k`` reveals instead (better on ml-100k user-cold, see
      ``benchmarks/results/distill_coldstart_foldin.md``).

    Trained on ``train`` positives with ``lam * L_distill + (1 - lam) * L_task`` where ``L_task`` is
    a sampled softmax and ``L_distill`` is score distillation (Hinton et al. 2015), ranking
    distillation (Tang & Wang KDD 2018) or embedding alignment (FitNets, Romero et al. 2015) against
    any fitted embedding model (``teacher.user_factors_`` / ``item_factors_``). Without a teacher
    it is the same student trained on the task loss alone (the no-distillation baseline).
    With ``content_init="map"`` (the item-cold default, :func:`student_split_defaults`) a
    feature-only student starts at the teacher distilled in closed form (:meth:`_map_start`: an
    item memory of the teacher's warm item vectors on its best rank-``dim`` score basis, a
    content map from features to it for new items, the ALS fold-in over it for users) and its
    trained parts learn corrections from zero; ``item_memory_`` and the content map's arrays
    (``item_cmap_*_``) are kept with the model and are not counted in ``n_parameters``.

    Fitted attributes: ``user_factors_`` (n_users, dim), ``item_factors_`` (n_items, dim),
    ``history_`` (per-epoch logs); with ``content_init="map"`` also ``item_memory_``
    (n_items, dim) and ``item_cmap_val_`` (val score of each content-map option).
    """

    config_class = StudentConfig

    @classmethod
    def search_space(cls, trial) -> dict[str, Any]:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Distillation weight λ in [0, 1] and temperature T 1-10 (Hinton et al. 2015 use T in
        1-20; ranking distillation, Tang & Wang KDD 2018, weights the distillation term 0.1-1),
        the student's own task temperature 0.05-1 and its lr 1e-4..1e-2 and dim 16-64 (a
        student is meant to be small: the default is 32).
        """
        return {
            "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            "dim": trial.suggest_categorical("dim", [16, 32, 64]),
            "lam": trial.suggest_float("lam", 0.0, 1.0),
            "distill": ScoreDistillation(temperature=trial.suggest_float("temperature", 1.0, 10.0, log=True)),
            "task_temperature": trial.suggest_float("task_temperature", 0.05, 1.0, log=True),
            "id_dropout": trial.suggest_float("id_dropout", 0.0, 0.7),
        }

    def _build(self) -> None:
        c = self.config
        d_if = self.d_item_features_
        dim = self._width
        id_w = dim if c.item_ids else 0
        if d_if == 0 and not c.item_ids:
            raise ValueError("a feature-only student needs item features; set item_ids=True")
        nets = {
            "item_tower": Tower([id_w, d_if], c.hidden, dim),
            "user_tower": Tower([d_if, id_w, self.d_user_features_], c.hidden, dim),
        }
        if c.item_ids:
            nets["item_emb"] = nn.Embedding(self.n_items_in_, dim)
            nn.init.normal_(nets["item_emb"].weight, 0, 0.1)
        if c.item_bias:
            nets["item_bias"] = nn.Embedding(self.n_items_in_, 1)
            nn.init.zeros_(nets["item_bias"].weight)
        if c.tie_item_inputs and d_if:
            nets["user_tower"].inputs[0] = nets["item_tower"].inputs[1]  # one (d_item, h1) matrix
        if c.content_init == "map":  # the start is fixed arrays (_map_start); the MLPs learn corrections
            nets["user_map"] = nn.Linear(dim, dim, bias=False)
            nets["item_tower"].zero_output_layer()
            nets["user_tower"].zero_output_layer()
        self._nets = nn.ModuleDict(nets)

    @property
    def _width(self) -> int:
        """The student's width: ``dim_`` once fitted (``keep_teacher`` may widen it), else ``config.dim``."""
        return int(getattr(self, "dim_", self.config.dim))

    def _teacher_at(self, R: sp.csr_matrix, factors: tuple[np.ndarray, np.ndarray], directions: np.ndarray,
                    width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The teacher brought to ``width`` on the student's path: item vectors ``T = V P`` (float32,
        (n_items, width); ``P`` from :func:`score_basis` over ``directions``, the teacher's
        :func:`score_directions`), the fold-in inverse ``A`` over the warm rows of ``T``
        (:func:`fold_in_inverse`, float64 (width, width)) and the users ``A mean_{j in H_u} t_j``
        of the train bags ``R`` (float32, (n_users, width))."""
        U, V = factors
        warm = self.warm_items_mask_
        t = (np.asarray(V, np.float64) @ score_basis(U, V, width, directions)).astype(np.float32)
        a = fold_in_inverse(t[warm], self.config.fold_in_prior)
        users = (np.asarray(row_normalize(R) @ np.where(warm[:, None], t, 0.0)) @ a).astype(np.float32)
        return t, a, users

    def _choose_width(self, train: Interactions, val: Interactions | None,
                      factors: tuple[np.ndarray, np.ndarray], directions: np.ndarray) -> int:
        """``keep_teacher``: the narrowest width in ``dim, 2 dim, 4 dim, ...`` (capped at the
        teacher's width ``p``) at which the teacher, brought to that width, keeps ``keep_teacher``
        of the better of its own val score and its full-width score on the student's path.

        At width ``r`` the teacher is :meth:`_teacher_at` (its new-item estimates included), as
        :meth:`_map_start` starts the student: a student cannot start above that, so a width
        whose projected teacher falls short is too narrow for this data. Scores are the
        early-stopping metric on ``val``; without val positives ``dim`` is kept. Sets
        ``width_val_`` ({width: val score}) and ``teacher_val_`` (the teacher's own).
        """
        c = self.config
        plan = tower_validation_plan(train, val, c.eval_k)
        self.width_val_: dict[str, float] = {}
        if plan is None:
            return c.dim
        key = log_key(c.val_metric, c.eval_k)
        R = train.user_items.tocsr()
        self.teacher_val_ = float(score_factors(plan, *factors)[key])

        def at(width: int) -> float:
            t, _, users = self._teacher_at(R, factors, directions, width)
            self.width_val_[str(width)] = float(score_factors(plan, users, t)[key])
            return self.width_val_[str(width)]

        full = max(factors[1].shape[1], c.dim)
        target = c.keep_teacher * max(self.teacher_val_, at(full))
        w = c.dim
        while w < full:
            if at(w) >= target:
                return w
            w *= 2
        return full

    def _map_start(self, train: Interactions, val: Interactions | None, factors: tuple[np.ndarray, np.ndarray],
                   directions: np.ndarray) -> None:
        """``content_init="map"``: start at the teacher distilled in closed form.

        1. The teacher brought to the student's width (:meth:`_teacher_at`: its item vectors on
           the first ``dim`` of its :func:`score_directions`, the best rank-``dim``
           approximation of its scores on its warm users), ``T = V P``.
        2. ``item_memory_`` (n_items, dim): ``T`` for the warm items; a content map from their
           scaled features to ``T`` (ridge / k-NN over features / content-KNN-style history,
           chosen on ``val`` as the cold-start models choose theirs, :meth:`_fit_content_maps`)
           gives every other item its estimate, so a new item is embedded from features alone.
        3. Users: the fold-in ``A mean_{j in H_u} m_j`` over the warm items' memory rows
           (:func:`fold_in_inverse`), so a user needs no per-user parameter.

        The trained parts (``user_map``, starting at ``A``, and the towers' MLPs, whose output
        layers start at zero) are corrections on top.
        """
        warm = self.warm_items_mask_
        t, a, users = self._teacher_at(train.user_items.tocsr(), factors, directions, self._width)
        self._fit_content_maps(train, {"item": (t, warm), "user": (users, np.zeros(train.n_users, bool))}, val)
        est = self._train_est.get("item")
        self.item_memory_ = np.where(warm[:, None], t, 0.0 if est is None else est).astype(np.float32)
        with torch.no_grad():
            self._nets["user_map"].weight.copy_(torch.from_numpy(a.astype(np.float32)))

    def _item_start(self, idx: np.ndarray | None, feats, device) -> torch.Tensor | None:
        """The fixed start of items (b, dim) with ``content_init="map"``, else None.

        Training (gradients on) on train items ``idx``: the content map's leave-one-out estimate,
        so a warm item is seen as a cold one will be. Otherwise train items use their memory row
        (the teacher's vector for warm items, the content map's estimate for the rest) and new
        items (``idx`` None) the content map on their scaled features ``feats``.
        """
        if self.config.content_init != "map":
            return None
        cache = getattr(self, "_train_est", {}).get("item")
        if idx is not None and torch.is_grad_enabled() and cache is not None:
            return torch.from_numpy(cache[idx]).to(device)
        if idx is not None:
            return torch.from_numpy(self.item_memory_[idx]).to(device)
        return self._content_estimate("item", feats, None, device)

    # ------------------------------------------------------------------ forward helpers
    def _dev(self):
        return next(self._nets.parameters()).device

    def _item_in(self, idx: np.ndarray | None, keep_id: np.ndarray | None, feats, b: int, device) -> torch.Tensor:
        x_id = None
        if self.config.item_ids:
            if idx is None:
                x_id = torch.zeros(b, self._width, device=device)
            else:
                x_id = self._nets["item_emb"](torch.from_numpy(idx).to(device))
                if keep_id is not None:
                    x_id = x_id * torch.from_numpy(keep_id).to(device)[:, None].float()
        f = to_torch(feats, device)
        out = self._nets["item_tower"]([x_id, f])
        start = self._item_start(idx, feats, device)
        return out if start is None else out + start

    def _bag_projection(self) -> np.ndarray:
        """Per item, its contribution to the user tower's first layer, float32 (n_items, h1), and
        with ``content_init="map"`` to the user's mapped history, (n_items, h1 + dim).

        Both maps are linear in the bag means, so ``mean_j(x_j) @ W = mean_j(x_j @ W)``:
        projecting every item once turns online user embedding into one sparse (b, n_items) x
        (n_items, h1) product instead of averaging wide feature rows. Cached, and recomputed
        whenever the weights change.
        """
        tower = self._nets["user_tower"]
        key = tuple((p.data_ptr(), p._version) for p in self._nets.parameters())
        cached = getattr(self, "_bag_proj_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            proj = np.zeros((self.n_items_in_, tower.bias0.shape[0]), np.float32)
            if self.d_item_features_:
                proj += np.asarray(self.item_features_ @ tower.inputs[0].detach().cpu().numpy(), np.float32)
            if self.config.item_ids:
                w = self._nets["item_emb"].weight.detach().cpu().numpy() * self.warm_items_mask_[:, None]
                proj += w @ tower.inputs[1].detach().cpu().numpy()
            if self.config.content_init == "map":
                proj = np.hstack([proj, self.item_memory_])
        self._bag_proj_cache = (key, proj)
        return proj

    def _user_in(self, bag: sp.csr_matrix | None, feats, b: int, device) -> torch.Tensor:
        if bag is None:
            bag = sp.csr_matrix((b, self.n_items_in_), dtype=np.float32)
        bn = row_normalize(bag)
        if not torch.is_grad_enabled() and device.type == "cpu":  # serving: precomputed item projections
            tower = self._nets["user_tower"]
            h1 = tower.bias0.shape[0]
            hm = torch.from_numpy(np.asarray(bn @ self._bag_projection(), np.float32))
            h = hm[:, :h1]
            f = to_torch(feats, device)
            if f is not None and self.d_user_features_:
                h = h + (torch.sparse.mm(f, tower.inputs[2]) if f.is_sparse else f @ tower.inputs[2])
            out = tower.head(h)
            return out + self._nets["user_map"](hm[:, h1:]) if self.config.content_init == "map" else out
        bag_f = bag_id = None
        if self.d_item_features_:
            prod = bn @ self.item_features_
            bag_f = to_torch(prod if sp.issparse(prod) else np.asarray(prod), device)
        if self.config.item_ids:
            # only warm items have trained ID vectors; cold ones contribute through features
            w = self._nets["item_emb"].weight * torch.from_numpy(self.warm_items_mask_).to(device)[:, None].float()
            if torch.is_grad_enabled() or device.type != "cpu":
                bag_id = torch.sparse.mm(to_torch(bn, device), w)
            else:  # serving on CPU: a scipy sparse x dense product avoids building a torch COO tensor
                bag_id = torch.from_numpy(np.asarray(bn @ w.numpy(), np.float32))
        out = self._nets["user_tower"]([bag_f, bag_id, to_torch(feats, device)])
        if self.config.content_init != "map":
            return out
        mapped = torch.from_numpy(np.asarray(bn @ self.item_memory_, np.float32)).to(device)  # mean_j m_j
        return out + self._nets["user_map"](mapped)

    def _bias(self, idx: np.ndarray, keep: np.ndarray | None, device) -> torch.Tensor:
        """(b,) item biases, zero where ``keep`` is False."""
        bias = self._nets["item_bias"](torch.from_numpy(idx).to(device))[:, 0]
        return bias if keep is None else bias * torch.from_numpy(keep).to(device).float()

    def _bias_column(self, e: torch.Tensor, extra: torch.Tensor | float) -> torch.Tensor:
        """``[e, extra]`` when the model has item biases (users: 1; new items: 0)."""
        if not self.config.item_bias:
            return e
        col = (torch.full((e.shape[0], 1), float(extra), device=e.device) if not torch.is_tensor(extra)
               else extra[:, None])
        return torch.cat([e, col], dim=1)

    def _user_forward(self, observed, features) -> torch.Tensor:
        b = observed.shape[0] if observed is not None else features.shape[0]
        return self._bias_column(self._user_in(observed, features, b, self._dev()), 1.0)

    def _item_forward(self, observed, features) -> torch.Tensor:
        b = features.shape[0] if features is not None else observed.shape[0]
        return self._bias_column(self._item_in(None, None, features, b, self._dev()), 0.0)

    # ------------------------------------------------------------------ fit
    def fit(self, train: Interactions, *, val: Interactions | None = None, callback=None,
            teacher: Any = None, support: Interactions | None = None) -> Student:
        """Train the student, distilling from ``teacher`` with ``config.distill`` when given.

        Steps: build the towers (seeded), :meth:`_teacher_targets` (the teacher's factors and
        logit scale, the strategy's heads and per-fit targets), then one epoch function over
        :meth:`_batches` (sampling + forward) adding the strategy's term to the task loss.

        Parameters
        ----------
        train : Interactions
        val : Interactions, optional
            Held-out positives for early stopping.
        callback : callable, optional
        teacher : EmbeddingModel or tuple (U, V), optional
            A fitted model with ``user_factors_`` (n_users, D) and ``item_factors_`` (n_items, D);
            only its rows for warm users / items are used as targets.
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
        R = train.user_items.tocsr()
        self.warm_items_mask_ = warm_mask(R, 0)
        itf = self._features(self._side_matrix(train, "item"), "item")
        uf = self._features(self._side_matrix(train, "user"), "user")
        # the user tower averages (scaled) item features over a history: kept with the model
        self.item_features_ = itf
        factors = None if teacher is None else self._teacher_factors(teacher, train)
        if c.content_init == "map" and factors is None:
            raise ValueError("Student(content_init='map') needs fit(..., teacher=...): its start is the "
                             "teacher's item vectors mapped from features")
        directions = None
        if factors is not None and (c.content_init == "map" or c.keep_teacher is not None):
            # one SVD for every width tried and the start: the teacher's score directions
            directions = score_directions(factors[0][np.diff(R.indptr) > 0], factors[1][self.warm_items_mask_])
        self.dim_ = c.dim
        if c.keep_teacher is not None and factors is not None:
            self.dim_ = self._choose_width(train, val, factors, directions)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.random.manual_seed(int(rng.integers(2**31)))
            self._build()
            heads = None
            if factors is not None:
                heads = c.distill.heads(self.dim_ + int(c.item_bias), factors[0].shape[1], factors[1].shape[1])
        if c.content_init == "map":
            self._map_start(train, val, factors, directions)
        if c.item_bias:  # log-popularity prior: b_i = tau * (log n_i - mean log n), 0 for cold items
            with torch.no_grad():
                self._nets["item_bias"].weight.copy_(torch.from_numpy(
                    log_popularity_prior(train.user_items, c.task_temperature)[:, None]))
        self._nets.to(device)
        params = list(self._nets.parameters())
        if heads is not None:
            heads.to(device)
            params += list(heads.parameters())
        gen = torch_generator(rng, device)
        warm_items = np.flatnonzero(self.warm_items_mask_)
        opt = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)
        lam = c.lam if teacher is not None else 0.0
        targets = state = None
        if teacher is not None:
            targets = self._teacher_targets(teacher, factors, R, warm_items, heads, rng, device)
            state = c.distill.prepare(self, targets, device=device)

        def epoch_fn(epoch: int) -> dict[str, float]:
            self._nets.train()
            tot = {"loss": 0.0, "task": 0.0, "distill": 0.0}
            steps = 0
            for batch, task in self._batches(train, R, warm_items, itf, uf, rng, gen, device):
                if lam > 0:
                    dist = c.distill.loss(self, batch, targets, state)
                    loss = lam * dist + (1 - lam) * task
                    tot["distill"] += float(dist.detach())
                else:
                    loss = task
                self._step(opt, loss)  # data-parallel: gradients averaged over ranks
                tot["loss"] += float(loss.detach())
                tot["task"] += float(task.detach())
                steps += 1
            return {k: v / max(steps, 1) for k, v in tot.items()}

        rng = self._data_parallel(rng)  # per-rank sampling under torchrun; rng itself in one process
        self._train_loop(train=train, val=val, epoch_fn=epoch_fn, finalize=lambda: self._finalize(train, uf, itf),
                         callback=callback, desc="student", support=support)
        return self

    @staticmethod
    def _teacher_factors(teacher: Any, train: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's ``(U, V)`` as float32 arrays, checked against the train vocabulary."""
        Ut, Vt = (teacher if isinstance(teacher, tuple) else (teacher.user_factors_, teacher.item_factors_))
        Ut = np.asarray(Ut, np.float32)
        Vt = np.asarray(Vt, np.float32)
        if Ut.shape[0] != train.n_users or Vt.shape[0] != train.n_items:
            raise ValueError("teacher factors do not match the train vocabulary")
        return Ut, Vt

    def _teacher_targets(self, teacher: Any, factors: tuple[np.ndarray, np.ndarray], R: sp.csr_matrix,
                         warm_items: np.ndarray, heads, rng: np.random.Generator, device) -> TeacherTargets:
        """The teacher's factors on ``device`` and its logit scale.

        The scale is ``teacher_temperature``, else the teacher's own ``config.temperature``, else
        ``1 / std`` of its scores on 256 random users (drawn from ``rng`` whatever the strategy,
        so a seed gives the same run as before strategies were objects).
        """
        Ut, Vt = factors
        t_tau = self.config.teacher_temperature or getattr(getattr(teacher, "config", None), "temperature", None)
        if t_tau is None:
            su = rng.integers(0, Ut.shape[0], 256)
            t_tau = float(np.std(Ut[su] @ Vt[warm_items].T)) or 1.0
        return TeacherTargets(user=torch.from_numpy(Ut).to(device), item=torch.from_numpy(Vt).to(device),
                              scale=t_tau, observed=R, warm_items=warm_items, heads=heads)

    def _batches(self, train: Interactions, R: sp.csr_matrix, warm_items: np.ndarray, itf, uf,
                 rng: np.random.Generator, gen: torch.Generator, device):
        """One epoch of training batches: yields ``(StudentBatch, task loss)``.

        Each batch: ``batch_size`` train positives, ``n_negatives`` sampled warm items shared by
        the batch, item-ID dropout, thinned user histories (history dropout / few-shot), the
        forward pass and the sampled-softmax task loss (with the ``log q`` correction when set).
        """
        c = self.config
        users, items, _, _ = train.to_coo_arrays()
        n = len(users)
        item_freq = np.bincount(items, minlength=train.n_items) / max(len(items), 1)
        for sel in self._epoch_batches(n, gen, device):  # this rank's shard under torchrun
            u, i = users[sel], items[sel]
            b = len(sel)
            neg = sample_warm(rng, warm_items, c.n_negatives)
            cand = np.concatenate([i, neg])
            keep = rng.random(len(cand)) >= c.id_dropout if c.item_ids else None
            ei = self._item_in(cand, keep, None if itf is None else itf[cand], len(cand), device)
            thin = np.where(rng.random(b) < c.history_dropout, 0.0, rng.uniform(0.2, 1.0, b))
            thin = few_shot_keep_prob(thin, np.diff(R.indptr)[u], c.few_shot_prob, c.few_shot_max, rng)
            bag = drop_entries(R[u], i, thin, rng)
            eu = self._user_in(bag, None if uf is None else uf[u], b, device)
            logits = eu @ ei.T
            b_cand = None
            if c.item_bias:
                b_cand = self._bias(cand, keep, device)
                logits = logits + b_cand[None, :]
            dmask = duplicate_mask(i, cand, device)
            lq = None
            if c.logq_correction:
                lq = torch.from_numpy(np.log(b * item_freq[cand] + c.n_negatives / len(warm_items))
                                      .astype(np.float32)).to(device)
            task = sampled_softmax_loss(logits, temperature=c.task_temperature, mask=dmask, log_q=lq)
            yield (StudentBatch(users=u, candidates=cand, user_emb=eu, item_emb=ei, item_bias=b_cand, logits=logits,
                                mask=dmask, task_temperature=c.task_temperature), task)

    def _item_scores(self, user_emb: torch.Tensor, items: np.ndarray) -> torch.Tensor:
        """Student scores (b, K) of ``items`` (int64, (b, K)) for the users embedded as ``user_emb`` (b, dim)."""
        b, k = items.shape
        flat = items.ravel()
        itf = self.item_features_
        e = self._item_in(flat, None, None if itf is None else itf[flat], flat.size, user_emb.device).view(b, k, -1)
        s = (user_emb[:, None, :] * e).sum(-1)
        if self.config.item_bias:
            s = s + self._bias(flat, None, user_emb.device).view(b, k)
        return s

    def _finalize(self, train: Interactions, uf, itf) -> None:
        self._nets.eval()
        dev = self._dev()
        R = train.user_items.tocsr()
        keep = self.warm_items_mask_

        def items_fn(rows):
            e = self._item_in(rows, keep[rows], None if itf is None else itf[rows], len(rows), dev)
            return self._bias_column(e, self._bias(rows, keep[rows], dev) if self.config.item_bias else 0.0)

        def users_fn(rows):
            return self._bias_column(self._user_in(R[rows], None if uf is None else uf[rows], len(rows), dev), 1.0)

        self.item_factors_ = self._batched(items_fn, train.n_items)
        self.user_factors_ = self._batched(users_fn, train.n_users)
