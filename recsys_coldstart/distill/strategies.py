"""Distillation strategies of :class:`~recsys_coldstart.distill.Student`: objects passed in.

A strategy is a small frozen config (validated at construction, saved inside ``config.json``
as ``{"kind": ..., <fields>}``) with the distillation term ``L_distill`` of one batch. The
student trains on ``lam * L_distill + (1 - lam) * L_task`` and asks its strategy for three
things:

- :meth:`DistillStrategy.heads`: training-only modules (built with the student's seeded init);
- :meth:`DistillStrategy.prepare`: per-fit targets computed once from the teacher;
- :meth:`DistillStrategy.loss`: the term for one batch (:class:`StudentBatch`).

Built-in: :class:`ScoreDistillation` (Hinton et al. 2015), :class:`RankingDistillation`
(Tang & Wang, KDD 2018), :class:`EmbeddingAlignment` (FitNets, Romero et al. ICLR 2015). The
``coldstart distill --loss`` names map to them in :mod:`recsys_coldstart.cli.registry` (the only
place names become classes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_coldstart.config import Config, at_least, greater_than, one_of
from recsys_coldstart.distill.losses import rank_position_weights, ranking_distillation_loss
from recsys_coldstart.retrieval import topk
from recsys_coldstart.towers.losses import embedding_alignment_loss, score_distillation_loss

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from recsys_coldstart.distill.student import Student


@dataclass
class TeacherTargets:
    """What the student distils from: the teacher's factors on the training device.

    Attributes
    ----------
    user, item : torch.Tensor of float32, shapes (n_users, D) and (n_items, D)
        The teacher's user and item factors.
    scale : float
        The teacher's logit scale: its scores are divided by it before distillation.
    observed : scipy.sparse.csr_matrix, shape (n_users, n_items)
        The train interactions (what a user already has).
    warm_items : np.ndarray of int64, shape (n_warm,)
        Items with train interactions (the only ones with trained ID vectors).
    heads : torch.nn.ModuleDict or None
        The strategy's training-only modules (:meth:`DistillStrategy.heads`).
    """

    user: torch.Tensor
    item: torch.Tensor
    scale: float
    observed: sp.csr_matrix
    warm_items: np.ndarray
    heads: nn.ModuleDict | None = None


@dataclass
class StudentBatch:
    """One training batch of the student, after its forward pass.

    Attributes
    ----------
    users : np.ndarray of int64, shape (b,)
        The batch's users (one positive each).
    candidates : np.ndarray of int64, shape (b + m,)
        The ``b`` positives followed by ``m`` sampled negatives.
    user_emb : torch.Tensor, shape (b, dim)
        Student user embeddings.
    item_emb : torch.Tensor, shape (b + m, dim)
        Student item embeddings of the candidates.
    item_bias : torch.Tensor of shape (b + m,) or None
        The candidates' biases (student with ``item_bias``).
    logits : torch.Tensor, shape (b, b + m)
        Student scores (biases included); column ``r`` is row ``r``'s positive.
    mask : torch.Tensor of bool, shape (b, b + m)
        Duplicates of a row's positive among the other columns.
    task_temperature : float
        The task loss's temperature (student logits are divided by it).
    """

    users: np.ndarray
    candidates: np.ndarray
    user_emb: torch.Tensor
    item_emb: torch.Tensor
    item_bias: torch.Tensor | None
    logits: torch.Tensor
    mask: torch.Tensor
    task_temperature: float


@dataclass(frozen=True)
class DistillStrategy(Config):
    """Base of the distillation strategies (a frozen, validated config with a loss).

    Subclasses declare a ``kind`` field (``Literal`` with one value: the tag stored in
    ``config.json``) and implement :meth:`loss`.
    """

    def heads(self, d_student: int, d_user: int, d_item: int) -> nn.ModuleDict | None:
        """Training-only modules (trained with the student, not saved); None by default.

        Parameters
        ----------
        d_student : int
            Width of the student's served embeddings (``dim`` + 1 with item biases).
        d_user, d_item : int
            Widths of the teacher's user and item factors.
        """
        return None

    def prepare(self, student: Student, teacher: TeacherTargets, *, device: torch.device) -> Any:
        """Targets computed once per fit (after the student is built); None by default."""
        return None

    def loss(self, student: Student, batch: StudentBatch, teacher: TeacherTargets, state: Any) -> torch.Tensor:
        """``L_distill`` of one batch, a scalar tensor."""
        raise NotImplementedError


@dataclass(frozen=True)
class ScoreDistillation(DistillStrategy):
    """Soft-target score distillation over the batch's candidates (Hinton, Vinyals & Dean, 2015).

    .. math::
        L = T^2 \\frac1b \\sum_r \\mathrm{KL}\\big(\\mathrm{softmax}(t_r / T) \\,\\|\\,
            \\mathrm{softmax}(s_r / T)\\big), \\quad
        t_{rc} = \\frac{U^t_{u_r} \\cdot V^t_c}{\\tau_t}, \\quad s_{rc} = \\frac{\\hat y_{u_r c}}{\\tau}

    with ``tau_t`` the teacher's logit scale and ``tau`` the student's task temperature
    (:func:`~recsys_coldstart.towers.losses.score_distillation_loss`).

    Attributes
    ----------
    kind : "score"
    temperature : float
        ``T`` (> 0).
    """

    kind: Literal["score"] = field(default="score", metadata=one_of("score"))
    temperature: float = field(default=1.0, metadata=greater_than(0))

    def loss(self, student: Student, batch: StudentBatch, teacher: TeacherTargets, state: Any) -> torch.Tensor:
        """The KL term of the candidates' score distributions."""
        device = batch.logits.device
        tu = torch.from_numpy(batch.users).to(device)
        t_logits = teacher.user[tu] @ teacher.item[torch.from_numpy(batch.candidates).to(device)].T / teacher.scale
        return score_distillation_loss(batch.logits / batch.task_temperature, t_logits,
                                       temperature=self.temperature, mask=batch.mask)


