"""Split functions: no leakage, cold rows / columns empty, support vs query, K, seeds, temporal order."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.data import (
    Interactions,
    check_no_leakage,
    item_cold_split,
    make_split,
    user_cold_split,
    warm_split,
)
from recsys_coldstart.exceptions import DataError


def _pairs(x: Interactions) -> set:
    r, c, _, _ = x.to_coo_arrays()
    return set(zip(r.tolist(), c.tolist(), strict=True))


def _no_timestamps(d: Interactions) -> Interactions:
    return Interactions(user_items=d.user_items, users=d.users, items=d.items, user_features=d.user_features,
                        item_features=d.item_features, name=d.name)


@pytest.mark.parametrize("kind", ["warm", "user-cold", "item-cold"])
@pytest.mark.parametrize("with_ts", [True, False])
def test_no_leakage_every_kind(synthetic, kind, with_ts):
    data = synthetic if with_ts else _no_timestamps(synthetic)
    s = make_split(data, kind, random_state=3, n_support=3)
    check_no_leakage(s)
    parts = [_pairs(p) for p in (s.train, s.val, s.test, s.support)]
    assert sum(len(p) for p in parts) == data.nnz
    assert set().union(*parts) == _pairs(data)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not parts[a] & parts[b]
    # one vocabulary everywhere
    for p in (s.train, s.val, s.test, s.support):
        assert p.users is data.users and p.items is data.items and p.shape == data.shape
    assert s.source is data and s.seed == 3


def test_warm_fractions_and_train_kept(synthetic):
    s = warm_split(synthetic, val_frac=0.1, test_frac=0.1, random_state=0)
    assert s.kind == "warm" and s.support.nnz == 0
    assert len(s.cold_users) == 0 and len(s.cold_items) == 0
    deg = synthetic.user_degrees()
    assert np.all(s.train.user_degrees()[deg > 0] >= 1)
    frac_test = s.test.nnz / synthetic.nnz
    assert 0.07 < frac_test < 0.13


def test_warm_temporal_latest_last(synthetic):
    s = warm_split(synthetic, temporal=True, random_state=0)
    tr, va, te = s.train.timestamps, s.val.timestamps, s.test.timestamps
    for u in range(synthetic.n_users):
        t_tr = tr.data[tr.indptr[u]:tr.indptr[u + 1]]
        t_va = va.data[va.indptr[u]:va.indptr[u + 1]]
        t_te = te.data[te.indptr[u]:te.indptr[u + 1]]
        if len(t_te):
            assert t_te.min() >= max(t_tr.max(initial=-np.inf), t_va.max(initial=-np.inf))
        if len(t_va):
            assert t_va.min() >= t_tr.max(initial=-np.inf)


def test_warm_temporal_needs_timestamps(synthetic):
    with pytest.raises(DataError, match="timestamps"):
        warm_split(_no_timestamps(synthetic), temporal=True)


@pytest.mark.parametrize("k", [0, 1, 3, 5, 10])
def test_user_cold_support_k_earliest(synthetic, k):
    s = user_cold_split(synthetic, n_support=k, random_state=1)
    check_no_leakage(s)
    cold = s.cold_users
    assert len(np.intersect1d(s.val_users, s.test_users)) == 0
    assert s.train.user_items[cold].nnz == 0
    assert s.support.user_items[np.setdiff1d(np.arange(synthetic.n_users), cold)].nnz == 0
    deg = synthetic.user_degrees()
    sup = s.support.user_degrees()
    assert np.array_equal(sup[cold], np.minimum(deg[cold], k))
    assert not _pairs(s.support) & (_pairs(s.val) | _pairs(s.test))
    # the support is the earliest K positives of each cold user
    ts_all, ts_sup = synthetic.timestamps, s.support.timestamps
    q = s.val.timestamps + s.test.timestamps
    for u in cold:
        sup_t = ts_sup.data[ts_sup.indptr[u]:ts_sup.indptr[u + 1]]
        q_t = q.data[q.indptr[u]:q.indptr[u + 1]]
        if len(sup_t) and len(q_t):
            assert sup_t.max() <= q_t.min()
        assert len(sup_t) + len(q_t) == ts_all.indptr[u + 1] - ts_all.indptr[u]
    # val / test queries belong to their own cold users only
    assert s.val.user_items[np.setdiff1d(np.arange(synthetic.n_users), s.val_users)].nnz == 0
    assert s.test.user_items[np.setdiff1d(np.arange(synthetic.n_users), s.test_users)].nnz == 0
    assert abs(len(cold) - 0.2 * (deg > 0).sum()) <= 1


def test_item_cold_columns_empty(synthetic):
    s = item_cold_split(synthetic, random_state=0)
    check_no_leakage(s)
    assert s.train.user_items[:, s.cold_items].nnz == 0
    assert len(np.intersect1d(s.val_items, s.test_items)) == 0
    # every val / test interaction is on a cold item of that part
    assert np.isin(s.val.user_items.indices, s.val_items).all()
    assert np.isin(s.test.user_items.indices, s.test_items).all()
    # features cover the cold items (a cold-item model needs them)
    assert s.train.item_features.n_rows == synthetic.n_items


@pytest.mark.parametrize("kind", ["warm", "user-cold", "item-cold"])
def test_determinism_under_seed(synthetic, kind):
    a = make_split(synthetic, kind, random_state=7, n_support=2)
    b = make_split(synthetic, kind, random_state=7, n_support=2)
    c = make_split(synthetic, kind, random_state=8, n_support=2)
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test), (a.support, b.support)):
        assert (x.user_items != y.user_items).nnz == 0
    assert (a.test.user_items != c.test.user_items).nnz > 0


def test_generator_random_state(synthetic):
    s = make_split(synthetic, "warm", random_state=np.random.default_rng(0))
    check_no_leakage(s)
    assert s.seed is None


def test_check_no_leakage_catches_leaks(synthetic):
    s = item_cold_split(synthetic, random_state=0)
    leaked = s.train.with_pairs(*_coo(s.train.user_items + s.test.user_items))
    from dataclasses import replace

    with pytest.raises(AssertionError):
        check_no_leakage(replace(s, train=leaked))
    with pytest.raises(AssertionError):
        check_no_leakage(replace(s, test=s.val))  # test positives lost, val counted twice


def _coo(m):
    m = sp.csr_matrix(m)
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices


def test_bad_arguments(synthetic):
    with pytest.raises(ValueError):
        warm_split(synthetic, val_frac=0.6, test_frac=0.5)
    with pytest.raises(ValueError):
        user_cold_split(synthetic, n_support=-1)
    with pytest.raises(ValueError, match="unknown split kind"):
        make_split(synthetic, "sideways")
    tiny = Interactions.from_csr(sp.csr_matrix(np.ones((2, 2))))
    with pytest.raises(DataError, match="too few"):
        user_cold_split(tiny)


# ------------------------------------------------------------ cold users left without a query (defect 7)
def _degrees_table(degrees) -> Interactions:
    rows = np.repeat(np.arange(len(degrees)), degrees)
    cols = np.concatenate([np.arange(d) for d in degrees])
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(degrees), max(degrees)))
    return Interactions.from_csr(m, name="tiny")


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_user_cold_counts_users_without_query(k, caplog):
    data = _degrees_table([1, 2, 3, 4, 5, 6, 7, 8] * 20)
    deg = data.user_degrees()
    with caplog.at_level("WARNING"):
        s = user_cold_split(data, n_support=k, random_state=0)
    for users, dropped in ((s.test_users, s.dropped_test_users), (s.val_users, s.dropped_val_users)):
        assert np.array_equal(dropped, users[deg[users] <= k])  # fewer than K+1 positives
        assert np.diff(s.test.user_items.indptr)[np.setdiff1d(s.test_users, s.dropped_test_users)].min() > 0
    note = s.coverage_note()
    if len(s.dropped_test_users) + len(s.dropped_val_users):
        assert note.startswith(f"{len(s.dropped_test_users)} of {len(s.test_users)} test and "
                               f"{len(s.dropped_val_users)} of {len(s.val_users)} val cold users")
        assert f"fewer than K+1={k + 1} positives" in note and note in caplog.text
    else:
        assert note is None and "not evaluated" not in caplog.text
    # the drop never moves users: the cold draw is the same for every K
    assert np.array_equal(s.test_users, user_cold_split(data, n_support=0, random_state=0).test_users)


def test_user_cold_with_nobody_to_evaluate_raises():
    data = _degrees_table([1, 2, 3] * 10)
    with pytest.raises(DataError, match=r"K=500 leaves no test cold user with a held-out positive.*--k-support"):
        user_cold_split(data, n_support=500, random_state=0)
    with pytest.raises(DataError, match="no test cold user"):
        make_split(data, "user-cold", n_support=3, random_state=0)


def test_other_kinds_drop_nobody(synthetic):
    for kind in ("warm", "item-cold"):
        s = make_split(synthetic, kind)
        assert len(s.dropped_test_users) == len(s.dropped_val_users) == 0 and s.coverage_note() is None


@pytest.mark.parametrize("k,n_test,n_val", [(3, 0, 0), (10, 8, 7), (20, 23, 31)])
def test_ml100k_user_cold_dropped_counts(ml100k_dir, k, n_test, n_val):
    from recsys_coldstart.data import load_dataset

    s = user_cold_split(load_dataset("ml-100k", ml100k_dir), n_support=k, random_state=0)
    assert (len(s.test_users), len(s.dropped_test_users), len(s.dropped_val_users)) == (94, n_test, n_val)
