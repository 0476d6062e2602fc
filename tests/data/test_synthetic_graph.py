"""The big synthetic graph generator: sizes, power laws, planted groups, determinism, known answer."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.data import make_split
from recsys_coldstart.data.datasets.synthetic_graph import make_synthetic_graph


def test_sizes_tails_and_planted_groups():
    data, uc, ic = make_synthetic_graph(200_000, n_clusters=8, random_state=1, return_clusters=True)
    ui = data.user_items
    assert (data.n_users, data.n_items) == (4000, 2000)
    assert 0.95 * 200_000 <= ui.nnz <= 200_000
    assert ui.data.min() == 1.0 and ui.max() == 1.0
    rows, cols = ui.nonzero()
    in_group = (uc[rows] == ic[cols]).mean()
    assert 0.5 < in_group < 0.9  # p_in_cluster 0.7 (+ 1/8 by chance), less what saturated users lose
    deg = np.sort(np.asarray(ui.sum(axis=0)).ravel())[::-1]
    assert deg[: len(deg) // 100].sum() > 5 * 0.01 * deg.sum()  # top 1% of items: > 5x their share


def test_deterministic_under_a_seed():
    a = make_synthetic_graph(20_000, random_state=3).user_items
    b = make_synthetic_graph(20_000, random_state=3).user_items
    c = make_synthetic_graph(20_000, random_state=4).user_items
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0


@pytest.mark.parametrize("bad", [{"n_interactions": 0}, {"p_in_cluster": 1.5}, {"user_tail": 0}])
def test_refuses_bad_arguments(bad):
    kwargs = {"n_interactions": 1000, **bad}
    with pytest.raises(ValueError):
        make_synthetic_graph(**kwargs)


def test_known_answer_a_collaborative_model_beats_popularity():
    from recsys_coldstart.baselines import ItemKNN, Popularity
    from recsys_coldstart.evaluate import evaluate, metric_value

    split = make_split(make_synthetic_graph(60_000, n_clusters=8, random_state=0), "warm", random_state=0)
    knn = metric_value(evaluate(ItemKNN(n_neighbors=50).fit(split.train), split), "ndcg", 20, "warm")
    pop = metric_value(evaluate(Popularity().fit(split.train), split), "ndcg", 20, "warm")
    assert knn > 1.2 * pop
