"""Data-parallel training on ``torch.distributed`` for every model on the shared fit loop.

Launch with ``torchrun --nproc-per-node N -m recsys_coldstart.cli pretrain ...`` (or
``coldstart pretrain --nproc N``, which re-launches itself through ``torch.distributed.run``).
:func:`init_from_env` reads ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` and starts the process
group (gloo on CPU, NCCL on CUDA: the backend follows the resolved device); a model's ``fit``
then picks the group up with :func:`current_world` and trains data-parallel. Without a process
group (or with one process) :func:`current_world` is the one-process :class:`World` whose
methods are identities, so a single process trains exactly as before.

What each rank does (a :class:`DistributedWorld`):

- **Sharding** (:meth:`DistributedWorld.shard`, ``DistributedSampler`` semantics): every rank draws
  the same epoch permutation of the training positives from the same seeded generator, pads it
  by wrapping around to a multiple of the world size and keeps the strided slice
  ``perm[rank::world_size]``. Batch ``k`` of every rank together is then exactly the global batch
  ``k`` of the padded permutation; ``batch_size`` stays the **global** batch and each rank takes
  ``batch_size / world_size`` positives per step (:meth:`DistributedWorld.local_batch`).
- **Gradients**: :meth:`DistributedWorld.average_gradients` all-reduces (mean) the gradients of
  every optimised parameter in one flattened buffer, between ``backward`` and ``step``, together
  with the batch loss (so a NaN on any rank stops every rank at the same step). We do this
  explicitly rather than wrapping the encoder in ``DistributedDataParallel``: the graph models'
  forward is the full-graph propagation ``lightgcn_layers(adj, emb0)`` plus model-specific losses
  that read the tables directly, and the tower models keep their nets in an ``nn.ModuleDict``
  without a ``forward``; DDP only prepares its reducer inside its own ``forward``. Its bucketed
  overlap of communication with backward would not help either: the graph gradient is one
  dense ``(n_users + n_items, dim)`` tensor produced at the very end of backward. One coalesced
  all-reduce per step is what DDP itself does with a single bucket.
- **Losses must be batch means** so that the mean over ranks of the per-rank gradients equals
  the gradient of the global batch (BPR is a mean; LightGCN's L2 term is divided by the
  *local* batch size, so averaging over ranks gives the global sum / global batch). Losses
  whose negatives are the batch itself (SimGCL / SGL InfoNCE, the towers' in-batch sampled
  softmax) see each rank's sub-batch only, as in any data-parallel contrastive training.
- **Randomness**: the permutation comes from the model's generator, identical on every rank;
  negatives, augmentations and dropout come from a rank generator re-seeded at the start of
  every epoch from ``SeedSequence(base, spawn_key=(rank, epoch))`` (:meth:`DistributedWorld.
  rank_generators`), so a run is deterministic for a fixed world size and a resumed run draws
  the same negatives without checkpointing each rank's generator.
- **Validation, early stopping, checkpoints**: :func:`recsys_coldstart.train.fit_loop` validates
  and checkpoints on rank 0 and broadcasts rank 0's validation logs, so every rank keeps /
  stops at the same epoch; the epoch logs are averaged. The checkpoint fingerprint includes the
  world size (a 2-rank checkpoint resumes only with 2 ranks).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys_coldstart.train.loop import World

logger = logging.getLogger(__name__)

__all__ = ["DistributedWorld", "World", "backend_for", "current_world", "distributed_session", "env_world_size",
           "init_from_env", "local_device", "relaunch", "shutdown"]


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (set by ``torchrun``); 1 when absent."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ.get('WORLD_SIZE')!r}") from None


def backend_for(device: Any) -> str:
    """``"nccl"`` for a CUDA device, else ``"gloo"``."""
    import torch

    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_env(device: Any = "auto") -> World:
    """Start the process group described by ``torchrun``'s environment, once; return the world.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT``). With
    ``WORLD_SIZE`` absent or 1 nothing is started and the one-process :class:`World` is returned.
    On CUDA, rank ``LOCAL_RANK`` uses GPU ``LOCAL_RANK`` (``torch.cuda.set_device``).

    Parameters
    ----------
    device : str or torch.device
        The model's device (``"auto"`` resolves to CUDA when present); picks the backend.

    Returns
    -------
    World
        A :class:`DistributedWorld` when ``WORLD_SIZE > 1``.
    """
    if env_world_size() <= 1:
        return World()
    import torch
    import torch.distributed as dist

    from recsys_coldstart._utils import resolve_device

    dev = resolve_device(device)
    if not dist.is_initialized():
        backend = backend_for(dev)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
        # a process that exits with the group alive can abort (SIGABRT) while the interpreter
        # tears down gloo's worker threads; destroy it while Python is still whole
        atexit.register(shutdown, wait=False)
        logger.info("process group: backend %s, rank %d of %d", backend, dist.get_rank(), dist.get_world_size())
    return current_world()


def shutdown(wait: bool = True) -> None:
    """End the default process group, if one is running: wait for every rank (``wait``), then
    ``destroy_process_group``. A no-op without a group, so it is safe to call twice.

    Every rank must call it with the same ``wait``: a rank that leaves first closes its
    connections while the others may still be sending, which gloo answers with an abort.

    Parameters
    ----------
    wait : bool
        Barrier before destroying (skip it after an error, when the other ranks may never arrive).
    """
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return
    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait and dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()


@contextlib.contextmanager
def distributed_session(device: Any = "auto"):
    """:func:`init_from_env` on entry; on exit, every rank waits for the others and the process
    group is destroyed (:func:`shutdown`). Yields the :class:`World` (the one-process world
    without ``torchrun``'s environment).

    On an error the barrier is skipped (the other ranks may never reach it) and the group is
    still destroyed, so the error propagates instead of hanging.

    Parameters
    ----------
    device : str or torch.device
        The model's device; picks the backend (see :func:`init_from_env`).
    """
    world = init_from_env(device)
    try:
        yield world
    except BaseException:
        shutdown(wait=False)
        raise
    shutdown(wait=True)


def relaunch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m recsys_coldstart.cli *argv`` (without its ``--nproc``) on ``nproc`` local ranks
    through ``torch.distributed.run --standalone`` and return its exit code.

    Parameters
    ----------
    nproc : int
        Processes (``--nproc-per-node``).
    argv : sequence of str
        The command's arguments, e.g. ``["pretrain", "--dataset", "ml-100k", "--nproc", "2"]``.

    Returns
    -------
    int
    """
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "recsys_coldstart.cli", *args]
    logger.info("relaunching: %s", " ".join(cmd))
    return subprocess.call(cmd)


