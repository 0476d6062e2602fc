"""The teacher starts where its init model is (issue 15): known-answer tests on the synthetic fixture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recsys_coldstart.baselines.implicit_mf import ALS
from recsys_coldstart.coldstart import DropoutNet
from recsys_coldstart.data.splits import make_split
from recsys_coldstart.distill import TwoTowerTeacher
from recsys_coldstart.towers.base import tower_validation_plan, warm_mask
from recsys_coldstart.train import score_factors

ONE = dict(hidden=(32,), n_epochs=1, patience=None, random_state=0, device="cpu")


def _no_features(split):
    parts = {k: dataclasses.replace(getattr(split, k), user_features=None, item_features=None)
             for k in ("train", "val", "test", "support", "source")}
    return dataclasses.replace(split, **parts)


def test_teacher_before_training_scores_val_as_its_init_model(synthetic):
    # Known answer: an ALS model scored on val with the tower models' plan, against the teacher
    # initialised from it before its first step (wider than ALS: zero-padded, same dot products).
    # Without features a row without train interactions has no content path: zero in both.
    s = _no_features(make_split(synthetic, "warm", random_state=0))
    als = ALS(dim=16, random_state=0, num_threads=1).fit(s.train)
    wu, wi = warm_mask(s.train.user_items, 1), warm_mask(s.train.user_items, 0)
    U, V = als.user_factors_ * wu[:, None], als.item_factors_ * wi[:, None]
    init = score_factors(tower_validation_plan(s.train, s.val), U, V)
    t = TwoTowerTeacher(dim=32, **ONE).fit(s.train, val=s.val, init_factors=(U, V))
    assert t.val_start_.keys() == init.keys()
    for key, value in init.items():
        assert t.val_start_[key] == pytest.approx(value, abs=1e-6), key
    # early stopping counts the start: never returned worse on val than the model it came from
    assert t.val_best_["val_recall@20"] >= init["val_recall@20"] - 1e-9


def test_teacher_start_matches_init_model_with_content_map_on_item_cold(synthetic):
    # item-cold: the init model's new-item path is the content map fitted on its vectors (the
    # DropoutNet map start with the same vectors); the untrained teacher scores val exactly as it
    s = make_split(synthetic, "item-cold", random_state=0)
    als = ALS(dim=16, random_state=0, num_threads=1).fit(s.train)
    ref = DropoutNet(n_epochs=0, pref_dim=None, random_state=0).fit(s.train, val=s.val, init_factors=als)
    t = TwoTowerTeacher(dim=16, **ONE).fit(s.train, val=s.val, init_factors=als)
    for key, value in ref.val_start_.items():
        assert t.val_start_[key] == pytest.approx(value, abs=1e-6), key
    assert t.val_best_["val_recall@20"] >= t.val_start_["val_recall@20"]
    assert t.kept_start_ == (t.best_epoch_ == 0)


def test_random_start_keeps_the_former_behaviour(synthetic):
    # content_init="random": random MLPs on top of the IDs, so the start is not the init model
    s = _no_features(make_split(synthetic, "warm", random_state=0))
    als = ALS(dim=16, random_state=0, num_threads=1).fit(s.train)
    t = TwoTowerTeacher(dim=16, content_init="random", **ONE).fit(s.train, val=s.val, init_factors=als)
    init = score_factors(tower_validation_plan(s.train, s.val), als.user_factors_, als.item_factors_)
    assert abs(t.val_start_["val_ndcg@20"] - init["val_ndcg@20"]) > 1e-4
    assert np.isfinite(t.val_best_["val_ndcg@20"])
