"""THE fit loop of every iterative model (graph pretraining, matrix factorisation, tower models).

A model supplies one epoch of training (``epoch_fn``) and, optionally, a validation function
(usually :func:`recsys_coldstart.train.validation.score_factors` over a plan built once per fit);
:func:`fit_loop` does the rest, the same way for every model:

1. ``on_epoch_start(epoch)`` (e.g. a distributed sampler's ``set_epoch``), then
   ``logs = epoch_fn(epoch)`` (epochs are numbered from 1);
2. the NaN guard: a non-finite logged value (e.g. ``loss``) or parameter of ``module`` raises
   :class:`~recsys_coldstart.exceptions.TrainingDivergedError` naming the epoch;
3. every ``eval_every`` epochs, ``validate()`` adds ``val_{metric}@{k}`` keys to the logs; the
   state of ``module`` with the best ``monitor`` value is kept (with ``score_start`` the state
   before training is a candidate too: epoch 0) and restored at the end; ``patience``
   evaluations without improvement stop training (patience counts *evaluations*: with
   ``eval_every=1`` it is a number of epochs);
4. a checkpoint every ``checkpoint.every`` epochs (:mod:`recsys_coldstart.train.checkpoint`);
5. ``callback(epoch, logs)``; True stops training (optuna pruning, time budgets).

One history format: :attr:`LoopResult.history` is a dict of equal-length 1-d float64 arrays,
keys ``epoch``, ``loss``, ``seconds`` and every other logged key, NaN where an epoch did not log
it (``val_*`` on epochs without evaluation). Models store it as ``history_``.

Hooks for data-parallel training (``torch.distributed``): ``world`` (a :class:`World`) averages
each epoch's logs across ranks, runs validation and checkpointing on rank 0 only and broadcasts
rank 0's validation logs, so every rank takes the same keep / stop decisions; the default is one
process. Gradient averaging belongs in ``epoch_fn`` (a ``DistributedDataParallel`` module does it
in ``backward``).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recsys_coldstart.exceptions import TrainingDivergedError
from recsys_coldstart.train.checkpoint import Checkpointer

logger = logging.getLogger(__name__)


class Stateful(Protocol):
    """Anything with ``state_dict()`` / ``load_state_dict(state)`` (modules, optimizers, generator adapters)."""

    def state_dict(self) -> dict[str, Any]:
        """The state to snapshot / checkpoint."""

    def load_state_dict(self, state: dict[str, Any]) -> Any:
        """Restore a snapshot."""


class World:
    """One process (the default): rank 0 of 1, every collective is the identity.

    A ``torch.distributed`` implementation overrides :meth:`average` (all-reduce of the epoch's
    logs), :meth:`broadcast` (rank 0's object to every rank) and :meth:`barrier`; ``fit_loop``
    validates, checkpoints and shows progress on the main rank only.

    Attributes
    ----------
    rank : int
    world_size : int
    """

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    def average(self, logs: dict[str, float]) -> dict[str, float]:
        """Mean of every rank's epoch logs (identity for one process)."""
        return logs

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (identity for one process)."""
        return obj

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""

    @property
    def is_distributed(self) -> bool:
        """True with more than one rank."""
        return self.world_size > 1

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (``[obj]`` for one process)."""
        return [obj]

    def local_batch(self, batch_size: int) -> int:
        """Positives each rank takes per step for the global ``batch_size`` (all of it for one process)."""
        return batch_size

    def shard(self, perm: Any) -> Any:
        """This rank's part of an epoch permutation (all of it for one process)."""
        return perm

    def average_gradients(self, optimizer: Any, loss: Any = None) -> Any:
        """Average the gradients of ``optimizer``'s parameters over ranks (``None``: no parameters, only
        ``loss``); returns ``loss`` averaged too (one process: nothing to do, ``loss`` is returned as is)."""
        return loss

    def sampling_streams(self, torch_gen: Any = None, numpy_rng: Any = None) -> tuple[Any, Any, Any]:
        """The generators a rank samples negatives / augmentations from, and the ``on_epoch_start``
        hook that re-seeds them: ``(torch_gen, numpy_rng, hook)``. One process: the model's own
        generators, hook None (so a single process draws exactly what it always drew)."""
        return torch_gen, numpy_rng, None


@dataclass
class LoopResult:
    """What :func:`fit_loop` returns.

    Attributes
    ----------
    history : dict of str to np.ndarray of float64, each of shape (epochs_run,)
        ``epoch``, ``loss``, ``seconds`` and every other logged key (NaN where not logged).
    best_epoch : int
        Epoch whose state was kept: 0 = the start state (``score_start``); without validation
        the last epoch.
    best_score : float
        ``monitor`` at ``best_epoch`` (NaN without validation).
    epochs_run : int
        Epochs trained, including those restored from a checkpoint.
    stop_reason : str
        ``"n_epochs"``, ``"patience"`` or ``"callback"``.
    """

    history: dict[str, np.ndarray] = field(default_factory=dict)
    best_epoch: int = 0
    best_score: float = math.nan
    epochs_run: int = 0
    stop_reason: str = "n_epochs"


def snapshot(module: Stateful) -> dict[str, Any]:
    """A detached copy of ``module.state_dict()`` (tensors cloned, anything else deep-copied)."""
    out = {}
    for k, v in module.state_dict().items():
        out[k] = v.detach().clone() if hasattr(v, "detach") else copy.deepcopy(v)
    return out


def history_arrays(rows: list[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Per-epoch log dicts -> the history format: equal-length float64 arrays, NaN where missing.

    Parameters
    ----------
    rows : list of dict
        One dict per epoch (each with ``epoch``).

    Returns
    -------
    dict of str to np.ndarray, shape (len(rows),)
        Keys ``epoch``, ``loss``, ``seconds`` first, then the others in first-seen order.
    """
    keys = ["epoch", "loss", "seconds"]
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    return {k: np.asarray([float(r.get(k, math.nan)) for r in rows], np.float64) for k in keys}


def _check_finite(logs: Mapping[str, float], module: Any, epoch: int, desc: str, hint: str) -> None:
    for k, v in logs.items():
        if isinstance(v, (int, float, np.number)) and not math.isfinite(float(v)):
            raise TrainingDivergedError(f"{desc}: {k} became {float(v)} (NaN/inf) at epoch {epoch}{hint}")
    params = getattr(module, "parameters", None)
    if params is not None:
        import torch

        for p in params():
            if not bool(torch.isfinite(p).all()):
                raise TrainingDivergedError(f"{desc}: parameters became NaN/inf at epoch {epoch}{hint}")


def fit_loop(epoch_fn: Callable[[int], Mapping[str, float] | None], *, n_epochs: int,
             validate: Callable[[], Mapping[str, float]] | None = None, monitor: str | None = None,
             eval_every: int = 1, patience: int | None = None, score_start: bool = False,
             module: Stateful | None = None, callback: Callable[[int, dict[str, float]], Any] | None = None,
             checkpoint: Checkpointer | None = None, resumable: Mapping[str, Stateful] | None = None,
             on_epoch_start: Callable[[int], None] | None = None, world: World | None = None,
             show_progress: bool = False, desc: str = "fit", diverged_hint: str = "") -> LoopResult:
    """Train for up to ``n_epochs`` epochs (see the module docstring for the order of events).

    Parameters
    ----------
    epoch_fn : callable
        ``epoch_fn(epoch) -> logs`` trains one epoch (``epoch`` from 1) and returns floats to log
        (e.g. ``{"loss": ...}``) or None.
    n_epochs : int
        Last epoch (a resumed run continues up to it).
    validate : callable, optional
        ``validate() -> {"val_ndcg@20": ..., ...}`` scores the current state (higher is better).
    monitor : str, optional
        The key of ``validate``'s result that early stopping maximises (default: its first key).
    eval_every : int
        Validate after every this many epochs.
    patience : int, optional
        Stop after this many evaluations without a better ``monitor`` (None: never).
    score_start : bool
        Also validate the state before the first epoch and keep it (epoch 0) if no epoch beats
        it (e.g. a closed-form initialisation).
    module : Stateful, optional
        Whose best state is kept and restored, and whose parameters the NaN guard checks.
    callback : callable, optional
        ``callback(epoch, logs) -> stop``.
    checkpoint : Checkpointer, optional
        Resume from / save to a checkpoint; with it, ``resumable`` names everything to save.
    resumable : dict of str to Stateful, optional
        E.g. ``{"encoder": module, "optimizer": opt, "generator": TorchGeneratorState(gen)}``.
    on_epoch_start : callable, optional
        ``on_epoch_start(epoch)`` before each epoch.
    world : World, optional
        Distributed hooks (default: one process).
    show_progress : bool
        A tqdm bar over epochs (main rank only).
    desc : str
        Name in logs, errors and the progress bar.
    diverged_hint : str
        Appended to the NaN guard's message (e.g. ``"; lr=0.1: lower the learning rate"``).

    Returns
    -------
    LoopResult
    """
    world = world or World()
    resumable = dict(resumable or {})
    rows: list[dict[str, float]] = []
    best: dict[str, Any] = {"score": -math.inf, "state": None, "epoch": 0, "bad": 0}
    start_epoch = 0
    if checkpoint is not None:
        state = checkpoint.load(map_location=_device_of(module))
        if state is not None:
            for name, obj in resumable.items():
                obj.load_state_dict(state["state"][name])
            rows = [dict(r) for r in state["history"]]
            best.update(score=float(state["best_score"]), epoch=int(state["best_epoch"]),
                        bad=int(state["best_bad"]), state=state["best_state"] or None)
            start_epoch = int(state["epoch"])
            logger.info("%s: resumed from %s after epoch %d", desc, checkpoint.path, start_epoch)
        if world.is_distributed:  # every rank must resume from the same epoch (one shared checkpoint file)
            epochs = world.gather_objects(start_epoch)
            if len(set(epochs)) > 1:
                raise RuntimeError(f"{desc}: ranks found checkpoints of different epochs {epochs} in "
                                   f"{checkpoint.path}; every rank must see the same checkpoint folder")

    def run_validation() -> dict[str, float]:
        vlogs = dict(validate()) if world.is_main else None
        return dict(world.broadcast(vlogs))

    if validate is not None and score_start and start_epoch == 0:
        start = run_validation()
        key = monitor or next(iter(start))
        score = float(start.get(key, math.nan))
        if math.isfinite(score):
            best.update(score=score, epoch=0, state=snapshot(module) if module is not None else None)
        logger.info("%s before training: %s", desc, {k: round(v, 4) for k, v in start.items()})

    bar = None
    if show_progress and world.is_main:
        from tqdm.auto import tqdm

        # with early stopping the run usually ends far before n_epochs: no total (so no ETA to it)
        early = validate is not None and patience is not None
        bar = tqdm(total=None if early else n_epochs, initial=start_epoch, unit="epoch",
                   desc=f"{desc} (up to {n_epochs} epochs, early stopping)" if early else desc)
    stop_reason = "n_epochs"
    try:
        for epoch in range(start_epoch + 1, n_epochs + 1):
            t0 = time.perf_counter()
            if on_epoch_start is not None:
                on_epoch_start(epoch)
            logs = {k: float(v) for k, v in dict(epoch_fn(epoch) or {}).items()}
            logs = world.average(logs)  # before the NaN guard: a NaN on one rank stops every rank
            _check_finite(logs, module, epoch, desc, diverged_hint)
            if validate is not None and epoch % eval_every == 0:
                vlogs = run_validation()
                logs.update(vlogs)
                key = monitor or next(iter(vlogs))
                score = float(vlogs.get(key, math.nan))
                if score > best["score"]:
                    best.update(score=score, epoch=epoch, bad=0,
                                state=snapshot(module) if module is not None else None)
                else:
                    best["bad"] += 1
            logs["seconds"] = time.perf_counter() - t0
            rows.append({"epoch": float(epoch), **logs})
            logger.info("%s epoch %d: %s", desc, epoch, {k: round(v, 4) for k, v in logs.items()})
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: round(v, 4) for k, v in logs.items()})
            if checkpoint is not None and epoch % checkpoint.every == 0 and world.is_main:
                checkpoint.save({"epoch": epoch, "state": {n: o.state_dict() for n, o in resumable.items()},
                                 "history": rows, "best_score": float(best["score"]),
                                 "best_epoch": int(best["epoch"]), "best_bad": int(best["bad"]),
                                 "best_state": best["state"] or {}})
            if checkpoint is not None and epoch % checkpoint.every == 0:
                world.barrier()  # every rank resumes from the file rank 0 has finished writing
            stop = bool(callback(epoch, dict(logs))) if callback is not None else False
            if world.is_distributed:  # rank 0's callback decides (e.g. a time budget)
                stop = bool(world.broadcast(stop))
            if stop:
                logger.info("%s: callback stopped training after epoch %d", desc, epoch)
                stop_reason = "callback"
                break
            if validate is not None and patience is not None and best["bad"] >= patience:
                logger.info("%s: early stop after epoch %d (best %s=%.4f at epoch %d)", desc, epoch,
                            monitor, best["score"], best["epoch"])
                stop_reason = "patience"
                break
    finally:
        if bar is not None:
            bar.close()
    epochs_run = int(rows[-1]["epoch"]) if rows else 0
    if best["state"] is not None and module is not None:
        module.load_state_dict(best["state"])
        best_epoch, best_score = int(best["epoch"]), float(best["score"])
    else:
        best_epoch, best_score = epochs_run, math.nan
    return LoopResult(history=history_arrays(rows), best_epoch=best_epoch, best_score=best_score,
                      epochs_run=epochs_run, stop_reason=stop_reason)


def _device_of(module: Any) -> Any:
    params = getattr(module, "parameters", None)
    if params is None:
        return None
    for p in params():
        return p.device
    return None
