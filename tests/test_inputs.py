"""Serving-time input checks (recsys_coldstart.inputs, applied by BaseRecommender to every model)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.baselines import FeaturePopularity, ItemKNN, Popularity
from recsys_coldstart.data import make_split
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.inputs import check_features, check_indices, check_k, check_observed


def test_check_indices():
    np.testing.assert_array_equal(check_indices(3, 5), [3])
    np.testing.assert_array_equal(check_indices([0, 4.0], 5), [0, 4])
    for bad, msg in [([-1], "-1 is out of range"), ([5], "5 is out of range"), ([1.7], "integer indices"),
                     ([True], "integer indices"), (["a"], "integer indices"), ([[1]], "1-d"),
                     ([float("nan")], "integer indices"), ([10 ** 12], "out of range")]:
        with pytest.raises(DataError, match=msg):
            check_indices(bad, 5)


@pytest.mark.parametrize("k", [0, -5, 2.5, True, "3", None])
def test_check_k(k):
    with pytest.raises(DataError, match="k must be an integer >= 1"):
        check_k(k)


def test_check_observed_and_features():
    with pytest.raises(DataError, match="3 columns; the model was fitted on 4 items"):
        check_observed(sp.csr_matrix((2, 3)), 4)
    with pytest.raises(DataError, match="NaN"):
        check_observed(sp.csr_matrix(np.array([[np.nan, 0, 0, 1.0]])), 4)
    with pytest.raises(DataError, match="3 rows for 2 entities"):
        check_features(np.zeros((3, 4)), 4, n_rows=2)
    with pytest.raises(DataError, match="5 columns; the model was fitted on 4 features"):
        check_features(np.zeros((2, 5)), 4, n_rows=2)
    with pytest.raises(DataError, match="NaN or infinite"):
        check_features(np.array([[np.inf, 0.0]]), 2, n_rows=1)
    with pytest.raises(DataError, match="NaN or infinite"):
        check_features(sp.csr_matrix(np.array([[np.nan, 1.0]])), 2, n_rows=1)


@pytest.fixture(scope="module")
def fitted(synthetic):
    split = make_split(synthetic, "user-cold", random_state=0, n_support=3)
    return split, [Popularity().fit(split.train), ItemKNN(n_neighbors=20).fit(split.train),
                   FeaturePopularity().fit(split.train)]


def test_models_refuse_bad_serving_inputs(fitted):
    split, models = fitted
    n_users, n_items = split.train.n_users, split.train.n_items
    d = split.train.user_features.n_features
    for m in models:
        assert (m.n_users_seen_, m.n_items_seen_, m.n_user_features_) == (n_users, n_items, d)
        with pytest.raises(DataError, match="user_idx -1 is out of range"):
            m.recommend([-1], k=5)
        with pytest.raises(DataError, match="integer indices"):
            m.recommend(np.array([1.7]), k=5)
        with pytest.raises(DataError, match="out of range"):
            m.score(np.array([10 ** 12]))
        with pytest.raises(DataError, match="k must be"):
            m.recommend([0], k=-5)
        with pytest.raises(DataError, match="columns; the model was fitted on"):
            m.score_new_users(sp.csr_matrix((2, n_items + 1)))
        with pytest.raises(DataError, match="user features has 3 rows for 2 entities"):
            m.score_new_users(sp.csr_matrix((2, n_items)), np.zeros((3, d), np.float32))
        with pytest.raises(DataError, match="fitted on .* features"):
            m.score_new_users(sp.csr_matrix((2, n_items)), np.zeros((2, d + 1), np.float32))
        with pytest.raises(DataError, match="NaN or infinite"):
            m.recommend_new_users(sp.csr_matrix((1, n_items)), np.full((1, d), np.nan, np.float32))
        ids, _ = m.recommend(0, k=5)  # a scalar id still answers for that user
        assert ids.shape == (5,)
