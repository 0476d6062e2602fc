"""Raw id <-> contiguous index vocabularies, and the rule that turns a column of ids into labels.

Ids are labels, never quantities: ``"007"`` and ``"7"`` are two users, ``"2.5"`` is a name, and
``"12345678901234567890"`` must not be rounded to a float. :func:`parse_text_ids` applies the
rule to ids read from text (CSV / TSV); :func:`id_labels` to typed columns (DataFrame, Parquet).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

# An integer literal as it would be written by str(int): no sign "+", no leading zeros, no "-0".
_INT_LITERAL = r"-?[1-9][0-9]{0,18}|0"
_INT64_MAX = "9223372036854775807"
_INT64_MIN_ABS = "9223372036854775808"
_FLOAT_EXACT = 2.0**53


def parse_text_ids(values: pd.Series) -> pd.Series:
    """Ids read as text -> int64 when *every* value is an integer literal, else the exact strings.

    A value counts as an integer literal when it reads the same after ``str(int(value))``: no
    leading zeros (``"007"``), no sign ``+``, no ``-0``, no decimal point, no surrounding
    whitespace, and it fits in int64. One value that is not keeps the whole column as strings,
    so no two distinct texts ever become one id. Whitespace is part of the id (``" 7"`` and
    ``"7"`` are two ids).

    Parameters
    ----------
    values : pandas.Series of str, shape (n,)
        Id cells as read from the file (no missing values).

    Returns
    -------
    pandas.Series of shape (n,), same index
        int64 when every value is an integer literal, else object dtype holding the input strings.
    """
    text = values.astype(object)
    if len(text) and all(isinstance(v, str) for v in text):
        s = pd.Series(text.to_numpy(), index=values.index, dtype=object).str
        if bool(s.fullmatch(_INT_LITERAL).all()):
            digits = s.lstrip("-")
            big = (digits.str.len() == 19).to_numpy()
            neg = s.startswith("-").to_numpy()
            # Equal length: text order == numeric order; int64 reaches -2**63 but only 2**63 - 1.
            if not big.any() or not ((digits[big & ~neg] > _INT64_MAX).any()
                                     or (digits[big & neg] > _INT64_MIN_ABS).any()):
                arr = np.asarray(text.to_numpy(), dtype=str)
                return pd.Series(arr.astype(np.int64), index=values.index)
    return pd.Series(text.to_numpy(), index=values.index, dtype=object)


def id_labels(values: pd.Series, *, column: str = "id", source: str = "DataFrame") -> pd.Series:
    """The ids of a typed column (DataFrame, Parquet) as labels: int64 or exact strings, never float.

    - integer columns stay int64 (unsigned ones beyond int64 become their decimal strings);
    - float columns become int64 when every value is a whole number of magnitude <= 2**53 (where
      a float still names one integer exactly), else their shortest round-trip text (``"2.5"``),
      with a warning;
    - string columns keep their strings exactly; mixed columns (e.g. ints and strings) become
      the text of each value, and two distinct values with the same text (``7`` and ``"7"``)
      raise rather than merge.

    Parameters
    ----------
    values : pandas.Series, shape (n,)
        Raw ids (no missing values).
    column, source : str
        Named in messages.

    Returns
    -------
    pandas.Series of shape (n,): int64 or object (str).

    Raises
    ------
    DataError
        Distinct values that read the same as text, or an empty / whitespace-only string id.
    """
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values.astype(str).astype(object)
    if pd.api.types.is_integer_dtype(dtype):
        arr = values.to_numpy()
        if arr.dtype.kind == "u" and len(arr) and arr.max() > np.iinfo(np.int64).max:
            return pd.Series([str(int(v)) for v in arr], index=values.index, dtype=object)
        return pd.Series(arr.astype(np.int64), index=values.index)
    if pd.api.types.is_float_dtype(dtype):
        arr = values.to_numpy(np.float64)
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) and np.all(np.abs(arr) <= _FLOAT_EXACT):
            return pd.Series(arr.astype(np.int64), index=values.index)
        logger.warning("%s: column %r holds float ids; they are read as text labels such as %r (ids above 2**53 "
                       "may already have been rounded: store ids as integers or strings)",
                       source, column, repr(float(arr[0])))
        return _texts(values, column, source)
    objs = values.to_numpy(dtype=object)
    bad = next((v for v in objs if not pd.api.types.is_scalar(v)), None)
    if bad is not None:
        raise DataError(f"{source}: column {column!r}: ids must be scalars (int or str), found a "
                        f"{type(bad).__name__} {bad!r}")
    if all(isinstance(v, str) for v in objs):
        _check_blank(objs, column, source)
        return pd.Series(objs, index=values.index, dtype=object)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in objs):
        ints = [int(v) for v in objs]
        if not ints or (min(ints) >= np.iinfo(np.int64).min and max(ints) <= np.iinfo(np.int64).max):
            return pd.Series(np.asarray(ints, dtype=np.int64), index=values.index)
    return _texts(values, column, source)


def _texts(values: pd.Series, column: str, source: str) -> pd.Series:
    """Each value as its text; raises if two distinct values share one text."""
    objs = values.to_numpy(dtype=object)
    texts = np.asarray([_text(v) for v in objs], dtype=object)
    _check_blank(texts, column, source)
    uniq_vals = pd.unique(pd.Series(objs, dtype=object))
    uniq_texts = pd.unique(pd.Series(texts, dtype=object))
    if len(uniq_texts) < len(uniq_vals):
        seen: dict[str, Any] = {}
        for v in uniq_vals:
            t = _text(v)
            if t in seen:
                raise DataError(f"{source}: column {column!r} holds distinct ids {seen[t]!r} and {v!r} that read "
                                f"the same as text ({t!r}); give every id one type (all str or all int)")
            seen[t] = v
    return pd.Series(texts, index=values.index, dtype=object)


def _text(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) <= _FLOAT_EXACT else repr(f)
    if isinstance(v, np.generic):
        v = v.item()
    return str(v)


def _check_blank(texts: np.ndarray, column: str, source: str) -> None:
    blank = np.fromiter((not t.strip() for t in texts), bool, len(texts))
    if blank.any():
        first = int(np.argmax(blank))
        raise DataError(f"{source}: column {column!r} has {int(blank.sum())} empty id(s), first at row {first}")


class IdVocab:
    """Bijection between raw ids (any hashable: int, str) and contiguous indices ``0..n-1``.

    The raw ids are kept exactly as given (``"007"`` stays ``"007"``, ``" 7"`` keeps its space);
    the loaders decide what a column of ids becomes (:func:`parse_text_ids`, :func:`id_labels`).

    Parameters
    ----------
    ids : array-like of shape (n,)
        The raw ids, in index order. Must be unique.
    name : str
        What the ids are ("user", "item"); used in error messages.

    Examples
    --------
    >>> v = IdVocab(["b", "a", "c"], name="item")
    >>> v.to_idx(["a", "c"])
    array([1, 2])
    >>> v.to_id([0])
    array(['b'], dtype=object)
    """

    __slots__ = ("_index", "name")

    def __init__(self, ids: Iterable[Any], *, name: str = "id") -> None:
        index = pd.Index(list(ids) if not isinstance(ids, (np.ndarray, pd.Index)) else ids)
        if not index.is_unique:
            dup = index[index.duplicated()][:5].tolist()
            raise DataError(f"{name} vocabulary has duplicated ids, e.g. {dup}")
        self._index = index
        self.name = name

    @classmethod
    def from_values(cls, values: Iterable[Any], *, name: str = "id", sort: bool = True) -> IdVocab:
        """Build a vocabulary from (possibly repeated) raw ids.

        Parameters
        ----------
        values : array-like of shape (n,)
            Raw ids, repeats allowed.
        name : str
            Name used in error messages.
        sort : bool
            Sort the unique ids (deterministic index order); otherwise keep first-seen order.
        """
        uniq = pd.unique(pd.Series(values, copy=False))
        if sort:
            try:
                uniq = np.sort(uniq)
            except TypeError:  # mixed types: fall back to string order
                uniq = np.asarray(sorted(uniq, key=str), dtype=object)
        return cls(uniq, name=name)

    @classmethod
    def range(cls, n: int, *, name: str = "id") -> IdVocab:
        """Vocabulary whose raw ids are ``0..n-1`` themselves."""
        return cls(pd.RangeIndex(n), name=name)

    def __len__(self) -> int:
        return len(self._index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and self._index.equals(other._index)

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return id(self)

    def __repr__(self) -> str:
        head = ", ".join(map(str, self._index[:3].tolist()))
        return f"IdVocab(name={self.name!r}, n={len(self)}, ids=[{head}{', ...' if len(self) > 3 else ''}])"

    def __contains__(self, raw_id: Any) -> bool:
        return raw_id in self._index

    @property
    def ids(self) -> np.ndarray:
        """Raw ids in index order, shape (n,)."""
        return self._index.to_numpy()

    def to_idx(self, raw_ids: Iterable[Any] | Any, *, missing: str = "raise") -> np.ndarray:
        """Map raw ids to indices.

        Parameters
        ----------
        raw_ids : array-like of shape (m,) or scalar
        missing : {"raise", "mask"}
            ``"raise"``: an unknown id raises :class:`DataError` naming it;
            ``"mask"``: unknown ids map to -1.

        Returns
        -------
        np.ndarray of int64, shape (m,)
        """
        scalar = np.isscalar(raw_ids)
        arr = [raw_ids] if scalar else raw_ids
        idx = self._index.get_indexer(pd.Index(arr)).astype(np.int64)
        if missing == "raise" and (idx < 0).any():
            bad = np.asarray(arr, dtype=object)[idx < 0][:5].tolist()
            raise DataError(f"unknown {self.name} id(s): {bad} ({int((idx < 0).sum())} in all)")
        return idx

    def to_id(self, idx: Iterable[int] | np.ndarray) -> np.ndarray:
        """Map indices, shape (m,) or any shape, back to raw ids (same shape)."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise DataError(f"{self.name} index out of range [0, {len(self)})")
        return self._index.to_numpy()[idx]
