"""Portable provenance: no machine paths in commands, provenance once per cell, capped cells flagged."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_coldstart.base import BaseRecommender
from recsys_coldstart.bench import parse_suite, read_results, run_suite
from recsys_coldstart.cli.registry import model_classes
from recsys_coldstart.evaluate.results import (
    CELL_FORMAT,
    cell_document,
    flatten_records,
    portable_command,
    portable_text,
    to_records,
)

REPO = Path(__file__).resolve().parents[2]
SYN = {"n_users": 120, "n_items": 80, "mean_ratings": 12}


def test_command_names_data_as_env_var_and_repo_paths_relative(tmp_path, monkeypatch):
    data = tmp_path / "somewhere" / "data"
    data.mkdir(parents=True)
    monkeypatch.setenv("RECSYS_COLDSTART_DATA", str(data))
    cmd = portable_command(["coldstart", "bench", str(REPO / "benchmarks" / "suites" / "ml100k.toml"),
                            "--data-dir", str(data), f"--out={REPO / 'benchmarks' / 'results' / 'x'}",
                            str(data / "ml-100k" / "u.data"), "--seed", "3"])
    assert cmd == ("coldstart bench benchmarks/suites/ml100k.toml --data-dir $RECSYS_COLDSTART_DATA "
                   "--out=benchmarks/results/x $RECSYS_COLDSTART_DATA/ml-100k/u.data --seed 3")
    assert str(tmp_path) not in cmd and str(REPO) not in cmd
    # a data folder given relative to the working folder is recognised too, and a string command works
    monkeypatch.chdir(data.parent / "..")
    assert portable_command("python x.py --data-dir somewhere/data") == "python x.py --data-dir $RECSYS_COLDSTART_DATA"
    # idempotent: a portable command stays as it is
    assert portable_command(cmd) == cmd


def test_explicit_data_dir_and_home(tmp_path, monkeypatch):
    monkeypatch.delenv("RECSYS_COLDSTART_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "someone"))
    other = tmp_path / "datasets"
    cmd = portable_command(["run", "--data-dir", str(other / "ml-1m"), str(tmp_path / "home" / "someone" / "out")],
                           data_dir=other)
    assert cmd == "run --data-dir $RECSYS_COLDSTART_DATA/ml-1m ~/out"
    text = portable_text(f'File "{REPO}/recsys_coldstart/bench/cells.py", line 3; {other}/x', data_dirs=[other])
    assert text == 'File "recsys_coldstart/bench/cells.py", line 3; $RECSYS_COLDSTART_DATA/x'


def test_cell_document_round_trip_keeps_every_record():
    df = pd.DataFrame([("m", "d", "warm", "warm", metric, k, 0.1 * k, 0) for metric in ("ndcg", "recall")
                       for k in (10, 20)], columns=["model", "dataset", "split", "segment", "metric", "k", "value",
                                                    "seed"])
    recs = to_records(df, config={"dim": 8}, command="x", extra={"cell": "c1", "status": "ok"})
    recs[0]["curve"] = [1.0, 0.5]
    doc = cell_document(recs)
    assert doc["format"] == CELL_FORMAT and doc["cell"]["id"] == "c1"
    assert set(doc["provenance"]) == {"config", "command", "versions", "machine", "device"}
    assert all("command" not in r and "versions" not in r for r in doc["records"])
    assert doc["records"][0]["curve"] == [1.0, 0.5] and "curve" not in doc["records"][1]
    back = flatten_records(json.loads(json.dumps(doc)))
    assert back == json.loads(json.dumps(recs))


@dataclass(frozen=True)
class SlowConfig:
    n_epochs: int = 50
    random_state: int | None = 0


class Slow(BaseRecommender):
    """Toy iterative model that reports every epoch (so a time cap can stop it)."""

    config_class = SlowConfig

    def fit(self, train, *, val=None, callback=None):
        self.item_scores_ = train.item_degrees().astype(np.float32)
        for epoch in range(self.config.n_epochs):
            if callback is not None and callback(epoch, {"loss": 1.0 / (epoch + 1)}):
                break
        return self

    def score(self, user_idx, item_idx=None):
        s = self.item_scores_ if item_idx is None else self.item_scores_[item_idx]
        return np.tile(s, (len(np.atleast_1d(user_idx)), 1))


def test_provenance_once_per_cell_and_capped_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_COLDSTART_DATA", str(tmp_path / "data"))
    models = model_classes({"slow": Slow})
    suite = parse_suite({"name": "p", "seeds": [0], "datasets": [{"name": "synthetic", "splits": ["warm"],
                                                                 "options": SYN}],
                         "models": [{"name": "popularity"},
                                    {"name": "slow", "label": "slow-capped", "max_train_seconds": 0.0},
                                    {"name": "slow", "config": {"n_epochs": 3}}]}, models=models)
    run_suite(suite, tmp_path / "out", models=models,
              command=["coldstart", "bench", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    cells = sorted((tmp_path / "out" / "cells").glob("*.json"))
    assert len(cells) == 3
    for f in cells:
        doc = json.loads(f.read_text())
        assert set(doc) == {"format", "cell", "provenance", "records"}
        assert {"config", "command", "versions", "machine", "device", "git_commit"} <= set(doc["provenance"])
        assert doc["provenance"]["command"].startswith("coldstart bench --data-dir $RECSYS_COLDSTART_DATA --out ")
        assert str(tmp_path / "data") not in f.read_text()
        for r in doc["records"]:  # stored once: no record repeats the provenance
            assert not {"config", "command", "versions", "machine", "device", "git_commit"} & set(r)
    df = read_results(tmp_path / "out")
    assert {"model", "dataset", "split", "segment", "metric", "k", "value", "seed", "config", "command",
            "versions", "cell", "status"} <= set(df.columns)
    met = df[df.record_type == "metric"]
    capped = met[met.model == "slow-capped"]
    assert capped.capped.all() and (capped.n_epochs_run == 1).all() and (capped.max_train_seconds == 0.0).all()
    assert not met[met.model == "slow"].capped.any() and (met[met.model == "slow"].n_epochs_run == 3).all()
    # the report marks the capped row wherever it appears
    from recsys_coldstart.report import build_report, load_records, to_markdown

    md = to_markdown(build_report(load_records(tmp_path / "out")))
    assert "slow-capped (capped at 0 s)" in md
    assert "| slow (capped" not in md and "| slow |" in md


def test_old_records_lists_still_read(tmp_path):
    df = pd.DataFrame([("m", "d", "warm", "warm", "ndcg", 20, 0.3, 0)],
                      columns=["model", "dataset", "split", "segment", "metric", "k", "value", "seed"])
    path = tmp_path / "old.json"
    path.write_text(json.dumps(to_records(df, command="x", extra={"status": "ok"})))
    got = read_results(tmp_path)
    assert got.value.tolist() == pytest.approx([0.3]) and got.command.tolist() == ["x"]
