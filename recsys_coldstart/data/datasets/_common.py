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


def with_line_numbers(err: DataError, header_lines: int) -> DataError:
    """Copy of ``err`` whose every ``row N`` also gives the file line (``N + header_lines + 1``)."""
    import re

    msg = re.sub(r"\brow (\d+)\b", lambda m: f"row {m.group(1)} (line {int(m.group(1)) + header_lines + 1})", str(err))
    return DataError(msg)


def isin_sorted(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_unique)`` by binary search (much faster than hashing for int64 keys).

    Parameters
    ----------
    values : np.ndarray of int, shape (n,)
    sorted_unique : np.ndarray of int, shape (m,), sorted ascending

    Returns
    -------
    np.ndarray of bool, shape (n,)
    """
    if len(sorted_unique) == 0:
        return np.zeros(len(values), bool)
    pos = np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)
    return sorted_unique[pos] == values


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
    raw = path.read_bytes()
    # Normalise separators with C-speed bytes operations: tabs / CR / repeated or edge spaces.
    if b"\t" in raw or b"\r" in raw:
        raw = raw.replace(b"\r", b"").replace(b"\t", b" ")
    while b"  " in raw:
        raw = raw.replace(b"  ", b" ")
    raw = raw.replace(b" \n", b"\n").replace(b"\n ", b"\n").strip(b" ")
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    arr = np.frombuffer(raw, np.uint8)
    nl_pos = np.flatnonzero(arr == 10)
    bad = np.flatnonzero(((arr < 48) | (arr > 57)) & (arr != 32) & (arr != 10))
    if len(bad):  # name the line and the whole offending token
        line = int(np.searchsorted(nl_pos, bad[0]))
        text_line = raw.split(b"\n")[line].decode("ascii", errors="replace")
        if arr[bad[0]] >= 128:
            raise DataError(f"{path}: line {line + 1}: non-ASCII byte at offset {int(bad[0])} in a file of integers")
        tok = next((t for t in text_line.split() if not t.isdigit()), text_line)
        raise DataError(f"{path}: line {line + 1}: token {tok!r} is not a non-negative integer")
    if not len(arr):
        raise DataError(f"{path}: the file is empty")
    n = len(nl_pos) + 1
    line_len = np.diff(np.concatenate([[-1], nl_pos, [len(arr)]])) - 1
    n_spaces = np.bincount(np.searchsorted(nl_pos, np.flatnonzero(arr == 32)), minlength=n)
    lens = np.where(line_len > 0, n_spaces + 1, 0).astype(np.int64)
    if first_is_count:
        keep = np.arange(n)
    else:
        keep = np.flatnonzero(lens > 0)
        if len(keep) < n:
            logger.debug("%s: %d empty line(s) skipped", path, n - len(keep))
    if int(lens.sum()) == 0:
        raise DataError(f"{path}: the file holds no integers")
    # Only digits, single spaces and newlines remain: numpy parses them exactly, in C.
    flat = np.fromstring(raw.decode("ascii"), dtype=np.int64, sep=" ")
    if len(flat) != int(lens.sum()):
        raise DataError(f"{path}: could not read every integer ({len(flat)} of {int(lens.sum())} tokens)")
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
