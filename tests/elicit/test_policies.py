"""Contract tests of the elicitation policies and the Bayesian posterior."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.elicit import (
    ElicitationState,
    GreedyPolicy,
    InfoGainPolicy,
    ItemSpace,
    LinUCBPolicy,
    PopEntropyPolicy,
    PopularityPolicy,
    PosteriorConfig,
    RandomPolicy,
    ThompsonPolicy,
)
from recsys_coldstart.elicit.replay import answer_matrix, replay_users

ALL = [RandomPolicy, PopularityPolicy, PopEntropyPolicy, GreedyPolicy, LinUCBPolicy, ThompsonPolicy, InfoGainPolicy]


def _toy_space(v: np.ndarray, known: np.ndarray | None = None, cov: np.ndarray | None = None) -> ItemSpace:
    n, d = v.shape
    return ItemSpace(item_factors=np.asarray(v, np.float64),
                     known_prob=np.ones(n) if known is None else np.asarray(known, np.float64),
                     n_ratings=np.full(n, 10), rating_entropy=np.ones(n), prior_mean=np.zeros(d),
                     prior_cov=np.eye(d) if cov is None else cov)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_never_repeats_and_respects_budget(cls, cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    users = replay_users(cold_split)[:20]
    oracle = answer_matrix(cold_split, users)
    policy = cls(random_state=0)
    feats = cold_split.train.user_features.take(users)
    state = policy.init_state(space, features=feats, n_users=len(users))
    budget = 15
    for _ in range(budget):
        items = policy.select(state)
        assert items.shape == (len(users),)
        assert not state.asked[np.arange(len(users)), items].any()
        policy.update(state, items, oracle[np.arange(len(users)), items])
    asked = np.stack(state.items, axis=1)
    assert asked.shape == (len(users), budget)
    assert all(len(np.unique(row)) == budget for row in asked)
    assert state.asked.sum(1).tolist() == [budget] * len(users)
    assert policy.user_vector(state).shape == (len(users), space.dim)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_exhausts_small_catalogue_without_repeats(cls):
    rng = np.random.default_rng(0)
    space = _toy_space(rng.normal(size=(6, 3)), known=np.linspace(0.1, 1, 6))
    policy = cls(random_state=1)
    state = policy.init_state(space, n_users=2)
    for _ in range(6):
        items = policy.select(state)
        policy.update(state, items, np.array([1, -1]))
    assert state.asked.all()
    with pytest.raises(ValueError, match="already been asked"):
        policy.select(state)


def test_posterior_matches_direct_ridge_solve():
    rng = np.random.default_rng(3)
    n, d = 30, 5
    v = rng.normal(size=(n, d))
    a = rng.normal(size=(d, d))
    cov0 = a @ a.T + 0.5 * np.eye(d)
    mu0 = rng.normal(size=d)
    space = ItemSpace(item_factors=v, known_prob=np.ones(n), n_ratings=np.ones(n, np.int64), rating_entropy=np.ones(n),
                      prior_mean=mu0, prior_cov=cov0)
    cfg = PosteriorConfig(noise_var=0.3, like_value=1.0, dislike_value=-0.4)
    state = ElicitationState.initial(space, cfg, n_users=1)
    items = [3, 7, 11, 19, 25, 2]
    resp = [1, -1, 0, 1, 1, -1]
    for i, r in zip(items, resp, strict=True):
        state.observe(np.array([i]), np.array([r]))
    known = [(i, r) for i, r in zip(items, resp, strict=True) if r != 0]  # unknown answers teach nothing
    x = v[[i for i, _ in known]]
    y = np.array([1.0 if r == 1 else -0.4 for _, r in known])
    prec = np.linalg.inv(cov0) + x.T @ x / cfg.noise_var
    sigma = np.linalg.inv(prec)
    mu = sigma @ (np.linalg.solve(cov0, mu0) + x.T @ y / cfg.noise_var)
    np.testing.assert_allclose(state.mu[0], mu, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(state.sigma[0], sigma, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(state.quad[0], np.einsum("nd,de,ne->n", v, sigma, v), rtol=1e-7, atol=1e-10)


def test_unknown_value_makes_unknown_informative():
    v = np.eye(3)
    space = _toy_space(v)
    st = ElicitationState.initial(space, PosteriorConfig(unknown_value=0.0, noise_var=1.0), n_users=1)
    st.mu[:] = 1.0
    st.observe(np.array([0]), np.array([0]))
    assert st.mu[0, 0] < 1.0 and st.mu[0, 1] == 1.0


def test_linucb_picks_high_variance_item_when_means_tie():
    # items 0 and 1 have the same prior mean score (0) but item 1 lies along the uncertain axis
    v = np.array([[1.0, 0.0], [0.0, 1.0]])
    cov = np.diag([0.1, 2.0])
    space = _toy_space(v, cov=cov)
    policy = LinUCBPolicy(alpha=1.0, skip_top=0)
    state = policy.init_state(space, n_users=1)
    assert policy.select(state)[0] == 1
    greedy_tie = GreedyPolicy().acquisition(state)
    assert greedy_tie[0, 0] == greedy_tie[0, 1]


def test_known_probability_steers_away_from_obscure_items():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    space = _toy_space(v, known=np.array([0.01, 0.9, 0.5]))
    for cls in (InfoGainPolicy, LinUCBPolicy, GreedyPolicy):
        policy = cls(skip_top=0)
        state = policy.init_state(space, n_users=1)
        state.mu[:] = [1.0, 0.0]
        # item 0 and 1 are identical except that hardly anyone knows item 0
        assert policy.select(state)[0] != 0


@pytest.mark.parametrize("cls", [GreedyPolicy, LinUCBPolicy, ThompsonPolicy, InfoGainPolicy], ids=lambda c: c.name)
def test_skip_top_never_asks_current_recommendations(cls, cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    assert cls().config.skip_top == 10
    policy = cls(random_state=0)
    state = policy.init_state(space, n_users=8)
    for _ in range(4):
        mean = np.where(state.asked, -np.inf, state.mean_scores())
        top10 = np.argsort(-mean, axis=1)[:, :10]
        items = policy.select(state)
        assert not (top10 == items[:, None]).any()
        policy.update(state, items, np.ones(8, np.int64))
    greedy_plain = GreedyPolicy(skip_top=0, known_weight=0)
    st = greedy_plain.init_state(space, n_users=1)
    assert greedy_plain.select(st)[0] == np.argmax(st.mean_scores()[0])


def test_thompson_deterministic_under_seed(cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    runs = []
    for seed in (5, 5, 6):
        p = ThompsonPolicy(random_state=seed)
        st = p.init_state(space, n_users=4)
        seq = []
        for _ in range(5):
            it = p.select(st)
            p.update(st, it, np.ones(4, np.int64))
            seq.append(it)
        runs.append(np.stack(seq))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_item_space_uses_warm_users_only(cold_split, svd_model):
    space = ItemSpace.from_model(svd_model, cold_split.train)
    warm = np.setdiff1d(np.arange(cold_split.train.n_users), cold_split.cold_users)
    warm = warm[cold_split.train.user_degrees()[warm] > 0]
    r = cold_split.train.ratings[warm]
    expected = np.bincount(r.indices, minlength=r.shape[1]) / len(warm)
    np.testing.assert_allclose(space.known_prob, expected)
    assert space.feature_coef is not None
    assert (space.rating_entropy >= 0).all()
    # side features shift the prior mean
    feats = cold_split.train.user_features.take(cold_split.test_users[:5])
    means = space.prior_means(feats, 5)
    assert means.shape == (5, space.dim) and not np.allclose(means, space.prior_mean)


def test_policy_config_validation():
    with pytest.raises(TypeError, match="valid options"):
        LinUCBPolicy(alpah=1.0)
    with pytest.raises(ValueError, match="noise_var"):
        GreedyPolicy(noise_var=0.0)
    with pytest.raises(ValueError, match="alpha"):
        LinUCBPolicy(alpha=-1.0)
    p = LinUCBPolicy(alpha=2.0)
    assert p.config.alpha == 2.0 and "LinUCB" in repr(p)


def test_observe_rejects_bad_input():
    space = _toy_space(np.eye(3))
    st = ElicitationState.initial(space, n_users=1)
    with pytest.raises(ValueError, match="responses"):
        st.observe(np.array([0]), np.array([2]))
    with pytest.raises(ValueError, match="out of range"):
        st.observe(np.array([3]), np.array([1]))
    st.observe(np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="twice"):
        st.observe(np.array([1]), np.array([1]))


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_policies_satisfy_the_protocol_and_cite_a_paper(cls):
    from recsys_coldstart.types import ElicitationPolicy

    assert isinstance(cls(), ElicitationPolicy)
    assert any(str(year) in (cls.__doc__ or "") for year in (2002, 2007, 2010, 2013, 2016))
