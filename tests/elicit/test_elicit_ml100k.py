"""Elicitation on the real MovieLens-100K (skips without the data; fails under CI=true)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.data.splits import user_cold_split
from recsys_coldstart.elicit import ItemSpace, LinUCBPolicy, ThompsonPolicy, replay


@pytest.fixture(scope="module")
def ml100k_cold(ml100k_dir):
    from recsys_coldstart.data.datasets import load_dataset

    data = load_dataset("ml-100k", ml100k_dir)
    return user_cold_split(data, n_support=0, random_state=0)


@pytest.fixture(scope="module")
def ml100k_als(ml100k_cold):
    from recsys_coldstart.baselines.implicit_mf import ALS

    return ALS(random_state=0).fit(ml100k_cold.train)


def _ndcg(df, budget):
    return float(df[(df.metric == "ndcg") & (df.k == 10) & (df.budget == budget)].value.item())


def test_questions_beat_no_questions_on_ml100k(ml100k_cold, ml100k_als):
    split, model = ml100k_cold, ml100k_als
    space = ItemSpace.from_model(model, split.train)
    # warm-only statistics: the known probability of an item is at most 1 and some items are unknown to all
    assert space.known_prob.max() <= 1 and space.known_prob.min() == 0
    curves = {p.name: replay(p, model, split, budget=5, space=space, random_state=0)
              for p in (LinUCBPolicy(), ThompsonPolicy())}
    b0 = _ndcg(curves["linucb"], 0)
    best5 = max(_ndcg(df, 5) for df in curves.values())
    assert best5 > b0 * 1.03, (b0, best5)
    # the answers come from real ratings: some questions are answered like / dislike
    known = curves["linucb"][(curves["linucb"].metric == "known_rate") & (curves["linucb"].budget == 5)].value.item()
    assert 0.1 < known <= 1.0


def test_budget_zero_is_near_the_feature_popularity_floor(ml100k_cold, ml100k_als):
    from recsys_coldstart.cli.elicit import feature_popularity_reference

    split, model = ml100k_cold, ml100k_als
    prior = replay(LinUCBPolicy(), model, split, budget=0)
    ref = feature_popularity_reference(split, 0)
    assert ref is not None
    fp = float(ref[(ref.metric == "ndcg") & (ref.k == 10)].value.item())
    assert np.isclose(_ndcg(prior, 0), fp, rtol=0.15), (_ndcg(prior, 0), fp)
