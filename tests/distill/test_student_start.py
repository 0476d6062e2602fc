"""The feature-only student starts at the teacher distilled in closed form (issue 15): known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_coldstart.data.splits import make_split
from recsys_coldstart.distill import Student
from recsys_coldstart.io import load_model, save_model
from recsys_coldstart.towers.base import warm_mask
from recsys_coldstart.towers.blocks import principal_basis

MAP = dict(hidden=(16,), n_epochs=0, patience=None, random_state=0, device="cpu", fold_in="tower",
           content_init="map")


@pytest.fixture(scope="module")
def item_cold(synthetic):
    return make_split(synthetic, "item-cold", random_state=0)


def _linear_teacher(split, width=12, seed=0):
    """Teacher factors whose item vectors are exactly linear in the (scaled) item features."""
    rng = np.random.default_rng(seed)
    probe = Student(**MAP, dim=width)
    probe._init_features(split.train)
    x = probe._features(split.train.item_features.values, "item")
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    b = rng.normal(size=(x.shape[1], width))
    v = (x @ b).astype(np.float32)
    u = rng.normal(size=(split.train.n_users, width)).astype(np.float32)
    return u, v, x


def test_map_start_reproduces_a_teacher_linear_in_the_features(item_cold):
    # Known answer: teacher item vectors V = X B; a student as wide as the teacher with a tiny
    # ridge starts with item vectors V for every item, cold ones included (they never trained),
    # and users at the fold-in (E^T E + r I)^-1 mean_{j in H_u} e_j over the warm items.
    u, v, x = _linear_teacher(item_cold)
    st = Student(**MAP, dim=12, content_ridge=1e-6).fit(item_cold.train, teacher=(u, v))
    np.testing.assert_allclose(st.item_factors_, v, rtol=1e-3, atol=2e-3 * np.abs(v).max())
    R = item_cold.train.user_items.tocsr()
    warm = np.flatnonzero(warm_mask(R, 0))
    e = st.item_factors_[warm].astype(np.float64)
    gram = e.T @ e
    gram[np.diag_indices_from(gram)] += 0.1 * np.trace(gram) / 12
    users = np.flatnonzero(np.diff(R.indptr) > 0)[:30]
    bag = np.asarray(R[users].toarray(), np.float64)
    mean = (bag / bag.sum(1, keepdims=True)) @ st.item_factors_
    want = np.linalg.solve(gram, mean.T).T
    np.testing.assert_allclose(st.user_factors_[users], want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_narrower_map_start_projects_on_the_teachers_principal_directions(item_cold):
    # a student narrower than the teacher maps onto the top-dim principal directions of the warm
    # item vectors: its start item vectors are V P (the best rank-dim layout), cold items included
    u, v, _ = _linear_teacher(item_cold, width=12)
    st = Student(**MAP, dim=4, content_ridge=1e-6).fit(item_cold.train, teacher=(u, v))
    warm = np.flatnonzero(warm_mask(item_cold.train.user_items, 0))
    want = v @ principal_basis(v[warm].astype(np.float64), 4)
    np.testing.assert_allclose(st.item_factors_, want, rtol=1e-3, atol=2e-3 * np.abs(want).max())


def test_map_started_student_is_never_returned_below_its_start_on_val(item_cold, synthetic):
    from recsys_coldstart.distill import TwoTowerTeacher

    t = TwoTowerTeacher(dim=32, hidden=(32,), n_epochs=2, patience=None, random_state=0).fit(
        item_cold.train, val=item_cold.val)
    st = Student(**{**MAP, "n_epochs": 4, "patience": 4, "lr": 3e-2}, dim=16).fit(
        item_cold.train, val=item_cold.val, teacher=t)
    assert st.val_start_["val_recall@20"] > 0.0
    assert st.val_best_["val_recall@20"] >= st.val_start_["val_recall@20"] - 1e-9
    # training moved the network: the epochs' val differs from the start
    assert not np.allclose(st.history_["val_recall@20"], st.val_start_["val_recall@20"])


def test_map_student_serving_path_and_round_trip(item_cold, tmp_path):
    u, v, _ = _linear_teacher(item_cold)
    st = Student(**{**MAP, "n_epochs": 2}, dim=12).fit(item_cold.train, teacher=(u, v))
    users = np.arange(25)
    obs = item_cold.train.user_items[users].tocsr()
    fast = st.embed_users(obs, None)  # no-grad CPU serving: precomputed per-item projections
    with torch.enable_grad():  # the training path through the towers and maps
        slow = st._user_forward(obs, None).detach().numpy()
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)
    loaded = load_model(save_model(st, tmp_path / "map-student"))
    assert loaded.config.content_init == "map"
    np.testing.assert_allclose(loaded.score(users), st.score(users), rtol=1e-5, atol=1e-6)


def test_map_start_refusals(item_cold):
    with pytest.raises(ValueError, match="feature-only student"):
        Student(content_init="map", item_ids=True)
    with pytest.raises(ValueError, match="needs fit\\(..., teacher=...\\)"):
        Student(**MAP, dim=8).fit(item_cold.train)
