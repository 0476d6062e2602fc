"""What a benchmark cell reads off a fitted model: config, device, parameter count, scoring
latency, per-epoch history, and the epoch callback that records logs and enforces a time cap."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def config_dict(model: Any) -> dict[str, Any]:
    """The model's config as a JSON-able dict (``{}`` for models without one)."""
    from recsys_coldstart.io import config_to_dict

    try:
        return config_to_dict(getattr(model, "config", None))
    except TypeError:
        return {"repr": repr(getattr(model, "config", None))}


def resolved_device(model: Any) -> str:
    """The device a model trains on: its config's ``device`` resolved, else ``"cpu"``."""
    dev = getattr(getattr(model, "config", None), "device", None)
    if dev is None:
        return "cpu"
    try:
        from recsys_coldstart._utils import resolve_device

        return str(resolve_device(dev))
    except Exception:  # noqa: BLE001 - the record keeps what was asked for
        return str(dev)


def count_params(model: Any) -> int | None:
    """Fitted float parameters of ``model``: ``n_params_`` / ``n_parameters()`` when defined, else
    the size of every fitted float array (CSR values included)."""
    n = getattr(model, "n_params_", None)
    if n is None:
        try:
            attr = getattr(model, "n_parameters", None)  # a method, or a property (the tower models)
            n = attr() if callable(attr) else attr
        except Exception:  # noqa: BLE001
            n = None
    if n is not None:
        return int(n)
    try:
        from recsys_coldstart.io import fitted_arrays

        arrays = fitted_arrays(model)
    except Exception:  # noqa: BLE001
        return None
    total = sum(a.size for k, a in arrays.items()
                if isinstance(a, np.ndarray) and a.dtype.kind == "f" and not k.startswith("history"))
    return int(total) or None


def scoring_latency_ms(model: Any, n_users: int, *, n_probe: int = 1000, repeats: int = 3) -> float | None:
    """Median milliseconds to score ``n_probe`` known users against the whole catalogue (scaled to
    1,000 users when fewer exist)."""
    users = np.arange(min(n_probe, n_users), dtype=np.int64)
    if len(users) == 0:
        return None
    times = []
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.score(users)
            times.append(time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - a model may only score new users
        return None
    return float(np.median(times) * 1000.0 * 1000.0 / len(users))


def model_history(model: Any) -> dict[str, list[float]]:
    """Per-epoch logs a fitted model exposes: a ``history_`` dict of lists or arrays, a list of
    per-epoch dicts, or ``history_<name>_`` arrays (e.g. ``history_loss_``)."""
    out: dict[str, list[float]] = {}
    h = getattr(model, "history_", None)
    if isinstance(h, Mapping):
        for k, v in h.items():
            if str(k) == "epoch":
                continue
            try:
                out[str(k)] = [float(x) for x in np.ravel(np.asarray(v, dtype=float))]
            except (TypeError, ValueError):
                continue
    elif isinstance(h, (list, tuple)) and h and isinstance(h[0], Mapping):
        out.update(logs_to_history(list(h)))
    for name, val in vars(model).items():
        if name.startswith("history_") and name.endswith("_") and name != "history_":
            try:
                out[name[len("history_"):-1]] = [float(x) for x in np.ravel(np.asarray(val, dtype=float))]
            except (TypeError, ValueError):
                continue
    return out


def logs_to_history(logs: list[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per-epoch log dicts -> one list per key (NaN where an epoch lacks the key)."""
    keys: list[str] = []
    for row in logs:
        keys.extend(k for k in row if k not in keys and k != "epoch")
    out = {}
    for k in keys:
        vals = []
        for row in logs:
            v = row.get(k)
            try:
                vals.append(float(v) if v is not None else float("nan"))
            except (TypeError, ValueError):
                vals.append(float("nan"))
        out[k] = vals
    return out


class Recorder:
    """The per-epoch callback passed to ``fit``: keeps the logs, enforces a time budget and
    chains an optional user callback.

    Parameters
    ----------
    max_seconds : float, optional
        Ask the model to stop after the first epoch that ends past this many seconds; the cell
        is then recorded as ``capped`` (its numbers are not a converged model's).
    inner : callable, optional
        Another ``callback(epoch, logs) -> bool`` consulted every epoch.
    """

    def __init__(self, max_seconds: float | None = None, inner: Callable | None = None) -> None:
        self.logs: list[dict[str, Any]] = []
        self.epochs: list[int] = []
        self.max_seconds = max_seconds
        self.inner = inner
        self.t0 = time.perf_counter()
        self.stopped_for_time = False

    def __call__(self, epoch: int, logs: Mapping[str, Any] | None = None) -> bool:
        """Record one epoch's logs; True asks the model to stop."""
        self.epochs.append(int(epoch))
        self.logs.append({k: v for k, v in dict(logs or {}).items() if isinstance(v, (int, float, np.number))})
        stop = bool(self.inner(epoch, logs)) if self.inner is not None else False
        if self.max_seconds is not None and time.perf_counter() - self.t0 > self.max_seconds:
            self.stopped_for_time = True
            stop = True
        return stop

    def history(self) -> dict[str, list[float]]:
        """The recorded logs, one list per key."""
        return logs_to_history(self.logs)
