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


def column_counts(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Rows with a nonzero entry in each column (a feature table's document frequency), int64 (d,).

    Parameters
    ----------
    x : np.ndarray or scipy sparse, shape (n, d)
    """
    if sp.issparse(x):
        m = sp.csr_matrix(x)
        return np.bincount(m.indices[m.data != 0], minlength=m.shape[1]).astype(np.int64)
    return np.count_nonzero(np.asarray(x), axis=0).astype(np.int64)


def smooth_idf(x: np.ndarray | sp.spmatrix, dtype: type = np.float64) -> np.ndarray:
    """Smoothed inverse document frequency ``log((1 + n) / (1 + df_j)) + 1`` of each column of a
    feature table (n, d) (scikit-learn's ``smooth_idf``), (d,) in ``dtype``; never zero. The log is
    rounded to ``dtype`` before the 1 is added, so a float32 idf is bit-identical to the one the
    content maps have always used (binary features tie often: a last-bit change reorders
    neighbours)."""
    return np.log((1.0 + x.shape[0]) / (1.0 + column_counts(x))).astype(dtype) + 1.0


def clipped_idf(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Content-KNN's idf ``log(n / (1 + df_j))`` clipped at 0 (a feature on nearly every row weighs
    nothing), all ones when that would zero every column; float32 (d,) for a table (n, d)."""
    w = np.log(x.shape[0] / (1.0 + column_counts(x))).clip(min=0.0).astype(np.float32)
    return w if (w > 0).any() else np.ones_like(w)


FEATURE_WEIGHTINGS = ("tfidf", "standardize", "none")


def compress_features(features: SideFeatures, n_components: int, *, weighting: str = "tfidf",
                      noise_columns: int = 0, random_state: int | None = 0) -> SideFeatures:
    """A dense low-dimensional version of a side-feature table: a truncated SVD of its rows.

    How a user's own dense table looks (e.g. 64 SVD components of a text bag-of-words instead of
    thousands of sparse tags), for checking that a model does not depend on the sparse layout.

    Parameters
    ----------
    features : SideFeatures
        The table (n_rows, d), sparse or dense.
    n_components : int
        Components kept; ``<= 0`` means ``d + n_components`` (``-1``: all but one), capped at
        ``min(n_rows, d) - 1``.
    weighting : {"tfidf", "standardize", "none"}
        Applied before the SVD: ``tfidf`` multiplies column ``j`` by ``log((1 + n) / (1 + df_j)) + 1``
        (bags of tags or words); ``standardize`` centres and scales every column to unit variance
        (dense or one-hot attributes).
    noise_columns : int
        Extra N(0, 1) columns appended (features that carry nothing).
    random_state : int, optional
        Seeds the SVD's start vector and the noise.

    Returns
    -------
    SideFeatures
        Dense float32 (n_rows, k + noise_columns), columns ``svd0..`` then ``noise0..``; rows are
        ``U * s`` of the SVD, strongest component first.
    """
    from scipy.sparse.linalg import svds

    if weighting not in FEATURE_WEIGHTINGS:
        raise DataError(f"unknown feature weighting {weighting!r}; choose from {FEATURE_WEIGHTINGS}")
    if noise_columns < 0:
        raise DataError(f"noise_columns must be >= 0, got {noise_columns}")
    x = features.values
    n, d = x.shape
    k = n_components if n_components > 0 else d + n_components
    k = min(k, min(n, d) - 1)
    if k < 1:
        raise DataError(f"cannot compress a {n} x {d} feature table to {n_components} components")
    if weighting == "tfidf":
        m = sp.csr_matrix(x, dtype=np.float64) @ sp.diags(smooth_idf(x))
    elif weighting == "standardize":
        dense = x.toarray() if sp.issparse(x) else np.asarray(x, np.float64)
        m = sp.csr_matrix((dense - dense.mean(0)) / np.maximum(dense.std(0), 1e-6))
    else:
        m = sp.csr_matrix(x, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    u, s, _ = svds(m, k=k, v0=rng.random(min(m.shape)))
    order = np.argsort(-s)
    cols = [(u[:, order] * s[order]).astype(np.float32)]
    names = [f"svd{j}" for j in range(k)]
    if noise_columns:
        noise = np.random.default_rng(random_state).normal(0, 1, (n, noise_columns))  # its own stream
        cols.append(noise.astype(np.float32))
        names += [f"noise{j}" for j in range(noise_columns)]
    return SideFeatures(np.hstack(cols), tuple(names))


def drop_rare_columns(features: SideFeatures, min_df: int) -> SideFeatures:
    """The table without the columns that fewer than ``min_df`` rows use (nonzero), e.g. tags
    given to a single item; counted over the whole table (content only, no interactions).
    ``min_df <= 1`` returns ``features`` unchanged."""
    if min_df <= 1:
        return features
    x = features.values
    keep = np.flatnonzero(column_counts(x) >= min_df)
    if len(keep) == 0:
        raise DataError(f"no feature column is used by >= {min_df} rows")
    vals = sp.csr_matrix(sp.csc_matrix(x)[:, keep]) if sp.issparse(x) else np.asarray(x)[:, keep]
    return SideFeatures(vals, tuple(features.names[j] for j in keep))
