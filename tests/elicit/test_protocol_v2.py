"""Issue 16: paired lift, oracle, two-part answers, interview tree, lookahead, bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.elicit import (
    ElicitationSession,
    ElicitationState,
    InterviewTreePolicy,
    ItemSpace,
    LinUCBPolicy,
    LookaheadPolicy,
    OraclePolicy,
    PosteriorConfig,
    answer_matrix,
    paired_bootstrap,
    replay,
)
from recsys_coldstart.elicit.replay import replay_users
from recsys_coldstart.elicit.state import LIKE
from recsys_coldstart.evaluate.metrics import hits_matrix, ndcg_at_k


def test_paired_lift_is_raw_minus_prior_by_hand(cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    df, pu = replay(LinUCBPolicy(), svd_model, cold_split, budget=3, space=space, return_per_user=True)
    users = pu["users"]
    x = cold_split.train.user_features.take(users)
    prior = space.prior_means(x, len(users)) @ space.item_factors.T
    truth = (cold_split.test.user_items[users].toarray() > 0)
    for t in (0, 2, 3):
        asked = np.zeros_like(truth)
        for step in range(t):
            asked[np.arange(len(users)), pu["items"][step]] = True
        left = truth & ~asked
        # the prior's ranking with the same exclusions, on the same truth, recomputed by hand
        top = np.argsort(-np.where(asked, -np.inf, prior), axis=1, kind="stable")[:, :10]
        n = left.sum(1)
        hand = ndcg_at_k(hits_matrix(top, sp.csr_matrix(left)), np.maximum(n, 1), 10)
        ok = n > 0
        np.testing.assert_allclose(pu["ndcg_prior@10"][t][ok], hand[ok], atol=1e-9)
        assert np.isnan(pu["ndcg_prior@10"][t][~ok]).all()
        lift = pu["ndcg@10"][t][ok] - pu["ndcg_prior@10"][t][ok]
        row = df[(df.budget == t) & (df.k == 10)].set_index("metric").value
        assert row["ndcg_paired"] == pytest.approx(lift.mean())
        assert row["ndcg_paired"] == pytest.approx(row["ndcg"] - row["ndcg_prior"])
    assert df[(df.budget == 0) & (df.metric == "ndcg_paired")].value.abs().max() == 0.0


def test_oracle_asks_only_known_likes(cold_split, svd_model):
    users = replay_users(cold_split)
    ans = answer_matrix(cold_split, users)
    space = ItemSpace.from_model(svd_model, cold_split.train)
    pol = OraclePolicy()
    state = pol.init_state(space, n_users=len(users))
    state.oracle_answers = ans
    n_likes = (ans == LIKE).sum(1)
    for t in range(4):
        items = pol.select(state)
        resp = ans[np.arange(len(users)), items]
        enough = n_likes > t
        assert (resp[enough] == LIKE).all()
        pol.update(state, items, resp)
    with pytest.raises(Exception, match="oracle"):
        pol.select(pol.init_state(space, n_users=1))


def test_two_part_answers_learn_from_unknown(cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    plain = ElicitationState.initial(space, PosteriorConfig(), n_users=1)
    two = ElicitationState.initial(space, PosteriorConfig(exposure=True), n_users=1)
    np.testing.assert_allclose(plain.mean_scores(), two.mean_scores())  # budget 0: the same prior ranking
    item = int(np.argmax(space.known_prob))
    p0 = two.known_probs()[0, item]
    mu0 = two.mu.copy()
    plain.observe(np.array([item]), np.array([0]))
    two.observe(np.array([item]), np.array([0]))
    np.testing.assert_allclose(two.mu, mu0)  # the preference part ignores an unknown answer
    assert two.known_probs()[0, item] < p0  # ... the exposure part learns the item is not known
    assert not np.allclose(two.mean_scores(), plain.mean_scores())  # and the ranking moves
    # a like raises P(known) and moves the preference posterior
    two.observe(np.array([int(np.argsort(-space.known_prob)[1])]), np.array([1]))
    assert not np.allclose(two.mu, mu0)


def _planted_space(n_per_group: int = 60) -> ItemSpace:
    """Two warm groups with opposite vectors; item 0 is liked by group A and unknown to B
    (the discriminating question); items 1-4 are liked by everybody (no information)."""
    n_items, d = 8, 2
    v = np.array([[1.0, 0.0], [0.3, 0.3], [0.3, 0.3], [0.3, 0.3], [0.3, 0.3], [0.0, 1.0], [1.0, 1.0],
                  [0.5, -0.5]])
    ua = np.tile([1.0, 0.0], (n_per_group, 1))
    ub = np.tile([0.0, 1.0], (n_per_group, 1))
    u = np.vstack([ua, ub])
    ans = np.zeros((2 * n_per_group, n_items), np.int8)
    ans[:, 1:5] = 1
    ans[:n_per_group, 0] = 1
    known = (ans != 0).mean(0)
    cov = np.cov(u, rowvar=False) + 1e-3 * np.eye(d)
    return ItemSpace(item_factors=v, known_prob=known, n_ratings=(ans != 0).sum(0),
                     rating_entropy=np.ones(n_items), prior_mean=u.mean(0), prior_cov=cov,
                     warm_answers=sp.csr_matrix(ans), warm_vectors=u)


def test_interview_tree_asks_the_discriminating_item_first():
    space = _planted_space()
    pol = InterviewTreePolicy(min_users=2, n_candidates=8)
    state = pol.init_state(space, n_users=2)
    assert pol.select(state).tolist() == [0, 0]
    pol.update(state, np.array([0, 0]), np.array([1, 0]))
    # a like routes to group A's node, an unknown to B's: the two users' vectors split that way
    vec = pol.user_vector(state)
    assert vec[0, 0] > vec[0, 1] and vec[1, 1] > vec[1, 0]


def _utility(scores, asked, cal, log_p, k):
    sc = np.where(asked, -np.inf, scores)
    order = np.argsort(-sc, kind="stable")[:k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    out = 0.0
    for r, j in enumerate(order):
        if np.isfinite(sc[j]):
            p = cal.p_known(np.array(sc[j]), np.array(log_p[j])) * cal.p_like_known(np.array(sc[j]),
                                                                                     np.array(log_p[j]))
            out += float(p) * disc[r]
    return out


def test_lookahead_picks_the_largest_simulated_gain():
    space = _planted_space()
    pol = LookaheadPolicy(n_candidates=8, shortlist=8, k=3, n_calibration_users=120, calibration_questions=1)
    state = pol.init_state(space, n_users=1)
    gains = pol.expected_gains(state)[0]
    cal = pol.calibration(space)
    log_p = np.log(np.clip(space.known_prob, 1e-6, 1.0))
    cfg = pol.config
    brute = np.full(space.n_items, -np.inf)
    for i in range(space.n_items):
        asked = np.zeros(space.n_items, bool)
        asked[i] = True
        now = _utility(state.mean_scores()[0], asked, cal, log_p, cfg.k)
        m_i = float(state.mean_scores()[0, i])
        pk = float(cal.p_known(np.array(m_i), np.array(log_p[i])))
        pl = float(cal.p_like_known(np.array(m_i), np.array(log_p[i])))
        exp = (1 - pk) * now
        for prob, y in ((pk * pl, cfg.like_value), (pk * (1 - pl), cfg.dislike_value)):
            s = state.sigma[0] @ space.item_factors[i]
            c = cfg.noise_var + space.item_factors[i] @ s
            mu = state.mu[0] + s * (y - m_i) / c
            exp += prob * _utility(mu @ space.item_factors.T, asked, cal, log_p, cfg.k)
        brute[i] = exp - now
    np.testing.assert_allclose(gains, brute, atol=1e-9)
    assert pol.select(state)[0] == int(np.argmax(brute))


@pytest.mark.parametrize("make", [InterviewTreePolicy, LookaheadPolicy, LinUCBPolicy],
                         ids=["tree", "lookahead", "linucb"])
def test_session_and_replay_ask_the_same_questions(make, cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    users = replay_users(cold_split)[:5]
    _, pu = replay(make(), svd_model, cold_split, budget=4, users=users, space=space, return_per_user=True)
    ans = answer_matrix(cold_split, users)
    names = {1: "like", -1: "dislike", 0: "unknown"}
    feats = cold_split.train.user_features.take(users)
    for j in range(len(users)):
        session = ElicitationSession(make(), svd_model, feats[j], space=space)
        asked = []
        for _ in range(4):
            item = session.ask()
            asked.append(item)
            session.answer(item, names[int(ans[j, item])])
        assert asked == pu["items"][:, j].tolist()


def test_bootstrap_interval_covers_a_known_mean_difference():
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 1.0, 4000)
    b = a - 0.2 + rng.normal(0.0, 0.5, 4000)
    ci = paired_bootstrap(a, b, n_boot=1000, random_state=0)
    assert ci["lo"] < 0.2 < ci["hi"] and ci["hi"] - ci["lo"] < 0.1 and ci["n"] == 4000
    one = paired_bootstrap(rng.normal(0.1, 1.0, 4000), random_state=1)
    assert one["lo"] < 0.1 < one["hi"] and one["lo"] > 0
    a[:10] = np.nan  # users without truth drop out of both sides
    assert paired_bootstrap(a, b, n_boot=200)["n"] == 3990
    with pytest.raises(ValueError, match="one value per user"):
        paired_bootstrap(a, b[:5])
