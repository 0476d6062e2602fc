"""Losses of graph recommenders, as pure functions (no state, no reduction flags)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking (Rendle et al., UAI 2009), mean over all pairs.

    .. math:: L = \\frac1{b\\,m} \\sum_{r,j} -\\log \\sigma(\\hat y^+_r - \\hat y^-_{r,j})
              = \\frac1{b\\,m} \\sum_{r,j} \\mathrm{softplus}(\\hat y^-_{r,j} - \\hat y^+_r)

    The one BPR of the package (graph models with one negative per triple, the two-tower
    teacher with ``m`` sampled negatives per row).

    Parameters
    ----------
    pos_scores : torch.Tensor, shape (b,)
        Scores of each row's positive.
    neg_scores : torch.Tensor, shape (b,) or (b, m)
        Scores of the sampled negative(s) of each row.

    Returns
    -------
    torch.Tensor, scalar
    """
    if neg_scores.dim() == 2:
        pos_scores = pos_scores[:, None]
    return F.softplus(neg_scores - pos_scores).mean()


def info_nce(view1: torch.Tensor, view2: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives (SGL, SimGCL, XSimGCL), batch mean.

    With ``z' = z / ||z||``, for each row ``n``:

    ``L_n = -log( exp(z'_n · z''_n / τ) / Σ_m exp(z'_n · z''_m / τ) )``

    i.e. the other rows of ``view2`` are the negatives (cross-entropy over the cosine-similarity
    matrix with the diagonal as target).

    Parameters
    ----------
    view1, view2 : torch.Tensor, shape (b, d)
        Two views of the same ``b`` nodes, row-aligned.
    temperature : float
        ``τ > 0``.

    Returns
    -------
    torch.Tensor, scalar
    """
    z1 = F.normalize(view1, dim=1)
    z2 = F.normalize(view2, dim=1)
    logits = z1 @ z2.T / temperature
    target = torch.arange(z1.shape[0], device=z1.device)
    return F.cross_entropy(logits, target)


def l2_reg(*tensors: torch.Tensor, batch_size: int) -> torch.Tensor:
    """L2 penalty on the embeddings used in a batch, as in LightGCN's code.

    ``L = (1/2) Σ_t ||t||_F² / batch_size``

    Parameters
    ----------
    *tensors : torch.Tensor
        E.g. the layer-0 embeddings of the batch users, positives and negatives, each (b, d).
    batch_size : int

    Returns
    -------
    torch.Tensor, scalar
    """
    return sum(t.pow(2).sum() for t in tensors) * 0.5 / batch_size
