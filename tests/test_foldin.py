"""The learned (ridge) fold-in of new users: unit checks and cold-user quality (synthetic, ml-100k)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.baselines.feature_popularity import FeaturePopularity
from recsys_coldstart.baselines.popularity import Popularity
from recsys_coldstart.data import user_cold_split
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.foldin import first_k_positives
from recsys_coldstart.io import load_model, save_model
from recsys_coldstart.pretrain import LightGCN

FAST = {"lr": 0.01, "batch_size": 512, "n_epochs": 15, "eval_every": 3, "patience": 3}


@pytest.fixture(scope="module")
def ucold(synthetic):
    return user_cold_split(synthetic, n_support=3, random_state=0)


@pytest.fixture(scope="module")
def fitted(ucold):
    return LightGCN(**FAST).fit(ucold.train)


def test_first_k_positives_takes_earliest():
    ui = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 1, 0, 1]], np.float32))
    ts = sp.csr_matrix(np.array([[30, 10, 20, 0], [0, 5, 0, 1]], np.float32))
    out = first_k_positives(ui, ts, 2, np.array([0, 1]), random_state=0).toarray()
    np.testing.assert_array_equal(out, [[0, 1, 1, 0], [0, 1, 0, 1]])
    one = first_k_positives(ui, ts, 1, np.array([1]), random_state=0).toarray()
    np.testing.assert_array_equal(one, [[0, 0, 0, 1]])


def test_ridge_fold_in_uses_features_and_items(fitted, ucold):
    users = ucold.test_users[:6]
    obs = ucold.support.user_items[users]
    feats = ucold.train.user_features.take(users)
    emb = fitted.embed_users(obs, feats)
    assert emb.shape == (6, fitted.config.dim) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert not np.allclose(emb, fitted.embed_users(obs, None))  # features change the vector
    empty = fitted.embed_users(sp.csr_matrix(obs.shape, dtype=np.float32), feats)
    assert not np.allclose(emb, empty) and np.isfinite(empty).all()  # nothing revealed: the feature prior


def test_ridge_fold_in_beats_popularity_and_graph_fold_in_synthetic(fitted, ucold):
    # the synthetic user features are the planted cluster itself, so FeaturePopularity is near the
    # ceiling there: the ridge fold-in must match it (within 5%) and clearly beat what ignores features
    ndcg = metric_value(evaluate(fitted, ucold), "ndcg", 20, "cold-user")
    graph = LightGCN(**FAST, fold_in="graph")
    graph.__dict__.update({k: v for k, v in fitted.__dict__.items() if k != "config"})
    ndcg_graph = metric_value(evaluate(graph, ucold), "ndcg", 20, "cold-user")
    pop = metric_value(evaluate(Popularity().fit(ucold.train), ucold), "ndcg", 20, "cold-user")
    fpop = metric_value(evaluate(FeaturePopularity().fit(ucold.train), ucold), "ndcg", 20, "cold-user")
    assert ndcg > 1.5 * pop and ndcg > ndcg_graph and ndcg > 0.95 * fpop, (ndcg, ndcg_graph, pop, fpop)


def test_fold_in_state_survives_save_load(fitted, ucold, tmp_path):
    loaded = load_model(save_model(fitted, tmp_path / "m"))
    users = ucold.test_users[:5]
    obs, feats = ucold.support.user_items[users], ucold.train.user_features.take(users)
    np.testing.assert_allclose(loaded.embed_users(obs, feats), fitted.embed_users(obs, feats), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_ridge_fold_in_beats_feature_popularity_ml100k(ml100k_dir):
    from recsys_coldstart.data.datasets import load_dataset

    split = user_cold_split(load_dataset("ml-100k", ml100k_dir), n_support=3, random_state=1)
    model = LightGCN(lr=1e-2, batch_size=2048, n_epochs=40, random_state=1).fit(split.train)
    ndcg = metric_value(evaluate(model, split), "ndcg", 20, "cold-user")
    fpop = metric_value(evaluate(FeaturePopularity().fit(split.train), split), "ndcg", 20, "cold-user")
    assert ndcg > fpop, (ndcg, fpop)
