"""The one top-k: padding rule, stable ties, candidates, and every consumer following the same rule."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_coldstart.retrieval import PAD_ID, EmbeddingIndex, topk


def check_rule(scores, k, excluded, ids, vals):
    """The rule, checked row by row against a slow sort (ties may come in any order)."""
    b, n = scores.shape
    width = min(k, n)
    assert ids.shape == vals.shape == (b, width)
    for r in range(b):
        adm = np.flatnonzero(~excluded[r])
        m = min(width, len(adm))
        np.testing.assert_array_equal(vals[r, :m], np.sort(scores[r, adm])[::-1][:m].astype(vals.dtype))
        got = ids[r, :m]
        assert len(set(got)) == m and not excluded[r, got].any()  # distinct, never excluded
        np.testing.assert_array_equal(scores[r, got], vals[r, :m])  # each id carries its score
        assert (ids[r, m:] == PAD_ID).all() and np.isneginf(vals[r, m:]).all()  # padding last


def test_padding_rule_when_fewer_than_k_remain():
    scores = np.array([[0.3, 0.9, 0.1, 0.5, 0.7]], np.float32)
    exclude = sp.csr_matrix(np.array([[0, 1, 1, 0, 1]], np.float32))
    ids, vals = topk(scores, 4, exclude=exclude)
    assert ids.tolist() == [[3, 0, PAD_ID, PAD_ID]]
    assert vals[0, :2].tolist() == pytest.approx([0.5, 0.3])
    assert np.isneginf(vals[0, 2:]).all()
    assert ids.dtype == np.int64 and vals.dtype == np.float32
    # width is min(k, n_cols); every item excluded -> all padding, never an excluded id
    ids, vals = topk(scores, 10, exclude=sp.csr_matrix(np.ones((1, 5), np.float32)))
    assert ids.shape == (1, 5) and (ids == PAD_ID).all() and np.isneginf(vals).all()


def test_only_excluded_items_are_dropped():
    """An item scored -inf is still returned when it is not excluded (exact path drops nothing else)."""
    scores = np.array([[-np.inf, 1.0, -np.inf, 2.0]], np.float32)
    exclude = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 4))
    ids, vals = topk(scores, 4, exclude=exclude)
    assert ids.tolist() == [[3, 1, 0, PAD_ID]]
    assert np.isneginf(vals[0, 2:]).all()


def test_candidates_and_exclude_with_padding():
    scores = np.array([[0.1, 0.9, 0.5], [0.4, 0.2, 0.3]], np.float32)
    cand = np.array([4, 7, 9])
    ex = sp.csr_matrix(([1.0, 1.0, 1.0, 1.0], ([0, 0, 1, 1], [7, 9, 4, 2])), shape=(2, 10))
    ids, vals = topk(scores, 3, exclude=ex, candidates=cand)
    assert ids.tolist() == [[4, PAD_ID, PAD_ID], [9, 7, PAD_ID]]
    np.testing.assert_allclose(vals[:, :1], [[0.1], [0.3]])
    assert np.isneginf(vals[0, 1:]).all() and np.isneginf(vals[1, 2])


def test_ties_keep_torch_topk_order():
    """Documented tie rule: torch.topk's order (not index order, see the module notes)."""
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, (20, 300)).astype(np.float32)
    ex = sp.random(20, 300, density=0.1, format="csr", random_state=4, dtype=np.float32)
    ids, vals = topk(scores, 15, exclude=ex)
    masked = torch.from_numpy(scores.copy())
    masked[torch.from_numpy(ex.toarray() != 0)] = -torch.inf
    want_vals, want_ids = torch.topk(masked, 15, dim=1)
    np.testing.assert_array_equal(ids, want_ids.numpy())
    np.testing.assert_array_equal(vals, want_vals.numpy())


def test_rule_holds_on_random_ties_exclusions_and_inf():
    rng = np.random.default_rng(0)
    for trial in range(200):
        b, n, k = rng.integers(1, 6), rng.integers(1, 30), rng.integers(1, 35)
        scores = rng.integers(-3, 3, (b, n)).astype(np.float32)  # many ties
        if trial % 3 == 0:
            scores[rng.random((b, n)) < 0.2] = -np.inf
        excluded = rng.random((b, n)) < rng.random()
        ex = sp.csr_matrix(excluded) if trial % 2 else excluded  # sparse or dense mask
        ids, vals = topk(scores, k, exclude=ex)
        check_rule(scores, k, excluded, ids, vals)


def test_batch_equals_single_rows():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(6, 40)).astype(np.float32)
    scores[:, ::5] = 0.25  # ties
    ex = sp.random(6, 40, density=0.5, format="csr", random_state=2, dtype=np.float32)
    ids, vals = topk(scores, 25, exclude=ex)
    for r in range(6):
        i1, v1 = topk(scores[r : r + 1], 25, exclude=ex[r])
        np.testing.assert_array_equal(i1[0], ids[r])
        np.testing.assert_array_equal(v1[0], vals[r])


