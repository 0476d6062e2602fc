"""Interactions.from_pandas: construction and every validation error."""

import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_coldstart.data import Interactions, SideFeatures
from recsys_coldstart.exceptions import DataError


def _df():
    return pd.DataFrame({"user": ["a", "a", "b", "c", "c"], "item": [1, 2, 2, 3, 1],
                         "rating": [5, 2, 4, 4.5, 1], "timestamp": [10, 20, 30, 40, 50]})


def test_positives_threshold_and_all_ratings_kept():
    d = Interactions.from_pandas(_df(), rating_col="rating", timestamp_col="timestamp", threshold=4)
    assert d.shape == (3, 3)
    assert d.nnz == 3  # ratings 5, 4, 4.5
    assert d.ratings.nnz == 5
    u, i = d.users.to_idx(["c"])[0], d.items.to_idx([3])[0]
    assert d.ratings[u, i] == pytest.approx(4.5)
    assert d.timestamps[u, i] == 40
    # timestamps follow the positives' pattern
    assert np.array_equal(d.timestamps.indices, d.user_items.indices)


def test_implicit_every_row_positive():
    d = Interactions.from_pandas(_df()[["user", "item"]])
    assert d.nnz == 5 and d.ratings is None and d.timestamps is None
    back = d.to_pandas()
    assert set(zip(back.user, back.item, strict=True)) == set(zip(_df().user, _df().item, strict=True))


def test_timestamp_zero_kept():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": [0, 5]})
    d = Interactions.from_pandas(df, timestamp_col="t")
    assert sorted(d.timestamps.data.tolist()) == [0.0, 5.0]


def test_datetime_timestamps():
    df = pd.DataFrame({"user": [1, 2], "item": [1, 1], "t": pd.to_datetime(["1970-01-01 00:00:10", "2000-01-01 00:00:00"])})
    d = Interactions.from_pandas(df, timestamp_col="t")
    assert d.timestamps.data.min() == 10.0


@pytest.mark.parametrize("policy,expected", [("last", 3.0), ("first", 5.0), ("max", 5.0), ("sum", 11.0)])
def test_duplicates_policies(policy, expected, caplog):
    df = pd.DataFrame({"user": [1, 1, 1, 2], "item": [7, 7, 7, 7], "rating": [5.0, 3.0, 3.0, 1.0]})
    with caplog.at_level(logging.INFO):
        d = Interactions.from_pandas(df, rating_col="rating", duplicates=policy)
    assert d.ratings.nnz == 2
    assert d.ratings[d.users.to_idx([1])[0], 0] == pytest.approx(expected)
    assert "merged 2 duplicated" in caplog.text


def test_duplicates_last_uses_timestamps():
    df = pd.DataFrame({"user": [1, 1], "item": [7, 7], "rating": [5.0, 1.0], "t": [200, 100]})
    d = Interactions.from_pandas(df, rating_col="rating", timestamp_col="t", duplicates="last")
    assert d.ratings.data.tolist() == [5.0]  # the latest (t=200) rating wins


def test_duplicates_error():
    df = pd.DataFrame({"user": [1, 1], "item": [7, 7]})
    with pytest.raises(DataError, match="duplicated .*row 0"):
        Interactions.from_pandas(df, duplicates="error", source="x.csv")


def test_features_aligned_and_one_hot():
    uf = pd.DataFrame({"user": ["c", "a", "b"], "age": [30, 20, 40], "gender": ["F", "M", "F"]})
    itf = pd.DataFrame({"item": [3, 2, 1], "genre": ["x", "y", "x"]})
    d = Interactions.from_pandas(_df(), user_features=uf, item_features=itf)
    assert d.user_features.names == ("age", "gender=F", "gender=M")
    a = d.users.to_idx(["a"])[0]
    assert d.user_features.dense()[a].tolist() == [20, 0, 1]
    assert d.item_features.take(d.items.to_idx([2])).tolist() == [[0, 1]]


