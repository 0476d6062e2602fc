"""EASE (Steck, WWW 2019): known answer of the closed form, new users, memory refusal, real data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.baselines.ease import EASE, EASEConfig, ease_memory_gb, ease_weights
from recsys_coldstart.data import make_split
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.exceptions import DataError


def _column_by_column(x: np.ndarray, reg: float) -> np.ndarray:
    """The constrained ridge problem solved directly: for every item j, regress column j on the
    other columns with penalty ``reg`` (``B_jj = 0``)."""
    n = x.shape[1]
    b = np.zeros((n, n))
    for j in range(n):
        others = np.delete(np.arange(n), j)
        a = x[:, others]
        b[others, j] = np.linalg.solve(a.T @ a + reg * np.eye(n - 1), a.T @ x[:, j])
    return b


def test_closed_form_equals_the_constrained_least_squares_solution():
    rng = np.random.default_rng(0)
    x = (rng.random((60, 12)) < 0.3).astype(np.float64)
    got = ease_weights(sp.csr_matrix(x), reg=5.0)
    np.testing.assert_allclose(got, _column_by_column(x, 5.0), atol=2e-5)
    assert np.all(np.diag(got) == 0)


def test_known_users_and_new_users_score_alike(synthetic):
    split = make_split(synthetic, "warm", random_state=0)
    m = EASE(reg=50.0).fit(split.train)
    users = np.array([0, 3, 7])
    np.testing.assert_allclose(m.score(users), m.score_new_users(split.train.user_items[users]), rtol=1e-6)
    np.testing.assert_allclose(m.score(users, np.array([1, 4])), m.score(users)[:, [1, 4]], rtol=1e-6)
    ids, _ = m.recommend(users, k=5, exclude=split.train.user_items[users])
    seen = split.train.user_items[users].toarray()
    assert not seen[np.arange(3)[:, None], ids].any()


def test_beats_popularity_on_synthetic_warm(synthetic):
    from recsys_coldstart.baselines import Popularity

    split = make_split(synthetic, "warm", random_state=0)
    ease = metric_value(evaluate(EASE(reg=50.0).fit(split.train), split), "ndcg", 20, "warm")
    pop = metric_value(evaluate(Popularity().fit(split.train), split), "ndcg", 20, "warm")
    assert ease > pop + 0.05


def test_refuses_when_the_item_matrices_do_not_fit(synthetic):
    split = make_split(synthetic, "warm", random_state=0)
    with pytest.raises(DataError, match=r"EASE on 300 items needs about .* GB"):
        EASE(max_memory_gb=1e-6).fit(split.train)
    assert ease_memory_gb(40_000) > 10


@pytest.mark.parametrize("bad", [{"reg": 0.0}, {"reg": -1.0}, {"reg": float("nan")}, {"max_memory_gb": 0}])
def test_config_validates_its_ranges(bad):
    with pytest.raises(ValueError, match="EASEConfig"):
        EASEConfig(**bad)


def test_beats_popularity_on_ml100k_warm(ml100k_dir):
    from recsys_coldstart.baselines import Popularity
    from recsys_coldstart.data.datasets import load_dataset

    split = make_split(load_dataset("ml-100k", ml100k_dir), "warm", random_state=0)
    ease = metric_value(evaluate(EASE(reg=400.0).fit(split.train), split), "ndcg", 20, "warm")
    pop = metric_value(evaluate(Popularity().fit(split.train), split), "ndcg", 20, "warm")
    assert ease > pop + 0.05
