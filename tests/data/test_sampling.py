"""BPR triples and uniform negative sampling."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.data.sampling import (
    NegativeSampler,
    bpr_triples,
    iter_bpr_batches,
    sample_negatives,
)
from recsys_coldstart.exceptions import DataError


@pytest.fixture
def matrix():
    rng = np.random.default_rng(0)
    m = sp.random(60, 40, density=0.3, format="csr", random_state=1, dtype=np.float32)
    m.data[:] = 1
    # a very dense user (39 of 40 items) and an empty one
    m = m.tolil()
    m[0, :] = 1
    m[0, 7] = 0
    m[1, :] = 0
    m = m.tocsr()
    m.eliminate_zeros()
    return m, rng


def test_negatives_are_never_positives(matrix):
    m, _ = matrix
    users = np.repeat(np.arange(60), 5)
    neg = sample_negatives(m, users, n_neg=3, random_state=0)
    assert neg.shape == (300, 3) and neg.dtype == np.int64
    dense = m.toarray()
    assert not dense[users[:, None], neg].any()
    assert np.all(neg[users == 0] == 7)  # the only negative of the dense user


def test_negatives_are_uniform():
    m = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
    neg = sample_negatives(m, np.zeros(20000, np.int64), random_state=0)[:, 0]
    freq = np.bincount(neg, minlength=5) / len(neg)
    assert freq[0] == 0 and np.allclose(freq[1:], 0.25, atol=0.02)


def test_is_positive(matrix):
    m, _ = matrix
    s = NegativeSampler(m)
    r, c = m.nonzero()
    assert s.is_positive(r, c).all()
    dense = m.toarray()
    uu, ii = np.meshgrid(np.arange(60), np.arange(40), indexing="ij")
    assert np.array_equal(s.is_positive(uu.ravel(), ii.ravel()), dense.ravel() > 0)


def test_full_user_raises():
    m = sp.csr_matrix(np.ones((2, 3), np.float32))
    with pytest.raises(DataError, match="every item"):
        sample_negatives(m, np.array([1]))
    with pytest.raises(DataError, match="out of range"):
        sample_negatives(m, np.array([5]))


def test_bpr_pairs_one_epoch(matrix):
    m, _ = matrix
    u, i, j = bpr_triples(m, random_state=0)
    assert len(u) == m.nnz
    dense = m.toarray()
    assert dense[u, i].all() and not dense[u, j].any()
    # "pairs": every positive exactly once per epoch
    assert len(set(zip(u.tolist(), i.tolist(), strict=True))) == m.nnz


def test_bpr_users_mode(matrix):
    m, _ = matrix
    u, i, j = bpr_triples(m, n_samples=5000, mode="users", random_state=0)
    dense = m.toarray()
    assert dense[u, i].all() and not dense[u, j].any()
    assert 1 not in set(u.tolist())  # users without positives are never drawn
    counts = np.bincount(u, minlength=60)[m.getnnz(1) > 0]
    assert counts.min() > 0.4 * counts.mean()  # users drawn uniformly, not by degree


def test_determinism(matrix):
    m, _ = matrix
    a = bpr_triples(m, random_state=3)
    b = bpr_triples(m, random_state=np.random.default_rng(3))
    c = bpr_triples(m, random_state=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2], c[2])


def test_batches_cover_epoch(matrix):
    m, _ = matrix
    batches = list(iter_bpr_batches(m, 64, random_state=0))
    assert all(len(b[0]) == 64 for b in batches[:-1]) and 0 < len(batches[-1][0]) <= 64
    assert sum(len(b[0]) for b in batches) == m.nnz
    with pytest.raises(ValueError):
        next(iter_bpr_batches(m, 0))


def test_empty_matrix():
    with pytest.raises(DataError, match="no positives"):
        bpr_triples(sp.csr_matrix((3, 3), dtype=np.float32))
