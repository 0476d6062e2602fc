"""XSimGCL: Yu, Xia, Chen, Cui, Hung, Yin. "XSimGCL: Towards Extremely Simple Graph Contrastive
Learning for Recommendation." IEEE TKDE 2023. https://arxiv.org/abs/2209.02544
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from recsys_coldstart.config import at_least, greater_than
from recsys_coldstart.graph.augment import uniform_noise
from recsys_coldstart.graph.encoders import layer_mean, lightgcn_layers
from recsys_coldstart.graph.losses import info_nce
from recsys_coldstart.pretrain._trainer import GraphRecommender, GraphTrainConfig, TrainContext


@dataclass(frozen=True)
class XSimGCLConfig(GraphTrainConfig):
    """XSimGCL options; ε, τ, l* and the layers are the published yelp2018 setting (SELFRec
    leaderboard: λ=0.2, ε=0.2, τ=0.15, l*=1, 3 layers, batch 2048, dim 64, lr 1e-3, reg 1e-4);
    λ=0.02 and lr 1e-2 are set for ml-100k-sized tables (see :class:`GraphTrainConfig`). The
    published setting is ``benchmarks/configs/yelp2018_xsimgcl.toml``.

    Parameters
    ----------
    eps : float
        ``ε``, radius of the uniform noise added at every layer.
    cl_weight : float
        ``λ``, weight of the cross-layer contrastive loss.
    cl_temp : float
        ``τ`` of the InfoNCE loss.
    cl_layer : int
        ``l*``, the layer whose (perturbed) embeddings are contrasted with the final ones.
    """

    eps: float = field(default=0.2, metadata=at_least(0.0))
    cl_weight: float = field(default=0.02, metadata=at_least(0.0))
    cl_temp: float = field(default=0.15, metadata=greater_than(0.0))
    cl_layer: int = field(default=1, metadata=at_least(1, integer=True))

    def _check(self) -> None:
        super()._check()
        if not 1 <= self.cl_layer <= max(self.n_layers, 1):
            raise ValueError(f"cl_layer must be in 1..n_layers={self.n_layers}, got {self.cl_layer}")


class XSimGCL(GraphRecommender):
    """XSimGCL (Yu et al., TKDE 2023): one perturbed forward pass serves both tasks.

    The layer-0 embeddings are propagated once with SimGCL's uniform noise after every layer;
    the final representation ``Z`` (mean of layers ``1..L``) feeds BPR, and the contrastive view is
    the perturbed layer ``l*``, ``Z^(l*)`` (cross-layer contrast):

    ``L = L_bpr(Z) + λ (InfoNCE_τ(Z_U, Z^(l*)_U) + InfoNCE_τ(Z_I, Z^(l*)_I)) + reg * L2``

    over the batch's unique users ``U`` and unique positive items ``I``. Inference propagates
    without noise.

    Parameters
    ----------
    config : XSimGCLConfig, optional
    **kwargs
        Fields of :class:`XSimGCLConfig`.
    """

    config_class = XSimGCLConfig

    @classmethod
    def search_space(cls, trial) -> dict:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        The shared graph ranges (optimiser and lr, L2 weight 1e-6..1e-2, dim up to 256, 1-4 layers,
        sampler where the model has two; :meth:`GraphRecommender.backbone_space`) plus XSimGCL's
        own (Yu et al., TKDE 2023, Sec. 5 and the SELFRec ``XSimGCL.conf``): λ 0.2, ε 0.2, τ 0.15,
        contrasted layer l* = 1 of 2 layers on yelp2018 / amazon-book; the paper's sensitivity
        study spans λ in {0.01, ..., 1}, ε in {0.01, ..., 1}, τ in {0.1, ..., 1} and every l*.
        ``cl_layer`` is drawn as a layer of the drawn ``n_layers``.
        """
        n_layers = trial.suggest_int("n_layers", 1, 4)
        return {
            **cls.backbone_space(trial, n_layers),
            "eps": trial.suggest_float("eps", 0.01, 1.0, log=True),
            "cl_weight": trial.suggest_float("cl_weight", 0.01, 5.0, log=True),
            "cl_temp": trial.suggest_float("cl_temp", 0.05, 1.0, log=True),
            "cl_layer": trial.suggest_int("cl_layer", 1, n_layers),
        }
    include_input = False

    def _batch_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                    neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, nu, gen = self.config, ctx.graph.n_users, ctx.generator
        emb0 = ctx.encoder.emb0()
        layers = lightgcn_layers(ctx.adj, emb0, cfg.n_layers, perturb=lambda x: uniform_noise(x, cfg.eps, gen))
        final = layer_mean(layers, include_input=cfg.n_layers == 0)
        view = layers[cfg.cl_layer]
        bpr, reg = self._rec_loss(ctx, emb0, final, users, pos, neg)
        u = torch.unique(users)
        i = torch.unique(pos) + nu
        cl = info_nce(final[u], view[u], cfg.cl_temp) + info_nce(final[i], view[i], cfg.cl_temp)
        return bpr + cfg.cl_weight * cl + reg, {"bpr": bpr, "cl": cl, "reg": reg}
