"""Ids are labels; awkward files are read or refused with one clear line (issue 13, defects 3 and 9).

Property tests write id columns as text (leading zeros, floats, values above 2**53, unicode,
spaces, "NA"-like words) and check that ``load_table`` keeps one id per distinct text and that
writing the ids back and reading them again gives the same texts. File-level tests cover
compressed files (with honest and lying suffixes), byte-order marks, a folder given as a file,
a truncated last line and ratings <= 0.
"""

import bz2
import gzip
import logging
import lzma
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_coldstart.data import Interactions, load_table
from recsys_coldstart.data.vocab import id_labels, parse_text_ids
from recsys_coldstart.exceptions import DataError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Printable text without control characters (a bare "\r" would end a CSV line).
_letters = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
id_texts = st.one_of(
    st.integers(-(10**6), 10**6).map(str),  # integer literals
    st.integers(0, 999).map(lambda n: "0" + str(n)),  # leading zeros: "007"
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),  # "2.5", "1e+300"
    st.integers(2**53 - 3, 2**70).map(str),  # beyond float precision, beyond int64
    st.sampled_from(["7", " 7", "7 ", "+7", "-0", "1_000", "NA", "null", "nan", "None", "#N/A", "été", "ユーザー"]),
    st.text(_letters, min_size=1, max_size=6),  # unicode, spaces, separators, quotes
).filter(lambda t: t.strip() != "")
# Without separators or quotes, the separator is sniffed; with them, it is given.
plain_texts = id_texts.filter(lambda t: not any(ch in t for ch in ",;|\t\"'"))


def _write_csv(users: list[str], items: list[int], path: Path) -> None:
    pd.DataFrame({"user": pd.Series(users, dtype=object), "item": items}).to_csv(path, index=False)


def _texts(ids: np.ndarray) -> list[str]:
    return [str(v) for v in ids]


def _check_labels(d: Interactions, users: list[str]) -> None:
    assert sorted(_texts(d.users.ids)) == sorted(set(users))  # one id per distinct text, texts kept
    assert d.users.ids.dtype == np.int64 or all(isinstance(v, str) for v in d.users.ids)


@SETTINGS
@given(users=st.lists(plain_texts, min_size=1, max_size=25), data=st.data())
def test_text_ids_are_labels_and_round_trip(users, data):
    items = [data.draw(st.integers(0, 5)) for _ in users]
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "t.csv"
        _write_csv(users, items, p)
        d = load_table(p)
        _check_labels(d, users)
        back = d.to_pandas()
        assert set(zip(_texts(back.user), back.item, strict=True)) == set(zip(users, items, strict=True))
        # what the split command does: write the ids back, read them again
        back[["user", "item"]].to_csv(Path(tmp) / "again.csv", index=False)
        again = load_table(Path(tmp) / "again.csv")
    assert _texts(again.users.ids) == _texts(d.users.ids)
    assert again.users.ids.dtype == d.users.ids.dtype


@SETTINGS
@given(users=st.lists(id_texts, min_size=1, max_size=25), fmt=st.sampled_from(["csv", "parquet", "df"]))
def test_any_text_ids_round_trip_given_sep(users, fmt):
    items = list(range(len(users)))
    df = pd.DataFrame({"user": pd.Series(users, dtype=object), "item": items})
    with tempfile.TemporaryDirectory() as tmp:
        if fmt == "df":
            d = load_table(df)
        elif fmt == "parquet":
            df.to_parquet(Path(tmp) / "t.parquet")
            d = load_table(Path(tmp) / "t.parquet")
        else:
            df.to_csv(Path(tmp) / "t.csv", index=False)
            d = load_table(Path(tmp) / "t.csv", sep=",")
    if fmt == "csv":
        _check_labels(d, users)
    else:  # typed strings stay strings, exactly
        assert sorted(d.users.ids.tolist()) == sorted(set(users))
    back = d.to_pandas()
    assert sorted(zip(_texts(back.user), back.item, strict=True)) == sorted(zip(users, items, strict=True))


@SETTINGS
@given(values=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20))
def test_integer_literals_stay_exact_int64(values):
    got = parse_text_ids(pd.Series([str(v) for v in values], dtype=object))
    assert got.dtype == np.int64 and got.tolist() == values


