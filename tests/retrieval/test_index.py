"""EmbeddingIndex: exact vs faiss back ends, measured recall, exclusion, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.retrieval import BACKENDS, EmbeddingIndex

N_ITEMS, DIM, N_CLUSTERS, N_QUERIES, K = 3000, 32, 40, 200, 20


@pytest.fixture(scope="module")
def clustered():
    """Clustered random vectors (items and queries drawn around the same centres)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(N_CLUSTERS, DIM))
    items = centres[rng.integers(0, N_CLUSTERS, N_ITEMS)] + 0.4 * rng.normal(size=(N_ITEMS, DIM))
    queries = centres[rng.integers(0, N_CLUSTERS, N_QUERIES)] + 0.4 * rng.normal(size=(N_QUERIES, DIM))
    exclude = sp.random(N_QUERIES, N_ITEMS, density=0.01, format="csr", random_state=1, dtype=np.float32)
    return items.astype(np.float32), queries.astype(np.float32), exclude


@pytest.fixture(scope="module")
def exact(clustered):
    return EmbeddingIndex(clustered[0], backend="exact", device="cpu")


def test_exact_matches_numpy_topk(clustered, exact):
    items, queries, exclude = clustered
    ids, scores = exact.search(queries, K, exclude=exclude)
    full = queries @ items.T
    full[exclude.nonzero()] = -np.inf
    ref = np.argsort(-full, axis=1, kind="stable")[:, :K]
    np.testing.assert_allclose(scores, np.take_along_axis(full, ref, axis=1), rtol=1e-4, atol=1e-4)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (N_QUERIES, K)


@pytest.mark.parametrize("backend", ["ivf", "hnsw"])
def test_approximate_recall_against_exact(clustered, exact, backend):
    items, queries, exclude = clustered
    ann = EmbeddingIndex(items, backend=backend, device="cpu", nprobe=8, hnsw_m=16, ef_construction=64,
                         ef_search=64)
    recall = ann.recall_against(exact, queries, K, exclude=exclude)
    assert recall >= 0.9, f"{backend} recall@{K} = {recall:.3f}"


def test_flat_equals_exact(clustered, exact):
    items, queries, exclude = clustered
    flat = EmbeddingIndex(items, backend="flat", device="cpu")
    ids_f, sc_f = flat.search(queries, K, exclude=exclude)
    ids_e, sc_e = exact.search(queries, K, exclude=exclude)
    np.testing.assert_allclose(sc_f, sc_e, rtol=1e-4, atol=1e-4)
    assert flat.recall_against(exact, queries, K, exclude=exclude) > 0.99


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_exclusion_honoured(backend, metric):
    rng = np.random.default_rng(1)
    items = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(25, 8)).astype(np.float32)
    index = EmbeddingIndex(items, backend=backend, metric=metric, device="cpu", hnsw_m=8, ef_construction=32)
    # exclude each query's own unexcluded top-10, so the filter must reach deeper
    top, _ = EmbeddingIndex(items, metric=metric, device="cpu").search(queries, 10)
    rows = np.repeat(np.arange(25), 10)
    exclude = sp.csr_matrix((np.ones(250, np.float32), (rows, top.ravel())), shape=(25, 300))
    ids, scores = index.search(queries, 15, exclude=exclude)
    assert ids.shape == (25, 15)
    for r in range(25):
        assert not set(ids[r]) & set(top[r])
        assert (ids[r] >= 0).all()
        assert np.all(np.diff(scores[r]) <= 1e-5)


def test_uneven_exclusion_refetches_short_rows():
    """A few rows exclude far more than the block's 90th percentile: they are searched again and
    the faiss flat result still equals exact masked search."""
    rng = np.random.default_rng(3)
    items = rng.normal(size=(400, 8)).astype(np.float32)
    queries = rng.normal(size=(40, 8)).astype(np.float32)
    exact = EmbeddingIndex(items, device="cpu")
    top, _ = exact.search(queries, 160)
    n_ex = np.where(np.arange(40) < 2, 150, 1)  # two heavy rows, the rest exclude one item
    rows = np.repeat(np.arange(40), n_ex)
    cols = np.concatenate([top[r, : n_ex[r]] for r in range(40)])
    exclude = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(40, 400))
    ids_f, sc_f = EmbeddingIndex(items, backend="flat", device="cpu").search(queries, 10, exclude=exclude)
    ids_e, sc_e = exact.search(queries, 10, exclude=exclude)
    np.testing.assert_array_equal(ids_f, ids_e)
    np.testing.assert_allclose(sc_f, sc_e, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ids_e[:2], top[:2, 150:160])


def test_padding_when_too_few_items():
    items = np.eye(4, dtype=np.float32)
    index = EmbeddingIndex(items, device="cpu")
    exclude = sp.csr_matrix(np.array([[1, 1, 1, 0]], np.float32))
    ids, scores = index.search(items[:1], 3, exclude=exclude)
    assert ids[0, 0] == 3
    assert (ids[0, 1:] == -1).all() and np.isneginf(scores[0, 1:]).all()


def test_l2_scores_are_negative_squared_distances():
    rng = np.random.default_rng(2)
    items = rng.normal(size=(50, 4)).astype(np.float32)
    q = rng.normal(size=(3, 4)).astype(np.float32)
    for backend in ("exact", "flat"):
        ids, scores = EmbeddingIndex(items, backend=backend, metric="l2", device="cpu").search(q, 5)
        d2 = ((q[:, None, :] - items[ids]) ** 2).sum(-1)
        np.testing.assert_allclose(scores, -d2, rtol=1e-4, atol=1e-4)


def test_from_model_uses_item_factors(synthetic):
    from recsys_coldstart.baselines import ALS

    model = ALS(dim=8, n_epochs=2).fit(synthetic)
    index = EmbeddingIndex.from_model(model, backend="flat", device="cpu")
    users = np.arange(10)
    exclude = synthetic.user_items[users]
    ids, _ = index.search(model.user_factors_[users], 10, exclude=exclude)
    ref, _ = model.recommend(users, k=10, exclude=exclude)
    assert (ids == ref).mean() > 0.95  # same ranking up to float ties
    with pytest.raises(TypeError):
        EmbeddingIndex.from_model(object())


def test_bad_arguments():
    items = np.ones((5, 3), np.float32)
    with pytest.raises(ValueError, match="backend"):
        EmbeddingIndex(items, backend="annoy")
    with pytest.raises(ValueError, match="metric"):
        EmbeddingIndex(items, metric="dot")
    with pytest.raises(ValueError, match="query"):
        EmbeddingIndex(items, device="cpu").search(np.ones((2, 4), np.float32), 2)
