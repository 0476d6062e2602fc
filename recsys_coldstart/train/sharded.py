"""Row-wise sharded user / item embedding tables on TorchRec, for tables too big for one device.

Each rank of a ``torch.distributed`` group holds a contiguous block of rows of each table (TorchRec's
``ROW_WISE`` sharding of an ``EmbeddingCollection``, built by ``DistributedModelParallel`` with a
plan from its ``EmbeddingShardingPlanner``); a lookup sends every id to the rank that owns its row
(all-to-all) and the rows back. The optimiser is fused into the backward pass (fbgemm's table
batched embedding kernels): the rows a batch touched are updated on their owner as soon as their
gradients arrive, so no rank ever holds a gradient or an optimiser state for the whole table.
Gradients of a row looked up on several ranks are averaged over ranks (TorchRec divides by the
world size), the same rule as :meth:`recsys_coldstart.train.distributed.DistributedWorld.average_gradients`
for dense tables, so one step of sharded tables on N ranks equals one dense step on the N ranks'
concatenated batch (``tests/train/test_sharded.py``).

Optimisers (fbgemm's fused kernels): ``"sgd"`` (``EXACT_SGD``) and ``"adagrad"`` (``EXACT_ADAGRAD``)
give the same steps as ``torch.optim.SGD`` / ``torch.optim.Adagrad`` on a dense table (Adagrad has
no momentum, so rows a batch does not touch stay put either way). ``"adam"`` (fbgemm ``ADAM``) runs
on CUDA only (fbgemm 1.8's CPU kernels implement SGD and the Adagrad family); it is *row-sparse*
Adam: only the rows in the batch update their moments and values, where ``torch.optim.Adam`` on a
dense table also moves untouched rows by their old momentum (the two agree on the first step only).

Install: TorchRec is not a default dependency. The pairing that coexists with this package's torch
2.13 on CPU is ``torchrec==1.8.0`` with ``fbgemm-gpu-cpu==1.8.0``, installed with ``--no-deps``
(TorchRec's metadata asks for the CUDA ``fbgemm-gpu`` wheel, which overwrites the CPU one), plus
TorchRec's pure-Python dependencies::

    pip install --no-deps torchrec==1.8.0 fbgemm-gpu-cpu==1.8.0
    pip install tensordict torchmetrics==1.0.3 pyre-extensions

On a CUDA machine use the ``fbgemm-gpu`` wheel built for its torch instead of ``fbgemm-gpu-cpu``.

Used by :class:`recsys_coldstart.pretrain.GraphRecommender` with ``tables="sharded"``
(neighbour-sampled training: every batch looks up only its sampled subgraph's rows).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

INSTALL_HINT = ("pip install --no-deps torchrec==1.8.0 fbgemm-gpu-cpu==1.8.0 && "
                "pip install tensordict torchmetrics==1.0.3 pyre-extensions")
OPTIMIZERS = ("adam", "adagrad", "sgd")
ADAGRAD_EPS = 1e-10  # torch.optim.Adagrad's default, passed to fbgemm so the steps agree


def torchrec_available() -> bool:
    """True when TorchRec and fbgemm import beside this torch (see the module docstring)."""
    try:
        import fbgemm_gpu  # noqa: F401
        import torchrec  # noqa: F401
    except (ImportError, OSError):  # OSError: a CUDA fbgemm wheel on a CPU-only torch
        return False
    return True


def _require_torchrec() -> None:
    try:
        import fbgemm_gpu  # noqa: F401
        import torchrec  # noqa: F401
    except (ImportError, OSError) as exc:
        raise ImportError(f"tables='sharded' needs TorchRec with fbgemm ({exc}); install the pairing that "
                          f"matches torch 2.13 on CPU with: {INSTALL_HINT}") from exc


class ShardedTables:
    """A user table and an item table, row-wise sharded over the ranks of the process group.

    Every rank must call :meth:`lookup` (with its own ids) and :meth:`full` together: both are
    collective.

    Parameters
    ----------
    user_init, item_init : torch.Tensor of float32, shapes (n_users, dim), (n_items, dim)
        Starting values, identical on every rank (each rank copies its own rows).
    lr : float
        Learning rate of the fused optimiser.
    optimizer : {"adam", "adagrad", "sgd"}
        See the module docstring (``"adam"``: CUDA only).
    device : torch.device
        This rank's device (CPU: gloo; CUDA: NCCL).

    Attributes
    ----------
    n_users, n_items, dim : int
    plan : object
        TorchRec's sharding plan (``print`` it to see which rank owns which rows).
    """

    def __init__(self, user_init: torch.Tensor, item_init: torch.Tensor, *, lr: float, optimizer: str = "adam",
                 device: Any = "cpu") -> None:
        _require_torchrec()
        import torch.distributed as dist

        with warnings.catch_warnings():  # fbgemm announces deprecated modules of its own on import
            warnings.simplefilter("ignore", DeprecationWarning)
            from fbgemm_gpu.split_embedding_configs import EmbOptimType
            from torchrec import EmbeddingCollection, EmbeddingConfig
            from torchrec.distributed.embedding import EmbeddingCollectionSharder
            from torchrec.distributed.model_parallel import DistributedModelParallel
            from torchrec.distributed.planner import EmbeddingShardingPlanner
            from torchrec.distributed.planner.storage_reservations import (
                FixedPercentageStorageReservation,
            )
            from torchrec.distributed.planner.types import (
                KernelConfig,
                ParameterConstraints,
                TopologyFactory,
                TrainerConfig,
            )
            from torchrec.distributed.types import ShardingType

        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if optimizer == "adam" and torch.device(device).type != "cuda":
            raise ValueError("tables='sharded' with optimizer='adam' needs CUDA: fbgemm's CPU kernels implement "
                             "only SGD and Adagrad; use optimizer='adagrad' or 'sgd' on CPU")
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("tables='sharded' shards the tables over the ranks of a torch.distributed process "
                               "group: launch with torchrun --nproc-per-node N (or coldstart pretrain --nproc N)")
        if user_init.shape[1] != item_init.shape[1]:
            raise ValueError(f"user and item tables need one dim, got {user_init.shape[1]} and {item_init.shape[1]}")
        self.device = torch.device(device)
        self.n_users, self.dim = int(user_init.shape[0]), int(user_init.shape[1])
        self.n_items = int(item_init.shape[0])
        world = dist.get_world_size()
        tables = [EmbeddingConfig(name=name, embedding_dim=self.dim, num_embeddings=n, feature_names=[name])
                  for name, n in (("user", self.n_users), ("item", self.n_items))]
        collection = EmbeddingCollection(tables=tables, device=torch.device("meta"))
        kinds = {"adam": EmbOptimType.ADAM, "adagrad": EmbOptimType.EXACT_ADAGRAD, "sgd": EmbOptimType.EXACT_SGD}
        fused: dict[str, Any] = {"optimizer": kinds[optimizer], "learning_rate": float(lr)}
        if optimizer == "adam":  # torch.optim.Adam's defaults
            fused.update(beta1=0.9, beta2=0.999, eps=1e-8)
        elif optimizer == "adagrad":
            fused.update(eps=ADAGRAD_EPS)
        sharder = EmbeddingCollectionSharder(fused_params=fused)
        constraints = {t.name: ParameterConstraints(sharding_types=[ShardingType.ROW_WISE.value]) for t in tables}
        topology = TopologyFactory.create_topology(TrainerConfig(world_size=world),
                                                   kernel_config=KernelConfig(compute_device=self.device.type))
        planner = EmbeddingShardingPlanner(topology=topology, constraints=constraints,
                                           storage_reservation=FixedPercentageStorageReservation(0.15))
        quiet = logging.getLogger("torchrec.distributed.planner")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its storage estimate warns about un-materialised (meta) tables: ours are
        try:
            self.plan = planner.collective_plan(collection, [sharder], dist.GroupMember.WORLD)
        finally:
            quiet.setLevel(level)
        self.module = DistributedModelParallel(collection, device=self.device, plan=self.plan, sharders=[sharder])
        init = {"user": user_init, "item": item_init}
        for name, shard in self._local_shards():
            o, s = shard.metadata.shard_offsets, shard.metadata.shard_sizes
            with torch.no_grad():
                shard.tensor.copy_(init[name][o[0]:o[0] + s[0], o[1]:o[1] + s[1]].to(shard.tensor.device))

    def _local_shards(self):
        for key, value in self.module.state_dict().items():
            name = key.split(".")[-2]  # "...embeddings.<table>.weight"
            if name not in ("user", "item"):
                continue
            for shard in value.local_shards():
                yield name, shard

    def lookup(self, node: torch.Tensor, n_users: int | None = None) -> torch.Tensor:
        """Layer-0 rows of global node ids (users ``< n_users``, then items offset by ``n_users``).

        Parameters
        ----------
        node : torch.Tensor of int64, shape (n,)
        n_users : int, optional
            The offset of item ids (default: the user table's size).

        Returns
        -------
        torch.Tensor, shape (n, dim)
            Differentiable: ``backward`` sends the rows' gradients to their owners, which apply
            the fused optimiser step.
        """
        from torchrec import KeyedJaggedTensor

        from recsys_coldstart.graph.sampling import merge_rows, split_node_ids

        nu = self.n_users if n_users is None else int(n_users)
        (u_pos, users), (i_pos, items) = split_node_ids(node.to(self.device), nu)
        kjt = KeyedJaggedTensor.from_lengths_sync(
            keys=["user", "item"], values=torch.cat([users, items]),
            lengths=torch.tensor([len(users), len(items)], dtype=torch.int32, device=self.device))
        out = self.module(kjt)
        return merge_rows(u_pos, out["user"].values(), i_pos, out["item"].values())

    def full(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Both whole tables on every rank (collective; no autograd): ``(users, items)``."""
        import torch.distributed as dist

        tabs = {"user": torch.zeros(self.n_users, self.dim, device=self.device),
                "item": torch.zeros(self.n_items, self.dim, device=self.device)}
        for name, shard in self._local_shards():
            o, s = shard.metadata.shard_offsets, shard.metadata.shard_sizes
            tabs[name][o[0]:o[0] + s[0], o[1]:o[1] + s[1]] = shard.tensor.detach().to(self.device)
        for t in tabs.values():
            dist.all_reduce(t)  # each row is owned by one rank, zero elsewhere
        return tabs["user"], tabs["item"]

    def local_rows(self) -> dict[str, list[tuple[int, int]]]:
        """``{"user": [(first_row, n_rows), ...], "item": [...]}``: the rows this rank holds."""
        rows: dict[str, list[tuple[int, int]]] = {"user": [], "item": []}
        for name, shard in self._local_shards():
            rows[name].append((int(shard.metadata.shard_offsets[0]), int(shard.metadata.shard_sizes[0])))
        return rows
