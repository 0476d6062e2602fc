"""LightGCN: He, Deng, Wang, Li, Zhang, Wang. "LightGCN: Simplifying and Powering Graph Convolution
Network for Recommendation." SIGIR 2020. https://arxiv.org/abs/2002.02126
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recsys_coldstart.graph.encoders import layer_mean, lightgcn_propagate
from recsys_coldstart.graph.sampling import SampledBlocks, sampled_layers
from recsys_coldstart.pretrain._trainer import GraphRecommender, GraphTrainConfig, TrainContext


@dataclass(frozen=True)
class LightGCNConfig(GraphTrainConfig):
    """LightGCN options; defaults are the paper's (dim 64, 3 layers, Adam lr 1e-3, batch 2048,
    L2 1e-4 on the batch's layer-0 embeddings). See :class:`GraphTrainConfig` for every field."""


class LightGCN(GraphRecommender):
    """LightGCN (He et al., SIGIR 2020): linear propagation over the normalised user-item graph.

    ``E^(k+1) = Â E^(k)``, ``E = mean(E^(0), ..., E^(L))``, score ``e_u · e_i``, trained with BPR
    on one uniform negative per positive plus ``reg * L2`` of the batch's layer-0 embeddings:

    ``L = mean_b softplus(ŷ_uj - ŷ_ui) + reg * ½ (||e_u^0||² + ||e_i^0||² + ||e_j^0||²) / b``

    Parameters
    ----------
    config : LightGCNConfig, optional
    **kwargs
        Fields of :class:`LightGCNConfig`.

    Attributes
    ----------
    See :class:`recsys_coldstart.pretrain._trainer.GraphRecommender`.

    Examples
    --------
    >>> model = LightGCN(n_epochs=50).fit(split.train, val=split.val)  # doctest: +SKIP
    >>> ids, scores = model.recommend(users, k=20)                      # doctest: +SKIP
    """

    config_class = LightGCNConfig

    @classmethod
    def search_space(cls, trial) -> dict:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        Ranges cover the published optima: LightGCN (He et al., SIGIR 2020, Sec. 4.1) uses lr
        1e-3, dim 64, searches the L2 weight in {1e-6, ..., 1e-2} (best 1e-4) and 1-4 layers
        (best 3); the SELFRec leaderboard grid uses the same lr / reg / dim. dim goes to 256
        (larger embeddings help on small sets: the issue-12 ALS grid picked 128-256 on ml-100k).
        The optimiser (Adam or Adagrad, each with its lr range) and the batch sampler (full graph
        or neighbour-sampled) are drawn too: :meth:`GraphRecommender.backbone_space`.
        """
        return cls.backbone_space(trial)
    include_input = True
    samplers = ("full", "neighbor")

    def _batch_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                    neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        emb0 = ctx.encoder.emb0()
        final = lightgcn_propagate(ctx.adj, emb0, self.config.n_layers, include_input=True)
        bpr, reg = self._rec_loss(ctx, emb0, final, users, pos, neg)
        return bpr + reg, {"bpr": bpr, "reg": reg}

    def _sampled_batch_loss(self, ctx: TrainContext, blocks: SampledBlocks, users: torch.Tensor, pos: torch.Tensor,
                            neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x0 = ctx.layer0(blocks)
        layers = sampled_layers(blocks, x0)
        final = layer_mean([x[: blocks.n_seeds] for x in layers], include_input=True)
        bpr, reg = self._local_rec_loss(x0, final, users, pos, neg)
        return bpr + reg, {"bpr": bpr, "reg": reg}
