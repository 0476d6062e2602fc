"""Optuna tuning: search space, pruning from the epoch callback, storage resume, bench-ready TOML."""

from __future__ import annotations

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
