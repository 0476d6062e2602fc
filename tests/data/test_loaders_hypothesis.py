"""Property tests: malformed tables always end in ``DataError``; valid tables round-trip.

Hypothesis builds small valid interaction tables, applies one corruption and writes them as
CSV / TSV / Parquet or passes the DataFrame; ``load_table`` / ``Interactions.from_pandas`` must
raise :class:`DataError` (never a raw pandas / scipy / KeyError), naming the file at fault.
"""

import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_coldstart.data import Interactions, load_table
from recsys_coldstart.exceptions import DataError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.one_of(st.integers(0, 12), st.sampled_from(["a", "b", "c", "u7", "zz"]))
rows = st.lists(st.tuples(ids, st.integers(0, 9), st.integers(1, 5), st.integers(0, 10**9)), min_size=2, max_size=30)


def _table(rs) -> pd.DataFrame:
    df = pd.DataFrame(rs, columns=["user", "item", "rating", "timestamp"])
    df["user"] = df["user"].astype(str)  # one id type per column, as a CSV reader sees it
    return df


def _write(df: pd.DataFrame, folder: Path, fmt: str, name: str = "t") -> Path:
    if fmt == "parquet":
        p = folder / f"{name}.parquet"
        df.to_parquet(p)
    else:
        sep = {"csv": ",", "tsv": "\t", "semi": ";"}[fmt]
        p = folder / f"{name}.{'tsv' if fmt == 'tsv' else 'csv'}"
        df.to_csv(p, sep=sep, index=False)
    return p


@SETTINGS
@given(rs=rows, fmt=st.sampled_from(["csv", "tsv", "semi", "parquet", "df"]), thr=st.sampled_from([None, 1, 4]))
def test_valid_tables_round_trip(rs, fmt, thr):
    df = _table(rs)
    with tempfile.TemporaryDirectory() as tmp:
        src = df if fmt == "df" else _write(df, Path(tmp), fmt)
        kw = {"rating_col": "rating", "threshold": thr} if thr is not None else {}
        d = load_table(src, timestamp_col="timestamp", duplicates="last", **kw)
    # duplicates="last": the latest row by timestamp (stable, so file order breaks ties) wins
    last = df.sort_values("timestamp", kind="stable").drop_duplicates(["user", "item"], keep="last")
    assert d.n_users == df.user.nunique() and d.n_items == df.item.nunique()
    if thr is None:
        assert d.nnz == len(last)  # nnz == unique pairs
        assert d.ratings is None
    else:
        assert d.ratings.nnz == len(last)
        assert d.nnz == int((last.rating >= thr).sum())
    pos = last if thr is None else last[last.rating >= thr]
    back = d.to_pandas()
    assert set(zip(back.user.astype(str), back.item, strict=True)) == set(zip(pos.user, pos.item, strict=True))


@SETTINGS
@given(rs=rows, fmt=st.sampled_from(["csv", "parquet", "df"]))
def test_feature_tables_round_trip(rs, fmt):
    df = _table(rs)
    users = sorted(df.user.unique())
    uf = pd.DataFrame({"user": users, "score": np.arange(len(users), dtype=float),
                       "kind": [("x", "y")[k % 2] for k in range(len(users))]})
    with tempfile.TemporaryDirectory() as tmp:
        src = df if fmt == "df" else _write(df, Path(tmp), fmt)
        ufs = uf if fmt == "df" else _write(uf, Path(tmp), fmt, name="uf")
        d = load_table(src, user_features=ufs)
    got = d.user_features.dense()
    pos = {str(u): k for k, u in enumerate(d.users.ids)}  # a CSV reads "7" back as 7
    idx = np.array([pos[u] for u in users])
    assert np.array_equal(got[idx, 0], uf.score.to_numpy(np.float32))
    assert d.user_features.names[0] == "score" and got[:, 1:].sum() == len(users)


