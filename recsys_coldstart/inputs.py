"""Checks at the public boundary of every model: ids, cutoffs, revealed items and side features.

A serving call with a wrong argument must fail with a clear :class:`~recsys_coldstart.exceptions.DataError`
naming the argument, never answer for another user (``-1`` wrapping to the last row, ``1.7``
truncated to user 1), ignore a feature block of the wrong width, or rank on NaN scores.
:class:`recsys_coldstart.base.BaseRecommender` applies these checks to ``score``, ``score_new_users``,
``recommend`` and ``recommend_new_users`` of every model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.exceptions import DataError


def check_indices(idx: Any, n: int, *, what: str = "user_idx") -> np.ndarray:
    """``idx`` as a 1-d int64 array of indices in ``[0, n)``.

    Parameters
    ----------
    idx : int or array-like of int
        Indices (a scalar becomes a length-1 array). Floats are accepted only when integral
        (``3.0``); booleans are refused.
    n : int
        Number of rows the indices point into (users or items seen at fit time).
    what : str
        The argument's name, for the message.

    Returns
    -------
    np.ndarray of int64, shape (b,)

    Raises
    ------
    DataError
        On non-integer, out-of-range (negative included) or non-1-d indices.
    """
    arr = np.asarray(idx)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(f"{what} must be an integer or a 1-d array of integers, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{what} must hold integer indices, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise DataError(f"{what} must hold integer indices, got {arr[bad][0].item()!r}")
    lo, hi = arr.min(), arr.max()
    if lo < 0 or hi >= n:
        off = (lo if lo < 0 else hi).item()
        raise DataError(f"{what} {int(off)} is out of range: the model knows {n} (indices 0..{n - 1})")
    return arr.astype(np.int64, copy=False)


def check_k(k: Any) -> int:
    """The cutoff ``k`` as an int >= 1 (``DataError`` otherwise)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


def check_observed(observed: Any, n_items: int, *, n_rows: int | None = None,
                   what: str = "observed") -> sp.csr_matrix:
    """Revealed interactions as a float32 CSR of shape ``(b, n_items)`` with finite values.

    Raises
    ------
    DataError
        Wrong number of columns (or rows, when ``n_rows`` is given) or non-finite values.
    """
    m = sp.csr_matrix(observed, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] != n_items:
        raise DataError(f"{what} has {m.shape[1]} columns; the model was fitted on {n_items} items")
    if n_rows is not None and m.shape[0] != n_rows:
        raise DataError(f"{what} has {m.shape[0]} rows for {n_rows} users")
    if m.nnz and not np.isfinite(m.data).all():
        raise DataError(f"{what} holds NaN or infinite values")
    return m


def check_features(features: Any, n_features: int | None, *, n_rows: int, what: str = "features") -> Any:
    """Validate a side-feature block for ``n_rows`` entities; None passes through.

    Parameters
    ----------
    features : np.ndarray, scipy sparse or None, shape (n_rows, n_features)
    n_features : int or None
        Width seen at fit time (None: the model was fitted without such features; any given
        block is then refused only if it is not 2-d).
    n_rows : int
        Rows expected (the number of users / items in the call).

    Returns
    -------
    The features unchanged (dense arrays as float32 numpy).

    Raises
    ------
    DataError
        Wrong shape, or NaN / infinite values.
    """
    if features is None:
        return None
    if sp.issparse(features):
        values = features.data
        shape = features.shape
        out = features
    else:
        out = np.asarray(features, dtype=np.float32)
        if out.ndim != 2:
            raise DataError(f"{what} must be a 2-d (rows x features) array, got shape {out.shape}")
        values, shape = out, out.shape
    if shape[0] != n_rows:
        raise DataError(f"{what} has {shape[0]} rows for {n_rows} entities")
    if n_features is not None and shape[1] != n_features:
        raise DataError(f"{what} has {shape[1]} columns; the model was fitted on {n_features} features")
    if np.size(values) and not np.isfinite(values).all():
        raise DataError(f"{what} hold NaN or infinite values")
    return out
