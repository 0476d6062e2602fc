"""Graph building blocks (torch): adjacency, LightGCN propagation, augmentations, losses.

No training loops here; see :mod:`recsys_coldstart.pretrain`.
"""

from recsys_coldstart.graph.augment import (
    edge_dropout_mask,
    node_dropout_mask,
    random_walk_masks,
    uniform_noise,
    uniform_noise_delta,
)
from recsys_coldstart.graph.convert import BipartiteGraph, normalized_adjacency, to_edge_index
from recsys_coldstart.graph.encoders import (
    LightGCNEncoder,
    SymmetricSpMM,
    layer_mean,
    lightgcn_layers,
    lightgcn_propagate,
    spmm,
)
from recsys_coldstart.graph.losses import bpr_loss, info_nce, l2_reg

__all__ = [
    "BipartiteGraph", "normalized_adjacency", "to_edge_index",
    "SymmetricSpMM", "spmm", "lightgcn_layers", "layer_mean", "lightgcn_propagate", "LightGCNEncoder",
    "edge_dropout_mask", "node_dropout_mask", "random_walk_masks", "uniform_noise", "uniform_noise_delta",
    "bpr_loss", "info_nce", "l2_reg",
]