FILE_CORRUPTIONS = [
    "drop_user", "drop_item", "rating_text", "rating_nan", "rating_inf", "ts_text", "empty_file", "header_only",
    "wrong_sep_semi", "wrong_sep_tab", "bad_encoding", "missing_id", "ragged", "dup_error",
    "feat_dup", "feat_unknown", "feat_nan", "feat_inf", "feat_missing_row", "feat_no_id_col", "feat_empty",
    "feat_bad_encoding",
]


def _corrupt(kind: str, df: pd.DataFrame, folder: Path, draw) -> tuple[Path, dict, str]:
    """Write a corrupted table; returns (interaction path, load_table kwargs, file expected in the message)."""
    kw: dict = {"rating_col": "rating", "timestamp_col": "timestamp"}
    df = df.copy()
    row = draw(st.integers(0, len(df) - 1))
    users = sorted(df.user.unique())
    feat = pd.DataFrame({"user": users, "f": np.ones(len(users))})
    fpath = folder / "uf.csv"
    culprit = "t.csv"
    if kind in ("drop_user", "drop_item"):
        df = df.drop(columns=[kind.split("_")[1]])
    elif kind == "rating_text":
        df["rating"] = df["rating"].astype(object)
        df.loc[row, "rating"] = draw(st.text(alphabet="abcdfghjklmopqrsuvwxyz", min_size=1, max_size=5))
    elif kind in ("rating_nan", "rating_inf"):
        df["rating"] = df["rating"].astype(float)
        df.loc[row, "rating"] = math.nan if kind == "rating_nan" else draw(st.sampled_from([math.inf, -math.inf]))
    elif kind == "ts_text":
        df["timestamp"] = df["timestamp"].astype(object)
        df.loc[row, "timestamp"] = "yesterday"
    elif kind == "missing_id":
        df["item"] = df["item"].astype(object)
        df.loc[row, draw(st.sampled_from(["user", "item"]))] = None
    elif kind == "dup_error":
        df = pd.concat([df, df.iloc[[row]]], ignore_index=True)
        kw["duplicates"] = "error"
    elif kind == "feat_dup":
        feat = pd.concat([feat, feat.iloc[[0]]], ignore_index=True)
        culprit = "uf.csv"
    elif kind == "feat_unknown":
        feat = pd.concat([feat, pd.DataFrame({"user": ["nobody"], "f": [1.0]})], ignore_index=True)
        culprit = "uf.csv"
    elif kind in ("feat_nan", "feat_inf"):
        feat.loc[draw(st.integers(0, len(feat) - 1)), "f"] = math.nan if kind == "feat_nan" else math.inf
        culprit = "uf.csv"
    elif kind == "feat_missing_row":
        feat = feat.iloc[1:]
        culprit = "uf.csv"
    elif kind == "feat_no_id_col":
        feat = feat.rename(columns={"user": "uid"})
        culprit = "uf.csv"
    path = folder / "t.csv"
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "header_only":
        path.write_text("user,item,rating,timestamp\n")
    elif kind == "wrong_sep_semi":
        df.to_csv(path, sep=";", index=False)
        kw["sep"] = ","
    elif kind == "wrong_sep_tab":
        df.to_csv(path, sep="\t", index=False)
        kw["sep"] = draw(st.sampled_from([",", ";"]))
    elif kind == "bad_encoding":
        df["user"] = df["user"].astype(str)
        df.loc[row, "user"] = "caf\xe9"
        path.write_bytes(df.to_csv(index=False).encode("latin-1"))
    elif kind == "ragged":
        text = df.to_csv(index=False).splitlines()
        text[row + 1] += ",99"
        path.write_text("\n".join(text) + "\n")
    else:
        df.to_csv(path, index=False)
    if kind.startswith("feat_"):
        if kind == "feat_empty":
            fpath.write_text("")
            culprit = "uf.csv"
        elif kind == "feat_bad_encoding":
            fpath.write_bytes(("user,f\ncaf\xe9,1\n").encode("latin-1"))
            culprit = "uf.csv"
        else:
            feat.to_csv(fpath, index=False)
        kw["user_features"] = fpath
    return path, kw, culprit


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rs=rows, kind=st.sampled_from(FILE_CORRUPTIONS), data=st.data())
def test_malformed_files_raise_data_error(rs, kind, data):
    with tempfile.TemporaryDirectory() as tmp:
        path, kw, culprit = _corrupt(kind, _table(rs), Path(tmp), data.draw)
        with pytest.raises(DataError) as err:
            load_table(path, **kw)
    assert culprit in str(err.value), str(err.value)