@dataclass(frozen=True)
class RankingDistillation(DistillStrategy):
    """Ranking distillation: the teacher's top-K as weighted positives (Tang & Wang, KDD 2018).

    Pairwise form against the batch's sampled negatives ``j``:

    .. math:: L = -\\frac1{b\\,m} \\sum_u \\sum_{r=1}^K w_r \\sum_j \\log \\sigma(s_{u, \\pi_r} - s_{u, j}),
              \\quad w_r \\propto e^{-r / \\lambda}

    where ``pi_1..pi_K`` are the teacher's top-K unobserved warm items of ``u``
    (:func:`~recsys_coldstart.distill.losses.ranking_distillation_loss`).

    Attributes
    ----------
    kind : "rank"
    top_k : int
        ``K`` (>= 1).
    rank_decay : float
        ``lambda`` of the position weights (> 0).
    """

    kind: Literal["rank"] = field(default="rank", metadata=one_of("rank"))
    top_k: int = field(default=20, metadata=at_least(1, integer=True))
    rank_decay: float = field(default=5.0, metadata=greater_than(0))

    def prepare(self, student: Student, teacher: TeacherTargets, *, device: torch.device) -> Any:
        """The teacher's top-``top_k`` items per user (n_users, K) and the position weights (K,)."""
        top = teacher_topk(teacher.user.cpu().numpy(), teacher.item.cpu().numpy(), teacher.observed,
                           teacher.warm_items, self.top_k)
        return top, rank_position_weights(top.shape[1], self.rank_decay, device=device)

    def loss(self, student: Student, batch: StudentBatch, teacher: TeacherTargets, state: Any) -> torch.Tensor:
        """The weighted pairwise term of the teacher's top-K against the sampled negatives."""
        top, weights = state
        b = len(batch.users)
        s_top = student._item_scores(batch.user_emb, top[batch.users])
        return ranking_distillation_loss(s_top, weights, batch.logits[:, b:])


