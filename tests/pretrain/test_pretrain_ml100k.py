"""Real data: LightGCN beats Popularity on ml-100k warm NDCG@20."""

from __future__ import annotations

import pytest

from recsys_coldstart.baselines.popularity import Popularity
from recsys_coldstart.data import make_split
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.pretrain import LightGCN


@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    from recsys_coldstart.data.datasets import load_dataset

    return load_dataset("ml-100k", ml100k_dir)


@pytest.mark.slow
def test_lightgcn_beats_popularity_ml100k_warm(ml100k):
    split = make_split(ml100k, "warm", random_state=0)
    pop = metric_value(evaluate(Popularity().fit(split.train), split), "ndcg", 20, "warm")
    model = LightGCN(lr=1e-2, n_epochs=30, eval_every=5, patience=2).fit(split.train, val=split.val)
    ndcg = metric_value(evaluate(model, split), "ndcg", 20, "warm")
    assert ndcg > pop * 1.2, (ndcg, pop)

