"""The contract every registered model keeps (design rule 8), as plain check functions.

:data:`CONFIGS` holds one small configuration per entry of
:data:`recsys_coldstart.cli.registry.MODELS` (one line per model: a new registry entry without a
row fails ``tests/test_contract.py``). Each ``check_*`` takes a :class:`Case` (the model's
name, a factory and one fitted instance on a small user-cold split) and asserts one clause:

- ``fit`` returns ``self``; ``score`` is float32 of shape (b, n_items) and agrees with
  ``score(users, items)``;
- ``recommend``: ids / scores of shape (b, k) (``(k,)`` for a scalar user), best first, never an
  ``exclude``-d item, a batch equal to its rows asked one at a time;
- determinism: two fits under the same ``random_state`` give the same scores;
- ``save_model`` -> ``load_model`` gives the same scores and recommendations;
- cold users go down the new-user path (``score_new_users`` / ``recommend_new_users`` with their
  revealed support and features);
- bad serving inputs (ids -1, n_users, 1.7, 10**12; k <= 0; wrong feature width; feature rows !=
  observed rows; NaN features; observed of the wrong width) raise ``DataError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_coldstart.cli.registry import model_class
from recsys_coldstart.data import ColdStartSplit, make_split, make_synthetic
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.io import load_model, save_model

SEED = 3
K = 5
TORCH = {"device": "cpu"}
TOWER = {"n_epochs": 2, "n_negatives": 16, "batch_size": 256, "patience": None, **TORCH}

# One row per registry entry: small configurations so the whole suite runs in seconds.
CONFIGS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "feature-popularity": {},
    "content-knn": {"n_neighbors": 20},
    "als": {"dim": 8, "n_epochs": 3, "num_threads": 1},
    "bpr": {"dim": 8, "n_epochs": 3},
    "itemknn": {"n_neighbors": 20},
    "ease": {"reg": 50.0},
    "random": {},
    "lightgcn": {"dim": 8, "n_epochs": 2, **TORCH},
    "sgl": {"dim": 8, "n_epochs": 2, **TORCH},
    "simgcl": {"dim": 8, "n_epochs": 2, **TORCH},
    "xsimgcl": {"dim": 8, "n_epochs": 2, **TORCH},
    "teacher": {"dim": 8, "hidden": (8,), "base_dim": 8, **TOWER},
    "student": {"dim": 8, "hidden": (8,), **TOWER},
    "dropoutnet": {"base_dim": 8, **TOWER},
    "heater": {"base_dim": 8, **TOWER},
    "aldi": {"base_dim": 8, **TOWER},
}

BAD_IDS = (-1, "n", 1.7, 10**12)  # "n" = the first index past the end


def make_model(name: str) -> Any:
    """An unfitted model ``name`` with its :data:`CONFIGS` row (seeded when it has a seed)."""
    cls = model_class(name)
    kwargs = dict(CONFIGS[name])
    cfg = getattr(cls, "config_class", None)
    if cfg is not None and "random_state" in {f.name for f in dataclasses.fields(cfg)}:
        kwargs.setdefault("random_state", SEED)
    return cls(**kwargs)


def contract_split() -> ColdStartSplit:
    """A small user-cold split with user and item features (cold users reveal 3 items)."""
    data = make_synthetic(n_users=150, n_items=100, random_state=0)
    return make_split(data, "user-cold", random_state=0, n_support=3)


@dataclass
class Case:
    """One model under test: its registry name, a factory, the split and one fitted instance."""

    name: str
    make: Callable[[], Any]
    split: ColdStartSplit
    model: Any

    @property
    def users(self) -> np.ndarray:
        """A few warm users (with train interactions)."""
        warm = np.flatnonzero(np.diff(self.split.train.user_items.indptr) > 0)
        return warm[:7].astype(np.int64)

    @property
    def cold(self) -> np.ndarray:
        """A few cold users (no train row; they revealed their support)."""
        return np.asarray(self.split.cold_users[:6], np.int64)

    def new_user_inputs(self, users: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """What cold ``users`` revealed: support rows (CSR) and their side features (dense)."""
        obs = sp.csr_matrix(self.split.support.user_items[users])
        feats = np.asarray(_dense(self.split.train.user_features.take(users)), np.float32)
        return obs, feats


def _dense(x: Any) -> np.ndarray:
    x = getattr(x, "matrix", x)
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def fit_case(name: str, split: ColdStartSplit) -> Case:
    """Fit ``name`` once on ``split.train`` (the contract's shared fitted model)."""
    model = make_model(name)
    out = model.fit(split.train)
    assert out is model, f"{name}: fit must return self"
    return Case(name, lambda: make_model(name), split, model)


# ------------------------------------------------------------------------------------- checks
def check_score(case: Case) -> None:
    """``score`` is float32 (b, n_items), not NaN, and ``score(users, items)`` is its columns."""
    n_items = case.split.train.n_items
    s = case.model.score(case.users)
    assert s.shape == (len(case.users), n_items) and s.dtype == np.float32
    assert not np.isnan(s).any()
    items = np.array([3, 0, n_items - 1, 7])
    np.testing.assert_allclose(case.model.score(case.users, items), s[:, items], rtol=1e-5, atol=1e-6)


def check_recommend(case: Case) -> None:
    """ids / scores (b, k) int64 / float, best first; a scalar user gives (k,)."""
    ids, scores = case.model.recommend(case.users, k=K)
    assert ids.shape == scores.shape == (len(case.users), K)
    assert np.issubdtype(ids.dtype, np.integer) and np.issubdtype(scores.dtype, np.floating)
    assert ((ids >= 0) & (ids < case.split.train.n_items)).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "scores must come best first"
    one_ids, one_scores = case.model.recommend(int(case.users[0]), k=K)
    assert one_ids.shape == one_scores.shape == (K,)


def check_exclude(case: Case) -> None:
    """No excluded item is recommended (here: every train item of the user)."""
    excl = case.split.train.user_items[case.users]
    ids, _ = case.model.recommend(case.users, k=K, exclude=excl)
    for row, u_ids in enumerate(ids):
        assert not set(u_ids[u_ids >= 0].tolist()) & set(excl[row].indices.tolist())


def check_batch_equals_single(case: Case) -> None:
    """A batch of users gets the rows each user gets alone (scores and recommendations)."""
    excl = case.split.train.user_items[case.users]
    ids, scores = case.model.recommend(case.users, k=K, exclude=excl)
    s = case.model.score(case.users)
    for row, u in enumerate(case.users):
        np.testing.assert_allclose(case.model.score(np.array([u]))[0], s[row], rtol=1e-5, atol=1e-6)
        one_ids, one_scores = case.model.recommend(np.array([u]), k=K, exclude=excl[row])
        np.testing.assert_array_equal(one_ids[0], ids[row])
        np.testing.assert_allclose(one_scores[0], scores[row], rtol=1e-5, atol=1e-6)


def check_determinism(case: Case) -> None:
    """Two fits under the same ``random_state`` give the same scores."""
    again = case.make().fit(case.split.train)
    np.testing.assert_array_equal(again.score(case.users), case.model.score(case.users))
    obs, feats = case.new_user_inputs(case.cold)
    np.testing.assert_array_equal(again.score_new_users(obs, feats), case.model.score_new_users(obs, feats))


def check_save_load(case: Case, folder: Path) -> None:
    """``save_model`` -> ``load_model``: same class, config, scores and recommendations."""
    loaded = load_model(save_model(case.model, folder))
    assert type(loaded) is type(case.model) and loaded.config == case.model.config
    np.testing.assert_array_equal(loaded.score(case.users), case.model.score(case.users))
    excl = case.split.train.user_items[case.users]
    for a, b in zip(loaded.recommend(case.users, k=K, exclude=excl),
                    case.model.recommend(case.users, k=K, exclude=excl), strict=True):
        np.testing.assert_array_equal(a, b)
    obs, feats = case.new_user_inputs(case.cold)
    np.testing.assert_array_equal(loaded.score_new_users(obs, feats), case.model.score_new_users(obs, feats))


def check_cold_users(case: Case) -> None:
    """Cold users are served from what they revealed (``score_new_users`` / ``recommend_new_users``)."""
    assert case.split.train.user_items[case.cold].nnz == 0, "cold users have no train row"
    obs, feats = case.new_user_inputs(case.cold)
    s = case.model.score_new_users(obs, feats)
    assert s.shape == (len(case.cold), case.split.train.n_items) and s.dtype == np.float32
    assert not np.isnan(s).any()
    ids, scores = case.model.recommend_new_users(obs, feats, k=K)
    assert ids.shape == scores.shape == (len(case.cold), K)
    for row, u_ids in enumerate(ids):  # what a user revealed is not recommended back
        assert not set(u_ids[u_ids >= 0].tolist()) & set(obs[row].indices.tolist())
    one_ids, _ = case.model.recommend_new_users(obs[:1], feats[:1], k=K)
    np.testing.assert_array_equal(one_ids[0], ids[0])


def check_bad_ids(case: Case) -> None:
    """User indices -1, n_users, 1.7 and 10**12 raise DataError in ``score`` and ``recommend``."""
    n = case.split.train.n_users
    for bad in BAD_IDS:
        bad = n if bad == "n" else bad
        for call in (lambda b: case.model.score(np.array([0, b])), lambda b: case.model.score(b),
                     lambda b: case.model.recommend(np.array([b]), k=K), lambda b: case.model.recommend(b, k=K)):
            with pytest.raises(DataError, match="user_idx"):
                call(bad)
    with pytest.raises(DataError, match="item_idx"):
        case.model.score(case.users, np.array([case.split.train.n_items]))


def check_bad_k(case: Case) -> None:
    """``k <= 0`` (and a non-integer k) raises DataError for known and new users."""
    obs, feats = case.new_user_inputs(case.cold)
    for k in (0, -5, 2.5):
        with pytest.raises(DataError, match="k must be"):
            case.model.recommend(case.users, k=k)
        with pytest.raises(DataError, match="k must be"):
            case.model.recommend_new_users(obs, feats, k=k)


def check_bad_features(case: Case) -> None:
    """Wrong feature width, feature rows != observed rows, NaN features and observed of the
    wrong width raise DataError (in ``score_new_users`` and ``recommend_new_users``)."""
    obs, feats = case.new_user_inputs(case.cold)
    nan = feats.copy()
    nan[0, 0] = np.nan
    wide_obs = sp.csr_matrix((obs.shape[0], obs.shape[1] + 1), dtype=np.float32)
    bad = {"columns": (obs, np.hstack([feats, feats[:, :1]])), "rows": (obs, feats[:-1]),
           "NaN": (obs, nan), "items": (wide_obs, feats)}
    for match, (o, f) in bad.items():
        with pytest.raises(DataError, match=match):
            case.model.score_new_users(o, f)
        with pytest.raises(DataError, match=match):
            case.model.recommend_new_users(o, f, k=K)


CHECKS: dict[str, Callable[..., None]] = {
    "score": check_score, "recommend": check_recommend, "exclude": check_exclude,
    "batch_equals_single": check_batch_equals_single, "determinism": check_determinism,
    "save_load": check_save_load, "cold_users": check_cold_users, "bad_ids": check_bad_ids,
    "bad_k": check_bad_k, "bad_features": check_bad_features,
}
"""Every clause of the contract, by name (``save_load`` also takes a folder)."""
