"""Optuna tuning: search space, pruning from the epoch callback, storage resume, bench-ready TOML."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from recsys_coldstart.base import BaseRecommender  # noqa: E402
from recsys_coldstart.bench import load_suite, read_results, run_suite  # noqa: E402
from recsys_coldstart.cli.registry import model_classes  # noqa: E402
from recsys_coldstart.data import make_split, make_synthetic  # noqa: E402
from recsys_coldstart.evaluate import rank_and_score  # noqa: E402
from recsys_coldstart.exceptions import DataError  # noqa: E402
from recsys_coldstart.tune import parse_metric, tune, tune_records, write_best_toml  # noqa: E402

SYN = {"n_users": 200, "n_items": 120, "mean_ratings": 20}


@dataclass(frozen=True)
class NoisyPopConfig:
    noise: float = 2.0
    n_epochs: int = 3
    random_state: int | None = 0


class NoisyPop(BaseRecommender):
    """Toy tunable model: popularity z-score plus per-user noise of size ``noise``.

    Less noise ranks better, so TPE should move ``noise`` down; every epoch reports
    ``val_ndcg@20`` to the callback, which is what the pruner watches.
    """

    config_class = NoisyPopConfig
    epochs_seen: list[int] = []

    def fit(self, train, *, val=None, callback=None):
        rng = np.random.default_rng(self.config.random_state)
        pop = train.item_degrees().astype(np.float32)
        self.pop_ = (pop - pop.mean()) / (pop.std() + 1e-9)
        self.noise_ = rng.normal(0, 1, (train.n_users, train.n_items)).astype(np.float32)
        self.n_items_ = train.n_items
        self.epochs_run_ = 0
        for epoch in range(self.config.n_epochs):
            self.epochs_run_ = epoch + 1
            if callback is None:
                continue
            logs = {"loss": self.config.noise}
            if val is not None:
                truth = val.user_items
                users = np.flatnonzero(np.diff(truth.indptr) > 0)
                res = rank_and_score(lambda r, users=users: self.score(users[r]), truth[users],
                                     exclude=train.user_items[users], candidates=None, ks=(20,))
                logs["val_ndcg@20"] = float(res[("ndcg", 20)].mean())
            if callback(epoch, logs):
                break
        NoisyPop.epochs_seen.append(self.epochs_run_)
        return self

    def score(self, user_idx, item_idx=None):
        s = self.pop_[None, :] + self.config.noise * self.noise_[np.asarray(user_idx)]
        return s if item_idx is None else s[:, item_idx]

    @classmethod
    def search_space(cls, trial):
        return {"noise": trial.suggest_float("noise", 0.0, 3.0)}


@pytest.fixture(scope="module")
def split():
    return make_split(make_synthetic(**SYN, random_state=0), "warm", random_state=0)


def test_tune_three_trials_writes_a_suite_bench_runs(split, tmp_path):
    res = tune(NoisyPop, split, n_trials=3, random_state=0, prune=False)
    assert len(res.study.trials) == 3 and res.n_complete == 3
    vals = [t.value for t in res.study.trials]
    assert res.best_value == max(vals)
    assert set(res.best_params) == {"noise"} and res.best_config["noise"] == res.best_params["noise"]
    assert res.default_value is not None and res.test_value is not None
    path = write_best_toml(res, tmp_path / "best.toml", model="noisypop", dataset="synthetic", split_kind="warm",
                           dataset_options=SYN, seeds=(0,))
    suite = load_suite(path, models=model_classes({"noisypop": NoisyPop}))
    assert suite.models[0].config["noise"] == pytest.approx(res.best_params["noise"])
    out = tmp_path / "bench"
    s = run_suite(suite, out, models=model_classes({"noisypop": NoisyPop}))
    assert s.ok == ["synthetic__warm__noisypop-tuned__s0"] and not s.failed
    df = read_results(out)
    assert (df.model == "noisypop-tuned").all()
    recs = tune_records(res, model="noisypop", dataset="synthetic", split="warm", seed=0)
    assert {(r["variant"], r["which"]) for r in recs} == {("default", "val"), ("tuned", "val"), ("default", "test"),
                                                         ("tuned", "test")}
    assert recs[0]["trial_states"] == ["COMPLETE"] * 3


def test_pruning_from_the_epoch_callback(split):
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(study_name="p", storage=storage, direction="maximize")
    study.enqueue_trial({"noise": 0.0})
    study.enqueue_trial({"noise": 3.0})  # worse than the first at every epoch: pruned at once
    NoisyPop.epochs_seen.clear()
    res = tune(NoisyPop, split, n_trials=2, storage=storage, study_name="p", n_startup_trials=1, n_warmup_steps=0,
               evaluate_default=False, evaluate_test=False)
    states = [t.state for t in res.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert NoisyPop.epochs_seen == [3, 1]  # the pruned fit stopped after its first epoch
    assert res.best_params == {"noise": 0.0} and res.n_pruned == 1


def test_resume_from_sqlite_storage(split, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    r1 = tune(NoisyPop, split, n_trials=2, storage=url, evaluate_default=False, evaluate_test=False)
    assert len(r1.study.trials) == 2
    first = [t.params for t in r1.study.trials]
    r2 = tune(NoisyPop, split, n_trials=3, storage=url, evaluate_default=False, evaluate_test=False)
    assert len(r2.study.trials) == 3  # only the missing trial ran
    assert [t.params for t in r2.study.trials[:2]] == first


def test_errors():
    assert parse_metric("NDCG@20") == ("ndcg", 20)
    with pytest.raises(DataError):
        parse_metric("ndcg")
    from recsys_coldstart.baselines.popularity import Popularity

    with pytest.raises(DataError, match="search_space"):
        tune(Popularity, None, n_trials=1)


def test_cli_tune(tmp_path):
    from recsys_coldstart.cli import main

    out = tmp_path / "best.toml"
    rc = main(["tune", "--model", "popularity", "--dataset", "synthetic", "--trials", "1", "--out", str(out)])
    assert rc == 2 and not out.exists()  # popularity has nothing to tune: a one-line error


class NoisyPopWorseSpace(NoisyPop):
    """Its search space only holds configs noisier than the default (noise 2.0): the default wins."""

    @classmethod
    def search_space(cls, trial):
        return {"noise": trial.suggest_float("noise", 2.5, 3.0)}


def test_default_is_trial_zero_and_a_worse_tuned_config_is_not_best(split, tmp_path):
    res = tune(NoisyPopWorseSpace, split, n_trials=4, random_state=0, prune=False)
    first = res.study.trials[0]
    # noise 2.0 lies outside this space: trial 0 fits the base config alone (no params)
    assert first.user_attrs["variant"] == "default" and first.params == {} and not first.user_attrs["in_space"]
    assert res.default_won and res.best_config == {} and res.best_params == {}
    assert res.best_value == res.default_value == first.value
    assert res.test_value == res.default_test_value
    text = write_best_toml(res, tmp_path / "best.toml", model="noisypop", dataset="synthetic", split_kind="warm").read_text()
    assert "the default config won" in text and "noise =" not in text
    # a space that can beat the default: the written config is the tuned one, and it is better on val
    res2 = tune(NoisyPop, split, n_trials=4, random_state=0, prune=False)
    assert res2.study.trials[0].user_attrs["variant"] == "default" and res2.study.trials[0].params == {"noise": 2.0}
    assert res2.best_value >= res2.default_value
    assert not res2.default_won or res2.best_config["noise"] == 2.0


def test_resumed_study_draws_new_parameters_and_says_so(split, tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    lines: list[str] = []
    r1 = tune(NoisyPop, split, n_trials=4, storage=url, evaluate_test=False, echo=lines.append)
    assert lines == [] and r1.n_resumed == 0
    first = [t.params["noise"] for t in r1.study.trials]
    r2 = tune(NoisyPop, split, n_trials=8, storage=url, evaluate_test=False, echo=lines.append)
    assert len(r2.study.trials) == 8 and r2.n_resumed == 4
    assert len(lines) == 1 and lines[0].startswith(f"resuming study {r1.study.study_name} with 4 finished trials")
    new = [t.params["noise"] for t in r2.study.trials[4:]]
    assert not set(new) & set(first)  # the re-seeded sampler repeats none of the first session's draws
    assert sum(t.user_attrs.get("variant") == "default" for t in r2.study.trials) == 1  # default once


class Interrupting(NoisyPop):
    """Raises KeyboardInterrupt (Ctrl-C) in the fit of its third trial."""

    calls: list[int] = []

    def fit(self, train, *, val=None, callback=None):
        Interrupting.calls.append(1)
        if len(Interrupting.calls) == 3:
            raise KeyboardInterrupt
        return super().fit(train, val=val, callback=callback)


def test_ctrl_c_ends_quietly_and_the_study_resumes(split, tmp_path, capsys):
    from recsys_coldstart.tune import TuneInterrupted

    url = f"sqlite:///{tmp_path / 'study.db'}"
    Interrupting.calls.clear()
    with pytest.raises(TuneInterrupted) as info:
        tune(Interrupting, split, n_trials=5, storage=url, evaluate_test=False)
    assert info.value.n_finished == 2 and isinstance(info.value, KeyboardInterrupt)
    out = capsys.readouterr()
    assert "Traceback" not in out.out and "Traceback" not in out.err
    res = tune(Interrupting, split, n_trials=5, storage=url, evaluate_test=False)
    states = [t.state.name for t in res.study.trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert res.n_resumed == 2


def test_cli_tune_every_registered_model_is_accepted(tmp_path):
    """`coldstart tune` runs for a model of each family on a small synthetic split."""
    from recsys_coldstart.cli import main

    for model, cfg in (("ease", "{}"), ("itemknn", "{}"),
                       ("lightgcn", '{"n_epochs": 2, "eval_every": 1, "batch_size": 1024}')):
        out = tmp_path / f"{model}.toml"
        rc = main(["tune", "--model", model, "--dataset", "synthetic", "--trials", "2", "--config", cfg,
                   "--out", str(out), "--no-progress"])
        assert rc == 0 and out.exists(), model


def test_cli_tune_interrupt_is_one_line(tmp_path, monkeypatch, capsys):
    import recsys_coldstart.tune as tune_pkg
    from recsys_coldstart.cli import main
    from recsys_coldstart.tune import TuneInterrupted

    def stop(*a, **k):
        raise TuneInterrupted("s", 3)

    monkeypatch.setattr(tune_pkg, "tune", stop)
    rc = main(["tune", "--model", "ease", "--dataset", "synthetic", "--trials", "2", "--out",
               str(tmp_path / "b.toml"), "--storage", f"sqlite:///{tmp_path / 's.db'}", "--no-progress"])
    out = capsys.readouterr()
    assert rc == 130 and "Traceback" not in out.out + out.err
    assert "interrupted: study 's' has 3 finished trials; run the same command to resume it" in out.err


def test_a_base_config_field_fixes_that_parameter(split):
    res = tune(NoisyPop, split, n_trials=3, random_state=0, prune=False, base_config={"noise": 0.5},
               evaluate_test=False)
    assert all(t.params == {} for t in res.study.trials)  # nothing left to search
    assert all(t.user_attrs["config"] == {"noise": 0.5} for t in res.study.trials)


def test_cli_tune_on_an_own_table_fixes_set_fields_and_writes_a_suite_that_reads_the_same_table(tmp_path,
                                                                                               monkeypatch):
    import tomllib

    from recsys_coldstart.cli import main
    from recsys_coldstart.evaluate.results import read_cell_records

    rng = np.random.default_rng(0)
    rows = [(u, i, int(rng.integers(1, 6))) for u in range(80) for i in rng.choice(60, 12, replace=False)]
    (tmp_path / "r.csv").write_text("user,item,rating\n" + "".join(f"u{u},i{i},{r}\n" for u, i, r in rows))
    monkeypatch.chdir(tmp_path)
    rc = main(["tune", "--model", "als", "--interactions", "r.csv", "--rating-col", "rating", "--threshold", "3",
               "--trials", "2", "--set", "n_epochs=3", "--no-progress", "--out", "best.toml"])
    assert rc == 0
    suite = tomllib.loads((tmp_path / "best.toml").read_text())
    options = suite["datasets"][0]["options"]
    assert options["interactions"] == "r.csv" and options["threshold"] == 3  # the same table, the same rule
    assert suite["models"][0]["config"]["n_epochs"] == 3  # a --set field is fixed in every trial
    recs = json.loads((tmp_path / "best_tune.json").read_text())
    assert recs and all(r["threshold"] == 3.0 and r["rating_col"] == "rating" for r in recs)
    assert main(["bench", "best.toml", "--out", "res", "--no-progress"]) == 0
    recs = [r for f in (tmp_path / "res/cells").glob("*.json") for r in read_cell_records(f)]
    assert recs and all(r["threshold"] == 3.0 for r in recs)
    # an unknown field is refused with the valid ones named
    assert main(["tune", "--model", "als", "--interactions", "r.csv", "--set", "nope=1", "--trials", "1"]) == 2


@pytest.mark.parametrize("strategy", ["score", "rank"])
def test_a_tuned_student_strategy_round_trips_through_best_toml(strategy, tmp_path):
    # the student's search space returns a strategy object; the written suite stores it as a
    # {kind = ..., <fields>} table and bench rebuilds the same object from it
    from recsys_coldstart.cli.registry import distill_strategy, model_class
    from recsys_coldstart.tune.study import make_model, suite_toml

    strat = distill_strategy(strategy, temperature=2.5, top_k=10)
    text = suite_toml(model="student", dataset="synthetic", split_kind="item-cold",
                      config={"lam": 0.3, "distill": strat})
    assert f'kind = "{strategy}"' in text
    (tmp_path / "best.toml").write_text(text)
    config = load_suite(tmp_path / "best.toml").models[0].config
    model = make_model(model_class("student"), config, seed=0)
    assert model.config.distill == strat and model.config.lam == 0.3
    with pytest.raises(ValueError, match="unknown distillation kind 'nope'"):
        make_model(model_class("student"), {"distill": {"kind": "nope"}}, seed=0)


def test_student_study_in_sqlite_storage_keeps_every_trial(tmp_path):
    # the student's space draws a strategy object: a trial's stored config must be JSON, or every
    # non-default trial fails in a persistent (suite) study
    from recsys_coldstart.cli.registry import model_class

    s = make_split(make_synthetic(n_users=120, n_items=90, mean_ratings=12, random_state=0), "item-cold",
                   random_state=0)
    res = tune(model_class("student"), s, n_trials=3, storage=f"sqlite:///{tmp_path / 'st.db'}", random_state=0,
               base_config={"n_epochs": 1, "dim": 8, "hidden": (8,)}, evaluate_test=False, prune=False)
    assert res.n_failed == 0 and res.n_complete == 3
    from recsys_coldstart.tune.study import make_model

    make_model(model_class("student"), res.best_config, seed=0)  # the stored config rebuilds the model
