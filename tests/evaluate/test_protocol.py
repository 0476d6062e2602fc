"""The evaluation protocol: segments, exclusion, batching, known answers."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_coldstart.base import BaseRecommender, topk
from recsys_coldstart.baselines import Popularity
from recsys_coldstart.data import Interactions, item_cold_split, user_cold_split, warm_split
from recsys_coldstart.evaluate import evaluate, metric_value, rank_and_score
from recsys_coldstart.evaluate.results import (
    read_json,
    summary_table,
    to_markdown,
    to_records,
    write_json,
)


class Oracle(BaseRecommender):
    """Scores a user's held-out truth highest: a perfect model for the protocol test."""

    def __init__(self, truth: sp.csr_matrix):
        super().__init__()
        self.truth = truth.tocsr()

    def fit(self, train, *, val=None, callback=None):
        self.n_items_ = train.n_items
        return self

    def score(self, user_idx, item_idx=None):
        s = self.truth[np.asarray(user_idx)].toarray().astype(np.float32)
        return s if item_idx is None else s[:, item_idx]

    def score_new_users(self, observed, features=None, item_idx=None):
        raise AssertionError("not used in this test")


def test_rank_and_score_exclusion_and_batches():
    scores = np.array([[5, 4, 3, 2, 1]], np.float32)
    truth = sp.csr_matrix(np.array([[1, 0, 1, 0, 0]], np.float32))
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], np.float32))
    res = rank_and_score(lambda rows: scores[rows], truth, exclude=exclude, candidates=None, ks=(1, 2))
    # item 0 is excluded, so the ranking is 1, 2, ...: item 2 is a hit at rank 1
    assert res[("recall", 1)][0] == 0.0
    assert res[("recall", 2)][0] == pytest.approx(0.5)


def test_rank_and_score_padding_is_never_a_hit():
    """Fewer candidates left than k: the one top-k pads with -1, which scores as a miss, and an
    excluded truth item is never counted even when the ranking runs short."""
    scores = np.array([[5, 4, 3, 2]], np.float32)
    truth = sp.csr_matrix(np.array([[1, 0, 0, 1]], np.float32))
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 0]], np.float32))
    res = rank_and_score(lambda rows: scores[rows], truth, exclude=exclude, candidates=None, ks=(1, 4))
    assert res[("recall", 1)][0] == pytest.approx(0.5)  # item 3 is the only item left
    assert res[("recall", 4)][0] == pytest.approx(0.5)  # item 0 (excluded) is never a hit
    assert res[("precision", 4)][0] == pytest.approx(0.25)
    assert res[("coverage", 4)][0] == pytest.approx(0.25)  # padding is not an item


def test_rank_and_score_batched_equals_unbatched(rng=np.random.default_rng(0)):
    scores = rng.random((50, 30)).astype(np.float32)
    truth = sp.random(50, 30, density=0.2, random_state=1, format="csr")
    truth.data[:] = 1
    truth = truth[np.diff(truth.indptr) > 0]
    scores = scores[: truth.shape[0]]
    a = rank_and_score(lambda r: scores[r], truth, exclude=None, candidates=None, ks=(5,), batch_size=7)
    b = rank_and_score(lambda r: scores[r], truth, exclude=None, candidates=None, ks=(5,), batch_size=1000)
    for key in a:
        np.testing.assert_allclose(a[key], b[key])


def test_oracle_is_perfect_on_warm_split(synthetic):
    split = warm_split(synthetic, random_state=0)
    res = evaluate(Oracle(split.test.user_items).fit(split.train), split, ks=(20,))
    assert metric_value(res, "hitrate", 20, "warm") == pytest.approx(1.0)
    # truth sizes here are <= 20, so every truth item is in the top 20
    n_truth = np.diff(split.test.user_items.indptr)
    if n_truth.max() <= 20:
        assert metric_value(res, "recall", 20, "warm") == pytest.approx(1.0)
        assert metric_value(res, "ndcg", 20, "warm") == pytest.approx(1.0)


def test_train_and_val_items_are_excluded_from_test_ranking(synthetic):
    split = warm_split(synthetic, random_state=0)

    class TrainLover(Oracle):
        def score(self, user_idx, item_idx=None):
            return (split.train.user_items + split.val.user_items)[np.asarray(user_idx)].toarray().astype(np.float32)

    model = TrainLover(split.train.user_items).fit(split.train)
    users = np.arange(20)
    ids, _ = model.recommend(users, k=5, exclude=(split.train.user_items + split.val.user_items)[users])
    seen = (split.train.user_items + split.val.user_items)[users]
    for r in range(len(users)):
        assert not set(ids[r]) & set(seen[r].indices)


def test_segments_per_split_kind(synthetic):
    pop = Popularity()
    uc = user_cold_split(synthetic, n_support=3, random_state=0)
    res = evaluate(pop.fit(uc.train), uc)
    assert set(res.segment) == {"cold-user"}
    assert res[(res.metric == "n_users")].value.iloc[0] <= len(uc.test_users)
    ic = item_cold_split(synthetic, random_state=0)
    res = evaluate(pop.fit(ic.train), ic)
    assert set(res.segment) == {"cold-item", "all"}
    # popularity gives every cold item score 0, and cold items never win over warm ones in "all"
    assert metric_value(res, "recall", 20, "all") == 0.0


def test_cold_item_candidates_are_only_cold_items(synthetic):
    ic = item_cold_split(synthetic, random_state=0)
    seen = []

    class Spy(Popularity):
        def score(self, user_idx, item_idx=None):
            seen.append(item_idx)
            return super().score(user_idx, item_idx)

    evaluate(Spy().fit(ic.train), ic, segments=["cold-item"])
    assert seen and all(np.array_equal(np.sort(s), np.sort(ic.test_items)) for s in seen)


def test_results_round_trip(tmp_path, synthetic):
    split = warm_split(synthetic, random_state=0)
    res = evaluate(Popularity().fit(split.train), split, model_name="pop")
    recs = to_records(res, config={"a": 1}, command="coldstart evaluate", seconds=1.0)
    assert {"model", "dataset", "split", "segment", "metric", "k", "value", "seed", "config", "command",
            "versions", "device", "seconds"} <= set(recs[0])
    write_json(recs, tmp_path / "r.json")
    back = read_json(tmp_path)
    assert len(back) == len(res)
    table = summary_table(back)
    assert "ndcg@20" in table.columns
    assert "| model |" in to_markdown(table)


def test_topk_candidates_and_exclude():
    scores = np.array([[0.1, 0.9, 0.5]], np.float32)
    cand = np.array([4, 7, 9])
    ex = sp.csr_matrix(([1.0], ([0], [7])), shape=(1, 10))
    ids, vals = topk(scores, 2, exclude=ex, candidates=cand)
    assert ids.tolist() == [[9, 4]]
    np.testing.assert_allclose(vals, [[0.5, 0.1]])


def test_evaluate_bounded_batches_on_tiny_catalogue():
    df = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2, 2], "item": [0, 1, 1, 2, 0, 2, 3]})
    data = Interactions.from_pandas(df)
    split = warm_split(data, val_frac=0.0, test_frac=0.34, random_state=0)
    res = evaluate(Popularity().fit(split.train), split, batch_size=1)
    assert (res.value >= 0).all()
