"""Small shared helpers: random state, device resolution, lazy imports."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np


def check_random_state(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """Resolve ``random_state`` to a ``numpy.random.Generator``.

    Parameters
    ----------
    random_state : int, numpy.random.Generator or None
        An int seeds a new generator; a generator is returned as is; None draws fresh entropy.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be an int, a numpy Generator or None, not {type(random_state).__name__}")


def seed_from_rng(rng: np.random.Generator) -> int:
    """Draw a 63-bit seed from ``rng`` (e.g. to seed a ``torch.Generator`` or a C library)."""
    return int(rng.integers(0, 2**62))


def resolve_device(device: Any = "auto"):
    """Resolve ``"auto"`` (CUDA when present, else CPU), a string or a ``torch.device``.

    Returns
    -------
    torch.device
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available; use device='auto' or 'cpu'")
    return dev


def torch_generator(rng: np.random.Generator, device) -> Any:
    """A ``torch.Generator`` on ``device`` seeded from ``rng``."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(seed_from_rng(rng))
    return g