def test_ids_issue_examples(tmp_path):
    # 007 / 7 merged, one 2.5 turned the column to float, and 61 ids above 2**53 loaded as 32 users
    p = tmp_path / "t.csv"
    p.write_text("user,item\n007,1\n7,1\n2.5,2\n")
    d = load_table(p)
    assert d.n_users == 3 and sorted(d.users.ids.tolist()) == ["007", "2.5", "7"]
    big = [str(2**60 + k) for k in range(61)]
    p.write_text("user,item\n" + "".join(f"{u},1\n" for u in big))
    d = load_table(p)
    assert d.n_users == 61 and d.users.ids.dtype == np.int64 and _texts(d.users.ids) == big
    p.write_text("user,item\n" + "".join(f"{u},1\n" for u in big + ["x"]))
    assert _texts(load_table(p).users.ids) == sorted(big + ["x"])


def test_plain_integer_ids_keep_int64(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("user,item\n1,10\n2,-3\n0,10\n")
    d = load_table(p)
    assert d.users.ids.dtype == np.int64 and d.users.ids.tolist() == [0, 1, 2]
    assert d.items.ids.tolist() == [-3, 10]


def test_whitespace_is_part_of_the_id_and_warned(tmp_path, caplog):
    p = tmp_path / "t.csv"
    p.write_text("user, item\n7, a\n 7, a\n7 ,b\n")
    with caplog.at_level(logging.WARNING):
        d = load_table(p)
    assert sorted(d.users.ids.tolist()) == [" 7", "7", "7 "]  # never merged
    assert d.items.ids.tolist() == [" a", "b"]  # header names lose their spaces, ids keep them
    assert "leading or trailing spaces, kept as part of the id" in caplog.text


def test_feature_ids_meet_interaction_ids_by_the_same_rule(tmp_path):
    (tmp_path / "t.csv").write_text("user,item\n7,1\n8,1\n")
    (tmp_path / "uf.csv").write_text("user,f\n007,1\n8,2\n")
    with pytest.raises(DataError, match=r"uf\.csv: 1 id\(s\) in the feature table match no interaction, e\.g\. \['007'\]"):
        load_table(tmp_path / "t.csv", user_features=tmp_path / "uf.csv")
    (tmp_path / "s.csv").write_text("user,item\n 7,1\n8,1\n")
    (tmp_path / "uf.csv").write_text("user,f\n7,1\n8,2\n")
    with pytest.raises(DataError, match="once surrounding spaces are removed"):
        load_table(tmp_path / "s.csv", user_features=tmp_path / "uf.csv")


def test_typed_ids(caplog):
    assert id_labels(pd.Series([3.0, 7.0])).tolist() == [3, 7]
    with caplog.at_level(logging.WARNING):
        assert id_labels(pd.Series([2.5, 7.0])).tolist() == ["2.5", "7"]
    assert "float ids" in caplog.text
    assert id_labels(pd.Series([2**64 - 1], dtype=np.uint64)).tolist() == [str(2**64 - 1)]
    assert id_labels(pd.Series(["007", "7"], dtype=object)).tolist() == ["007", "7"]
    with pytest.raises(DataError, match=r"distinct ids 7 and '7'"):
        id_labels(pd.Series([7, "7"], dtype=object), column="user", source="x")
    with pytest.raises(DataError, match="empty id"):
        Interactions.from_pandas(pd.DataFrame({"user": ["a", " "], "item": [1, 2]}))
    d = Interactions.from_pandas(pd.DataFrame({"user": [7, "u"], "item": [1, 2]}))
    assert sorted(d.users.ids.tolist()) == ["7", "u"]


# ---------------------------------------------------------------- awkward files
CONTENT = b"user,item,rating\n007,a,5\n7,b,4\n"


@pytest.mark.parametrize("name,pack", [
    ("t.csv.gz", gzip.compress), ("t.csv", gzip.compress), ("t.gz", lambda b: b), ("t.csv.bz2", bz2.compress),
    ("t.txt", lzma.compress), ("t.tsv.gz", lambda b: gzip.compress(b.replace(b",", b"\t"))),
])
def test_compressed_files_are_read_whatever_the_suffix(tmp_path, name, pack):
    p = tmp_path / name
    p.write_bytes(pack(CONTENT))
    d = load_table(p, rating_col="rating")
    assert d.n_users == 2 and sorted(d.users.ids.tolist()) == ["007", "7"] and d.ratings.nnz == 2
    assert d.name == "t"


def test_cut_off_gzip_is_one_line(tmp_path):
    p = tmp_path / "t.csv.gz"
    p.write_bytes(gzip.compress(CONTENT * 50)[:40])
    with pytest.raises(DataError, match=r"t\.csv\.gz: cannot read the gzip file"):
        load_table(p)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_byte_order_mark(tmp_path, encoding):
    p = tmp_path / "t.csv"
    p.write_bytes("user,item\nété,1\n7,2\n".encode(encoding))
    d = load_table(p)
    assert sorted(d.users.ids.tolist()) == ["7", "été"]


def test_parquet_found_by_its_magic_bytes(tmp_path):
    pd.DataFrame({"user": ["007", "7"], "item": [1, 2]}).to_parquet(tmp_path / "t.csv")
    assert sorted(load_table(tmp_path / "t.csv").users.ids.tolist()) == ["007", "7"]


def test_folder_given_as_a_file(tmp_path):
    (tmp_path / "t.csv").write_bytes(CONTENT)
    with pytest.raises(DataError, match=r"is a folder, not a file \(give the interaction table"):
        load_table(tmp_path)
    with pytest.raises(DataError, match=r"is a folder, not a file \(give the user-feature table"):
        load_table(tmp_path / "t.csv", user_features=tmp_path)


@SETTINGS
@given(rows=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(1, 5)), min_size=1, max_size=20),
       keep=st.integers(1, 2), newline=st.booleans())
