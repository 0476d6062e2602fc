"""The one validation: which users, which items, several metrics from one ranking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_coldstart.evaluate.metrics import METRIC_FUNCTIONS, hits_matrix
from recsys_coldstart.train import score_factors, validation_plan


def _mats():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0],
                                    [0, 0, 0, 0, 0],
                                    [1, 0, 1, 0, 0],
                                    [0, 1, 1, 0, 0]], np.float32))
    val = sp.csr_matrix(np.array([[0, 0, 1, 0, 0],
                                  [1, 0, 0, 0, 0],
                                  [0, 0, 0, 0, 0],
                                  [1, 0, 0, 1, 0]], np.float32))
    return train, val


def test_users_need_history_unless_asked_and_train_items_are_excluded():
    train, val = _mats()
    plan = validation_plan(train, val)
    np.testing.assert_array_equal(plan.users, [0, 3])  # user 1 has no train rows, user 2 no val
    assert plan.candidates is None and (plan.exclude != train[[0, 3]]).nnz == 0
    np.testing.assert_array_equal(validation_plan(train, val, need_history=False).users, [0, 1, 3])
    assert validation_plan(train, sp.csr_matrix(train.shape, dtype=np.float32)) is None


def test_item_cold_rule_ranks_among_cold_items_only():
    train, _ = _mats()
    val = sp.csr_matrix(([1.0, 1.0], ([0, 3], [3, 4])), shape=train.shape)  # items 3 and 4 never trained
    plan = validation_plan(train, val)
    np.testing.assert_array_equal(plan.candidates, [3, 4])
    assert plan.exclude is None
    assert validation_plan(train, val, cold_items=False).candidates is None


def test_max_users_first_or_seeded_random():
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((50, 30)) < 0.3).astype(np.float32))
    val = sp.csr_matrix((rng.random((50, 30)) < 0.1).astype(np.float32))
    everyone = validation_plan(train, val).users
    np.testing.assert_array_equal(validation_plan(train, val, max_users=10, sample_seed=None).users, everyone[:10])
    a = validation_plan(train, val, max_users=10, sample_seed=3).users
    np.testing.assert_array_equal(a, validation_plan(train, val, max_users=10, sample_seed=3).users)
    assert len(a) == 10 and np.all(np.diff(a) > 0) and set(a) <= set(everyone)


def test_one_ranking_gives_ndcg_and_recall_equal_to_a_direct_computation():
    rng = np.random.default_rng(1)
    train = sp.csr_matrix((rng.random((40, 25)) < 0.3).astype(np.float32))
    val = sp.csr_matrix((rng.random((40, 25)) < 0.15).astype(np.float32))
    U, V = rng.normal(size=(40, 4)).astype(np.float32), rng.normal(size=(25, 4)).astype(np.float32)
    plan = validation_plan(train, val, ks=(5, 10))
    logs = score_factors(plan, U, V)
    assert set(logs) == {"val_ndcg@5", "val_ndcg@10", "val_recall@5", "val_recall@10"}
    s = U[plan.users] @ V.T
    s[train[plan.users].toarray() > 0] = -np.inf
    ids = np.argsort(-s, axis=1, kind="stable")[:, :10]
    hits = hits_matrix(ids, plan.truth)
    n = np.diff(plan.truth.indptr)
    for m in ("ndcg", "recall"):
        for k in (5, 10):
            np.testing.assert_allclose(logs[f"val_{m}@{k}"], METRIC_FUNCTIONS[m](hits, n, k).mean(), rtol=1e-12)
    # torch factors give the same numbers
    import torch

    t = score_factors(plan, torch.from_numpy(U), torch.from_numpy(V))
    for key, value in logs.items():
        np.testing.assert_allclose(t[key], value, rtol=1e-6)