def test_inputs_left_untouched_unless_overwrite():
    scores = np.arange(12, dtype=np.float32).reshape(2, 6)
    before = scores.copy()
    ex = sp.csr_matrix(np.eye(2, 6, dtype=np.float32))
    topk(scores, 3, exclude=ex)
    np.testing.assert_array_equal(scores, before)
    t = torch.from_numpy(before.copy())
    ids_t, _ = topk(t, 3, exclude=ex)
    np.testing.assert_array_equal(t.numpy(), before)
    assert ids_t.tolist() == topk(before, 3, exclude=ex)[0].tolist()
    topk(scores, 3, exclude=ex, overwrite=True)
    assert np.isneginf(scores[0, 0])
    ro = before.copy()
    ro.flags.writeable = False
    assert topk(ro, 2)[0].tolist() == [[5, 4], [5, 4]]
    # float64 scores keep their precision
    assert topk(before.astype(np.float64), 2)[1].dtype == np.float64


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="2-D"):
        topk(np.zeros(4), 2)
    with pytest.raises(ValueError, match="exclude"):
        topk(np.zeros((2, 4)), 2, exclude=sp.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="candidates"):
        topk(np.zeros((2, 4)), 2, candidates=np.arange(3))
    with pytest.raises(ValueError, match="k must be"):
        topk(np.zeros((2, 4)), -1)


def heavy_exclusion(n_queries, n_items, n_left, seed=0):
    """Exclude all but ``n_left`` random items per row."""
    rng = np.random.default_rng(seed)
    mask = np.ones((n_queries, n_items), bool)
    for r in range(n_queries):
        mask[r, rng.choice(n_items, n_left, replace=False)] = False
    return sp.csr_matrix(mask.astype(np.float32))


@pytest.mark.parametrize("backend", ["exact", "flat", "ivf", "hnsw"])
def test_every_index_backend_pads_the_same_way(backend):
    rng = np.random.default_rng(4)
    items = rng.normal(size=(200, 8)).astype(np.float32)
    queries = rng.normal(size=(12, 8)).astype(np.float32)
    exclude = heavy_exclusion(12, 200, n_left=6)
    index = EmbeddingIndex(items, backend=backend, device="cpu", nlist=4, nprobe=4, hnsw_m=8, ef_search=256)
    ids, scores = index.search(queries, 10, exclude=exclude)
    assert ids.shape == (12, 10)
    want, want_scores = topk(queries @ items.T, 10, exclude=exclude)
    for r in range(12):
        valid = ids[r] >= 0
        assert not set(ids[r][valid]) & set(exclude[r].indices)  # never an excluded id
        assert (ids[r][valid.sum():] == PAD_ID).all() and np.isneginf(scores[r][~valid]).all()  # padding last
        assert valid.sum() <= 6
    if backend in ("exact", "flat"):  # exact searches: the same six items, then padding
        np.testing.assert_array_equal(ids, want)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


def test_popularity_recommend_pads_under_heavy_exclude(synthetic):
    from recsys_coldstart.baselines import Popularity

    model = Popularity().fit(synthetic)
    n_items = synthetic.n_items
    exclude = heavy_exclusion(5, n_items, n_left=3)
    ids, scores = model.recommend(np.arange(5), k=10, exclude=exclude)
    assert ids.shape == (5, 10)
    assert (ids[:, 3:] == PAD_ID).all() and np.isneginf(scores[:, 3:]).all()
    for r in range(5):
        assert sorted(ids[r, :3]) == sorted(np.flatnonzero(exclude[r].toarray()[0] == 0))
    ids1, _ = model.recommend(2, k=10, exclude=exclude[2])
    np.testing.assert_array_equal(ids1, ids[2])


def test_tower_model_recommend_pads_like_every_model(synthetic):
    """Tower models serve through EmbeddingIndex; they follow the same rule as Popularity."""
    from recsys_coldstart.distill import TwoTowerTeacher

    model = TwoTowerTeacher(dim=8, hidden=(8,), n_epochs=1, patience=None, device="cpu", random_state=0)
    model.fit(synthetic)
    exclude = heavy_exclusion(5, synthetic.n_items, n_left=3)
    ids, scores = model.recommend(np.arange(5), k=10, exclude=exclude)
    assert (ids[:, 3:] == PAD_ID).all() and np.isneginf(scores[:, 3:]).all()
    want, _ = topk(model.score(np.arange(5)), 10, exclude=exclude)  # the base-class path
    np.testing.assert_array_equal(ids, want)
    ids_new, sc_new = model.recommend_new_users(exclude, k=10)
    assert (ids_new[:, 3:] == PAD_ID).all() and np.isneginf(sc_new[:, 3:]).all()
