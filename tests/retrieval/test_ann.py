"""ANN at scale: IVF-PQ (+ exact re-ranking), recall-target tuning, index memory, blocked evaluation."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.evaluate.protocol import rank_and_score
from recsys_coldstart.retrieval import EmbeddingIndex
from recsys_coldstart.retrieval.index import exact_topk_ids

N_ITEMS, DIM, K = 20_000, 32, 50


@pytest.fixture(scope="module")
def mixture():
    """A Gaussian mixture (clustered like trained item embeddings) and queries from the same centres."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, DIM))
    items = centres[rng.integers(0, 64, N_ITEMS)] + 0.5 * rng.normal(size=(N_ITEMS, DIM))
    queries = centres[rng.integers(0, 64, 300)] + 0.5 * rng.normal(size=(300, DIM))
    return items.astype(np.float32), queries.astype(np.float32)


def test_ivfpq_tuned_reaches_recall_target_with_refine(mixture):
    items, queries = mixture
    index = EmbeddingIndex(items, backend="ivfpq", device="cpu", refine=10)
    report = index.tune(queries, K, target_recall=0.95)
    assert report["param"] == "nprobe" and report["reached"], report
    assert index.nprobe == report["value"]
    # the chosen value is the smallest tried that reaches the target
    recalls = [r for _, r, _ in report["curve"]]
    assert recalls[-1] >= 0.95 and all(r < 0.95 for r in recalls[:-1])
    truth = exact_topk_ids(items, queries, K)
    ids, scores = index.search(queries, K)
    hits = sum(len(np.intersect1d(a, t)) for a, t in zip(ids, truth, strict=True))
    assert hits / truth.size >= 0.95
    # refined scores are exact inner products, sorted
    np.testing.assert_allclose(scores, np.einsum("bkd,bd->bk", items[ids], queries), rtol=1e-5, atol=1e-4)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_ivfpq_without_refine_has_lower_recall_than_with(mixture):
    items, queries = mixture
    plain = EmbeddingIndex(items, backend="ivfpq", device="cpu", nprobe=64)
    refined = EmbeddingIndex(items, backend="ivfpq", device="cpu", nprobe=64, refine=10)
    exact = EmbeddingIndex(items, backend="exact", device="cpu")
    assert refined.recall_against(exact, queries, K) > plain.recall_against(exact, queries, K)


def test_hnsw_tune_sets_ef_search(mixture):
    items, queries = mixture
    index = EmbeddingIndex(items[:5000], backend="hnsw", device="cpu", hnsw_m=16, ef_construction=64)
    report = index.tune(queries, 20, target_recall=0.9)
    assert report["param"] == "ef_search" and report["reached"]
    assert index.ef_search == report["value"] >= 20


def test_memory_bytes_counts_codes_centroids_and_refine(mixture):
    items, _ = mixture
    pq = EmbeddingIndex(items, backend="ivfpq", device="cpu", refine=4)
    mem = pq.memory_bytes()
    assert pq.pq_m == DIM // 4 and pq.pq_bits == 8
    assert mem["codes"] == N_ITEMS * pq.pq_m  # 8-bit codes: one byte per sub-quantiser
    assert mem["refine"] == N_ITEMS * DIM * 4 and mem["ids"] == N_ITEMS * 8
    assert mem["centroids"] == pq.nlist * DIM * 4 + 256 * DIM * 4
    assert mem["total"] == sum(v for key, v in mem.items() if key != "total")
    no_refine = EmbeddingIndex(items, backend="ivfpq", device="cpu").memory_bytes()
    assert no_refine["refine"] == 0 and no_refine["total"] < N_ITEMS * DIM * 4 / 4


def test_invalid_ann_options_raise(mixture):
    items, queries = mixture
    with pytest.raises(ValueError, match="refine"):
        EmbeddingIndex(items, backend="ivf", refine=4)
    with pytest.raises(ValueError, match="pq_m"):
        EmbeddingIndex(items, backend="ivfpq", pq_m=5)
    with pytest.raises(ValueError, match="approximate backend"):
        EmbeddingIndex(items, backend="exact").tune(queries, 10)
    with pytest.raises(ValueError, match="target_recall"):
        EmbeddingIndex(items[:2000], backend="ivf").tune(queries, 10, target_recall=1.5)


def test_refined_ivfpq_honours_exclusion(mixture):
    items, queries = mixture
    index = EmbeddingIndex(items, backend="ivfpq", device="cpu", nprobe=32, refine=5)
    top, _ = index.search(queries[:20], 10)
    rows = np.repeat(np.arange(20), 10)
    exclude = sp.csr_matrix((np.ones(200, np.float32), (rows, top.ravel())), shape=(20, N_ITEMS))
    ids, _ = index.search(queries[:20], 10, exclude=exclude)
    for r in range(20):
        assert not set(ids[r]) & set(top[r]) and (ids[r] >= 0).all()


def test_rank_and_score_blocks_users_never_a_users_by_items_matrix():
    """Full-ranking evaluation scores ``batch_size`` users at a time: no (users x items) matrix."""
    n_users, n_items, batch = 4000, 5000, 200
    rng = np.random.default_rng(0)
    u = rng.normal(size=(n_users, 16)).astype(np.float32)
    v = rng.normal(size=(n_items, 16)).astype(np.float32)
    truth = sp.random(n_users, n_items, density=0.002, format="csr", random_state=0, dtype=np.float32)
    truth = truth[np.diff(truth.indptr) > 0]
    n_eval = truth.shape[0]
    shapes = []

    def score(rows):
        shapes.append(len(rows))
        return u[rows] @ v.T

    tracemalloc.start()
    res = rank_and_score(score, truth, exclude=None, candidates=None, ks=(20,), batch_size=batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert max(shapes) <= batch and sum(shapes) == n_eval
    assert peak < n_eval * n_items * 4 / 4, peak  # far below one full score matrix
    assert res[("recall", 20)].shape == (n_eval,)


def test_exact_topk_blocks_are_bounded_in_memory_and_give_the_same_ids(mixture):
    # a small byte budget forces one query per block: the same top-k as the default blocks (up to
    # the order of float near-ties: compare the scores at the returned ids)
    items, queries = mixture
    one = exact_topk_ids(items, queries, K, max_block_bytes=4 * len(items))
    ref = exact_topk_ids(items, queries, K)
    np.testing.assert_allclose(np.einsum("bkd,bd->bk", items[one], queries),
                               np.einsum("bkd,bd->bk", items[ref], queries), rtol=1e-5, atol=1e-5)
