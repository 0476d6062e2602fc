"""Losses used by the distillation package only (ranking distillation), as pure functions.

Every function takes batch-first tensors and returns a scalar (the batch mean). The losses the
teacher and student share with the cold-start models (sampled softmax, score distillation,
embedding and pairwise alignment, score regression) live in :mod:`recsys_coldstart.towers.losses`;
BPR is :func:`recsys_coldstart.graph.losses.bpr_loss` (re-exported here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recsys_coldstart.graph.losses import bpr_loss

__all__ = ["bpr_loss", "rank_position_weights", "ranking_distillation_loss"]


def rank_position_weights(k: int, lam: float = 1.0, *, device=None) -> torch.Tensor:
    """Position importance of ranking distillation: ``w_r = exp(-r / lam) / sum_r' exp(-r' / lam)``, r = 1..k.

    Tang & Wang (KDD 2018), "Ranking Distillation", eq. for the position weight :math:`w^a_r`
    (normalised here to sum to one). Returns float32 of shape (k,).
    """
    r = torch.arange(1, k + 1, dtype=torch.float32, device=device)
    w = torch.exp(-r / float(lam))
    return w / w.sum()


def ranking_distillation_loss(student_topk: torch.Tensor, weights: torch.Tensor,
                              student_neg: torch.Tensor | None = None) -> torch.Tensor:
    """Ranking distillation (Tang & Wang, KDD 2018): the teacher's top-K as weighted positives.

    Pointwise form of the paper (``student_neg is None``):

    .. math:: L = -\\frac1b \\sum_u \\sum_{r=1}^K w_r \\log \\sigma(s_{u, \\pi_r})

    Pairwise form (``student_neg`` given), for dot-product students whose scores are only
    defined up to scale: each teacher top-K item should beat the sampled negatives,

    .. math:: L = -\\frac1{b\\,m} \\sum_u \\sum_{r=1}^K w_r \\sum_j \\log \\sigma(s_{u, \\pi_r} - s_{u, j})

    Parameters
    ----------
    student_topk : torch.Tensor, shape (b, K)
        Student scores of the teacher's top-K items ``pi_1..pi_K`` for each user.
    weights : torch.Tensor, shape (K,) or (b, K)
        Position weights ``w_r`` (see :func:`rank_position_weights`).
    student_neg : torch.Tensor, shape (b, m), optional
        Student scores of sampled negatives.
    """
    w = weights if weights.dim() == 2 else weights[None, :]
    if student_neg is None:
        return -(w * F.logsigmoid(student_topk)).sum(dim=1).mean()
    diff = student_topk[:, :, None] - student_neg[:, None, :]
    return -(w[:, :, None] * F.logsigmoid(diff)).sum(dim=1).mean()
