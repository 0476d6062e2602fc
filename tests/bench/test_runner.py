"""Benchmark runner: cells, records, failures, resume, curves, CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.bench import load_suite, parse_suite, read_results, suite_cells
from recsys_coldstart.bench import run_suite as _run_suite
from recsys_coldstart.cli.registry import model_classes, policy_classes
from recsys_coldstart.evaluate.results import read_cell_records
from recsys_coldstart.exceptions import DataError

SYN = {"n_users": 200, "n_items": 120, "mean_ratings": 20}
MODELS = model_classes()


def run_suite(suite, out, *, models=None, **kw):
    """The runner with the registry's classes injected (as ``coldstart bench`` does)."""
    return _run_suite(suite, out, models=model_classes(models), policies=policy_classes(), **kw)


@dataclass(frozen=True)
class CountdownConfig:
    n_epochs: int = 4
    random_state: int | None = 0


class Countdown(BaseRecommender):
    """Toy iterative model: popularity plus shrinking noise; logs a loss per epoch."""

    config_class = CountdownConfig

    def fit(self, train, *, val=None, callback=None):
        rng = np.random.default_rng(self.config.random_state)
        pop = train.item_degrees().astype(np.float32)
        self.item_scores_ = pop.copy()
        for epoch in range(self.config.n_epochs):
            self.item_scores_ = pop + rng.normal(0, 1.0 / (epoch + 1), len(pop)).astype(np.float32)
            if callback is not None and callback(epoch, {"loss": 1.0 / (epoch + 1), "val_ndcg@20": 0.1 * epoch}):
                break
        self.n_items_ = train.n_items
        return self

    def score(self, user_idx, item_idx=None):
        s = self.item_scores_ if item_idx is None else self.item_scores_[item_idx]
        return np.tile(s, (len(np.atleast_1d(user_idx)), 1))

    def score_new_users(self, observed, features=None, item_idx=None):
        return self.score(np.zeros(observed.shape[0], np.int64), item_idx)


def _suite(extra_models=()):
    return {
        "name": "t", "seeds": [0, 1],
        "datasets": [{"name": "synthetic", "splits": ["warm", "uc3"], "options": SYN}],
        "splits": {"uc3": {"kind": "user-cold", "n_support": 3}},
        "models": [{"name": "popularity"}, {"name": "popularity", "label": "broken", "config": {"bogus": 1}},
                   *extra_models],
    }


def test_runner_records_failures_and_resume(tmp_path):
    suite = parse_suite(_suite(), models=MODELS)
    cells = suite_cells(suite)
    assert len(cells) == 2 * 2 * 2  # splits x seeds x models
    s1 = run_suite(suite, tmp_path)
    assert len(s1.ok) == 4 and len(s1.failed) == 4 and not s1.skipped
    ok_file = tmp_path / "cells" / f"{s1.ok[0]}.json"
    recs = read_cell_records(ok_file)
    need = {"model", "dataset", "split", "segment", "metric", "k", "value", "seed", "config", "command", "versions",
            "machine", "device", "seconds", "peak_rss_mb", "status"}
    assert need <= set(recs[0])
    assert {r["status"] for r in recs} == {"ok"}
    ndcg = [r for r in recs if r["metric"] == "ndcg" and r["k"] == 20]
    assert ndcg and 0.0 <= ndcg[0]["value"] <= 1.0
    bad = read_cell_records(tmp_path / "cells" / f"{s1.failed[0]}.json")
    assert bad[0]["status"] == "error" and "takes no configuration" in bad[0]["error"]
    # cold-user split records carry the split's own name and segment
    df = read_results(tmp_path)
    assert set(df[df.status == "ok"].split) == {"warm", "uc3"}
    assert "cold-user" in set(df.segment.dropna())
    # resume: finished cells are skipped and untouched, failed ones are retried
    before = ok_file.stat().st_mtime_ns
    s2 = run_suite(suite, tmp_path)
    assert sorted(s2.skipped) == sorted(s1.ok) and sorted(s2.failed) == sorted(s1.failed) and not s2.ok
    assert ok_file.stat().st_mtime_ns == before
    s3 = run_suite(suite, tmp_path, resume=False, only="synthetic__warm__popularity__*")
    assert sorted(s3.ok) == ["synthetic__warm__popularity__s0", "synthetic__warm__popularity__s1"]
    # a changed cell definition (here the cutoffs) is run again on resume
    doc = _suite()
    doc["ks"] = [5]
    s4 = run_suite(parse_suite(doc, models=MODELS), tmp_path, only="synthetic__warm__popularity__s0")
    assert s4.ok == ["synthetic__warm__popularity__s0"]
    assert set(read_results(tmp_path / "cells" / "synthetic__warm__popularity__s0.json").k) == {0, 5}


def test_training_curves_and_efficiency_fields(tmp_path):
    suite = parse_suite(_suite([{"name": "countdown", "config": {"n_epochs": 3}, "splits": ["warm"]}]),
                        models=model_classes({"countdown": Countdown}))
    run_suite(suite, tmp_path, only="*countdown*", models={"countdown": Countdown})
    df = read_results(tmp_path)
    cur = df[df.record_type == "curve"]
    assert set(cur.metric) == {"loss", "val_ndcg@20"}
    loss = cur[(cur.metric == "loss") & (cur.seed == 0)].iloc[0]
    assert loss.curve == pytest.approx([1.0, 0.5, 1 / 3]) and loss.epochs == [1, 2, 3]
    met = df[df.record_type == "metric"]
    assert (met.n_params == 120).all()  # one float per item
    assert (met.latency_ms_per_1k_users > 0).all()
    assert (met.config.map(lambda c: c["random_state"]) == met.seed).all()  # the seed reaches the model


