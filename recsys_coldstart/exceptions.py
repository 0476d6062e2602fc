"""Exceptions raised by recsys_coldstart."""

from __future__ import annotations


class ColdStartError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class DataError(ColdStartError, ValueError):
    """Invalid input data: the message names the file, line, column or id at fault."""


class NotFittedError(ColdStartError, RuntimeError):
    """A model was used before ``fit``."""


class TrainingDivergedError(ColdStartError, RuntimeError):
    """A loss or parameter became NaN or infinite during training."""


class ModelFileError(DataError):
    """A saved model folder is missing, incomplete, corrupt or tampered with: the message names the file."""
