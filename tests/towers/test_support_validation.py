"""Tower models validate a user-cold split's cold val users the way the test scores them: on
the items they revealed (``fit(..., support=split.support)``), not from their features alone."""

from __future__ import annotations

import types

import numpy as np
import pytest

from recsys_coldstart.baselines.implicit_mf import ALS
from recsys_coldstart.coldstart import DropoutNet
from recsys_coldstart.data.splits import make_split
from recsys_coldstart.distill import Student
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.towers.base import VAL_MAX_USERS, support_rows
from recsys_coldstart.train.validation import split_fit_kwargs

FAST = dict(dim=16, hidden=(16,), item_ids=True, n_epochs=2, patience=None, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def cold_split():
    from recsys_coldstart.data import make_synthetic

    data = make_synthetic(n_users=300, n_items=200, mean_ratings=25, random_state=0)
    s = make_split(data, "user-cold", random_state=0, n_support=3)
    assert len(s.val_users) <= VAL_MAX_USERS  # every val user is scored, as in evaluate()
    return s


def test_kept_state_validates_exactly_as_evaluate_scores_val(cold_split):
    # Known answer: the val logs of the kept state equal evaluate(..., which="val") on the
    # cold-user segment, which folds each val user in from their support and excludes it.
    s = cold_split
    st = Student(**FAST).fit(s.train, val=s.val, support=s.support)
    res = evaluate(st, s, which="val", segments=["cold-user"])
    assert st.val_best_["val_ndcg@20"] == pytest.approx(metric_value(res, "ndcg", 20, "cold-user"), abs=1e-6)
    assert st.val_best_["val_recall@20"] == pytest.approx(metric_value(res, "recall", 20, "cold-user"), abs=1e-6)


def test_without_support_val_is_the_features_only_path(cold_split):
    s = cold_split
    with_support = Student(**FAST).fit(s.train, val=s.val, support=s.support)
    features_only = Student(**FAST).fit(s.train, val=s.val)
    # the same weights start both fits (seeded); only what validation scores differs
    assert with_support.val_start_ != features_only.val_start_
    res = evaluate(features_only, s, which="val", segments=["cold-user"])
    assert features_only.val_best_["val_ndcg@20"] != pytest.approx(metric_value(res, "ndcg", 20, "cold-user"),
                                                                   abs=1e-6)


def test_preference_models_take_support_too(cold_split):
    s = cold_split
    als = ALS(dim=8, random_state=0, num_threads=1).fit(s.train)
    m = DropoutNet(n_epochs=1, patience=None, random_state=0, device="cpu").fit(
        s.train, val=s.val, init_factors=als, support=s.support)
    res = evaluate(m, s, which="val", segments=["cold-user"])
    assert m.val_best_["val_ndcg@20"] == pytest.approx(metric_value(res, "ndcg", 20, "cold-user"), abs=1e-6)


def test_split_fit_kwargs_names_support_only_where_it_is_used(cold_split, synthetic):
    s = cold_split
    assert split_fit_kwargs(Student(**FAST), s)["support"] is s.support
    assert split_fit_kwargs(ALS(dim=8), s) == {}  # ALS.fit has no support parameter
    warm = make_split(synthetic, "warm", random_state=0)
    assert split_fit_kwargs(Student(**FAST), warm) == {}  # nothing revealed


def test_support_rows_keep_cold_users_only_and_check_the_vocabulary(cold_split):
    s = cold_split
    rev = support_rows(s.train, s.val, s.support)
    warm = np.diff(s.train.user_items.tocsr().indptr) > 0
    assert rev.nnz == s.support.nnz and not rev[warm].nnz
    assert support_rows(s.train, None, s.support) is None
    cut = s.support.user_items[:, :-1]
    other = types.SimpleNamespace(user_items=cut, nnz=cut.nnz)  # another vocabulary
    with pytest.raises(ValueError, match="support has shape"):
        support_rows(s.train, s.val, other)