def test_time_budget_stops_training(tmp_path):
    doc = _suite([{"name": "countdown", "config": {"n_epochs": 50}}])
    doc["max_train_seconds"] = 0.0
    suite = parse_suite(doc, models=model_classes({"countdown": Countdown}))
    run_suite(suite, tmp_path, only="synthetic__warm__countdown__s0", models={"countdown": Countdown})
    rec = read_cell_records(tmp_path / "cells" / "synthetic__warm__countdown__s0.json")[0]
    assert rec["stopped_for_time"] and rec["n_epochs_run"] == 1


def test_suite_validation_errors(tmp_path):
    with pytest.raises(DataError, match="choose one of"):
        parse_suite({"datasets": ["synthetic"], "models": ["no-such-model"]}, models=MODELS)
    with pytest.raises(DataError, match="unknown top-level"):
        parse_suite({"datasets": ["synthetic"], "models": ["popularity"], "seed": 1}, models=MODELS)
    with pytest.raises(DataError, match="unknown kind"):
        parse_suite({"datasets": [{"name": "synthetic", "splits": ["tepid"]}], "models": ["popularity"]},
                    models=MODELS)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(DataError, match="invalid TOML"):
        load_suite(bad)


def test_elicitation_cells(tmp_path):
    pytest.importorskip("recsys_coldstart.elicit.replay")
    pytest.importorskip("implicit")
    doc = {"name": "e", "seeds": [0], "datasets": [{"name": "synthetic", "splits": [], "options": SYN}],
           "elicitation": [{"dataset": "synthetic", "split": "user-cold", "model": "als",
                            "model_config": {"dim": 8, "n_epochs": 2, "num_threads": 1},
                            "policies": ["random", "popularity"], "budget": 3}]}
    s = run_suite(parse_suite(doc, models=MODELS, policies=policy_classes()), tmp_path)
    assert len(s.ok) == 2 and not s.failed
    df = read_results(tmp_path)
    cur = df[(df.record_type == "elicitation") & (df.metric == "ndcg") & (df.k == 10)]
    assert sorted(cur.budget.unique()) == [0, 1, 2, 3]
    summ = df[(df.segment == "elicitation") & (df.metric == "ndcg") & (df.k == 10)]
    for pol, g in summ.groupby("model"):
        per_budget = cur[(cur.model == pol) & (cur.budget >= 1)].value.mean()
        assert g.value.iloc[0] == pytest.approx(per_budget)


def test_cli_bench_and_run_script(tmp_path):
    from recsys_coldstart.cli import main

    cfg = tmp_path / "s.toml"
    cfg.write_text('name = "cli"\nseeds = [0]\n[[datasets]]\nname = "synthetic"\nsplits = ["item-cold"]\n'
                   'options = { n_users = 150, n_items = 100, mean_ratings = 15 }\n[[models]]\nname = "popularity"\n')
    out = tmp_path / "out"
    assert main(["bench", str(cfg), "--out", str(out), "--no-progress", "--report"]) == 0
    assert (out / "cells" / "synthetic__item-cold__popularity__s0.json").is_file()
    assert (out / "report" / "report.html").is_file()
    assert main(["bench", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    run_py = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
    assert run_py.is_file()


class Pupil(Countdown):
    """Toy student: copies its teacher's item scores."""

    def fit(self, train, *, val=None, callback=None, teacher=None):
        assert teacher is not None
        self.item_scores_ = teacher.item_scores_.copy()
        self.n_items_ = train.n_items
        return self


def test_student_cells_get_the_teacher_of_their_split_and_seed(tmp_path):
    models = {"countdown": Countdown, "pupil": Pupil}
    doc = _suite([{"name": "countdown", "label": "t", "role": "teacher", "splits": ["warm"]},
                  {"name": "pupil", "label": "s", "role": "student", "teacher": "t", "splits": ["warm"]}])
    suite = parse_suite(doc, models=model_classes(models))
    run_suite(suite, tmp_path, only="synthetic__warm__[ts]__*", models=models)
    df = read_results(tmp_path)
    met = df[(df.record_type == "metric") & (df.metric == "ndcg") & (df.k == 20)]
    by = met.set_index(["model", "seed"]).value
    for seed in (0, 1):  # the student copies the teacher of its own seed, so the numbers match
        assert by[("s", seed)] == pytest.approx(by[("t", seed)])
    assert set(met.role) == {"teacher", "student"}
    # resume with the teacher done: the student refits it (same seed -> same numbers)
    (tmp_path / "cells" / "synthetic__warm__s__s0.json").unlink()
    s = run_suite(suite, tmp_path, only="synthetic__warm__[ts]__*", models=models)
    assert s.ok == ["synthetic__warm__s__s0"]
    df2 = read_results(tmp_path)
    v = df2[(df2.model == "s") & (df2.seed == 0) & (df2.metric == "ndcg") & (df2.k == 20)].value.iloc[0]
    assert v == pytest.approx(by[("s", 0)])
    with pytest.raises(DataError, match="teacher"):
        parse_suite(_suite([{"name": "pupil", "teacher": "nobody"}]), models=model_classes(models))
