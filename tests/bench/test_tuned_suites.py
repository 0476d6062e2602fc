"""Tuning inside suites (issue 12): `tune = {trials, timeout_s}` tunes on val once per dataset /
split / model (sqlite storage beside the results, resumable), then runs the best config on every
seed; records say `tuned: {...}` or `tuned: null`."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna")

from recsys_coldstart.bench import parse_suite, read_results, run_suite  # noqa: E402
from recsys_coldstart.cli.registry import model_classes  # noqa: E402
from recsys_coldstart.exceptions import DataError  # noqa: E402

SYN = {"n_users": 150, "n_items": 100, "mean_ratings": 15}


def _doc(**over):
    doc = {"name": "tuned", "seeds": [0, 1], "tune": {"trials": 3, "timeout_s": 120},
           "datasets": [{"name": "synthetic", "splits": ["warm"], "options": SYN}],
           "models": [{"name": "popularity"}, {"name": "itemknn"},
                      {"name": "lightgcn", "config": {"n_epochs": 3, "eval_every": 1, "batch_size": 1024}},
                      {"name": "als", "label": "als-default", "tune": False, "config": {"num_threads": 1}}]}
    doc.update(over)
    return doc


def test_tuned_suite_runs_the_best_config_on_every_seed(tmp_path):
    models = model_classes()
    suite = parse_suite(_doc(), models=models)
    assert suite.models[1].tune.trials == 3 and suite.models[1].tune.budget() == "3 trials / 120 s"
    assert suite.models[3].tune is None
    out = tmp_path / "res"
    s = run_suite(suite, out, models=models)
    assert not s.failed and len(s.ok) == 8
    df = read_results(out)
    m = df[df.record_type == "metric"]
    by = {mdl: g for mdl, g in m.groupby("model")}
    assert set(by["popularity"].tuning) == {"no-parameters"} and by["popularity"].tuned.isna().all()
    assert set(by["als-default"].tuning) == {"default"} and by["als-default"].tuned.isna().all()
    for mdl in ("itemknn", "lightgcn"):
        t = by[mdl].tuned.iloc[0]
        assert set(by[mdl].tuning) == {"tuned"} and t["trials"] == 3 and t["timeout_s"] == 120
        assert t["budget"] == "3 trials / 120 s" and isinstance(t["best_params"], dict)
        assert t["best_value"] >= t["default_value"]  # the default was trial 0: a tuned row never loses on val
        best = json.loads((out / "tune" / f"synthetic__warm__{mdl}.best.json").read_text())
        assert (out / "tune" / f"synthetic__warm__{mdl}.db").is_file()
        # both seeds ran the study's best config
        for cfg in by[mdl].drop_duplicates("cell").config:
            assert all(cfg[k] == v for k, v in best["best_config"].items() if k in cfg)
        assert by[mdl].seed.nunique() == 2


def test_resumed_suite_reuses_finished_studies(tmp_path, monkeypatch):
    models = model_classes()
    suite = parse_suite(_doc(models=[{"name": "itemknn"}]), models=models)
    out = tmp_path / "res"
    run_suite(suite, out, models=models, only="*__s0")
    import recsys_coldstart.tune.study as study

    def fail(*a, **k):
        raise AssertionError("a finished study was run again")

    monkeypatch.setattr(study, "tune", fail)
    s = run_suite(suite, out, models=models)  # seed 1 only: the study's outcome is read back
    assert s.ok == ["synthetic__warm__itemknn__s1"] and not s.failed


def test_tune_table_errors():
    models = model_classes()
    with pytest.raises(DataError, match="tune has unknown keys"):
        parse_suite(_doc(tune={"trails": 3}), models=models)
    with pytest.raises(DataError, match="tune.trials must be >= 1"):
        parse_suite(_doc(tune={"trials": 0}), models=models)
    with pytest.raises(DataError, match="metric must look like"):
        parse_suite(_doc(tune={"trials": 2, "metric": "ndcg"}), models=models)


def test_a_resumed_student_cell_distils_from_the_tuned_teacher(tmp_path, monkeypatch):
    # the teacher's cell is skipped on resume: the student's teacher is refitted with the teacher's
    # tuned config read back from its finished study, not silently with the suite's default
    import recsys_coldstart.bench.runner as runner

    models = model_classes()
    tower = {"n_epochs": 1, "dim": 8, "hidden": [8], "batch_size": 512}
    doc = _doc(seeds=[0], tune={"trials": 3, "timeout_s": 120},
               datasets=[{"name": "synthetic", "splits": ["item-cold"], "options": SYN}],
               models=[{"name": "teacher", "config": tower},
                       {"name": "student", "teacher": "teacher", "config": tower}])
    suite = parse_suite(doc, models=models)
    out = tmp_path / "res"
    assert not run_suite(suite, out, models=models).failed
    best = json.loads(next((out / "tune").glob("*teacher.best.json")).read_text())["best_config"]
    next((out / "cells").glob("*student*")).unlink()
    made = []
    real = runner.make_model

    def recording(cls, config, **kw):
        made.append((cls.__name__, dict(config)))
        return real(cls, config, **kw)

    monkeypatch.setattr(runner, "make_model", recording)
    assert not run_suite(suite, out, models=models).failed
    teacher_configs = [c for name, c in made if name == "TwoTowerTeacher"]
    assert teacher_configs and all(c[k] == v for c in teacher_configs for k, v in best.items())
