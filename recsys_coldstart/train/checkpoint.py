"""Checkpoints of a training run, written atomically and resumed only by the run that wrote them.

A checkpoint carries a **fingerprint** of its run: the model class, the config (without the
fields that only say how long to train or where to report: :data:`RUN_FIELDS`), the seed, and a
digest of the training and validation matrices (:func:`data_digest`). A fit resumes a checkpoint
only when its own fingerprint is equal; otherwise the checkpoint belongs to another run (another
seed, split, dataset or config) and resuming it would leak that run's training pairs into this
run's test set, so the ``resume`` mode decides:

- ``"auto"`` (default): resume a matching checkpoint, start fresh when there is none, and refuse
  a checkpoint of another run with a one-line :class:`~recsys_coldstart.exceptions.DataError`
  naming the parts that differ (a run never silently overwrites someone else's checkpoint);
- ``"must"``: as ``"auto"``, but a missing checkpoint is an error too (restart scripts);
- ``"never"``: start fresh; an existing checkpoint is replaced (with a warning) at the first save.

A file that is not a checkpoint of this package (truncated, another program's, written before
checkpoints had fingerprints) is refused with a one-line error naming the file, except under
``"never"``.

Writes are atomic: the state goes to a temporary file in the same folder, is flushed and
fsync'ed, then renamed over ``checkpoint.pt`` (and the folder entry is fsync'ed), so a crash
leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "recsys_coldstart-checkpoint/1"
RESUME_MODES: tuple[str, ...] = ("auto", "must", "never")
RUN_FIELDS: frozenset[str] = frozenset({
    "n_epochs", "patience", "checkpoint_dir", "checkpoint_every", "resume", "show_progress", "device",
    "random_state"})
"""Config fields left out of the fingerprint's ``config`` part: how long to train (so a run can be
extended), where to write or show progress, the device (a CPU checkpoint resumes on CUDA), and
the seed (a part of its own)."""


def data_digest(matrix: Any) -> str | None:
    """SHA-1 of a user-item matrix's sparsity pattern: shape, ``indptr`` and ``indices`` (int64, CSR,
    sorted indices). Values are ignored (the models binarise). None for None.

    Parameters
    ----------
    matrix : Interactions, scipy sparse or None
        An ``Interactions`` is digested through its ``user_items``.

    Returns
    -------
    str or None
        40 hex digits.
    """
    if matrix is None:
        return None
    m = sp.csr_matrix(getattr(matrix, "user_items", matrix), copy=True)
    m.eliminate_zeros()
    m.sort_indices()
    h = hashlib.sha1()
    h.update(np.asarray(m.shape, np.int64).tobytes())
    h.update(np.asarray(m.indptr, np.int64).tobytes())
    h.update(np.asarray(m.indices, np.int64).tobytes())
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """JSON-normalised value (tuples become lists), so a fingerprint compares equal after a save."""
    return json.loads(json.dumps(value, default=str))


def run_fingerprint(model: Any, train: Any, val: Any = None, *, world_size: int = 1) -> dict[str, Any]:
    """The fingerprint of a fit: ``{"model", "config", "seed", "train", "val", "world_size"}``.

    Parameters
    ----------
    model : estimator with a dataclass ``config``
    train, val : Interactions or scipy sparse (val optional)
    world_size : int
        Data-parallel ranks (:mod:`recsys_coldstart.train.distributed`): each rank's shard of an
        epoch and its negatives depend on it, so a checkpoint resumes only with as many ranks.

    Returns
    -------
    dict
        ``model``: ``module.QualName``; ``config``: the config fields minus :data:`RUN_FIELDS`;
        ``seed``: ``config.random_state``; ``train`` / ``val``: :func:`data_digest`;
        ``world_size``: the number of ranks.
    """
    cls = type(model)
    cfg = getattr(model, "config", None)
    fields = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}
    return {"model": f"{cls.__module__}.{cls.__qualname__}",
            "config": _plain({k: v for k, v in sorted(fields.items()) if k not in RUN_FIELDS}),
            "seed": _plain(fields.get("random_state")),
            "train": data_digest(train), "val": data_digest(val), "world_size": int(world_size)}


def fingerprint_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Readable differences between two fingerprints, e.g. ``["seed 0 != 1", "config lr: 0.01 != 0.001"]``."""
    out = []
    if int(old.get("world_size", 1)) != int(new.get("world_size", 1)):  # absent: written by one process
        out.append(f"world_size {old.get('world_size', 1)} != {new.get('world_size', 1)}")
    for part in ("model", "seed", "train", "val"):
        if old.get(part) != new.get(part):
            a, b = old.get(part), new.get(part)
            if part in ("train", "val"):
                a, b = (str(a)[:10] if a else a), (str(b)[:10] if b else b)
                out.append(f"{part} data {a} != {b}")
            else:
                out.append(f"{part} {a} != {b}")
    oc, nc = old.get("config") or {}, new.get("config") or {}
    for key in sorted(set(oc) | set(nc)):
        if oc.get(key, "<absent>") != nc.get(key, "<absent>"):
            out.append(f"config {key}: {oc.get(key, '<absent>')} != {nc.get(key, '<absent>')}")
    return out


