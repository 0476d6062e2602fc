"""Helpers shared by the dataset loaders: guarded file reading with errors that name the file."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)


def require_files(folder: Path, files: tuple[str, ...] | list[str]) -> None:
    """Raise :class:`DataError` naming the first missing file of ``files`` under ``folder``."""
    for f in files:
        p = folder / f
        if not p.is_file():
            raise DataError(
                f"dataset file not found: {p} (pass --data-dir / data_dir= pointing at the folder that "
                f"contains {folder.name}/, or get the data with data_scripts/)"
            )


def read_delimited(path: Path, *, sep: str, names: list[str], encoding: str = "latin-1",
                   dtype: dict | None = None) -> pd.DataFrame:
    """Read a header-less delimited text file with pandas' C parser.

    A multi-character separator such as MovieLens-1M's ``::`` is replaced by a tab first, so the
    fast C parser still applies. Every parsing failure becomes a :class:`DataError` naming
    ``path`` (and the line, when pandas reports one).

    Parameters
    ----------
    path : Path
    sep : str
    names : list of str
        Column names; a line with more fields is an error.
    encoding : str
    dtype : dict, optional
        Column dtypes passed to pandas.

    Returns
    -------
    pandas.DataFrame with columns ``names``.
    """
    import io

    try:
        if len(sep) > 1:
            text = path.read_bytes().decode(encoding).replace(sep, "\t")
            src: object = io.StringIO(text)
            sep = "\t"
            enc = None
        else:
            src, enc = path, encoding
        df = pd.read_csv(src, sep=sep, header=None, names=names, encoding=enc, quoting=csv.QUOTE_NONE,
                         dtype=dtype, engine="c", index_col=False)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: cannot decode the file as {encoding} ({e.reason} at byte {e.start})") from e
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path}: the file is empty") from e
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"{path}: cannot parse the file: {e}") from e
    if len(df) == 0:
        raise DataError(f"{path}: the file is empty")
    return df


def int_column(df: pd.DataFrame, col: str, path: Path) -> np.ndarray:
    """Column ``col`` as int64; a DataError names the file, column and line of the first bad value."""
    vals = pd.to_numeric(df[col], errors="coerce")
    bad = vals.isna().to_numpy()
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(f"{path}: column {col!r} must hold integers; line {first + 1} holds {df[col].iloc[first]!r}")
    out = vals.to_numpy(np.float64)
    if not np.array_equal(out, np.round(out)):
        first = int(np.argmax(out != np.round(out)))
        raise DataError(f"{path}: column {col!r} must hold integers; line {first + 1} holds {df[col].iloc[first]!r}")
    return out.astype(np.int64)


def read_ragged_ints(path: Path, *, first_is_count: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a file of whitespace-separated integer lines of varying length.

    Two layouts are supported:
    - ``first_is_count=False`` (LightGCN): ``head v_1 ... v_n`` -> heads are the first tokens;
    - ``first_is_count=True`` (CiteULike ``users.dat``, ``item-tag.dat``): ``n v_1 ... v_n`` ->
      the head is the 0-based line number and ``n`` is checked against the number of values.

    Returns
    -------
    heads : np.ndarray of int64, shape (n_lines,)
        Head id of each non-empty line (``first_is_count``: every line, including empty ones,
        so head == line index).
    counts : np.ndarray of int64, shape (n_lines,)
        Number of values on each line.
    values : np.ndarray of int64, shape (sum(counts),)
        The values, line after line.

    Raises
    ------
    DataError
        Naming the file and line of a non-integer token, a negative id, or a count mismatch.
    """
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected a plain ASCII file of integers; non-ASCII byte at offset {e.start}") from e
    lines = text.splitlines()
    n = len(lines)
    # One split per line; the token -> int conversion runs vectorised in numpy below.
    split = [ln.split() for ln in lines]
    lens = np.fromiter((len(s) for s in split), dtype=np.int64, count=n)
    if first_is_count:
        keep = np.arange(n)
    else:
        keep = np.flatnonzero(lens > 0)
        if len(keep) < n:
            logger.debug("%s: %d empty line(s) skipped", path, n - len(keep))
    tokens = [t for s in split for t in s]
    if not tokens:
        raise DataError(f"{path}: the file is empty")
    try:
        flat = np.asarray(tokens).astype(np.int64)
    except (ValueError, OverflowError):
        flat = pd.to_numeric(pd.Series(tokens), errors="coerce").to_numpy()
        bad = int(np.argmax(~np.isfinite(flat) | (flat != np.round(flat))))
        line = int(np.searchsorted(np.cumsum(lens), bad, side="right"))
        raise DataError(f"{path}: line {line + 1}: token {tokens[bad]!r} is not an integer") from None
    if (flat < 0).any():
        bad = int(np.argmax(flat < 0))
        line = int(np.searchsorted(np.cumsum(lens), bad, side="right"))
        raise DataError(f"{path}: line {line + 1}: negative id {int(flat[bad])}")
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    has = lens > 0
    head_vals = np.where(has, flat[np.minimum(starts, len(flat) - 1)], -1)
    is_head = np.zeros(len(flat), bool)
    is_head[starts[has]] = True
    values = flat[~is_head]
    counts = np.maximum(lens - 1, 0)
    if first_is_count:
        empty = ~has
        if empty.any():
            logger.debug("%s: %d empty line(s) read as zero values", path, int(empty.sum()))
        declared = np.where(has, head_vals, 0)
        mism = declared != counts
        if mism.any():
            line = int(np.argmax(mism))
            raise DataError(
                f"{path}: line {line + 1} declares {int(declared[line])} values but holds {int(counts[line])}"
            )
        return np.arange(n, dtype=np.int64), counts, values
    return head_vals[keep].astype(np.int64), counts[keep], values
