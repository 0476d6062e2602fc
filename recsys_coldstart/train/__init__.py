"""The one fit loop of every iterative model, its validation and its checkpoints.

- :func:`fit_loop` (:mod:`~recsys_coldstart.train.loop`): epochs, validation every
  ``eval_every`` epochs, patience counted in evaluations, best-state keep / restore (optionally
  of the start state), ``callback(epoch, logs) -> stop``, NaN guard, progress bar, checkpoint /
  resume, and the hooks data-parallel training needs (:class:`World`, ``on_epoch_start``).
- :func:`validation_plan` / :func:`score_plan` / :func:`score_factors`
  (:mod:`~recsys_coldstart.train.validation`): one validation, several metrics from one
  ranking, logged as ``val_{metric}@{k}``.
- :class:`Checkpointer` (:mod:`~recsys_coldstart.train.checkpoint`): atomic checkpoints that
  carry a fingerprint of their run and resume only on a match.
- :func:`current_world` / :func:`init_from_env` / :func:`distributed_session` /
  :func:`shutdown` / :class:`DistributedWorld`
  (:mod:`~recsys_coldstart.train.distributed`): data-parallel training on ``torch.distributed``
  (``torchrun --nproc-per-node N -m recsys_coldstart.cli pretrain ...``).

History format of every iterative model (``history_``): a dict of equal-length 1-d float64
arrays with keys ``epoch``, ``loss``, ``seconds`` and ``val_{metric}@{k}`` (NaN on epochs
without evaluation), plus any other per-epoch log of the model.
"""

from recsys_coldstart.train.checkpoint import (
    CHECKPOINT_FILE,
    RESUME_MODES,
    Checkpointer,
    NumpyGeneratorState,
    TorchGeneratorState,
    data_digest,
    run_fingerprint,
)
from recsys_coldstart.train.distributed import (
    DistributedWorld,
    current_world,
    distributed_session,
    init_from_env,
    shutdown,
)
from recsys_coldstart.train.loop import LoopResult, World, fit_loop, history_arrays
from recsys_coldstart.train.validation import (
    VAL_METRICS,
    ValidationPlan,
    log_key,
    score_factors,
    score_plan,
    validation_plan,
)

__all__ = [
    "CHECKPOINT_FILE", "RESUME_MODES", "VAL_METRICS", "Checkpointer", "DistributedWorld", "LoopResult",
    "NumpyGeneratorState", "TorchGeneratorState", "ValidationPlan", "World", "current_world", "data_digest",
    "distributed_session", "fit_loop", "history_arrays", "init_from_env", "log_key", "run_fingerprint",
    "score_factors", "score_plan", "shutdown", "validation_plan",
]
