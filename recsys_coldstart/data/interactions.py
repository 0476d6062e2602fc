"""The ``Interactions`` core type: a user x item CSR matrix plus vocabularies and side features."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys_coldstart.data.features import SideFeatures
from recsys_coldstart.data.vocab import IdVocab, id_labels, parse_text_ids
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

DuplicatePolicy = Literal["last", "first", "max", "sum", "error"]


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], dtype) -> sp.csr_matrix:
    """CSR with sorted indices and no duplicate handling (callers pass unique pairs)."""
    m = sp.csr_matrix((np.asarray(vals, dtype=dtype), (rows, cols)), shape=shape)
    m.sort_indices()
    return m


@dataclass(frozen=True, eq=False)
class Interactions:
    """Positive user-item interactions with their vocabularies and optional side information.

    Parameters
    ----------
    user_items : scipy.sparse.csr_matrix of float32, shape (n_users, n_items)
        Positive feedback; a stored entry is a positive (value = weight, usually 1).
        Cold users / items are rows / columns with no stored entries.
    users, items : IdVocab
        Raw id <-> index maps, of lengths n_users and n_items.
    user_features : SideFeatures, optional
        Shape (n_users, d_user).
    item_features : SideFeatures, optional
        Shape (n_items, d_item).
    timestamps : scipy.sparse.csr_matrix of float64, optional
        Same sparsity pattern as ``user_items``; seconds since the epoch.
    ratings : scipy.sparse.csr_matrix of float32, optional, shape (n_users, n_items)
        All observed explicit feedback, positives *and* negatives (e.g. every MovieLens
        rating), kept so that elicitation can answer *dislike*. ``None`` for implicit data.
    name : str
        Dataset name, used in results.
    """

    user_items: sp.csr_matrix
    users: IdVocab
    items: IdVocab
    user_features: SideFeatures | None = None
    item_features: SideFeatures | None = None
    timestamps: sp.csr_matrix | None = None
    ratings: sp.csr_matrix | None = None
    name: str = ""

    def __post_init__(self) -> None:
        ui = self.user_items
        if not sp.issparse(ui):
            raise DataError("user_items must be a scipy sparse matrix")
        ui = sp.csr_matrix(ui, dtype=np.float32)
        ui.sort_indices()
        object.__setattr__(self, "user_items", ui)
        n_users, n_items = ui.shape
        if len(self.users) != n_users or len(self.items) != n_items:
            raise DataError(
                f"user_items has shape {ui.shape} but vocabularies have {len(self.users)} users "
                f"and {len(self.items)} items"
            )
        if ui.nnz and not np.isfinite(ui.data).all():
            raise DataError("user_items contains NaN or infinite values")
        for label, feats, n in (("user", self.user_features, n_users), ("item", self.item_features, n_items)):
            if feats is not None and feats.n_rows != n:
                raise DataError(f"{label}_features has {feats.n_rows} rows for {n} {label}s")
        if self.timestamps is not None:
            ts = sp.csr_matrix(self.timestamps, dtype=np.float64)
            ts.sort_indices()
            if ts.shape != ui.shape or ts.nnz != ui.nnz or not (
                np.array_equal(ts.indptr, ui.indptr) and np.array_equal(ts.indices, ui.indices)
            ):
                raise DataError("timestamps must have the same sparsity pattern as user_items")
            object.__setattr__(self, "timestamps", ts)
        if self.ratings is not None:
            r = sp.csr_matrix(self.ratings, dtype=np.float32)
            r.sort_indices()
            if r.shape != ui.shape:
                raise DataError(f"ratings has shape {r.shape}, user_items {ui.shape}")
            object.__setattr__(self, "ratings", r)

    # ------------------------------------------------------------------ properties
    @property
    def n_users(self) -> int:
        """Number of users in the vocabulary (including cold ones)."""
        return self.user_items.shape[0]

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary (including cold ones)."""
        return self.user_items.shape[1]

    @property
    def nnz(self) -> int:
        """Number of positive interactions."""
        return int(self.user_items.nnz)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        return self.user_items.shape

    def user_degrees(self) -> np.ndarray:
        """Positives per user, int64 of shape (n_users,)."""
        return np.diff(self.user_items.indptr).astype(np.int64)

    def item_degrees(self) -> np.ndarray:
        """Positives per item, int64 of shape (n_items,)."""
        return np.bincount(self.user_items.indices, minlength=self.n_items).astype(np.int64)

    def __repr__(self) -> str:
        extras = [
            f"user_features={self.user_features.n_features}" if self.user_features is not None else "",
            f"item_features={self.item_features.n_features}" if self.item_features is not None else "",
            "timestamps" if self.timestamps is not None else "",
            "ratings" if self.ratings is not None else "",
        ]
        extra = ", ".join(e for e in extras if e)
        return (
            f"Interactions(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"nnz={self.nnz}{', ' + extra if extra else ''})"
        )

    # ------------------------------------------------------------------ derived copies
    def with_pairs(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray | None = None,
                   timestamps: np.ndarray | None = None) -> Interactions:
        """A copy on the same vocabularies and features holding only the given pairs.

        Parameters
        ----------
        rows, cols : np.ndarray of int64, shape (m,)
            User and item indices of the pairs (unique pairs).
        values : np.ndarray of float32, shape (m,), optional
            Weights (default 1).
        timestamps : np.ndarray of float64, shape (m,), optional
            Required when this object has timestamps.
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        vals = np.ones(len(rows), np.float32) if values is None else values
        ui = _csr(rows, cols, vals, self.shape, np.float32)
        ts = None
        if self.timestamps is not None and timestamps is not None:
            # +1 keeps timestamp 0 from being dropped as an explicit zero; undone below.
            ts = _csr(rows, cols, np.asarray(timestamps, np.float64) + 1.0, self.shape, np.float64)
            ts.data -= 1.0
        return replace(self, user_items=ui, timestamps=ts)

    def to_coo_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(rows, cols, values, timestamps)`` of the stored positives, row-major order."""
        ui = self.user_items
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(ui.indptr))
        ts = None if self.timestamps is None else self.timestamps.data.copy()
        return rows, ui.indices.astype(np.int64), ui.data.copy(), ts

    def to_pandas(self, *, user_col: str = "user", item_col: str = "item") -> pd.DataFrame:
        """The positives as a DataFrame with raw ids (and ``weight``, ``timestamp`` columns)."""
        rows, cols, vals, ts = self.to_coo_arrays()
        df = pd.DataFrame({user_col: self.users.to_id(rows), item_col: self.items.to_id(cols), "weight": vals})
        if ts is not None:
            df["timestamp"] = ts
        return df

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        *,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        threshold: float | None = None,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
        user_feature_id_col: str | None = None,
        item_feature_id_col: str | None = None,
        duplicates: DuplicatePolicy = "last",
        name: str = "",
        source: str = "DataFrame",
    ) -> Interactions:
        """Build validated ``Interactions`` from a long table of (user, item[, rating][, timestamp]).

        Parameters
        ----------
        df : pandas.DataFrame
            One row per observed pair.
        user_col, item_col : str
            Columns holding raw user and item ids. Ids are labels: integer columns stay int64,
            string columns keep their exact strings (``"007"`` and ``"7"`` are two ids), float
            columns become int64 when every value is whole (else their text) — see
            :func:`~recsys_coldstart.data.vocab.id_labels`.
        rating_col : str, optional
            Explicit feedback. When given, a pair is positive if ``rating >= threshold`` and every
            non-zero rating is kept in ``ratings`` (a zero is left out: a sparse 0 reads as "not
            rated"; the count is logged). Without ``threshold`` every rating is a positive, so all
            ratings must be > 0 (a 0 or negative rating raises). Without ``rating_col`` every row is
            a positive of weight 1.
        timestamp_col : str, optional
            Numeric (seconds) or datetime column.
        threshold : float, optional
            Positive threshold on ``rating_col``; ratings below it are kept in ``ratings`` as
            observed non-positives (dislikes for elicitation).
        user_features, item_features : pandas.DataFrame, optional
            Feature tables with one row per user / item, identified by ``*_feature_id_col``
            (default: the same name as ``user_col`` / ``item_col``, else the index). Numeric
            columns are used as they are, other columns are one-hot encoded as ``col=value``.
            Every id must match an interaction and every interaction's id must have a row.
        duplicates : {"last", "first", "max", "sum", "error"}
            How repeated (user, item) rows are merged; the number merged is logged.
            ``"last"`` keeps the latest by timestamp (by row order without timestamps).
        name : str
            Dataset name.
        source : str
            Where the table came from (a file name), quoted in error messages.

        Raises
        ------
        DataError
            With the source, column and first offending row for: a missing column, an empty
            table, missing ids, non-numeric or non-finite ratings / timestamps, duplicated pairs
            under ``duplicates="error"``, and feature-table mismatches.
        """
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
        if duplicates not in ("last", "first", "max", "sum", "error"):
            raise ValueError(f"duplicates must be 'last', 'first', 'max', 'sum' or 'error', not {duplicates!r}")
        needed = [c for c in (user_col, item_col, rating_col, timestamp_col) if c is not None]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise DataError(
                f"{source}: missing column(s) {missing}; columns present: {[str(c) for c in df.columns]}"
            )
        if len(df) == 0:
            raise DataError(f"{source}: the interaction table is empty")
        for col in needed:
            if isinstance(df[col], pd.DataFrame):
                raise DataError(f"{source}: column {col!r} appears more than once")
        for col in (user_col, item_col):
            nulls = df[col].isna().to_numpy()
            if nulls.any():
                raise DataError(f"{source}: column {col!r} has {int(nulls.sum())} missing id(s), first at row {int(np.argmax(nulls))}")
        try:
            u_ids = id_labels(df[user_col].reset_index(drop=True), column=user_col, source=source)
            i_ids = id_labels(df[item_col].reset_index(drop=True), column=item_col, source=source)
        except TypeError as e:  # unhashable cells (lists, dicts) in an id column
            raise DataError(f"{source}: user and item ids must be scalars (int or str): {e}") from e
        work = pd.DataFrame({"u": u_ids.to_numpy(), "i": i_ids.to_numpy()})
        if rating_col is not None:
            work["r"] = _numeric_column(df, rating_col, source)
            too_big = np.abs(work["r"].to_numpy()) > np.finfo(np.float32).max
            if too_big.any():
                first = int(np.argmax(too_big))
                raise DataError(f"{source}: column {rating_col!r} row {first} holds {work['r'].iloc[first]!r}, "
                                "beyond float32 range")
            if threshold is None:
                # "every rating is a positive" only makes sense for ratings > 0 (stars, counts): a 0 or
                # a negative rating usually means "not rated" or "disliked", so ask rather than guess.
                not_pos = (work["r"].to_numpy() <= 0)
                if not_pos.any():
                    first = int(np.argmax(not_pos))
                    raise DataError(
                        f"{source}: column {rating_col!r} row {first} holds {_py(work['r'].iloc[first])!r} "
                        f"({int(not_pos.sum())} rating(s) <= 0): without a threshold every rating counts as a "
                        "positive, so ratings must be > 0; pass threshold= (--threshold) to say which ratings "
                        "are positives"
                    )
        if timestamp_col is not None:
            work["t"] = _timestamp_column(df, timestamp_col, source)

        n_before = len(work)
        dup_mask = work.duplicated(["u", "i"], keep=False).to_numpy()
        if dup_mask.any():
            if duplicates == "error":
                first = int(np.argmax(dup_mask))
                raise DataError(
                    f"{source}: duplicated (user, item) pair {_py(work.u.iloc[first])!r}, {_py(work.i.iloc[first])!r} "
                    f"at row {first} ({int(dup_mask.sum())} rows involved); pass duplicates='last'|'first'|'max'|'sum'"
                )
            work = _merge_duplicates(work, duplicates)
            logger.info("%s: merged %d duplicated (user, item) rows away, %d pairs remain (duplicates=%r)",
                        source, n_before - len(work), len(work), duplicates)

        users = IdVocab.from_values(work["u"], name="user")
        items = IdVocab.from_values(work["i"], name="item")
        rows = users.to_idx(work["u"].to_numpy())
        cols = items.to_idx(work["i"].to_numpy())
        shape = (len(users), len(items))
        if rating_col is not None:
            r = work["r"].to_numpy(np.float32)
            thr = 0.0 if threshold is None else float(threshold)
            pos = r >= thr
            ratings = _csr(rows, cols, r, shape, np.float32)
            # A stored 0 in a sparse matrix cannot be told apart from "not rated" (every consumer drops
            # explicit zeros), so zero ratings are left out of .ratings, and the warning says so.
            n_zero = int((r == 0).sum())
            if n_zero:
                ratings.eliminate_zeros()
                fate = ("they still count as positives (0 >= threshold) but are left out of .ratings"
                        if thr <= 0 else
                        "they are below the threshold, so not positives, and are left out of .ratings: they "
                        "count as not rated, not as dislikes (use negative ratings for dislikes)")
                logger.warning("%s: %d row(s) have rating 0 in column %r: %s", source, n_zero, rating_col, fate)
            n_neg = int((~pos).sum())
            if n_neg:
                logger.info("%s: %d of %d rated pairs are below the positive threshold %.3g (kept in .ratings only)",
                            source, n_neg, len(r), thr)
        else:
            pos = np.ones(len(work), bool)
            ratings = None
        ui = _csr(rows[pos], cols[pos], np.ones(int(pos.sum()), np.float32), shape, np.float32)
        ts = None
        if timestamp_col is not None:
            ts = _csr(rows[pos], cols[pos], work["t"].to_numpy(np.float64)[pos] + 1.0, shape, np.float64)
            ts.data -= 1.0
        uf = None if user_features is None else encode_feature_table(
            user_features, users, id_col=user_feature_id_col or user_col, source=f"{source} user features")
        itf = None if item_features is None else encode_feature_table(
            item_features, items, id_col=item_feature_id_col or item_col, source=f"{source} item features")
        return cls(user_items=ui, users=users, items=items, user_features=uf, item_features=itf,
                   timestamps=ts, ratings=ratings, name=name)

    @classmethod
    def from_csr(cls, matrix: sp.spmatrix, *, users: IdVocab | None = None, items: IdVocab | None = None,
                 user_features: SideFeatures | None = None, item_features: SideFeatures | None = None,
                 name: str = "") -> Interactions:
        """Wrap a user x item sparse matrix; vocabularies default to ``0..n-1``."""
        m = sp.csr_matrix(matrix, dtype=np.float32)
        return cls(user_items=m, users=users or IdVocab.range(m.shape[0], name="user"),
                   items=items or IdVocab.range(m.shape[1], name="item"),
                   user_features=user_features, item_features=item_features, name=name)


