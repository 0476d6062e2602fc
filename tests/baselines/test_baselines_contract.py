"""Contract tests shared by every baseline, plus known answers on the synthetic set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.baselines import (
    ALS,
    BPR,
    ContentKNN,
    FeaturePopularity,
    ItemKNN,
    Popularity,
    RandomRecommender,
)
from recsys_coldstart.baselines.knn import topk_item_similarity
from recsys_coldstart.cli.registry import MODELS, model_class
from recsys_coldstart.data import SideFeatures, make_split
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.foldin import ridge_fold_in
from recsys_coldstart.io import load_model, save_model

# small configurations so the whole file runs in a few seconds
FACTORIES = {
    "popularity": lambda: Popularity(),
    "random": lambda: RandomRecommender(random_state=3),
    "als": lambda: ALS(dim=16, n_epochs=4, num_threads=1, random_state=3),
    "bpr": lambda: BPR(dim=16, n_epochs=10, lr=0.05, random_state=3),
    "itemknn": lambda: ItemKNN(n_neighbors=20),
    "feature-popularity": lambda: FeaturePopularity(),
    "content-knn": lambda: ContentKNN(n_neighbors=20),
    "content-knn-linear": lambda: ContentKNN(n_neighbors=None),
}


@pytest.fixture(scope="module")
def warm(synthetic):
    return make_split(synthetic, "warm", random_state=0)


@pytest.fixture(scope="module")
def user_cold(synthetic):
    return make_split(synthetic, "user-cold", random_state=0, n_support=3)


@pytest.fixture(scope="module")
def item_cold(synthetic):
    return make_split(synthetic, "item-cold", random_state=0)


@pytest.fixture(scope="module")
def fitted(warm):
    return {name: make().fit(warm.train) for name, make in FACTORIES.items()}


NAMES = list(FACTORIES)


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self(name, warm):
    model = FACTORIES[name]()
    assert model.fit(warm.train) is model


@pytest.mark.parametrize("name", NAMES)
def test_score_batch_equals_scalar_rows(name, fitted, warm):
    model = fitted[name]
    users = np.array([0, 5, 17, 42], np.int64)
    batch = model.score(users)
    assert batch.shape == (4, warm.train.n_items)
    assert batch.dtype == np.float32
    for row, u in enumerate(users):
        np.testing.assert_allclose(batch[row], model.score(np.array([u]))[0], rtol=1e-5, atol=1e-6)
    items = np.array([3, 1, 200], np.int64)
    np.testing.assert_allclose(model.score(users, items), batch[:, items], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_recommend_never_returns_excluded(name, fitted, warm):
    model = fitted[name]
    users = np.arange(30, dtype=np.int64)
    exclude = warm.train.user_items[users]
    ids, scores = model.recommend(users, k=20, exclude=exclude)
    assert ids.shape == scores.shape == (30, 20)
    for row in range(30):
        assert not set(ids[row]) & set(exclude[row].indices)
        assert np.all(np.diff(scores[row]) <= 1e-6)  # best first


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_random_state(name, fitted, warm):
    again = FACTORIES[name]().fit(warm.train)
    users = np.arange(50, dtype=np.int64)
    np.testing.assert_array_equal(fitted[name].score(users), again.score(users))


def test_random_state_matters(warm):
    users = np.arange(10, dtype=np.int64)
    a = RandomRecommender(random_state=0).fit(warm.train).score(users)
    b = RandomRecommender(random_state=1).fit(warm.train).score(users)
    assert not np.allclose(a, b)
    c = ALS(dim=8, n_epochs=2, random_state=0).fit(warm.train).score(users)
    d = ALS(dim=8, n_epochs=2, random_state=1).fit(warm.train).score(users)
    assert not np.allclose(c, d)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, fitted, warm, user_cold, tmp_path):
    model = fitted[name]
    save_model(model, tmp_path / name)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    users = np.arange(40, dtype=np.int64)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    obs = warm.train.user_items[:7]
    feats = warm.train.user_features.take(np.arange(7))
    np.testing.assert_array_equal(loaded.score_new_users(obs, feats), model.score_new_users(obs, feats))


@pytest.mark.parametrize("name", NAMES)
def test_score_new_users_shape(name, fitted, warm):
    model = fitted[name]
    n_items = warm.train.n_items
    obs = sp.csr_matrix(warm.train.user_items[:5])
    obs = sp.vstack([obs, sp.csr_matrix((1, n_items), dtype=np.float32)]).tocsr()  # one empty user
    feats = warm.train.user_features.take(np.arange(6))
    s = model.score_new_users(obs, feats)
    assert s.shape == (6, n_items) and s.dtype == np.float32
    assert np.isfinite(s).all()
    items = np.array([0, 7, 9], np.int64)
    sub = model.score_new_users(obs, feats, items)
    assert sub.shape == (6, 3)
    np.testing.assert_allclose(sub, s[:, items], rtol=1e-5, atol=1e-6)
    s_nofeat = model.score_new_users(obs, None)
    assert s_nofeat.shape == (6, n_items)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "popularity"])
def test_search_space_builds_a_model(name, warm):
    optuna = pytest.importorskip("optuna")
    cls = type(FACTORIES[name]())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        kwargs = cls.search_space(trial)
        model = cls(**kwargs)  # every key is a config field
        assert dataclasses.asdict(model.config).items() >= kwargs.items()


@pytest.mark.parametrize("name", ["popularity", "feature-popularity", "content-knn", "als", "bpr", "itemknn",
                                  "random"])
def test_registered_in_cli(name):
    assert name in MODELS
    assert isinstance(FACTORIES[name](), model_class(name))


# -- known answers -------------------------------------------------------------------------------

def _ndcg(model, split, segment):
    return metric_value(evaluate(model, split), "ndcg", 20, segment)


def test_als_beats_popularity_on_warm(fitted, warm):
    als = ALS(dim=16, n_epochs=8, random_state=0).fit(warm.train)
    assert _ndcg(als, warm, "warm") > _ndcg(fitted["popularity"], warm, "warm") + 0.05


def test_feature_popularity_beats_popularity_on_cold_users(user_cold):
    pop = _ndcg(Popularity().fit(user_cold.train), user_cold, "cold-user")
    fpop = _ndcg(FeaturePopularity().fit(user_cold.train), user_cold, "cold-user")
    assert fpop > pop + 0.05


@pytest.mark.parametrize("n_neighbors", [20, None])
def test_content_knn_beats_random_on_cold_items(item_cold, n_neighbors):
    rnd = _ndcg(RandomRecommender(random_state=0).fit(item_cold.train), item_cold, "cold-item")
    cknn = _ndcg(ContentKNN(n_neighbors=n_neighbors).fit(item_cold.train), item_cold, "cold-item")
    assert cknn > rnd + 0.1


def test_random_is_near_chance(warm):
    """Scores are U[0, 1): mean 1/2, and the top-1 item is spread over the catalogue."""
    model = RandomRecommender(random_state=0).fit(warm.train)
    s = model.score(np.arange(warm.train.n_users))
    assert s.min() >= 0 and s.max() < 1
    assert abs(float(s.mean()) - 0.5) < 0.01
    top1 = s.argmax(axis=1)
    # 400 users over 300 items: a uniform draw hits ~220 distinct items; a shared ranking hits 1
    assert len(np.unique(top1)) > 150


# -- model-specific behaviour --------------------------------------------------------------------

def test_ridge_fold_in_matches_normal_equations():
    """The batched solve equals the per-user Hu et al. normal equations solved one by one."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 5)).astype(np.float32)
    obs = sp.random(6, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    obs.data[:] = 1
    alpha, lam, beta = 4.0, 0.3, 2.0
    mu = rng.normal(size=5)
    got = ridge_fold_in(obs, y, alpha=alpha, regularization=lam, prior=mu, prior_weight=beta, max_floats=60)
    yd = y.astype(np.float64)
    for u in range(6):
        if obs[u].nnz == 0:
            np.testing.assert_array_equal(got[u], 0)
            continue
        c = np.ones(30)
        p = np.zeros(30)
        c[obs[u].indices] = 1 + alpha
        p[obs[u].indices] = 1
        a = yd.T @ (c[:, None] * yd) + (lam + beta) * np.eye(5)
        b = yd.T @ (c * p) + beta * mu
        np.testing.assert_allclose(got[u], np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)


def test_als_fold_in_matches_implicit_user_update(warm):
    """With no prior, folding a train user in equals implicit's own least-squares user update."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = ALS(dim=8, n_epochs=3, fold_in_prior=0.0, num_threads=1).fit(warm.train)
    ref = AlternatingLeastSquares(factors=8, regularization=model.config.reg, alpha=1.0, num_threads=1)
    ref.item_factors = model.item_factors_.copy()
    obs = warm.train.user_items[:10]
    conf = obs.copy()
    conf.data = 1.0 + model.config.alpha * np.ones_like(conf.data)
    expected = ref.recalculate_user(np.arange(10), conf)
    np.testing.assert_allclose(model.embed_users(obs), expected, rtol=1e-3, atol=1e-4)


def test_fold_in_of_empty_user_is_mean_user(fitted, warm):
    for name in ("als", "bpr"):
        model = fitted[name]
        empty = sp.csr_matrix((2, warm.train.n_items), dtype=np.float32)
        np.testing.assert_allclose(model.embed_users(empty), np.tile(model.mean_user_, (2, 1)))


def test_bpr_factors_have_bias_column(fitted):
    bpr = fitted["bpr"]
    assert bpr.user_factors_.shape[1] == bpr.item_factors_.shape[1] == 17
    np.testing.assert_allclose(bpr.user_factors_[:, -1], 1.0)
    assert bpr.user_factors_.dtype == bpr.item_factors_.dtype == np.float32


def test_callback_stops_and_sees_val_metric(warm):
    seen = []

    def cb(epoch, logs):
        seen.append(dict(logs))
        return epoch == 2  # epochs are numbered from 1 (the one fit loop)

    model = ALS(dim=8, n_epochs=10).fit(warm.train, val=warm.val, callback=cb)
    assert model.epochs_run_ == 2 and len(seen) == 2
    assert 0.0 <= seen[-1]["val_ndcg@20"] <= 1.0 and 0.0 <= seen[-1]["val_recall@20"] <= 1.0


def test_item_similarity_matches_brute_force():
    rng = np.random.default_rng(0)
    x = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(np.float32))
    dense = x.toarray()
    norms = np.linalg.norm(dense, axis=0)
    shrink = 2.0
    full = (dense.T @ dense) / (norms[:, None] * norms[None, :] + shrink)
    np.fill_diagonal(full, 0)
    w = topk_item_similarity(x, n_neighbors=3, shrinkage=shrink, batch_size=5).toarray()
    for i in range(12):
        nb = np.flatnonzero(w[:, i])
        assert len(nb) <= 3
        np.testing.assert_allclose(w[nb, i], full[i, nb], rtol=1e-5)
        # nothing outside the kept neighbours is strictly more similar than the weakest kept one
        if len(nb) == 3:
            others = np.setdiff1d(np.arange(12), np.append(nb, i))
            assert full[i, others].max() <= full[i, nb].min() + 1e-6


def test_content_knn_sparse_features_equal_dense(warm):
    dense_train = warm.train
    feats = dense_train.item_features
    sparse_train = dataclasses.replace(dense_train, item_features=SideFeatures(sp.csr_matrix(feats.values),
                                                                               feats.names))
    users = np.arange(20, dtype=np.int64)
    for k in (20, None):
        a = ContentKNN(n_neighbors=k).fit(dense_train).score(users)
        b = ContentKNN(n_neighbors=k).fit(sparse_train).score(users)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_content_knn_scores_cold_items(item_cold):
    model = ContentKNN().fit(item_cold.train)
    s = model.score(np.arange(50), item_cold.test_items)
    assert (s > 0).any()  # cold items get non-trivial scores from features alone


def test_feature_popularity_without_features_is_popularity(warm):
    model = FeaturePopularity().fit(warm.train)
    obs = sp.csr_matrix((3, warm.train.n_items), dtype=np.float32)
    s = model.score_new_users(obs, None)
    pop = warm.train.item_degrees()
    assert np.array_equal(np.argsort(-s[0], kind="stable")[:20], np.argsort(-pop, kind="stable")[:20])


def test_feature_popularity_prefers_own_group(synthetic):
    """A user from feature group g gets higher scores on items popular with group g."""
    split = make_split(synthetic, "user-cold", random_state=0)
    model = FeaturePopularity(power=8.0, shrinkage=1.0).fit(split.train)
    feats = split.train.user_features
    names = list(feats.names)
    g_cols = [j for j, n in enumerate(names) if n.startswith("group=")]
    x = split.train.user_items
    vals = feats.dense()
    for col in g_cols[:3]:
        members = np.flatnonzero((vals[:, col] > 0) & (np.diff(x.indptr) > 0))
        group_pop = np.asarray(x[members].sum(axis=0)).ravel()
        s = model.score_new_users(sp.csr_matrix((1, x.shape[1])), vals[members[:1]])[0]
        top = np.argsort(-s)[:10]
        # the top-10 for a group member is dominated by the group's own popular items
        assert group_pop[top].mean() > group_pop.mean() * 2


def test_feature_popularity_sparse_user_features(user_cold):
    """CSR user features take the sparse path (scaled, not centred) and still use the features."""
    train = user_cold.train
    feats = train.user_features
    sparse_train = dataclasses.replace(train, user_features=SideFeatures(sp.csr_matrix(feats.values), feats.names))
    model = FeaturePopularity().fit(sparse_train)
    assert sp.issparse(model.user_features_)
    users = user_cold.test_users[:5]
    s = model.score_new_users(user_cold.support.user_items[users], sp.csr_matrix(feats.values[users]))
    assert s.shape == (5, train.n_items) and np.isfinite(s).all()
    pop = _ndcg(Popularity().fit(train), user_cold, "cold-user")
    assert _ndcg(model, user_cold, "cold-user") > pop
