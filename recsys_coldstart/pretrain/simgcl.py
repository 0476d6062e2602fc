"""SimGCL: Yu, Yin, Xia, Chen, Cui, Nguyen. "Are Graph Augmentations Necessary? Simple Graph
Contrastive Learning for Recommendation." SIGIR 2022. https://arxiv.org/abs/2112.08679
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsys_coldstart.graph.augment import uniform_noise
from recsys_coldstart.graph.encoders import layer_mean, lightgcn_layers
from recsys_coldstart.graph.losses import info_nce
from recsys_coldstart.pretrain._trainer import GraphRecommender, GraphTrainConfig, TrainContext


@dataclass(frozen=True)
class SimGCLConfig(GraphTrainConfig):
    """SimGCL options; defaults are the published yelp2018 setting (SELFRec leaderboard:
    λ=0.5, ε=0.1, τ=0.2, 3 layers, batch 2048, dim 64, lr 1e-3, reg 1e-4).

    Parameters
    ----------
    eps : float
        ``ε``, radius of the uniform noise added at every layer.
    cl_weight : float
        ``λ``, weight of the contrastive loss.
    cl_temp : float
        ``τ`` of the InfoNCE loss.
    """

    eps: float = 0.1
    cl_weight: float = 0.5
    cl_temp: float = 0.2


class SimGCL(GraphRecommender):
    """SimGCL (Yu et al., SIGIR 2022): contrast two *noise-perturbed* views, no graph augmentation.

    Each view propagates the layer-0 embeddings with uniform noise added after every layer,
    ``E^(k) = Â E^(k-1) + ε sign(Â E^(k-1)) ⊙ normalize(U(0,1))``, and the representation is the
    mean of layers ``1..L`` (the paper skips the unperturbed ``E^(0)``, also at inference).

    ``L = L_bpr(clean) + λ (InfoNCE_τ(Z'_U, Z''_U) + InfoNCE_τ(Z'_I, Z''_I)) + reg * L2``

    over the batch's unique users ``U`` and unique positive items ``I``.

    Speed: the clean view and the two noisy views go over the same graph, so they are propagated
    together as one ``(n, 3·dim)`` matrix (one sparse product per layer instead of three).

    Parameters
    ----------
    config : SimGCLConfig, optional
    **kwargs
        Fields of :class:`SimGCLConfig`.
    """

    config_class = SimGCLConfig
    include_input = False

    def _batch_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                    neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, nu, gen = self.config, ctx.graph.n_users, ctx.generator
        emb0 = ctx.encoder.emb0()
        n, d = emb0.shape

        def perturb(x: torch.Tensor) -> torch.Tensor:
            noisy = uniform_noise(x[:, d:].reshape(n, 2, d), cfg.eps, gen).reshape(n, 2 * d)
            return torch.cat([x[:, :d], noisy], 1)

        layers = lightgcn_layers(ctx.adj, torch.cat([emb0, emb0, emb0], 1), cfg.n_layers, perturb=perturb)
        allv = layer_mean(layers, include_input=cfg.n_layers == 0)
        final, v1, v2 = allv[:, :d], allv[:, d:2 * d], allv[:, 2 * d:]
        bpr, reg = self._rec_loss(ctx, emb0, final, users, pos, neg)
        u = torch.unique(users)
        i = torch.unique(pos) + nu
        cl = info_nce(v1[u], v2[u], cfg.cl_temp) + info_nce(v1[i], v2[i], cfg.cl_temp)
        return bpr + cfg.cl_weight * cl + reg, {"bpr": bpr, "cl": cl, "reg": reg}
