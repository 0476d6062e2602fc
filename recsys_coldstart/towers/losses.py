"""Losses of the tower models, shared by :mod:`recsys_coldstart.distill` and :mod:`recsys_coldstart.coldstart`.

Pure functions of score / embedding tensors: every function takes batch-first tensors and
returns a scalar (the batch mean). The task loss of two-tower training (sampled softmax), the
pretrained-score regression of DropoutNet / Heater, and the alignment terms that both the
student and ALDI use. The student-only ranking distillation and BPR stay in
:mod:`recsys_coldstart.distill.losses`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sampled_softmax_loss(logits: torch.Tensor, *, temperature: float = 1.0,
                         mask: torch.Tensor | None = None, log_q: torch.Tensor | None = None) -> torch.Tensor:
    """Sampled softmax (in-batch / sampled negatives) with the positive in column ``r``.

    .. math:: L = -\\frac1b \\sum_r \\log \\frac{\\exp(s_{r,r}/\\tau - \\log q_r)}{\\sum_c \\exp(s_{r,c}/\\tau - \\log q_c)}

    (Covington et al., RecSys 2016; Yi et al., RecSys 2019 for in-batch negatives and the
    ``log q`` sampling-bias correction; ``log_q = None`` means no correction.)

    Parameters
    ----------
    logits : torch.Tensor, shape (b, n_cand) with n_cand >= b
        Column ``r`` of row ``r`` is that row's positive; the other columns are negatives.
    temperature : float
        ``tau``.
    mask : torch.Tensor of bool, shape (b, n_cand), optional
        True marks columns to ignore (e.g. a duplicate of the row's positive item).
    log_q : torch.Tensor, shape (n_cand,), optional
        Log of each candidate's expected count among the sampled candidates; subtracting it
        undoes the popularity bias of in-batch negatives.
    """
    z = logits / temperature
    if log_q is not None:
        z = z - log_q[None, :]
    if mask is not None:
        z = z.masked_fill(mask, float("-inf"))
    target = torch.arange(z.shape[0], device=z.device)
    return F.cross_entropy(z, target)


def score_distillation_loss(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0,
                            mask: torch.Tensor | None = None) -> torch.Tensor:
    """Soft-target score distillation (Hinton, Vinyals & Dean, 2015), over sampled candidates.

    .. math::
        L = T^2 \\frac1b \\sum_r \\mathrm{KL}\\big(\\mathrm{softmax}(t_r/T) \\,\\|\\, \\mathrm{softmax}(s_r/T)\\big)
          = T^2 \\frac1b \\sum_r \\sum_c p^t_{rc} (\\log p^t_{rc} - \\log p^s_{rc})

    The ``T^2`` factor keeps gradient magnitudes comparable across temperatures.

    Parameters
    ----------
    student, teacher : torch.Tensor, shape (b, n_cand)
        Scores of the same candidates (the teacher's are treated as constants).
    temperature : float
        ``T``.
    mask : torch.Tensor of bool, shape (b, n_cand), optional
        True marks candidates to leave out of both distributions.
    """
    s = student / temperature
    t = teacher.detach() / temperature
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
        t = t.masked_fill(mask, float("-inf"))
    log_ps = F.log_softmax(s, dim=1)
    log_pt = F.log_softmax(t, dim=1)
    pt = log_pt.exp()
    kl = torch.where(pt > 0, pt * (log_pt - log_ps), torch.zeros_like(pt))
    return temperature ** 2 * kl.sum(dim=1).mean()


def embedding_alignment_loss(student: torch.Tensor, teacher: torch.Tensor, *, kind: str = "mse",
                             weight: torch.Tensor | None = None) -> torch.Tensor:
    """Embedding alignment ("hint" regression, Romero et al. ICLR 2015 FitNets; DropoutNet / ALDI
    use it to map content to warm embeddings).

    - ``kind="mse"``: :math:`L = \\frac1b \\sum_r w_r \\lVert e^s_r - e^t_r \\rVert^2`
    - ``kind="cosine"``: :math:`L = \\frac1b \\sum_r w_r (1 - \\cos(e^s_r, e^t_r))`

    Parameters
    ----------
    student, teacher : torch.Tensor, shape (b, d)
        Student vectors (already projected to the teacher's width) and teacher vectors.
    kind : {"mse", "cosine"}
    weight : torch.Tensor, shape (b,), optional
        Per-row weights ``w_r`` (default 1).
    """
    t = teacher.detach()
    if kind == "mse":
        per = ((student - t) ** 2).sum(dim=1)
    elif kind == "cosine":
        per = 1.0 - F.cosine_similarity(student, t, dim=1)
    else:
        raise ValueError(f"unknown alignment kind {kind!r}; choose 'mse' or 'cosine'")
    if weight is not None:
        per = per * weight
    return per.mean()


def score_regression_loss(student: torch.Tensor, target: torch.Tensor,
                          weight: torch.Tensor | None = None) -> torch.Tensor:
    """Squared error to a pretrained model's scores (DropoutNet, Volkovs et al. NeurIPS 2017, eq. 2).

    .. math:: L = \\frac1{|B|} \\sum_{(u,i) \\in B} w_{ui} (U_u V_i^T - f_U(u) f_V(i)^T)^2

    Parameters
    ----------
    student, target : torch.Tensor, same shape
        Predicted and pretrained scores.
    weight : torch.Tensor, same shape, optional
    """
    per = (student - target.detach()) ** 2
    if weight is not None:
        per = per * weight
    return per.mean()


def pairwise_alignment_loss(student_diff: torch.Tensor, teacher_diff: torch.Tensor,
                            weight: torch.Tensor | None = None) -> torch.Tensor:
    """Ranking alignment of ALDI (Huang et al., SIGIR 2023): match the teacher's pairwise preference.

    .. math:: L = -\\frac1b \\sum w \\big[\\sigma(\\Delta^t)\\log\\sigma(\\Delta^s)
                  + (1-\\sigma(\\Delta^t))\\log(1-\\sigma(\\Delta^s))\\big]

    with :math:`\\Delta = s_{u,i} - s_{u,j}` for a positive ``i`` and a negative ``j``.

    Parameters
    ----------
    student_diff, teacher_diff : torch.Tensor, shape (b,) or (b, m)
    weight : torch.Tensor, broadcastable, optional
    """
    p = torch.sigmoid(teacher_diff.detach())
    per = F.binary_cross_entropy_with_logits(student_diff, p, reduction="none")
    if weight is not None:
        per = per * weight
    return per.mean()
