"""IdVocab: round trips, unknown ids, duplicates, ordering."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_coldstart.data import IdVocab
from recsys_coldstart.exceptions import DataError


def test_round_trip_strings():
    v = IdVocab(["b", "a", "c"], name="item")
    assert v.to_idx(["a", "c", "b"]).tolist() == [1, 2, 0]
    assert v.to_id([2, 0]).tolist() == ["c", "b"]
    assert len(v) == 3 and "a" in v and "z" not in v


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=50))
def test_round_trip_ints_property(values):
    v = IdVocab.from_values(values, name="user")
    idx = v.to_idx(values)
    assert np.array_equal(v.to_id(idx), np.asarray(values))
    assert len(v) == len(set(values))
    assert sorted(v.ids.tolist()) == v.ids.tolist()  # sorted by default


def test_first_seen_order_and_range():
    v = IdVocab.from_values([5, 3, 5, 1], sort=False)
    assert v.ids.tolist() == [5, 3, 1]
    r = IdVocab.range(4)
    assert r.to_idx([3, 0]).tolist() == [3, 0]
    assert r == IdVocab(np.arange(4))


def test_mixed_types_sort_by_string():
    v = IdVocab.from_values([2, "a", 1])
    assert set(v.ids.tolist()) == {1, 2, "a"}
    assert v.to_id(v.to_idx(["a"])).tolist() == ["a"]


def test_unknown_and_out_of_range():
    v = IdVocab(["x", "y"], name="user")
    with pytest.raises(DataError, match="unknown user id"):
        v.to_idx(["q"])
    assert v.to_idx(["q", "y"], missing="mask").tolist() == [-1, 1]
    with pytest.raises(DataError, match="out of range"):
        v.to_id([2])


def test_duplicates_rejected():
    with pytest.raises(DataError, match="duplicated"):
        IdVocab([1, 2, 1], name="item")