@pytest.mark.parametrize("kwargs,match", [
    ({"user_col": "u"}, r"missing column\(s\) \['u'\]"),
    ({"rating_col": "score"}, r"missing column\(s\) \['score'\]"),
])
def test_missing_columns(kwargs, match):
    with pytest.raises(DataError, match=match):
        Interactions.from_pandas(_df(), **kwargs)


def test_empty_table():
    with pytest.raises(DataError, match="empty"):
        Interactions.from_pandas(_df().iloc[:0])


def test_not_a_dataframe():
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        Interactions.from_pandas([[1, 2]])


def test_missing_ids():
    df = _df()
    df.loc[2, "item"] = None
    with pytest.raises(DataError, match="'item' has 1 missing id.*row 2"):
        Interactions.from_pandas(df, source="f.csv")


@pytest.mark.parametrize("bad", ["five", np.nan, np.inf])
def test_bad_ratings(bad):
    df = _df().astype({"rating": object})
    df.loc[3, "rating"] = bad
    with pytest.raises(DataError, match="f.csv: column 'rating' must be numeric and finite; row 3"):
        Interactions.from_pandas(df, rating_col="rating", source="f.csv")


def test_bad_timestamps():
    df = _df().astype({"timestamp": object})
    df.loc[1, "timestamp"] = "yesterday"
    with pytest.raises(DataError, match="'timestamp'.*row 1"):
        Interactions.from_pandas(df, timestamp_col="timestamp")


def test_feature_ids_matching_no_interaction():
    itf = pd.DataFrame({"item": [1, 2, 3, 99], "g": [0, 1, 0, 1]})
    with pytest.raises(DataError, match="match no interaction.*99"):
        Interactions.from_pandas(_df(), item_features=itf)


def test_feature_rows_missing():
    itf = pd.DataFrame({"item": [1, 2], "g": [0, 1]})
    with pytest.raises(DataError, match="no feature row.*3"):
        Interactions.from_pandas(_df(), item_features=itf)


def test_feature_duplicated_ids():
    itf = pd.DataFrame({"item": [1, 2, 3, 3], "g": [0, 1, 0, 1]})
    with pytest.raises(DataError, match="duplicated id"):
        Interactions.from_pandas(_df(), item_features=itf)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_feature_non_finite(bad):
    itf = pd.DataFrame({"item": [1, 2, 3], "g": [0.0, bad, 1.0]})
    with pytest.raises(DataError, match="NaN or infinite.*id 2"):
        Interactions.from_pandas(_df(), item_features=itf)


def test_feature_missing_categorical():
    uf = pd.DataFrame({"user": ["a", "b", "c"], "gender": ["F", None, "M"]})
    with pytest.raises(DataError, match="missing value for id 'b'"):
        Interactions.from_pandas(_df(), user_features=uf)


def test_direct_construction_checks():
    from recsys_coldstart.data import IdVocab

    m = sp.csr_matrix(np.eye(2, dtype=np.float32))
    with pytest.raises(DataError, match="vocabularies"):
        Interactions(user_items=m, users=IdVocab.range(3), items=IdVocab.range(2))
    with pytest.raises(DataError, match="rows"):
        Interactions(user_items=m, users=IdVocab.range(2), items=IdVocab.range(2),
                     item_features=SideFeatures(np.ones((3, 1))))
    with pytest.raises(DataError, match="NaN or infinite"):
        SideFeatures(np.array([[np.nan]]))
    with pytest.raises(DataError, match="sparsity pattern"):
        Interactions(user_items=m, users=IdVocab.range(2), items=IdVocab.range(2),
                     timestamps=sp.csr_matrix(np.ones((2, 2))))


def test_degrees_and_with_pairs(synthetic):
    d = synthetic
    assert d.user_degrees().sum() == d.nnz == d.item_degrees().sum()
    rows, cols, vals, ts = d.to_coo_arrays()
    half = d.with_pairs(rows[::2], cols[::2], vals[::2], ts[::2])
    assert half.nnz == len(rows[::2]) and half.users is d.users
    assert np.array_equal(half.timestamps.data, ts[::2])
