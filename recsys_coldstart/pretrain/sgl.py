"""SGL: Wu, Wang, Feng, He, Chen, Lian, Xie. "Self-supervised Graph Learning for Recommendation."
SIGIR 2021. https://arxiv.org/abs/2010.10783
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from recsys_coldstart.config import at_least, between, greater_than, one_of
from recsys_coldstart.graph.augment import edge_dropout_mask, node_dropout_mask, random_walk_masks
from recsys_coldstart.graph.encoders import lightgcn_propagate
from recsys_coldstart.graph.losses import info_nce
from recsys_coldstart.pretrain._trainer import GraphRecommender, GraphTrainConfig, TrainContext

AUG_TYPES = ("ed", "nd", "rw")


@dataclass(frozen=True)
class SGLConfig(GraphTrainConfig):
    """SGL options; ρ, τ and the layers are the paper's yelp2018 setting (SGL-ED, ρ=0.1, τ=0.2,
    λ=0.1, 3 layers; as on the SELFRec leaderboard: batch 2048, dim 64, lr 1e-3, reg 1e-4); λ=0.02
    and lr 1e-2 are set for ml-100k-sized tables (see :class:`GraphTrainConfig`). The published
    setting is ``benchmarks/configs/yelp2018_sgl.toml``.

    Parameters
    ----------
    aug_type : {"ed", "nd", "rw"}
        Edge dropout, node dropout or random walk (per-layer edge dropout).
    drop_rate : float
        ``ρ``, the dropout ratio of the augmentation.
    cl_temp : float
        ``τ`` of the InfoNCE loss (named as in SimGCL / XSimGCL; the paper's ``ssl_temp``).
    cl_weight : float
        ``λ``, weight of the contrastive loss (the paper's ``ssl_weight``).
    """

    aug_type: str = field(default="ed", metadata=one_of(*AUG_TYPES))
    drop_rate: float = field(default=0.1, metadata=between(0.0, 1.0, high_open=True))
    cl_temp: float = field(default=0.2, metadata=greater_than(0.0))
    cl_weight: float = field(default=0.02, metadata=at_least(0.0))


class SGL(GraphRecommender):
    """SGL (Wu et al., SIGIR 2021): LightGCN + contrast between two augmented graph views.

    At the start of every epoch two augmented graphs are drawn (node dropout, edge dropout, or
    for random walk a different edge-dropped graph per layer) and re-normalised. Per batch,

    ``L = L_bpr + λ (InfoNCE_τ(Z'_U, Z''_U) + InfoNCE_τ(Z'_I, Z''_I)) + reg * L2``

    where ``Z', Z''`` are the LightGCN representations of the two views for the batch's unique
    users ``U`` and unique positive items ``I`` (in-batch negatives), and the BPR term uses the
    full graph. Inference uses the full graph, no augmentation.

    Parameters
    ----------
    config : SGLConfig, optional
    **kwargs
        Fields of :class:`SGLConfig`.
    """

    config_class = SGLConfig

    @classmethod
    def search_space(cls, trial) -> dict:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        The shared graph ranges (optimiser and lr, L2 weight 1e-6..1e-2, dim up to 256, 1-4 layers,
        sampler where the model has two; :meth:`GraphRecommender.backbone_space`) plus SGL's own (Wu et al., SIGIR 2021, Sec. 4.3-4.4):
        dropout ratio ρ in {0, 0.1, ..., 0.5} (best 0.1), temperature τ in {0.1, 0.2, 0.5, 1.0}
        (best 0.2), SSL weight λ in {0.005, 0.01, 0.05, 0.1, 0.5, 1.0} (best 0.1 on yelp2018,
        0.5 on amazon-book), augmentation ED / ND / RW (SGL-ED best overall).
        """
        return {
            **cls.backbone_space(trial),
            "aug_type": trial.suggest_categorical("aug_type", ["ed", "nd", "rw"]),
            "drop_rate": trial.suggest_float("drop_rate", 0.05, 0.5),
            "cl_temp": trial.suggest_float("cl_temp", 0.1, 1.0, log=True),
            "cl_weight": trial.suggest_float("cl_weight", 0.005, 1.0, log=True),
        }
    include_input = True

    def _epoch_start(self, ctx: TrainContext) -> None:
        cfg, g, gen = self.config, ctx.graph, ctx.generator
        views = []
        for _ in range(2):
            if cfg.aug_type == "ed":
                views.append(g.adjacency(edge_dropout_mask(g.n_edges, cfg.drop_rate, gen, g.device)))
            elif cfg.aug_type == "nd":
                views.append(g.adjacency(node_dropout_mask(g, cfg.drop_rate, gen)))
            else:
                views.append([g.adjacency(m) for m in random_walk_masks(g.n_edges, cfg.drop_rate, cfg.n_layers,
                                                                       gen, g.device)])
        ctx.state["views"] = views

    def _batch_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                    neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, nu = self.config, ctx.graph.n_users
        emb0 = ctx.encoder.emb0()
        final = lightgcn_propagate(ctx.adj, emb0, cfg.n_layers, include_input=True)
        bpr, reg = self._rec_loss(ctx, emb0, final, users, pos, neg)
        v1, v2 = (lightgcn_propagate(v, emb0, cfg.n_layers, include_input=True) for v in ctx.state["views"])
        u = torch.unique(users)
        i = torch.unique(pos) + nu
        cl = info_nce(v1[u], v2[u], cfg.cl_temp) + info_nce(v1[i], v2[i], cfg.cl_temp)
        return bpr + cfg.cl_weight * cl + reg, {"bpr": bpr, "cl": cl, "reg": reg}
