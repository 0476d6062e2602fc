"""Distillation strategies are objects passed in (design rule 6): validated, saved, resolved by the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.cli.registry import DISTILL_STRATEGIES, distill_strategy
from recsys_coldstart.data import make_split, make_synthetic
from recsys_coldstart.distill import Student, StudentConfig
from recsys_coldstart.distill.strategies import (
    STRATEGIES,
    EmbeddingAlignment,
    RankingDistillation,
    ScoreDistillation,
    teacher_topk,
)
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.io import config_from_dict, config_to_dict, load_model, save_model


@pytest.mark.parametrize("strategy", [ScoreDistillation(temperature=2.0), RankingDistillation(top_k=7, rank_decay=2.0),
                                      EmbeddingAlignment(distance="cosine")], ids=lambda s: s.kind)
def test_strategy_round_trips_through_config_json(strategy):
    cfg = StudentConfig(distill=strategy)
    doc = config_to_dict(cfg)
    assert doc["distill"]["kind"] == strategy.kind
    assert config_from_dict(StudentConfig, doc) == cfg


def test_saved_config_with_unknown_or_bad_strategy_is_refused():
    doc = config_to_dict(StudentConfig())
    with pytest.raises(DataError, match="distill"):
        config_from_dict(StudentConfig, {**doc, "distill": {"kind": "nope"}})
    with pytest.raises(DataError, match="top_k"):
        config_from_dict(StudentConfig, {**doc, "distill": {"kind": "rank", "top_k": 0, "rank_decay": 5.0}})


@pytest.mark.parametrize("make, field", [(lambda: ScoreDistillation(temperature=0), "temperature"),
                                         (lambda: RankingDistillation(top_k=0), "top_k"),
                                         (lambda: RankingDistillation(rank_decay=-1.0), "rank_decay"),
                                         (lambda: EmbeddingAlignment(distance="l1"), "distance")])
def test_strategy_ranges_checked_at_construction(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_a_string_is_not_a_strategy():
    with pytest.raises(ValueError, match="ScoreDistillation"):
        StudentConfig(distill="rank")


def test_cli_registry_names_every_builtin_strategy():
    assert {distill_strategy(name).kind for name in DISTILL_STRATEGIES} == {cls().kind for cls in STRATEGIES}
    assert distill_strategy("score", temperature=3.0, top_k=5) == ScoreDistillation(temperature=3.0)
    assert distill_strategy("rank", temperature=3.0, top_k=5) == RankingDistillation(top_k=5)
    with pytest.raises(ValueError, match="choose one of: embed, rank, score"):
        distill_strategy("hint")


def test_teacher_topk_excludes_observed_and_cold_items():
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(8, 3)).astype(np.float32)
    import scipy.sparse as sp

    observed = sp.random(6, 8, density=0.3, random_state=0, format="csr")
    warm = np.array([0, 1, 2, 4, 5, 7])
    top = teacher_topk(U, V, observed, warm, 2)
    assert top.shape == (6, 2)
    for u in range(6):
        assert set(top[u]) <= set(warm) and not set(top[u]) & set(observed[u].indices)
        scores = U[u] @ V.T
        allowed = [i for i in warm if i not in observed[u].indices]
        assert list(top[u]) == sorted(allowed, key=lambda i: -scores[i])[:2]


def test_student_with_each_strategy_saves_and_loads(tmp_path):
    s = make_split(make_synthetic(n_users=120, n_items=80, mean_ratings=12, random_state=0), "item-cold", random_state=0)
    rng = np.random.default_rng(0)
    teacher = (rng.normal(size=(s.train.n_users, 8)).astype(np.float32),
               rng.normal(size=(s.train.n_items, 8)).astype(np.float32))
    for strategy in (ScoreDistillation(), RankingDistillation(top_k=5), EmbeddingAlignment()):
        st = Student(dim=8, hidden=(8,), n_epochs=1, patience=None, batch_size=64, device="cpu",
                     distill=strategy).fit(s.train, teacher=teacher)
        assert np.isfinite(st.history_["distill"][-1]) and st.history_["distill"][-1] > 0
        loaded = load_model(save_model(st, tmp_path / strategy.kind))
        assert loaded.config.distill == strategy
        np.testing.assert_array_equal(loaded.score(np.arange(5)), st.score(np.arange(5)))


def test_teacher_topk_never_maps_padding_to_the_last_warm_item():
    import numpy as np
    import scipy.sparse as sp

    from recsys_coldstart.distill.strategies import teacher_topk

    rng = np.random.default_rng(0)
    Ut, Vt = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    warm = np.array([0, 1, 2, 3, 4])  # item 5 is cold
    observed = sp.csr_matrix(np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.float32))
    top = teacher_topk(Ut, Vt, observed, warm, k=4)
    assert top.shape == (2, 4)
    assert set(top[0]) <= {3, 4}  # user 0 has two unseen warm items: the rest repeats the best one
    assert top[0, 2] == top[0, 0] and top[0, 3] == top[0, 0]
    assert len(set(top[1])) == 4 and 5 not in top[1]
