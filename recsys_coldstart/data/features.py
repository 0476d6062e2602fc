"""Side features aligned to a vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.exceptions import DataError


@dataclass(frozen=True, eq=False)
class SideFeatures:
    """A feature matrix whose row ``i`` describes the entity with index ``i`` of a vocabulary.

    Parameters
    ----------
    values : np.ndarray of float32, shape (n_rows, n_features), or scipy CSR of that shape
        Feature values. Must be finite.
    names : tuple of str, length n_features
        Column names (e.g. ``"genre=Action"``).
    """

    values: np.ndarray | sp.csr_matrix
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        vals = self.values
        if sp.issparse(vals):
            vals = sp.csr_matrix(vals, dtype=np.float32)
            data = vals.data
        else:
            vals = np.ascontiguousarray(np.asarray(vals, dtype=np.float32))
            if vals.ndim != 2:
                raise DataError(f"side features must be 2-D, got shape {vals.shape}")
            data = vals
        if not np.isfinite(data).all():
            bad = np.argwhere(~np.isfinite(vals.toarray() if sp.issparse(vals) else vals))[0]
            raise DataError(f"side features contain NaN or infinite values (first at row {bad[0]}, column {bad[1]})")
        object.__setattr__(self, "values", vals)
        names = tuple(self.names) if self.names else tuple(f"f{j}" for j in range(vals.shape[1]))
        if len(names) != vals.shape[1]:
            raise DataError(f"{len(names)} feature names for {vals.shape[1]} feature columns")
        object.__setattr__(self, "names", names)

    @property
    def n_rows(self) -> int:
        """Number of rows (entities)."""
        return self.values.shape[0]

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return self.values.shape[1]

    @property
    def is_sparse(self) -> bool:
        """Whether the values are stored as a scipy CSR matrix."""
        return sp.issparse(self.values)

    def dense(self) -> np.ndarray:
        """The values as a dense float32 array, shape (n_rows, n_features)."""
        return self.values.toarray() if self.is_sparse else self.values

    def take(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Dense float32 rows for indices ``idx``, shape (len(idx), n_features)."""
        rows = self.values[np.asarray(idx, dtype=np.int64)]
        return rows.toarray() if sp.issparse(rows) else rows

    def __repr__(self) -> str:
        kind = "csr" if self.is_sparse else "dense"
        return f"SideFeatures({self.n_rows}x{self.n_features}, {kind})"
