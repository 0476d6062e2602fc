"""Load any CSV / TSV / Parquet table (or DataFrame) of interactions, with optional feature tables.

Every failure is a :class:`~recsys_coldstart.exceptions.DataError` naming the file, the column
and the line: a missing or empty file, an undecodable byte (with a hint to pass ``encoding=``),
a separator that leaves a single column, missing columns, non-numeric ratings or timestamps,
feature ids that match no interaction, NaN / infinite features.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import pandas as pd

from recsys_coldstart.data.datasets._common import with_line_numbers
from recsys_coldstart.data.interactions import DuplicatePolicy, Interactions
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
_CANDIDATE_SEPS = ("\t", ",", ";", "|")
TableLike = str | os.PathLike | pd.DataFrame


def sniff_separator(path: Path, *, encoding: str = "utf-8", n_lines: int = 50) -> str:
    """Guess the column separator of a delimited text file from its first lines.

    A candidate (tab, comma, semicolon, pipe) qualifies when it occurs the same, non-zero number of
    times on each sampled line; the most frequent qualifying one wins. Otherwise runs of
    whitespace (``r"\\s+"``) are tried, then the suffix decides (``.tsv`` -> tab, else comma).

    Parameters
    ----------
    path : Path
    encoding : str
    n_lines : int
        Number of non-empty lines sampled.

    Returns
    -------
    str
        The separator, as ``pandas.read_csv(sep=...)`` takes it.
    """
    lines: list[str] = []
    with open(path, encoding=encoding, newline="") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if line.strip():
                lines.append(line)
            if len(lines) >= n_lines:
                break
    best, best_count = None, 0
    for sep in _CANDIDATE_SEPS:
        counts = {ln.count(sep) for ln in lines}
        if len(counts) == 1 and (c := counts.pop()) > best_count:
            best, best_count = sep, c
    if best is not None:
        return best
    n_ws = {len(ln.split()) for ln in lines}
    if len(n_ws) == 1 and n_ws.pop() > 1:
        return r"\s+"
    return "\t" if path.suffix.lower() == ".tsv" else ","


def read_table(table: TableLike, *, sep: str | None = None, encoding: str = "utf-8",
               what: str = "table") -> tuple[pd.DataFrame, str, bool]:
    """Read a CSV / TSV / TXT / Parquet file (or pass a DataFrame through).

    Parameters
    ----------
    table : str, path-like or pandas.DataFrame
    sep : str, optional
        Column separator; sniffed when None (text files only).
    encoding : str
        Text encoding (text files only).
    what : str
        What the table is, for error messages.

    Returns
    -------
    (DataFrame, source, is_text) : the table, its name for messages, and whether it came from a
    text file with a header line (so that DataFrame row ``r`` is file line ``r + 2``).

    Raises
    ------
    DataError
        Missing / empty / undecodable / unparsable file.
    """
    if isinstance(table, pd.DataFrame):
        return table, f"{what} DataFrame", False
    if not isinstance(table, (str, os.PathLike)):
        raise DataError(f"{what}: expected a file path or a pandas DataFrame, got {type(table).__name__}")
    path = Path(table)
    source = str(path)
    if not path.is_file():
        raise DataError(f"{source}: {what} file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{source}: the {what} file is empty")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            df = pd.read_parquet(path)
        except ImportError as e:
            raise DataError(f"{source}: reading Parquet needs pyarrow (pip install pyarrow)") from e
        except Exception as e:  # pyarrow raises its own ArrowInvalid / OSError types
            raise DataError(f"{source}: not a readable Parquet file ({type(e).__name__}: {e})") from e
        is_text = False
    else:
        try:
            used_sep = sniff_separator(path, encoding=encoding) if sep is None else sep
            engine = "python" if len(used_sep) > 1 else "c"
            df = pd.read_csv(path, sep=used_sep, encoding=encoding, engine=engine, skipinitialspace=True)
        except UnicodeDecodeError as e:
            raise DataError(
                f"{source}: cannot decode byte {e.object[e.start:e.start + 1]!r} at offset {e.start} as {encoding}; "
                f"pass the file's encoding, e.g. encoding='latin-1'"
            ) from e
        except pd.errors.EmptyDataError as e:
            raise DataError(f"{source}: the {what} file is empty") from e
        except (pd.errors.ParserError, csv.Error, ValueError) as e:
            raise DataError(f"{source}: cannot parse the {what} file (sep={used_sep!r}): {str(e).strip()}") from e
        is_text = True
    if len(df) == 0:
        raise DataError(f"{source}: the {what} file has no data rows")
    return df, source, is_text


def _check_columns(df: pd.DataFrame, source: str, wanted: list[str], sep: str | None) -> None:
    """A clear message for the classic wrong-separator symptom: one column holding whole lines."""
    missing = [c for c in wanted if c not in df.columns]
    if missing and df.shape[1] == 1:
        only = str(df.columns[0])
        likely = [c for c in _CANDIDATE_SEPS if c in only] or ([r"\s+"] if len(only.split()) > 1 else [])
        hint = f"pass sep={likely[0]!r}" if likely else "pass sep= with the file's separator"
        raise DataError(
            f"{source}: found a single column {only[:60]!r} where columns {wanted} were expected; "
            f"the separator {'was not recognised' if sep is None else repr(sep) + ' seems wrong'}: {hint}"
        )


def _with_lines(err: DataError, is_text: bool) -> DataError:
    """Add the file line number to every ``row N`` a DataError mentions (header = line 1)."""
    return with_line_numbers(err, 1) if is_text else err


def load_table(
    path: TableLike,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str | None = None,
    timestamp_col: str | None = None,
    threshold: float | None = None,
    sep: str | None = None,
    user_features: TableLike | None = None,
    item_features: TableLike | None = None,
    user_feature_id_col: str | None = None,
    item_feature_id_col: str | None = None,
    duplicates: DuplicatePolicy = "last",
    name: str | None = None,
    encoding: str = "utf-8",
) -> Interactions:
    """Load interactions (and optional feature tables) from CSV / TSV / TXT / Parquet files.

    Parameters
    ----------
    path : str, path-like or pandas.DataFrame
        The interaction table: one row per (user, item[, rating][, timestamp]), with a header line.
        ``.parquet`` / ``.pq`` files are read with pyarrow; anything else as delimited text.
    user_col, item_col : str
        Id columns.
    rating_col : str, optional
        Explicit feedback column; positives are ``rating >= threshold`` and every rating is kept in
        ``Interactions.ratings``. Without it every row is a positive.
    timestamp_col : str, optional
        Numeric seconds or datetime column.
    threshold : float, optional
        Positive threshold on ``rating_col`` (default 0: every rating is positive).
    sep : str, optional
        Separator of the text files; sniffed per file when None.
    user_features, item_features : str, path-like or pandas.DataFrame, optional
        One row per user / item: an id column plus numeric (used as is) and categorical (one-hot)
        columns. Every id must match an interaction and every user / item needs a row.
    user_feature_id_col, item_feature_id_col : str, optional
        Id column of the feature tables (default ``user_col`` / ``item_col``).
    duplicates : {"last", "first", "max", "sum", "error"}
        How repeated (user, item) rows are merged (the count is logged).
    name : str, optional
        Dataset name (default: the file stem).
    encoding : str
        Encoding of the text files.

    Returns
    -------
    Interactions

    Raises
    ------
    DataError
        Any malformed input, naming the file, column and line.
    """
    if threshold is not None and rating_col is None:
        raise DataError("threshold= needs rating_col= (the column the threshold applies to)")
    df, source, is_text = read_table(path, sep=sep, encoding=encoding, what="interaction")
    wanted = [c for c in (user_col, item_col, rating_col, timestamp_col) if c is not None]
    _check_columns(df, source, wanted, sep)
    feats: dict[str, pd.DataFrame | None] = {}
    feat_text = False
    for label, table, id_col in (("user", user_features, user_feature_id_col or user_col),
                                 ("item", item_features, item_feature_id_col or item_col)):
        if table is None:
            feats[label] = None
            continue
        fdf, fsource, ftext = read_table(table, sep=sep, encoding=encoding, what=f"{label}-feature")
        _check_columns(fdf, fsource, [id_col], sep)
        if id_col not in fdf.columns:
            raise DataError(f"{fsource}: {label}-feature id column {id_col!r} not found; columns present: "
                            f"{[str(c) for c in fdf.columns]} (set {label}_feature_id_col=)")
        fdf = fdf.copy()
        fdf.attrs["source"] = fsource
        feats[label] = fdf
        feat_text = feat_text or ftext
    if name is None:
        name = Path(path).stem if not isinstance(path, pd.DataFrame) else "table"
    try:
        data = Interactions.from_pandas(df, user_col=user_col, item_col=item_col, rating_col=rating_col,
                                        timestamp_col=timestamp_col, threshold=threshold,
                                        duplicates=duplicates, name=name, source=source)
    except DataError as e:
        raise _with_lines(e, is_text) from e
    # Feature tables are encoded here (not in from_pandas) so that errors name their own file.
    from dataclasses import replace

    from recsys_coldstart.data.interactions import encode_feature_table

    out = {}
    for label, vocab, id_col in (("user", data.users, user_feature_id_col or user_col),
                                 ("item", data.items, item_feature_id_col or item_col)):
        fdf = feats[label]
        if fdf is None:
            out[label] = None
            continue
        fdf[id_col] = _align_id_dtype(fdf[id_col], vocab.ids)
        out[label] = encode_feature_table(fdf, vocab, id_col=id_col, source=fdf.attrs["source"])
    return replace(data, user_features=out["user"], item_features=out["item"])


def _align_id_dtype(ids: pd.Series, vocab_ids) -> pd.Series:
    """Make feature-table ids comparable with interaction ids read with another dtype.

    A CSV of integer ids and a Parquet table of string ids (or the reverse) hold the same ids;
    when the two differ in kind, both are compared as strings.
    """
    import numpy as np

    vocab_is_num = np.issubdtype(np.asarray(vocab_ids).dtype, np.number)
    ids_is_num = pd.api.types.is_numeric_dtype(ids)
    if vocab_is_num and not ids_is_num:
        conv = pd.to_numeric(ids, errors="coerce")
        if conv.notna().all() and (conv == conv.round()).all():
            return conv.astype(np.int64)
    if not vocab_is_num and ids_is_num:
        return ids.astype(str)
    return ids

