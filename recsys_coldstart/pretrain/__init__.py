"""Self-supervised graph pretraining: LightGCN, SGL, SimGCL, XSimGCL (one file each).

All share :class:`~recsys_coldstart.pretrain._trainer.GraphRecommender` (fit loop, fold-in of new
users, save/load) and :class:`~recsys_coldstart.pretrain._trainer.GraphTrainConfig`.
"""

from recsys_coldstart.pretrain._trainer import GraphRecommender, GraphTrainConfig
from recsys_coldstart.pretrain.lightgcn import LightGCN, LightGCNConfig
from recsys_coldstart.pretrain.sgl import SGL, SGLConfig
from recsys_coldstart.pretrain.simgcl import SimGCL, SimGCLConfig
from recsys_coldstart.pretrain.xsimgcl import XSimGCL, XSimGCLConfig

__all__ = [
    "GraphRecommender", "GraphTrainConfig", "LightGCN", "LightGCNConfig", "SGL", "SGLConfig",
    "SimGCL", "SimGCLConfig", "XSimGCL", "XSimGCLConfig",
]
