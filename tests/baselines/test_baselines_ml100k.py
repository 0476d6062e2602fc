"""Baselines on real MovieLens 100K: the issue's "must show" orderings (full ranking, NDCG@20)."""

from __future__ import annotations

import pytest

from recsys_coldstart.baselines import (
    ALS,
    BPR,
    ContentKNN,
    FeaturePopularity,
    ItemKNN,
    Popularity,
    RandomRecommender,
)
from recsys_coldstart.data import make_split
from recsys_coldstart.evaluate import evaluate, metric_value


@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    from recsys_coldstart.data.datasets import load_dataset

    return load_dataset("ml-100k", ml100k_dir)


def _ndcg(model, split, segment):
    return metric_value(evaluate(model.fit(split.train), split), "ndcg", 20, segment)


@pytest.fixture(scope="module")
def warm(ml100k):
    return make_split(ml100k, "warm", random_state=0)


@pytest.fixture(scope="module")
def warm_popularity(warm):
    return _ndcg(Popularity(), warm, "warm")


@pytest.mark.parametrize("make", [lambda: ALS(), lambda: BPR(), lambda: ItemKNN()], ids=["als", "bpr", "itemknn"])
def test_warm_models_beat_popularity(make, warm, warm_popularity):
    assert _ndcg(make(), warm, "warm") > warm_popularity + 0.03


@pytest.mark.parametrize("seed", [0, 1])
def test_feature_popularity_beats_popularity_on_cold_users(ml100k, seed):
    split = make_split(ml100k, "user-cold", random_state=seed, n_support=0)
    assert _ndcg(FeaturePopularity(), split, "cold-user") > _ndcg(Popularity(), split, "cold-user")


@pytest.mark.parametrize("seed", [0, 1])
def test_content_knn_beats_random_on_cold_items(ml100k, seed):
    split = make_split(ml100k, "item-cold", random_state=seed)
    assert _ndcg(ContentKNN(), split, "cold-item") > _ndcg(RandomRecommender(), split, "cold-item") + 0.05


def test_als_fold_in_not_worse_than_popularity_few_shot(ml100k):
    """Folded-in cold users (5 revealed items, pulled toward the mean user) rank at least as well
    as popularity, within noise."""
    split = make_split(ml100k, "user-cold", random_state=0, n_support=5)
    assert _ndcg(ALS(), split, "cold-user") > _ndcg(Popularity(), split, "cold-user") - 0.01