class Checkpointer:
    """Where and when a run checkpoints, and whether it resumes (see the module docstring).

    Parameters
    ----------
    folder : str or Path
        Folder of ``checkpoint.pt`` (created at the first save).
    fingerprint : dict
        This run's :func:`run_fingerprint`.
    every : int
        Save after every this many epochs (>= 1).
    resume : {"auto", "must", "never"}

    Attributes
    ----------
    path : Path
        ``folder / "checkpoint.pt"``.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: dict[str, Any], *, every: int,
                 resume: str = "auto") -> None:
        if resume not in RESUME_MODES:
            raise ValueError(f"resume must be one of {RESUME_MODES}, got {resume!r}")
        if int(every) < 1:
            raise ValueError(f"checkpoint every must be >= 1, got {every}")
        self.folder = Path(folder)
        self.path = self.folder / CHECKPOINT_FILE
        self.fingerprint = _plain(fingerprint)
        self.every = int(every)
        self.resume = resume

    def _read(self, map_location: Any) -> dict[str, Any]:
        import torch

        try:
            state = torch.load(self.path, map_location=map_location, weights_only=True)
        except Exception as e:  # noqa: BLE001 - truncated, foreign or pickled-code files all end here
            msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
            raise DataError(f"{self.path}: not a readable checkpoint ({type(e).__name__}{': ' if msg else ''}{msg}); "
                            "delete it or pass resume='never' to replace it") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT or "fingerprint" not in state:
            raise DataError(f"{self.path}: not a recsys_coldstart checkpoint with a fingerprint (another program's "
                            "or an older version's); delete it or pass resume='never' to replace it")
        return state

    def load(self, map_location: Any = None) -> dict[str, Any] | None:
        """The saved state to resume from, or None to start fresh.

        Raises
        ------
        DataError
            The file is not a checkpoint of this package, belongs to another run (``resume`` is
            ``"auto"`` or ``"must"``), or is missing under ``"must"``.
        """
        if not self.path.is_file():
            if self.resume == "must":
                raise DataError(f"{self.path}: no checkpoint to resume (resume='must')")
            return None
        if self.resume == "never":
            logger.warning("%s exists: starting fresh and replacing it at the first save (resume='never')",
                           self.path)
            return None
        state = self._read(map_location)
        diff = fingerprint_diff(state["fingerprint"], self.fingerprint)
        if diff:
            raise DataError(f"{self.path} belongs to another run ({'; '.join(diff)}); use another checkpoint "
                            "folder, or resume='never' to start fresh and replace it")
        return state

    def save(self, state: dict[str, Any]) -> Path:
        """Write ``state`` (plus format and fingerprint) atomically to :attr:`path`; returns it."""
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {**state, "format": FORMAT, "fingerprint": self.fingerprint}
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        try:  # make the rename itself durable (POSIX; not possible on every platform)
            dfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
        return self.path


class TorchGeneratorState:
    """``state_dict`` / ``load_state_dict`` for a ``torch.Generator`` (so the loop checkpoints it).

    Parameters
    ----------
    generator : torch.Generator
    """

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        """``{"state": ByteTensor}``."""
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator (a CPU generator needs a CPU state tensor)."""
        s = state["state"]
        self.generator.set_state(s.cpu() if self.generator.device.type == "cpu" else s)


class NumpyGeneratorState:
    """``state_dict`` / ``load_state_dict`` for a ``numpy.random.Generator``.

    Parameters
    ----------
    rng : numpy.random.Generator
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def state_dict(self) -> dict[str, Any]:
        """The bit generator's state as JSON text (safe for ``torch.load(weights_only=True)``)."""
        return {"state": json.dumps(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the bit generator's state."""
        self.rng.bit_generator.state = json.loads(state["state"])
