"""Raw id <-> contiguous index vocabularies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from recsys_coldstart.exceptions import DataError


class IdVocab:
    """Bijection between raw ids (any hashable: int, str) and contiguous indices ``0..n-1``.

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
