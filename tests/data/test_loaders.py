"""Dataset loaders: registry, data folder resolution, MovieLens, LightGCN text, CiteULike-a.

Real-data tests use the ``data_dir`` fixture (skip locally when the data is absent, fail under
CI); ml-1m and amazon-book, which are not staged, are tested on small files written here in
their exact formats.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_coldstart.data import check_no_leakage
from recsys_coldstart.data.datasets import (
    DATA_ENV,
    DATASETS,
    dataset_status,
    load_dataset,
    load_predefined_split,
    resolve_data_dir,
)
from recsys_coldstart.exceptions import DataError


# ---------------------------------------------------------------- registry and folders
def test_registry():
    assert set(DATASETS) == {"ml-100k", "ml-1m", "gowalla", "yelp2018", "amazon-book", "citeulike-a"}
    assert DATASETS["ml-100k"].has_user_features and DATASETS["ml-100k"].has_item_features
    assert DATASETS["citeulike-a"].predefined_splits == ("item-cold", "warm")


def test_unknown_name_lists_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'ml-10m'.*ml-100k"):
        load_dataset("ml-10m", tmp_path)


def test_missing_file_named(tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t0\n")
    with pytest.raises(DataError, match=r"ml-100k/u\.user"):
        load_dataset("ml-100k", tmp_path)


def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataError, match="--data-dir.*" + DATA_ENV):
        resolve_data_dir()
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir(tmp_path / "..") == tmp_path / ".."
    with pytest.raises(DataError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")


def test_dataset_status(tmp_path):
    _write_lightgcn(tmp_path / "gowalla", [[0, 1, 2]], [[0, 3]])
    status = {name: (found, folder) for name, found, folder in dataset_status(tmp_path)}
    assert set(status) == set(DATASETS)
    assert status["gowalla"] == (True, tmp_path / "gowalla")
    assert status["ml-100k"][0] is False


def test_folder_itself_accepted(tmp_path):
    _write_lightgcn(tmp_path, [[0, 1], [1, 0]], [[0, 0]])
    assert load_dataset("gowalla", tmp_path).nnz == 3


def test_no_predefined_split_is_none(tmp_path):
    assert load_predefined_split("ml-100k", "warm", tmp_path) is None
    assert load_predefined_split("gowalla", "item-cold", tmp_path) is None
    with pytest.raises(ValueError, match="unknown split kind"):
        load_predefined_split("gowalla", "cold", tmp_path)


# ---------------------------------------------------------------- MovieLens 100K (real)
def test_ml100k_counts_and_features(ml100k_dir):
    d = load_dataset("ml-100k", ml100k_dir)
    assert d.shape == (943, 1682)
    assert d.ratings.nnz == 100_000
    assert d.nnz == 55_375  # ratings >= 4: 34,174 + 21,201 (data README)
    counts = np.bincount(d.ratings.data.astype(int), minlength=6)[1:]
    assert counts.tolist() == [6110, 11370, 27145, 34174, 21201]
    assert d.timestamps is not None and d.timestamps.nnz == d.nnz
    assert d.users.to_idx([1, 943]).tolist() == [0, 942]
    uf, itf = d.user_features, d.item_features
    assert uf.values.shape == (943, 7 + 2 + 21)  # age buckets, gender, occupations
    assert not np.isnan(uf.dense()).any() and not np.isnan(itf.dense()).any()
    assert np.all(uf.dense().sum(1) == 3)  # one age bucket, one gender, one occupation each
    genre = [n for n in itf.names if n.startswith("genre=")]
    decade = [n for n in itf.names if n.startswith("decade=")]
    assert len(genre) == 19 and itf.n_features == 19 + len(decade)
    assert np.all(itf.take(np.arange(1682))[:, 19:].sum(1) == 1)  # one decade each
    toy = d.items.to_idx([1])[0]  # Toy Story: Animation, Children's, Comedy; 1995
    row = dict(zip(itf.names, itf.dense()[toy], strict=True))
    assert row["genre=Animation"] == row["genre=Comedy"] == row["decade=1990s"] == 1
    assert row["genre=Action"] == 0
    u1 = dict(zip(uf.names, uf.dense()[0], strict=True))  # user 1: 24, M, technician
    assert u1["age=18-24"] == u1["gender=M"] == u1["occupation=technician"] == 1


def test_ml100k_threshold(ml100k_dir):
    d = load_dataset("ml-100k", ml100k_dir, threshold=5)
    assert d.nnz == 21_201 and d.ratings.nnz == 100_000


# ---------------------------------------------------------------- MovieLens formats on small files
def _write_ml100k(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t10\t5\t100\n1\t20\t2\t101\n2\t10\t4\t102\n2\t20\t4\t103\n")
    (folder / "u.user").write_text("1|17|F|student|12345\n2|60|M|other|55555\n")
    g = ["0"] * 19
    g1, g2 = g.copy(), g.copy()
    g1[1] = "1"
    g2[8] = g2[14] = "1"
    (folder / "u.item").write_bytes(
        ("10|Caf\xe9 (1985)|01-Jan-1985||http://x|" + "|".join(g1) + "\n"
         "20|Old (1931)|||http://y|" + "|".join(g2) + "\n").encode("latin-1"))


def test_ml100k_small_files(tmp_path):
    _write_ml100k(tmp_path / "ml-100k")
    d = load_dataset("ml-100k", tmp_path)
    assert d.shape == (2, 2) and d.nnz == 3 and d.ratings.nnz == 4
    feats = dict(zip(d.user_features.names, d.user_features.dense()[0], strict=True))
    assert feats["age=Under 18"] == 1 and feats["gender=F"] == 1
    it = {n: d.item_features.dense()[:, j].tolist() for j, n in enumerate(d.item_features.names)}
    assert it["decade=1980s"] == [1, 0] and it["decade=unknown"] == [0, 1]  # missing date
    assert it["genre=Drama"] == [0, 1] and it["genre=Action"] == [1, 0]


def test_ml100k_malformed_line_named(tmp_path):
    _write_ml100k(tmp_path / "ml-100k")
    with open(tmp_path / "ml-100k" / "u.data", "a") as fh:
        fh.write("3\tten\t4\t104\n")
    with pytest.raises(DataError, match=r"u\.data.*'item'.*line 5"):
        load_dataset("ml-100k", tmp_path)


def _write_ml1m(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
                                        "2::3408::4::978300275\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (folder / "movies.dat").write_bytes(
        ("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
         "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
         "3408::Erin Brockovich (2000)::Drama\n"
         "9999::Unrated Caf\xe9 (1950)::Comedy\n").encode("latin-1"))


def test_ml1m_small_files(tmp_path, caplog):
    _write_ml1m(tmp_path / "ml-1m")
    with caplog.at_level(logging.INFO):
        d = load_dataset("ml-1m", tmp_path)
    assert "1 item(s) have no rating" in caplog.text  # movie 9999 left out, and said so
    assert d.shape == (2, 3) and d.ratings.nnz == 4 and d.nnz == 3
    uf = dict(zip(d.user_features.names, d.user_features.dense()[d.users.to_idx([2])[0]], strict=True))
    assert uf["age=56+"] == 1 and uf["gender=M"] == 1 and uf["occupation=self-employed"] == 1
    itf = d.item_features
    assert sum(n.startswith("genre=") for n in itf.names) == 18
    peach = dict(zip(itf.names, itf.dense()[d.items.to_idx([661])[0]], strict=True))
    assert peach["genre=Animation"] == peach["genre=Musical"] == peach["decade=1990s"] == 1
    assert peach["genre=Drama"] == 0
    ts = d.timestamps[d.users.to_idx([1])[0], d.items.to_idx([1193])[0]]
    assert ts == 978300760


def test_ml1m_bad_age_code(tmp_path):
    _write_ml1m(tmp_path / "ml-1m")
    (tmp_path / "ml-1m" / "users.dat").write_text("1::F::1::10::48067\n2::M::57::16::70072\n")
    with pytest.raises(DataError, match=r"users\.dat: line 2: unknown age code 57"):
        load_dataset("ml-1m", tmp_path)


# ---------------------------------------------------------------- LightGCN text format
def _write_lightgcn(folder: Path, train: list[list[int]], test: list[list[int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("".join(" ".join(map(str, ln)) + "\n" for ln in train))
    (folder / "test.txt").write_text("".join(" ".join(map(str, ln)) + "\n" for ln in test))


@pytest.mark.parametrize("name", ["gowalla", "yelp2018", "amazon-book"])
def test_lightgcn_small_files(tmp_path, name):
    train = [[0, 5, 1, 2], [1, 0, 3, 4, 2], [2, 6, 1]]
    test = [[0, 3], [1, 6], [2, 0]]
    _write_lightgcn(tmp_path / name, train, test)
    d = load_dataset(name, tmp_path)
    assert d.name == name and d.shape == (3, 7) and d.nnz == 12
    assert d.item_features is None and d.user_features is None
    assert d.user_items[0].indices.tolist() == [1, 2, 3, 5]
    s = load_predefined_split(name, "warm", tmp_path, random_state=0)
    check_no_leakage(s)
    assert {(u, i) for u, i in zip(*s.test.user_items.nonzero(), strict=True)} == {(0, 3), (1, 6), (2, 0)}
    assert s.train.nnz + s.val.nnz == 9
    assert np.all(s.train.user_degrees() >= 1)


def test_lightgcn_val_is_ten_percent_per_user(tmp_path):
    rng = np.random.default_rng(0)
    train = [[u, *rng.choice(200, 40, replace=False).tolist()] for u in range(20)]
    test = [[u, *rng.choice(np.arange(200, 210), 3, replace=False).tolist()] for u in range(20)]
    _write_lightgcn(tmp_path / "gowalla", train, test)
    a = load_predefined_split("gowalla", "warm", tmp_path, random_state=0)
    b = load_predefined_split("gowalla", "warm", tmp_path, random_state=0)
    c = load_predefined_split("gowalla", "warm", tmp_path, random_state=1)
    assert np.all(a.val.user_degrees() == 4)  # 10% of 40
    assert (a.val.user_items != b.val.user_items).nnz == 0
    assert (a.val.user_items != c.val.user_items).nnz > 0


def test_lightgcn_overlap_and_repeats_logged(tmp_path, caplog):
    _write_lightgcn(tmp_path / "gowalla", [[0, 1, 1, 2]], [[0, 2, 3]])
    with caplog.at_level(logging.INFO):
        s = load_predefined_split("gowalla", "warm", tmp_path)
    assert "1 repeated" in caplog.text and "1 test.txt pair(s) also occur in train.txt" in caplog.text
    check_no_leakage(s)
    assert s.source.nnz == 3


def test_lightgcn_bad_token_named(tmp_path):
    _write_lightgcn(tmp_path / "gowalla", [[0, 1], [1, 2]], [[0, 2]])
    with open(tmp_path / "gowalla" / "train.txt", "a") as fh:
        fh.write("2 7 x9\n")
    with pytest.raises(DataError, match=r"train\.txt: line 3: token 'x9'"):
        load_dataset("gowalla", tmp_path)


def test_gowalla_real(need_dataset):
    data_dir = need_dataset("gowalla")
    d = load_dataset("gowalla", data_dir)
    assert d.shape == (29_858, 40_981) and d.nnz == 1_027_370
    s = load_predefined_split("gowalla", "warm", data_dir, random_state=0)
    assert s.test.nnz == 217_242 and s.train.nnz + s.val.nnz == 810_128
    check_no_leakage(s)


@pytest.mark.slow
def test_yelp2018_real(need_dataset):
    data_dir = need_dataset("yelp2018")
    d = load_dataset("yelp2018", data_dir)
    assert d.shape == (31_668, 38_048) and d.nnz == 1_561_406
    s = load_predefined_split("yelp2018", "warm", data_dir)
    assert s.test.nnz == 324_147 and s.train.nnz + s.val.nnz == 1_237_259
    check_no_leakage(s)


# ---------------------------------------------------------------- CiteULike-a
def test_citeulike_counts_and_tags(need_dataset):
    data_dir = need_dataset("citeulike-a")
    d = load_dataset("citeulike-a", data_dir)
    assert d.shape == (5_551, 16_980) and d.nnz == 204_986
    f = d.item_features
    assert f.is_sparse and f.values.shape == (16_980, 46_391) and f.names[0] == "tag=ucsc-browser"
    norms = np.sqrt(np.asarray(f.values.multiply(f.values).sum(1)).ravel())
    tagged = np.diff(f.values.indptr) > 0
    assert np.allclose(norms[tagged], 1.0, atol=1e-5) and np.all(norms[~tagged] == 0)
    assert np.isfinite(f.values.data).all()


def test_citeulike_cold_split(need_dataset):
    data_dir = need_dataset("citeulike-a")
    s = load_predefined_split("citeulike-a", "item-cold", data_dir, random_state=0)
    check_no_leakage(s)
    assert s.kind == "item-cold" and len(s.test_items) == 3_396 and s.test.nnz == 40_776
    assert s.train.user_items[:, s.test_items].nnz == 0
    assert s.train.nnz + s.val.nnz == 164_210
    assert len(np.intersect1d(s.val_items, s.test_items)) == 0
    assert s.train.user_items[:, s.val_items].nnz == 0 and np.isin(s.val.user_items.indices, s.val_items).all()
    assert s.train.item_features.n_rows == 16_980
    s1 = load_predefined_split("citeulike-a", "item-cold", data_dir, random_state=1)
    assert np.array_equal(s1.test_items, s.test_items) and not np.array_equal(s1.val_items, s.val_items)


def test_citeulike_warm_split(need_dataset):
    data_dir = need_dataset("citeulike-a")
    s = load_predefined_split("citeulike-a", "warm", data_dir)
    check_no_leakage(s)
    assert s.test.nnz == 33_998 and s.train.nnz + s.val.nnz == 170_988


def _write_citeulike(folder: Path) -> None:
    (folder / "dropoutnet_split" / "cold").mkdir(parents=True)
    (folder / "users.dat").write_text("2 0 1\n3 1 2 3\n1 3\n")
    (folder / "item-tag.dat").write_text("2 0 1\n1 1\n0\n1 2\n")
    (folder / "tags.dat").write_text("graphs\nnets\nbio\n")
    cold = folder / "dropoutnet_split" / "cold"
    # 1-based: item 3 (0-based 2) is the cold test item
    (cold / "train.csv").write_text("1,1,1\n1,2,1\n2,2,1\n2,4,1\n3,4,1\n")
    (cold / "test.csv").write_text("2,3,1\n")
    (cold / "test_item_ids.csv").write_text("3\n")


def test_citeulike_small_files(tmp_path):
    _write_citeulike(tmp_path / "citeulike-a")
    d = load_dataset("citeulike-a", tmp_path)
    assert d.shape == (3, 4) and d.nnz == 6
    assert d.item_features.names == ("tag=graphs", "tag=nets", "tag=bio")
    dense = d.item_features.dense()
    assert dense[2].sum() == 0 and dense[0, 0] > dense[0, 1] > 0  # "nets" is more common: lower idf
    s = load_predefined_split("citeulike-a", "item-cold", tmp_path)
    check_no_leakage(s)
    assert s.test_items.tolist() == [2] and s.test.nnz == 1


def test_citeulike_split_not_matching_users_dat(tmp_path):
    _write_citeulike(tmp_path / "citeulike-a")
    (tmp_path / "citeulike-a" / "dropoutnet_split" / "cold" / "test.csv").write_text("2,3,1\n3,1,1\n")
    with pytest.raises(DataError, match="1 pair.*not in users.dat"):
        load_predefined_split("citeulike-a", "item-cold", tmp_path)


def test_citeulike_count_mismatch_named(tmp_path):
    _write_citeulike(tmp_path / "citeulike-a")
    (tmp_path / "citeulike-a" / "users.dat").write_text("2 0 1\n3 1 2\n1 3\n")
    with pytest.raises(DataError, match=r"users\.dat: line 2 declares 3 values but holds 2"):
        load_dataset("citeulike-a", tmp_path)


# ---------------------------------------------------------------- any table
def test_load_table_formats(tmp_path):
    from recsys_coldstart.data import load_table

    (tmp_path / "ws.txt").write_text("user item rating\nu1  10 5\nu2 11 2\nu1 11 4\n")
    d = load_table(tmp_path / "ws.txt", rating_col="rating", threshold=4)
    assert d.name == "ws" and d.shape == (2, 2) and d.nnz == 2 and d.ratings.nnz == 3
    df = pd.DataFrame({"uid": ["a", "b", "a"], "iid": [1, 2, 2],
                       "when": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])})
    df.to_parquet(tmp_path / "x.parquet")
    feats = pd.DataFrame({"iid": [1, 2], "genre": ["x", "y"], "year": [1990.0, 2000.0]})
    feats.to_csv(tmp_path / "items.tsv", sep="\t", index=False)
    d = load_table(tmp_path / "x.parquet", user_col="uid", item_col="iid", timestamp_col="when",
                   item_features=tmp_path / "items.tsv")
    assert d.item_features.names == ("genre=x", "genre=y", "year")
    assert d.timestamps.data.min() == pd.Timestamp("2020-01-01").timestamp()


def test_load_table_feature_ids_of_another_dtype(tmp_path):
    from recsys_coldstart.data import load_table

    (tmp_path / "t.csv").write_text("user,item\n1,7\n2,8\n")
    pd.DataFrame({"item": ["7", "8"], "f": [0.5, 1.5]}).to_parquet(tmp_path / "f.parquet")
    d = load_table(tmp_path / "t.csv", item_features=tmp_path / "f.parquet")
    assert d.item_features.take(d.items.to_idx([8])).tolist() == [[1.5]]


def test_load_table_line_numbers_and_file_names(tmp_path):
    from recsys_coldstart.data import load_table

    (tmp_path / "t.csv").write_text("user,item,rating\n1,7,5\n2,8,4\n3,9,\n")
    with pytest.raises(DataError, match=r"t\.csv: column 'rating'.*row 2 \(line 4\)"):
        load_table(tmp_path / "t.csv", rating_col="rating")
    (tmp_path / "t.csv").write_text("user,item\n1,7\n2,8\n")
    (tmp_path / "uf.csv").write_text("user,age\n1,20\n2,30\n5,40\n")
    with pytest.raises(DataError, match=r"uf\.csv: 1 id\(s\) in the feature table match no interaction, e\.g\. \[5\]"):
        load_table(tmp_path / "t.csv", user_features=tmp_path / "uf.csv")
    with pytest.raises(DataError, match="needs rating_col"):
        load_table(tmp_path / "t.csv", threshold=4)