def local_device(device: Any) -> Any:
    """The device of this rank: ``cuda:LOCAL_RANK`` for a bare ``"cuda"`` / ``"auto"`` under a CUDA
    process group, else ``device`` resolved."""
    import torch

    from recsys_coldstart._utils import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and current_world().world_size > 1:
        return torch.device("cuda", torch.cuda.current_device())
    return dev


def current_world() -> World:
    """The :class:`DistributedWorld` of an initialised process group of > 1 ranks, else :class:`World`."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return World()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DistributedWorld()
    return World()


class DistributedWorld(World):
    """The ranks of the initialised default process group (see the module docstring).

    Attributes
    ----------
    rank : int
    world_size : int
    """

    def __init__(self) -> None:
        import torch.distributed as dist

        self.rank = int(dist.get_rank())
        self.world_size = int(dist.get_world_size())
        self._device = self._comm_device()

    @staticmethod
    def _comm_device() -> Any:
        import torch
        import torch.distributed as dist

        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    # ------------------------------------------------------------------ fit_loop hooks
    def average(self, logs: dict[str, float]) -> dict[str, float]:
        """Mean over ranks of every logged value (ranks must log the same keys)."""
        import torch
        import torch.distributed as dist

        keys = sorted(logs)
        names = self.broadcast(keys)
        if names != keys:
            raise RuntimeError(f"rank {self.rank} logged {keys}, rank 0 {names}: every rank must log the same keys")
        t = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64, device=self._device)
        dist.all_reduce(t)
        t /= self.world_size
        return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (any picklable object) on every rank."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self._device)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        import torch.distributed as dist

        dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order, on every rank."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    # ------------------------------------------------------------------ data-parallel training
    def local_batch(self, batch_size: int) -> int:
        """Positives per rank per step for the global ``batch_size`` (must divide by the world size)."""
        if batch_size % self.world_size:
            raise ValueError(f"batch_size {batch_size} must be divisible by the world size {self.world_size} "
                             "(it is the global batch; each rank takes batch_size / world_size)")
        return batch_size // self.world_size

    def shard(self, perm: Any) -> Any:
        """This rank's strided slice of the (wrap-padded) epoch permutation ``perm`` (1-d tensor or array)."""
        n = len(perm)
        total = -(-n // self.world_size) * self.world_size
        if total > n:  # wrap around, as DistributedSampler(drop_last=False) does
            import torch

            pad = perm[: total - n] if total - n <= n else perm[np.arange(total - n) % n]
            perm = torch.cat([perm, pad]) if isinstance(perm, torch.Tensor) else np.concatenate([perm, pad])
        return perm[self.rank::self.world_size]

    def average_gradients(self, optimizer: Any, loss: Any = None) -> Any:
        """Mean over ranks of the gradients of ``optimizer``'s parameters (and of ``loss``); returns the
        rank-averaged loss (None without ``loss``). A parameter without a gradient on every rank keeps
        None; one with a gradient on some ranks only gets zeros on the others. ``optimizer=None``
        averages only ``loss`` (parameters stepped elsewhere, e.g. by a fused optimiser in backward)."""
        import torch
        import torch.distributed as dist

        params = [p for g in optimizer.param_groups for p in g["params"]] if optimizer is not None else []
        live = []
        if params:
            has = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=self._device)
            dist.all_reduce(has, op=dist.ReduceOp.MAX)
            live = [p for p, h in zip(params, has.tolist(), strict=True) if h]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        parts = [p.grad.reshape(-1) for p in live]
        if loss is not None:
            parts.append(loss.detach().reshape(1).to(parts[0].dtype if parts else torch.float32))
        if not parts:
            return loss
        flat = torch.cat(parts).to(self._device)
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in live:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n
        return flat[-1].to(loss.device) if loss is not None else None

    def sampling_streams(self, torch_gen: Any = None, numpy_rng: Any = None) -> tuple[Any, Any, Any]:
        """This rank's own sampling generators (new objects on the devices / of the kinds of the
        model's ones) and the ``on_epoch_start(epoch)`` hook that re-seeds them from
        ``SeedSequence(base, spawn_key=(rank, epoch))``; ``base`` is drawn once from the model's
        generator, identical on every rank. Returns ``(torch_gen, numpy_rng, hook)``."""
        import torch

        if numpy_rng is not None:
            base = int(numpy_rng.integers(0, 2**62))
        elif torch_gen is not None:
            base = int(torch.randint(2**62, (1,), generator=torch_gen, device=torch_gen.device).item())
        else:
            return None, None, None
        t_gen = torch.Generator(device=torch_gen.device) if torch_gen is not None else None
        n_rng = np.random.default_rng(0) if numpy_rng is not None else None
        rank = self.rank

        def reseed(epoch: int) -> None:
            ss = np.random.SeedSequence(base, spawn_key=(rank, int(epoch)))
            if t_gen is not None:
                t_gen.manual_seed(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))
            if n_rng is not None:
                n_rng.bit_generator.state = np.random.PCG64(ss.spawn(1)[0]).state

        reseed(1)
        return t_gen, n_rng, reseed

