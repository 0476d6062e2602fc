"""Load any CSV / TSV / Parquet table (or DataFrame) of interactions, with optional feature tables.

Ids are labels: an id column read from text stays int64 only when every id is an integer literal
without leading zeros (so ``007`` and ``7`` are two users and ``12345678901234567890`` is not
rounded); otherwise every id keeps its exact text, spaces included (a space after the separator
in a ``a, b`` style file is part of the id, and a warning says so). Compressed files (gzip, bz2,
xz, zip: found from the first bytes, whatever the suffix) and byte-order marks are read as such.

Every failure is a :class:`~recsys_coldstart.exceptions.DataError` naming the file, the column
and the line: a missing or empty file, a folder given as a file, an undecodable byte (with a
hint to pass ``encoding=``), a separator that leaves a single column, a truncated last line,
missing columns, non-numeric ratings or timestamps, ratings <= 0 without a threshold, feature
ids that match no interaction, NaN / infinite features.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import pandas as pd

from recsys_coldstart.data.datasets._common import with_line_numbers
from recsys_coldstart.data.interactions import DuplicatePolicy, Interactions
from recsys_coldstart.data.vocab import parse_text_ids
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
_CANDIDATE_SEPS = ("\t", ",", ";", "|")
TableLike = str | os.PathLike | pd.DataFrame

# Leading bytes of the compressed formats pandas reads (whatever the file's suffix says).
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"),
          (b"\x28\xb5\x2f\xfd", "zstd"))
# pandas' default missing-value markers, used for every column except the id columns (where only an
# empty cell is missing: "NA" or "null" may well be somebody's id).
_NA_MARKERS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
               "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def sniff_compression(path: Path) -> str | None:
    """The compression of ``path`` from its first bytes (gzip, bz2, xz, zip, zstd), or None.

    The magic bytes decide, not the suffix: a gzip file named ``.csv`` is read as gzip and a
    plain file named ``.gz`` as plain text.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _open_binary(path: Path, compression: str | None):
    """A binary file object over the (decompressed) content of ``path``."""
    import bz2
    import gzip
    import lzma
    import zipfile

    if compression == "gzip":
        return gzip.open(path, "rb")
    if compression == "bz2":
        return bz2.open(path, "rb")
    if compression == "xz":
        return lzma.open(path, "rb")
    if compression == "zip":
        zf = zipfile.ZipFile(path)
        names = [n for n in zf.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise DataError(f"{path}: a zip file must hold exactly one table, found {len(names)} files")
        return zf.open(names[0])
    if compression == "zstd":
        try:
            import zstandard
        except ImportError as e:
            raise DataError(f"{path}: the file is zstd-compressed; decompress it first (zstd -d)") from e
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
    return open(path, "rb")


def _sniff_encoding(path: Path, compression: str | None, encoding: str) -> str:
    """``encoding``, or the one a byte-order mark announces when the default (UTF-8) was asked for."""
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return encoding
    with _open_binary(path, compression) as fh:
        head = fh.read(4)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return encoding


def sniff_separator(path: Path, *, encoding: str = "utf-8", n_lines: int = 50,
                    compression: str | None = None) -> str:
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
    compression : str, optional
        ``"gzip"``, ``"bz2"``, ``"xz"``, ``"zip"``, ``"zstd"`` (see :func:`sniff_compression`).

    Returns
    -------
    str
        The separator, as ``pandas.read_csv(sep=...)`` takes it.
    """
    import io

    lines: list[str] = []
    with _open_binary(path, compression) as raw, io.TextIOWrapper(raw, encoding=encoding, newline="") as fh:
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
    suffixes = [x.lower() for x in path.suffixes]
    return "\t" if ".tsv" in suffixes else ","


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head == b"PAR1" or path.suffix.lower() in PARQUET_SUFFIXES


def _count_fields(line: str, sep: str) -> int:
    if sep == r"\s+":
        return len(line.split())
    if len(sep) == 1:
        return len(next(csv.reader([line], delimiter=sep)))
    import re

    return len(re.split(sep, line))


def _check_last_line(path: Path, compression: str | None, encoding: str, sep: str, n_cols: int,
                     source: str, what: str) -> None:
    """A last line with fewer fields than the lines before it is a truncated file: pandas would
    silently fill the missing fields with NaN."""
    n_lines, tail, ends_nl = 0, b"", True
    with _open_binary(path, compression) as fh:
        while chunk := fh.read(1 << 20):
            n_lines += chunk.count(b"\n")
            tail = (tail + chunk)[-(1 << 16):]
            ends_nl = chunk.endswith(b"\n")
    lines = [ln for ln in tail.decode(encoding, errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        return
    last = _count_fields(lines[-1], sep)
    before = _count_fields(lines[-2], sep)
    if last < n_cols and before > last:
        line_no = n_lines + (0 if ends_nl else 1)
        raise DataError(f"{source}: line {line_no} (the last) has {last} of {n_cols} fields"
                        f"{'' if ends_nl else ' and no final newline'}: the {what} file looks truncated")


def table_columns(path: str | os.PathLike, *, sep: str | None = None, encoding: str = "utf-8") -> list[str]:
    """Column names of a CSV / TSV / Parquet file (compressed or not) without reading it whole.

    Returns ``[]`` when the file cannot be read; :func:`load_table` then reports why.
    """
    path = Path(path)
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        comp = sniff_compression(path)
        enc = _sniff_encoding(path, comp, encoding)
        used = sniff_separator(path, encoding=enc, compression=comp) if sep is None else sep
        cols = pd.read_csv(path, sep=used, nrows=0, encoding=enc, compression=comp,
                           engine="python" if len(used) > 1 else "c").columns
        return [str(c).strip() for c in cols]
    except Exception:  # noqa: BLE001 - the loader reports the problem properly
        return []


def read_table(table: TableLike, *, sep: str | None = None, encoding: str = "utf-8",
               what: str = "table", id_cols: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str, bool]:
    """Read a CSV / TSV / TXT / Parquet file (or pass a DataFrame through).

    Text files may be gzip / bz2 / xz / zip compressed (found from the first bytes, whatever the
    suffix) and may start with a byte-order mark. Header names lose surrounding spaces. The
    ``id_cols`` are read as text and kept exact (see
    :func:`~recsys_coldstart.data.vocab.parse_text_ids`): int64 only when every id is an integer
    literal, else strings, whitespace included; only an empty cell is a missing id.

    Parameters
    ----------
    table : str, path-like or pandas.DataFrame
    sep : str, optional
        Column separator; sniffed when None (text files only).
    encoding : str
        Text encoding (text files only); a UTF-8 or UTF-16 byte-order mark overrides the UTF-8 default.
    what : str
        What the table is, for error messages.
    id_cols : tuple of str
        Columns holding ids (text files only).

    Returns
    -------
    (DataFrame, source, is_text) : the table, its name for messages, and whether it came from a
    text file with a header line (so that DataFrame row ``r`` is file line ``r + 2``).

    Raises
    ------
    DataError
        Missing / empty / undecodable / unparsable / truncated file, or a folder given as a file.
    """
    if isinstance(table, pd.DataFrame):
        return table, f"{what} DataFrame", False
    if not isinstance(table, (str, os.PathLike)):
        raise DataError(f"{what}: expected a file path or a pandas DataFrame, got {type(table).__name__}")
    path = Path(table)
    source = str(path)
    if path.is_dir():
        raise DataError(f"{source}: is a folder, not a file (give the {what} table file itself)")
    if not path.is_file():
        raise DataError(f"{source}: {what} file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{source}: the {what} file is empty")
    if _is_parquet(path):
        try:
            df = pd.read_parquet(path)
        except ImportError:
            raise  # pyarrow is a core dependency: a broken install is not a bad file
        except Exception as e:  # pyarrow raises its own ArrowInvalid / OSError types
            raise DataError(f"{source}: not a readable Parquet file ({type(e).__name__}: {e})") from e
        df.columns = [str(c).strip() for c in df.columns]
        is_text = False
    else:
        df = _read_text(path, source, sep=sep, encoding=encoding, what=what, id_cols=id_cols)
        is_text = True
    if len(df) == 0:
        raise DataError(f"{source}: the {what} file has no data rows")
    return df, source, is_text


def _decompress_errors() -> tuple[type[BaseException], ...]:
    """What a corrupt or cut-off compressed file raises (gzip/bz2: OSError/EOFError, xz: LZMAError, ...)."""
    import lzma
    import zipfile

    errors: tuple[type[BaseException], ...] = (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    return errors


def _read_text(path: Path, source: str, *, sep: str | None, encoding: str, what: str,
               id_cols: tuple[str, ...]) -> pd.DataFrame:
    comp = None
    used_sep = sep
    try:
        comp = sniff_compression(path)
        enc = _sniff_encoding(path, comp, encoding)
        used_sep = sniff_separator(path, encoding=enc, compression=comp) if sep is None else sep
        kw = {"sep": used_sep, "encoding": enc, "compression": comp,
              "engine": "python" if len(used_sep) > 1 else "c"}
        header = list(pd.read_csv(path, nrows=0, **kw).columns)
        raw_ids = [c for c in header if str(c).strip() in id_cols]
        na = {c: ([""] if c in raw_ids else _NA_MARKERS) for c in header}
        df = pd.read_csv(path, dtype={c: str for c in raw_ids}, keep_default_na=False, na_values=na, **kw)
    except DataError:
        raise
    except UnicodeDecodeError as e:
        raise DataError(
            f"{source}: cannot decode byte {e.object[e.start:e.start + 1]!r} at offset {e.start} as {encoding}; "
            f"pass the file's encoding, e.g. encoding='latin-1' (--encoding latin-1)"
        ) from e
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{source}: the {what} file is empty") from e
    except _decompress_errors() as e:  # a corrupt or cut-off compressed file
        raise DataError(f"{source}: cannot read the {comp or what} file: {str(e).strip() or type(e).__name__}") from e
    except (pd.errors.ParserError, csv.Error, ValueError) as e:
        raise DataError(f"{source}: cannot parse the {what} file (sep={used_sep!r}): {str(e).strip()}") from e
    df.columns = [str(c).strip() for c in df.columns]
    if len(df):
        try:
            _check_last_line(path, comp, enc, used_sep, len(header), source, what)
        except _decompress_errors() as e:
            raise DataError(f"{source}: cannot read the {comp or what} file: {str(e).strip() or type(e).__name__}") from e
    for c in df.columns:
        if c in id_cols:
            ids = df[c]
            if ids.isna().any():
                continue  # from_pandas names the row
            df[c] = parse_text_ids(ids)
            if df[c].dtype == object:
                spaced = (ids != ids.str.strip()).to_numpy()
                if spaced.any():
                    logger.warning("%s: %d id(s) in column %r have leading or trailing spaces, kept as part of the "
                                   "id (e.g. %r)", source, int(spaced.sum()), c, ids[spaced].iloc[0])
        elif pd.api.types.infer_dtype(df[c], skipna=True) == "string":
            df[c] = df[c].str.lstrip()  # "a, b" style files: a space after the separator is layout
    return df


def _check_columns(df: pd.DataFrame, source: str, wanted: list[str], sep: str | None) -> None:
    """A clear message for the classic wrong-separator symptom: one column holding whole lines."""
    missing = [c for c in wanted if c not in df.columns]
    if missing and df.shape[1] == 1:
        only = str(df.columns[0])
        likely = [c for c in _CANDIDATE_SEPS if c in only] or ([r"\s+"] if len(only.split()) > 1 else [])
        hint = (f"pass sep={likely[0]!r} (--sep {likely[0]!r})" if likely
                else "pass sep= (--sep) with the file's separator")
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
        Parquet files (``.parquet`` / ``.pq`` or the Parquet magic bytes) are read with pyarrow;
        anything else as delimited text, possibly compressed (gzip, bz2, xz, zip).
    user_col, item_col : str
        Id columns (labels: see the module docstring).
    rating_col : str, optional
        Explicit feedback column; positives are ``rating >= threshold`` and every non-zero rating
        is kept in ``Interactions.ratings``. Without it every row is a positive.
    timestamp_col : str, optional
        Numeric seconds or datetime column.
    threshold : float, optional
        Positive threshold on ``rating_col``. Without it every rating is a positive, and a rating
        <= 0 raises (say with a threshold which ratings are positives).
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
    df, source, is_text = read_table(path, sep=sep, encoding=encoding, what="interaction",
                                     id_cols=(user_col, item_col))
    wanted = [c for c in (user_col, item_col, rating_col, timestamp_col) if c is not None]
    _check_columns(df, source, wanted, sep)
    feats: dict[str, pd.DataFrame | None] = {}
    feat_text = False
    for label, table, id_col in (("user", user_features, user_feature_id_col or user_col),
                                 ("item", item_features, item_feature_id_col or item_col)):
        if table is None:
            feats[label] = None
            continue
        fdf, fsource, ftext = read_table(table, sep=sep, encoding=encoding, what=f"{label}-feature",
                                         id_cols=(id_col,))
        _check_columns(fdf, fsource, [id_col], sep)
        if id_col not in fdf.columns:
            raise DataError(f"{fsource}: {label}-feature id column {id_col!r} not found; columns present: "
                            f"{[str(c) for c in fdf.columns]} (on the command line --{label}-col names the id "
                            f"column of both tables; in Python pass {label}_feature_id_col=)")
        fdf = fdf.copy()
        fdf.attrs["source"] = fsource
        feats[label] = fdf
        feat_text = feat_text or ftext
    if name is None:
        name = _table_name(Path(path)) if not isinstance(path, pd.DataFrame) else "table"
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
        out[label] = encode_feature_table(fdf, vocab, id_col=id_col, source=fdf.attrs["source"])
    return replace(data, user_features=out["user"], item_features=out["item"])


def _table_name(path: Path) -> str:
    """``ratings`` for ``ratings.csv``, ``ratings.csv.gz`` or ``ratings.parquet``."""
    name = path.name
    for suffix in (".gz", ".bz2", ".xz", ".zip", ".zst"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path(name).stem or name
