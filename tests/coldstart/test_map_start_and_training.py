"""Issue 15: training moves DropoutNet / Heater off the content map, the map's options chosen on val
include the content-KNN-style history estimate, and dense item features keep the learned models at
or above content-KNN."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.baselines.content_knn import ContentKNN
from recsys_coldstart.baselines.implicit_mf import ALS
from recsys_coldstart.coldstart import ALDI, DropoutNet, Heater
from recsys_coldstart.data.features import SideFeatures
from recsys_coldstart.data.splits import make_split
from recsys_coldstart.evaluate.protocol import evaluate, metric_value

SEG = "cold-item"


@pytest.fixture(scope="module")
def item_cold(synthetic):
    return make_split(synthetic, "item-cold", random_state=0)


@pytest.fixture(scope="module")
def als(item_cold):
    return ALS(dim=16, random_state=0, num_threads=1).fit(item_cold.train)


def test_training_moves_dropoutnet_and_heater_apart_from_the_map(item_cold, als):
    # without validation the trained state is returned: the updates must change the outputs
    # (the zero-initialised output layer still gets gradient, so the earlier layers follow)
    s, cold = item_cold, item_cold.test_items
    kw = dict(dim=32, hidden=(64,), n_epochs=3, batch_size=256, random_state=0, pref_dim=None)
    start = DropoutNet(**{**kw, "n_epochs": 0}).fit(s.train, init_factors=als).item_factors_[cold]
    dn = DropoutNet(**kw).fit(s.train, init_factors=als).item_factors_[cold]
    ht = Heater(**kw).fit(s.train, init_factors=als).item_factors_[cold]
    scale = float(np.abs(start).mean())

    def gap(a, b):
        return float(np.abs(a - b).mean()) / scale

    assert gap(dn, start) > 1e-3 and gap(ht, start) > 1e-3 and gap(dn, ht) > 1e-3


def test_val_start_and_best_are_recorded(item_cold, als):
    s = item_cold
    m = DropoutNet(dim=32, hidden=(64,), n_epochs=2, batch_size=256, random_state=0, pref_dim=None).fit(
        s.train, val=s.val, init_factors=als)
    assert set(m.val_start_) == {"val_ndcg@20", "val_recall@20"}
    assert m.val_best_["val_recall@20"] >= m.val_start_["val_recall@20"]
    assert m.kept_start_ == (m.best_epoch_ == 0)
    if not m.kept_start_:
        assert m.val_best_["val_recall@20"] == pytest.approx(m.history_["val_recall@20"][m.best_epoch_ - 1])


def test_map_selects_the_history_option_when_it_is_best(item_cold):
    # Uninformative (random) pretrained vectors: a map from features to them (ridge / k-NN) is noise,
    # while the content-KNN-style history estimate reproduces content-KNN's scores from the users'
    # actual histories through the user vectors, so val must choose it.
    s = item_cold
    rng = np.random.default_rng(0)
    U = rng.normal(size=(s.train.n_users, 64)).astype(np.float32)
    V = rng.normal(size=(s.train.n_items, 64)).astype(np.float32)
    m = DropoutNet(n_epochs=0, pref_dim=None, random_state=0).fit(s.train, val=s.val, init_factors=(U, V))
    scores = m.item_cmap_val_
    best_map = max(v for k, v in scores.items() if k.startswith("blend_"))
    best_hist = max(v for k, v in scores.items() if k.startswith("history_"))
    assert best_hist > best_map + 0.05
    assert m.item_cmap_hist_weight_ > 0
    # the chosen start is what the model serves for cold items, and new items take the same path
    cold = s.test_items
    np.testing.assert_allclose(m.embed_items(s.train.item_features.take(cold)), m.item_factors_[cold],
                               rtol=1e-4, atol=1e-5)
    # without the option (content_history=False) the map stays at the blends
    off = DropoutNet(n_epochs=0, pref_dim=None, random_state=0, content_history=False).fit(
        s.train, val=s.val, init_factors=(U, V))
    assert off.item_cmap_hist_weight_ == 0 and not any(k.startswith("history_") for k in off.item_cmap_val_)


def _dense_items(split, seed=0):
    """The split with its item features as a dense table: a random rotation of the one-hot columns
    plus 4 noise columns (no column is sparse, no value is 0/1)."""
    rng = np.random.default_rng(seed)
    f = split.source.item_features
    x = f.values.toarray() if sp.issparse(f.values) else np.asarray(f.values)
    q = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))[0]
    dense = np.hstack([x @ q, rng.normal(0, 0.3, (x.shape[0], 4))]).astype(np.float32)
    new = SideFeatures(dense, tuple(f"d{j}" for j in range(dense.shape[1])))
    return dataclasses.replace(split, **{k: dataclasses.replace(getattr(split, k), item_features=new)
                                         for k in ("train", "val", "test", "support", "source")})


@pytest.mark.parametrize("name", ["dropoutnet", "heater", "aldi"])
def test_dense_item_features_not_below_content_knn(name, item_cold, als):
    s = _dense_items(item_cold)
    floor = metric_value(evaluate(ContentKNN().fit(s.train), s, segments=[SEG]), "ndcg", 20, SEG)
    make = {"dropoutnet": lambda: DropoutNet(dim=32, hidden=(64,), n_epochs=2, random_state=0),
            "heater": lambda: Heater(dim=32, hidden=(64,), n_epochs=2, random_state=0),
            "aldi": lambda: ALDI(hidden=(64,), n_epochs=2, random_state=0)}[name]
    m = make().fit(s.train, val=s.val, init_factors=als)
    got = metric_value(evaluate(m, s, segments=[SEG]), "ndcg", 20, SEG)
    assert got >= floor
