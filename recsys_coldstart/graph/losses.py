"""Losses of graph recommenders, as pure functions (no state, no reduction flags)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking (Rendle et al., UAI 2009), batch mean.

    ``L = mean_b -log σ(ŷ_{u,i} - ŷ_{u,j}) = mean_b softplus(ŷ_{u,j} - ŷ_{u,i})``

    Parameters
    ----------
    pos_scores, neg_scores : torch.Tensor, shape (b,)
        Scores of the positive and the sampled negative item of each triple.

    Returns
    -------
    torch.Tensor, scalar
    """
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