def test_truncated_last_line(rows, keep, newline):
    lines = ["user,item,rating"] + [f"{u},{i},{r}" for u, i, r in rows]
    cut = ",".join(lines[-1].split(",")[:keep])
    text = "\n".join(lines + [cut]) + ("\n" if newline else "")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "t.csv"
        p.write_text(text)
        with pytest.raises(DataError) as err:
            load_table(p, rating_col="rating")
    msg = str(err.value)
    assert msg.startswith(str(p)) and f"line {len(lines) + 1} (the last) has {keep} of 3 fields" in msg
    assert "truncated" in msg and "\n" not in msg


@SETTINGS
@given(ratings=st.lists(st.integers(-3, 5), min_size=2, max_size=20), thr=st.sampled_from([None, 1, 4]))
def test_ratings_at_or_below_zero(ratings, thr):
    lines = ["user,item,rating"] + [f"u{k},{k % 3},{r}" for k, r in enumerate(ratings)]
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "t.csv"
        p.write_text("\n".join(lines) + "\n")
        bad = [k for k, r in enumerate(ratings) if r <= 0]
        if thr is None and bad:
            with pytest.raises(DataError) as err:
                load_table(p, rating_col="rating")
            assert f"column 'rating' row {bad[0]} (line {bad[0] + 2})" in str(err.value)
            assert "--threshold" in str(err.value) and str(p) in str(err.value)
            return
        d = load_table(p, rating_col="rating", threshold=thr)
    r = np.asarray(ratings, float)
    assert d.nnz == int((r >= (thr or 0)).sum())
    assert d.ratings.nnz == int((r != 0).sum())  # a zero is "not rated" in a sparse matrix, and left out
    assert (d.ratings.data != 0).all()


def test_zero_rating_warning_says_what_happens(tmp_path, caplog):
    p = tmp_path / "t.csv"
    p.write_text("user,item,rating\na,1,5\nb,1,0\nc,2,-1\n")
    with caplog.at_level(logging.WARNING):
        d = load_table(p, rating_col="rating", threshold=4)
    assert "1 row(s) have rating 0" in caplog.text and "not as dislikes" in caplog.text
    assert d.nnz == 1 and d.ratings.nnz == 2  # the -1 stays as a dislike
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        d = load_table(p, rating_col="rating", threshold=-5)
    assert "still count as positives" in caplog.text and d.nnz == 3


@settings(max_examples=30, deadline=None)
@given(magic=st.sampled_from([b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04", b"\x28\xb5\x2f\xfd", b"PAR1",
                              b"\xef\xbb\xbf", b"\xff\xfe"]), blob=st.binary(max_size=200))
def test_garbage_behind_magic_bytes_is_a_data_error(magic, blob):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.csv"
        p.write_bytes(magic + blob)
        try:
            load_table(p)
        except DataError as e:
            assert "x.csv" in str(e) and "\n" not in str(e)