def _py(x):
    """A numpy scalar as the Python scalar, so messages read ``5`` rather than ``np.int64(5)``."""
    return x.item() if isinstance(x, np.generic) else x


def _numeric_column(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """Column as float64, with a DataError naming the first non-numeric or non-finite row."""
    raw = df[col]
    vals = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(vals)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{source}: column {col!r} must be numeric and finite; row {first} holds {_py(raw.iloc[first])!r} "
            f"({int(bad.sum())} bad row(s))"
        )
    return vals


def _timestamp_column(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """Timestamps as float64 seconds (datetime columns are converted)."""
    raw = df[col]
    if pd.api.types.is_datetime64_any_dtype(raw):
        if raw.isna().any():
            first = int(np.argmax(raw.isna().to_numpy()))
            raise DataError(f"{source}: column {col!r} has a missing timestamp at row {first}")
        return (raw.astype("datetime64[ns]").astype("int64").to_numpy() / 1e9).astype(np.float64)
    return _numeric_column(df, col, source)


def _merge_duplicates(work: pd.DataFrame, policy: str) -> pd.DataFrame:
    """Collapse repeated (u, i) rows according to ``policy``."""
    if policy in ("last", "first"):
        if "t" in work.columns:
            work = work.sort_values("t", kind="stable")
        return work.drop_duplicates(["u", "i"], keep=policy).sort_index()
    agg = {c: ("sum" if policy == "sum" else "max") for c in work.columns if c not in ("u", "i")}
    if "t" in agg:
        agg["t"] = "max"
    if not agg:
        return work.drop_duplicates(["u", "i"])
    return work.groupby(["u", "i"], sort=False, as_index=False).agg(agg)


def _align_to_vocab(ids: pd.Series, vocab: IdVocab) -> pd.Series:
    """Feature-table ids (labels) in the vocabulary's kind: text ids meet integer ids by the
    integer-literal rule (``"7"`` -> 7, ``"007"`` stays text and matches nothing), integer ids
    meet text ids as their decimal text."""
    vocab_int = np.issubdtype(np.asarray(vocab.ids).dtype, np.integer)
    ids_int = pd.api.types.is_integer_dtype(ids.dtype)
    if vocab_int and not ids_int:
        parsed = parse_text_ids(ids)
        if pd.api.types.is_integer_dtype(parsed.dtype):
            return parsed
        # Mixed: each integer literal meets its integer id, every other text stays (and matches nothing).
        out = ids.astype(object).copy()
        for k, v in enumerate(out.to_numpy()):
            if isinstance(v, str):
                one = parse_text_ids(pd.Series([v]))
                if pd.api.types.is_integer_dtype(one.dtype):
                    out.iat[k] = int(one.iat[0])
        return out
    if not vocab_int and ids_int:
        return ids.astype(str).astype(object)
    return ids


def encode_feature_table(table: pd.DataFrame, vocab: IdVocab, *, id_col: str | None, source: str,
                         allow_missing: bool = False) -> SideFeatures:
    """Encode a per-entity feature table into ``SideFeatures`` aligned with ``vocab``.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per entity. The id is column ``id_col`` if present, else the index.
    vocab : IdVocab
        Target alignment; row ``k`` of the result describes ``vocab.ids[k]``.
    id_col : str, optional
        Id column name.
    source : str
        Quoted in error messages.
    allow_missing : bool
        If True, entities without a row get all-zero features (count logged);
        otherwise they raise.

    Returns
    -------
    SideFeatures of shape (len(vocab), n_encoded_columns)
        Numeric and boolean columns as float32; other columns one-hot as ``col=value``.
    """
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{source}: expected a DataFrame, got {type(table).__name__}")
    if id_col is not None and id_col in table.columns:
        ids = table[id_col]
        feats = table.drop(columns=[id_col])
    else:
        ids = pd.Series(table.index)
        feats = table.reset_index(drop=True)
    if feats.shape[1] == 0:
        raise DataError(f"{source}: the feature table has no feature columns")
    if ids.isna().any():
        raise DataError(f"{source}: {int(ids.isna().sum())} row(s) have no id in column {id_col!r}")
    ids = _align_to_vocab(id_labels(ids.reset_index(drop=True), column=str(id_col), source=source), vocab)
    if ids.duplicated().any():
        raise DataError(f"{source}: duplicated id(s) {ids[ids.duplicated()].head(5).tolist()}")
    idx = vocab.to_idx(ids.to_numpy(), missing="mask")
    if (idx < 0).any():
        unknown = ids.to_numpy()[idx < 0][:5].tolist()
        known_stripped = {str(v).strip() for v in vocab.ids}
        hint = (" (they match once surrounding spaces are removed: spaces are part of an id, write both tables "
                "the same way)" if all(str(u).strip() in known_stripped for u in unknown) else "")
        raise DataError(
            f"{source}: {int((idx < 0).sum())} id(s) in the feature table match no interaction, e.g. {unknown}{hint}"
        )
    covered = np.zeros(len(vocab), bool)
    covered[idx] = True
    if not covered.all():
        missing_ids = vocab.ids[~covered][:5].tolist()
        if not allow_missing:
            raise DataError(
                f"{source}: {int((~covered).sum())} {vocab.name}(s) have interactions but no feature row, e.g. {missing_ids}"
            )
        logger.warning("%s: %d %ss have no feature row; their features are zero", source, int((~covered).sum()), vocab.name)
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for col in feats.columns:
        s = feats[col]
        if pd.api.types.is_bool_dtype(s) or (pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)):
            v = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(v)
            if bad.any():
                first = int(np.argmax(bad))
                raise DataError(f"{source}: column {col!r} has a NaN or infinite value for id {_py(ids.iloc[first])!r}")
            blocks.append(v[:, None].astype(np.float32))
            names.append(str(col))
        else:
            if s.isna().any():
                first = int(np.argmax(s.isna().to_numpy()))
                raise DataError(f"{source}: column {col!r} has a missing value for id {_py(ids.iloc[first])!r}")
            cats = pd.Categorical(s.astype(str))
            onehot = np.zeros((len(s), len(cats.categories)), np.float32)
            onehot[np.arange(len(s)), cats.codes] = 1.0
            blocks.append(onehot)
            names.extend(f"{col}={c}" for c in cats.categories)
    mat = np.concatenate(blocks, axis=1)
    out = np.zeros((len(vocab), mat.shape[1]), np.float32)
    out[idx] = mat
    return SideFeatures(out, tuple(names))