@dataclass(frozen=True)
class EmbeddingAlignment(DistillStrategy):
    """Embedding alignment ("hints", FitNets, Romero et al. ICLR 2015) through linear heads.

    .. math:: L = \\frac1b \\sum_r d(P_u e^s_{u_r}, U^t_{u_r}) + \\frac1{b+m} \\sum_c d(P_i e^s_c, V^t_c)

    with training-only projections ``P_u``, ``P_i`` to the teacher's width and ``d`` the squared
    error or ``1 - cos`` (:func:`~recsys_coldstart.towers.losses.embedding_alignment_loss`);
    with item biases the student's served vectors ``[e_u, 1]`` / ``[e_i, b_i]`` are aligned.

    Attributes
    ----------
    kind : "embed"
    distance : {"mse", "cosine"}
    """

    kind: Literal["embed"] = field(default="embed", metadata=one_of("embed"))
    distance: str = field(default="mse", metadata=one_of("mse", "cosine"))

    def heads(self, d_student: int, d_user: int, d_item: int) -> nn.ModuleDict | None:
        """The two projections ``P_u`` (d_student -> d_user) and ``P_i`` (d_student -> d_item)."""
        return nn.ModuleDict({"user": nn.Linear(d_student, d_user, bias=False),
                              "item": nn.Linear(d_student, d_item, bias=False)})

    def loss(self, student: Student, batch: StudentBatch, teacher: TeacherTargets, state: Any) -> torch.Tensor:
        """The user and item alignment terms."""
        device = batch.logits.device
        tu = torch.from_numpy(batch.users).to(device)
        tc = torch.from_numpy(batch.candidates).to(device)
        eu = student._bias_column(batch.user_emb, 1.0)
        ei = student._bias_column(batch.item_emb, batch.item_bias) if batch.item_bias is not None else batch.item_emb
        return (embedding_alignment_loss(teacher.heads["user"](eu), teacher.user[tu], kind=self.distance)
                + embedding_alignment_loss(teacher.heads["item"](ei), teacher.item[tc], kind=self.distance))


STRATEGIES: tuple[type[DistillStrategy], ...] = (ScoreDistillation, RankingDistillation, EmbeddingAlignment)
"""The built-in strategies (the members of ``StudentConfig.distill``'s annotation)."""


def strategy_from_dict(data: Mapping[str, Any]) -> DistillStrategy:
    """The strategy a ``{"kind": ..., <fields>}`` table describes (the form ``config.json``, a suite
    TOML or ``tune``'s best.toml stores), e.g. ``{"kind": "score", "temperature": 2.0}``.

    Raises
    ------
    ValueError
        For an unknown ``kind`` (naming the known ones) or an unknown field.
    """
    kinds = {cls.__dataclass_fields__["kind"].default: cls for cls in STRATEGIES}
    kind = data.get("kind", "score")
    if kind not in kinds:
        raise ValueError(f"unknown distillation kind {kind!r}; choose one of: {', '.join(kinds)}")
    try:
        return kinds[kind](**dict(data))
    except TypeError as e:
        raise ValueError(f"distill {{kind = {kind!r}}}: {e}") from None


def teacher_topk(Ut: np.ndarray, Vt: np.ndarray, observed: sp.csr_matrix, warm_items: np.ndarray,
                 k: int, batch: int = 2048) -> np.ndarray:
    """The teacher's top-``k`` unobserved warm items per user.

    Parameters
    ----------
    Ut : np.ndarray of float32, shape (n_users, D)
    Vt : np.ndarray of float32, shape (n_items, D)
    observed : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Items excluded per user.
    warm_items : np.ndarray of int64, shape (n_warm,)
        The items ranked.
    k : int
    batch : int
        Users scored at once.

    Returns
    -------
    np.ndarray of int64, shape (n_users, k)
        A user with fewer than ``k`` unobserved warm items has the rest of the row filled with
        their top item (top-k pads such rows with id -1, which must not index ``warm_items``).
    """
    out = []
    V = Vt[warm_items]
    for s in range(0, Ut.shape[0], batch):
        rows = np.arange(s, min(s + batch, Ut.shape[0]))
        ids, _ = topk(Ut[rows] @ V.T, k, exclude=observed[rows][:, warm_items])
        ids = np.where(ids >= 0, ids, np.maximum(ids[:, :1], 0))
        out.append(warm_items[ids])
    return np.concatenate(out)
