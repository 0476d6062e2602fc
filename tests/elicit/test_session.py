"""The online API: one user, ask / answer / recommend, and its error messages."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.elicit import (
    ElicitationSession,
    ItemSpace,
    LinUCBPolicy,
    PopularityPolicy,
    ThompsonPolicy,
)
from recsys_coldstart.exceptions import DataError


@pytest.fixture()
def session(cold_split, svd_model):
    user = cold_split.test_users[0]
    feats = cold_split.train.user_features.take([user])[0]
    return ElicitationSession(LinUCBPolicy(), svd_model, user_features=feats, train=cold_split.train)


def test_ask_answer_recommend_flow(session):
    seen = []
    for answer in ("like", "dislike", "unknown", "LIKE"):
        item = session.ask()
        assert 0 <= item < session.n_items and item not in seen
        assert session.pending == item
        session.answer(item, answer)
        seen.append(item)
    assert session.pending is None
    assert [i for i, _ in session.history] == seen
    assert [a for _, a in session.history] == ["like", "dislike", "unknown", "like"]
    ids, scores = session.recommend(10)
    assert ids.shape == (10,) and scores.shape == (10,)
    assert not set(ids.tolist()) & set(seen)
    assert np.all(np.diff(scores) <= 0)
    assert session.user_vector().shape == (session.space.dim,)


def test_answers_move_recommendations(cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    a = ElicitationSession(PopularityPolicy(), svd_model, space=space)
    b = ElicitationSession(PopularityPolicy(), svd_model, space=space)
    for s, ans in ((a, "like"), (b, "dislike")):
        for _ in range(3):
            s.answer(s.ask(), ans)
    assert [i for i, _ in a.history] == [i for i, _ in b.history]  # same questions, different answers
    assert not np.allclose(a.user_vector(), b.user_vector())


def test_features_shift_the_prior(cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    f = cold_split.train.user_features.take(cold_split.test_users[:2])
    s0 = ElicitationSession(PopularityPolicy(), svd_model, user_features=f[0], space=space)
    s_none = ElicitationSession(PopularityPolicy(), svd_model, space=space)
    assert not np.allclose(s0.user_vector(), s_none.user_vector())
    np.testing.assert_allclose(s_none.user_vector(), space.prior_mean)


def test_session_errors(session):
    with pytest.raises(ValueError, match="not asked"):
        session.answer(0, "like")
    item = session.ask()
    with pytest.raises(ValueError, match="not answered yet"):
        session.ask()
    with pytest.raises(ValueError, match="invalid answer 'maybe'"):
        session.answer(item, "maybe")
    with pytest.raises(ValueError, match="invalid answer"):
        session.answer(item, 1)
    with pytest.raises(DataError, match="out of range"):
        session.answer(session.n_items + 5, "like")
    with pytest.raises(DataError, match="out of range"):
        session.answer(-1, "like")
    other = (item + 1) % session.n_items
    with pytest.raises(ValueError, match=f"pending question is item {item}"):
        session.answer(other, "like")
    session.answer(item, "like")
    with pytest.raises(ValueError, match="not asked"):
        session.answer(item, "like")  # answering twice
    with pytest.raises(ValueError, match="k must be"):
        session.recommend(0)


def test_session_without_train_data(svd_model):
    s = ElicitationSession(ThompsonPolicy(random_state=0), svd_model)
    s.answer(s.ask(), "like")
    ids, _ = s.recommend(5)
    assert len(ids) == 5


def test_recommend_never_returns_asked_items_even_with_tiny_catalogue():
    from recsys_coldstart.base import EmbeddingRecommender

    m = EmbeddingRecommender()
    rng = np.random.default_rng(0)
    m.user_factors_ = rng.normal(size=(10, 2)).astype(np.float32)
    m.item_factors_ = rng.normal(size=(4, 2)).astype(np.float32)
    s = ElicitationSession(PopularityPolicy(), m)
    for _ in range(3):
        s.answer(s.ask(), "dislike")
    ids, scores = s.recommend(10)
    # the one top-k rule: width min(k, n_items), the one unasked item, then -1 / -inf padding
    assert len(ids) == 4 and ids[0] >= 0 and ids[0] not in [i for i, _ in s.history]
    assert (ids[1:] == -1).all() and np.isneginf(scores[1:]).all()
