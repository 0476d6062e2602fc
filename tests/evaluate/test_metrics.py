"""Metrics against hand-computed cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.evaluate.metrics import (
    coverage_at_k,
    hitrate_at_k,
    hits_matrix,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)


def test_hits_matrix_marks_truth_items():
    top = np.array([[3, 1, 0], [2, 4, 1]])
    truth = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1]], np.float32))
    h = hits_matrix(top, truth)
    assert h.tolist() == [[False, True, True], [False, True, False]]


def test_hits_matrix_ignores_padding():
    top = np.array([[-1, 0]])
    truth = sp.csr_matrix(np.array([[1, 0]], np.float32))
    assert hits_matrix(top, truth).tolist() == [[False, True]]
    # -1 never matches, even a truth item in the last column (the sentinel's neighbour)
    top = np.array([[-1, 1, -1], [-1, -1, -1]])
    truth = sp.csr_matrix(np.array([[0, 1], [1, 1]], np.float32))
    assert hits_matrix(top, truth).tolist() == [[False, True, False], [False, False, False]]


def test_recall_precision_hitrate_by_hand():
    hits = np.array([[False, True, True], [False, False, False]])
    n_truth = np.array([4, 2])
    np.testing.assert_allclose(recall_at_k(hits, n_truth, 3), [2 / 4, 0])
    np.testing.assert_allclose(recall_at_k(hits, n_truth, 1), [0, 0])
    np.testing.assert_allclose(precision_at_k(hits, n_truth, 3), [2 / 3, 0])
    np.testing.assert_allclose(hitrate_at_k(hits, n_truth, 2), [1, 0])


def test_ndcg_by_hand():
    # hits at ranks 1 and 2 (0-based), 4 truth items, k = 3: IDCG over min(3, 4) = 3 positions
    hits = np.array([[False, True, True]])
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    np.testing.assert_allclose(ndcg_at_k(hits, np.array([4]), 3), [dcg / idcg])
    # a single truth item at rank 0 is a perfect ranking
    np.testing.assert_allclose(ndcg_at_k(np.array([[True, False]]), np.array([1]), 2), [1.0])
    # ideal DCG uses min(k, |truth|): one truth item found at rank 1 -> 1/log2(3)
    np.testing.assert_allclose(ndcg_at_k(np.array([[False, True]]), np.array([1]), 2), [1 / np.log2(3)])


def test_mrr_by_hand():
    hits = np.array([[False, False, True], [True, True, False], [False, False, False]])
    np.testing.assert_allclose(mrr_at_k(hits, np.array([1, 2, 1]), 3), [1 / 3, 1, 0])


def test_coverage():
    top = np.array([[0, 1], [1, 2]])
    assert coverage_at_k(top, 10, 2) == pytest.approx(0.3)
    assert coverage_at_k(top, 10, 1) == pytest.approx(0.2)


def test_k_out_of_range_raises():
    with pytest.raises(ValueError):
        recall_at_k(np.zeros((1, 2), bool), np.array([1]), 3)
