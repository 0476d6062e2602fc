"""The feature-only student starts at the teacher distilled in closed form (issue 15): known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_coldstart.data.splits import make_split
from recsys_coldstart.distill import Student
from recsys_coldstart.io import load_model, save_model
from recsys_coldstart.towers.base import warm_mask
from recsys_coldstart.towers.blocks import principal_basis, score_basis

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
    # Known answer: teacher item vectors V = X B; a student as wide as the teacher whose content
    # map is ridge only (tiny ridge) starts with item vectors V for every item: the warm ones
    # keep the teacher's, the cold ones (never trained) get the map's exact estimate; users at the
    # fold-in (E^T E + r I)^-1 mean_{j in H_u} e_j over the warm items.
    u, v, x = _linear_teacher(item_cold)
    st = Student(**MAP, dim=12, content_ridge=1e-6, content_blend=0.0).fit(item_cold.train, teacher=(u, v))
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


def test_narrower_map_start_keeps_the_teachers_best_rank_dim_scores(item_cold):
    # a student narrower than the teacher maps onto the score basis of the warm users and items:
    # its start item vectors are V P (the best rank-dim approximation of the scores), cold items included
    u, v, _ = _linear_teacher(item_cold, width=12)
    st = Student(**MAP, dim=4, content_ridge=1e-6, content_blend=0.0).fit(item_cold.train, teacher=(u, v))
    R = item_cold.train.user_items.tocsr()
    warm = np.flatnonzero(warm_mask(R, 0))
    active = np.flatnonzero(np.diff(R.indptr) > 0)
    want = v @ score_basis(u[active], v[warm], 4)
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


def test_score_basis_keeps_a_low_rank_score_matrix_and_beats_principal_directions():
    # Known answer: scores of rank 3 in a 10-wide layout are kept exactly at width 3 (items V P,
    # users by least squares on V P); with users that use the item directions unevenly, the score
    # basis approximates U V^T better at width 2 than the items' own principal directions.
    rng = np.random.default_rng(0)
    v = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))
    u = rng.normal(size=(150, 10))
    s = u @ v.T
    e = v @ score_basis(u, v, 3)
    users = np.linalg.lstsq(e, s.T, rcond=None)[0].T
    np.testing.assert_allclose(users @ e.T, s, atol=1e-8 * np.abs(s).max())
    v = rng.normal(size=(200, 6)) * np.array([3.0, 2.5, 2.0, 0.3, 0.2, 0.1])
    u = rng.normal(size=(150, 6)) * np.array([0.05, 0.05, 0.05, 4.0, 4.0, 4.0])
    s = u @ v.T

    def err(p):
        e = v @ p
        fit = np.linalg.lstsq(e, s.T, rcond=None)[0].T @ e.T
        return np.linalg.norm(fit - s)

    assert err(score_basis(u, v, 2)) < 0.5 * err(principal_basis(v, 2))
    np.testing.assert_allclose(score_basis(u, v, 8), np.eye(6, 8))  # wider: identity padded


def test_map_start_gives_new_items_the_content_maps_knn_estimate(item_cold):
    # Known answer: with the k-NN part alone (content_blend=1) a student as wide as the teacher starts
    # every cold item at the similarity-weighted mean of its feature neighbours' teacher vectors,
    # i.e. exactly a ContentMap fitted on the warm items' scaled features and teacher vectors.
    from recsys_coldstart.towers.blocks import ContentMap

    u, v, x = _linear_teacher(item_cold)
    st = Student(**MAP, dim=12, content_blend=1.0).fit(item_cold.train, teacher=(u, v))
    R = item_cold.train.user_items.tocsr()
    warm = warm_mask(R, 0)
    want = ContentMap.fit(x[warm], v[warm], blend=1.0).transform(x[~warm])
    np.testing.assert_allclose(st.item_factors_[~warm], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    np.testing.assert_allclose(st.item_factors_[warm], v[warm], rtol=1e-5, atol=1e-6)  # the memory
    assert st.item_memory_.shape == (item_cold.train.n_items, 12)
    # new items through embed_items (features alone) get the same vectors as the known cold ones
    new = st.embed_items(item_cold.train.item_features.values[np.flatnonzero(~warm)[:7]])
    np.testing.assert_allclose(new, st.item_factors_[np.flatnonzero(~warm)[:7]], rtol=1e-4, atol=1e-5)


def test_map_start_chooses_its_content_map_on_val(item_cold):
    u, v, _ = _linear_teacher(item_cold)
    st = Student(**MAP, dim=8).fit(item_cold.train, val=item_cold.val, teacher=(u, v))
    scores = st.item_cmap_val_
    assert {"blend_0.0", "blend_1.0", "history_1.0"} <= set(scores)
    best = max(scores, key=scores.get)
    if best.startswith("blend_"):
        assert float(st.item_cmap_blend_) == float(best.split("_")[1])
    else:
        assert float(st.item_cmap_hist_weight_) == float(best.split("_")[1])
    # before training the student scores val exactly as the chosen option did
    assert st.val_start_["val_recall@20"] == pytest.approx(scores[best], abs=1e-9)


def test_keep_teacher_widens_the_student_only_as_far_as_the_teacher_needs(item_cold):
    # Known answers: a teacher whose scores have rank 4 is kept exactly at width 4, so even
    # keep_teacher=0.999 stays at dim=4; a full-rank 12-d teacher needs more than 4 dims for
    # 0.999 of its val score (the ladder is 4, 8, then the teacher's 12), and a tiny share keeps 4.
    rng = np.random.default_rng(1)
    u, v, _ = _linear_teacher(item_cold, width=12)
    low = (v @ rng.normal(size=(12, 4)) @ rng.normal(size=(4, 12))).astype(np.float32)
    st = Student(**MAP, dim=4, keep_teacher=0.999, fold_in_prior=1e-9).fit(
        item_cold.train, val=item_cold.val, teacher=(u, low))
    assert st.dim_ == 4 and st.item_factors_.shape[1] == 4
    assert st.width_val_["4"] == pytest.approx(st.width_val_["12"], abs=1e-9)  # nothing lost at width 4
    wide = Student(**MAP, dim=4, keep_teacher=0.999).fit(item_cold.train, val=item_cold.val, teacher=(u, v))
    ref = max(wide.teacher_val_, wide.width_val_["12"])
    assert wide.width_val_["4"] < 0.999 * ref
    assert wide.dim_ in (8, 12) and wide.item_factors_.shape[1] == wide.dim_
    assert wide.dim_ == 12 or wide.width_val_["8"] >= 0.999 * ref
    assert Student(**MAP, dim=4, keep_teacher=1e-6).fit(item_cold.train, val=item_cold.val,
                                                        teacher=(u, v)).dim_ == 4
    with pytest.raises(ValueError, match="keep_teacher"):
        Student(keep_teacher=0.0)


def test_a_widened_student_round_trips(item_cold, tmp_path):
    u, v, _ = _linear_teacher(item_cold, width=12)
    st = Student(**MAP, dim=4, keep_teacher=0.999).fit(item_cold.train, val=item_cold.val, teacher=(u, v))
    assert st.dim_ > st.config.dim  # widened past the config's dim
    loaded = load_model(save_model(st, tmp_path / "wide-student"))
    assert loaded.dim_ == st.dim_
    users = np.arange(20)
    np.testing.assert_allclose(loaded.score(users), st.score(users), rtol=1e-5, atol=1e-6)
    feats = item_cold.train.item_features.values[:5]
    np.testing.assert_allclose(loaded.embed_items(feats), st.embed_items(feats), rtol=1e-5, atol=1e-6)