@pytest.mark.parametrize("kind", ["wrong_sep_semi", "bad_encoding", "rating_text", "empty_file", "ragged"])
def test_specific_messages(tmp_path, kind):
    rs = [("a", 1, 5, 10), ("b", 2, 3, 20), ("c", 2, 4, 30)]
    expected = {"wrong_sep_semi": "single column.*pass sep=';'", "bad_encoding": "encoding='latin-1'",
                "rating_text": r"column 'rating'.*row \d+ \(line \d+\)", "empty_file": "empty",
                "ragged": "line"}[kind]
    drawn = iter([1, "abc"])  # the row to corrupt, then the bad rating text
    path, kw, _ = _corrupt(kind, _table(rs), tmp_path, lambda strategy: next(drawn))
    with pytest.raises(DataError, match=expected):
        load_table(path, **kw)


DF_CORRUPTIONS = ["drop_user", "rating_text", "rating_nan", "rating_inf", "missing_id", "empty", "unhashable",
                  "dup_column", "feat_dup", "feat_unknown", "feat_nan", "feat_missing_row", "feat_not_df"]


@SETTINGS
@given(rs=rows, kind=st.sampled_from(DF_CORRUPTIONS), data=st.data())
def test_malformed_dataframes_raise_data_error(rs, kind, data):
    df = _table(rs)
    row = data.draw(st.integers(0, len(df) - 1))
    kw: dict = {"rating_col": "rating"}
    users = sorted(df.user.unique())
    feat = pd.DataFrame({"user": users, "f": np.ones(len(users))})
    if kind == "drop_user":
        df = df.drop(columns=["user"])
    elif kind == "rating_text":
        df["rating"] = df["rating"].astype(object)
        df.loc[row, "rating"] = data.draw(st.sampled_from(["five", "", "4 stars", None, [1]]))
    elif kind in ("rating_nan", "rating_inf"):
        df["rating"] = df["rating"].astype(float)
        df.loc[row, "rating"] = math.nan if kind == "rating_nan" else math.inf
    elif kind == "missing_id":
        df.loc[row, "user"] = None
    elif kind == "empty":
        df = df.iloc[:0]
    elif kind == "unhashable":
        df["item"] = df["item"].astype(object)
        df.at[row, "item"] = [1, 2]
    elif kind == "dup_column":
        df = pd.concat([df, df[["user"]]], axis=1)
    elif kind == "feat_dup":
        feat = pd.concat([feat, feat.iloc[[0]]], ignore_index=True)
    elif kind == "feat_unknown":
        feat = pd.concat([feat, pd.DataFrame({"user": ["nobody"], "f": [1.0]})], ignore_index=True)
    elif kind == "feat_nan":
        feat.loc[0, "f"] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    elif kind == "feat_missing_row":
        feat = feat.iloc[1:]
    elif kind == "feat_not_df":
        feat = feat.to_numpy()
    if kind.startswith("feat_"):
        kw["user_features"] = feat
    use_loader = data.draw(st.booleans())
    with pytest.raises(DataError):
        if use_loader and kind != "feat_not_df":
            load_table(df, **kw)
        else:
            Interactions.from_pandas(df, **kw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=string.ascii_letters + string.digits + ",;\t|\n .-\"'", max_size=120))
def test_arbitrary_text_never_crashes(text):
    """Any text file either loads into valid Interactions or raises DataError."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.csv"
        p.write_text(text)
        try:
            d = load_table(p)
        except DataError:
            return
    assert d.nnz >= 1 and d.user_items.shape == (len(d.users), len(d.items))


@settings(max_examples=20, deadline=None)
@given(blob=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(blob):
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("x.csv", "x.parquet"):
            p = Path(tmp) / name
            p.write_bytes(blob)
            try:
                load_table(p)
            except DataError:
                pass
