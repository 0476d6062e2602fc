"""Provenance of a benchmark run: the portable command, the git commit, versions and machine.

Everything here is stored once per cell (the ``provenance`` block of a cell file, see
:mod:`recsys_coldstart.evaluate.results`), never repeated in every record.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recsys_coldstart.evaluate.results import machine, portable_command, versions

__all__ = ["git_commit", "run_provenance", "portable_command", "versions", "machine"]


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The short commit hash of the checkout holding this package (None outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=cwd or Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except Exception:  # noqa: BLE001 - no git, no repository: the record says None
        return None


def run_provenance(command: str | Sequence[str] | None = None, *,
                   data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The run-wide provenance fields: the portable command and the git commit.

    Parameters
    ----------
    command : str or sequence of str, optional
        Default: this process's command line.
    data_dir : path, optional
        The run's data folder, written as ``$RECSYS_COLDSTART_DATA``.

    Returns
    -------
    dict
        ``{"command": str, "git_commit": str or None}``.
    """
    return {"command": portable_command(command, data_dir=data_dir), "git_commit": git_commit()}
