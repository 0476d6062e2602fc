"""Issue 14, "the first hour with your own data", through the command line on synthetic CSV files.

One test per point: visible positive rule, models that remember their data (and the leak of the
issue refused or evaluated on the right split), defaults and ``--set``, leakage refused before
training, one data option group, the small things, and a scaled-down own-data walk-through.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest

from recsys_coldstart.cli import main
from recsys_coldstart.evaluate.results import read_cell_records
from recsys_coldstart.io import read_model_meta

TINY_GRAPH = ["--set", "n_epochs=2", "--set", "eval_every=1", "--dim", "8", "--layers", "1", "--no-progress"]


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """ratings.csv (user,item,rating,timestamp; ratings 1-5), users.csv and items.csv."""
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    n_users, n_items = 120, 60
    groups_u, groups_i = rng.integers(0, 3, n_users), rng.integers(0, 3, n_items)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=18, replace=False)
        for i in items:
            liked = groups_u[u] == groups_i[i]
            rating = int(rng.integers(4, 6) if liked else rng.integers(1, 4))
            rows.append((f"u{u}", f"i{i}", rating, 1_000_000 + len(rows)))
    pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).to_csv(root / "ratings.csv", index=False)
    pd.DataFrame({"user": [f"u{u}" for u in range(n_users)], "age": rng.integers(18, 70, n_users),
                  "group": [f"g{g}" for g in groups_u]}).to_csv(root / "users.csv", index=False)
    pd.DataFrame({"item": [f"i{i}" for i in range(n_items)], "year": rng.integers(1950, 2000, n_items),
                  "genre": [f"g{g}" for g in groups_i]}).to_csv(root / "items.csv", index=False)
    return root


def _data(own, *extra):
    return ["--interactions", str(own / "ratings.csv"), "--user-features", str(own / "users.csv"),
            "--item-features", str(own / "items.csv"), *extra]


def _ndcg20(out: str, model: str, segment: str) -> float:
    """NDCG@20 of row (model, segment) of a printed results table."""
    lines = out.splitlines()
    header = next(ln for ln in lines if "ndcg@20" in ln).split()
    for ln in lines:
        parts = ln.split()
        if len(parts) >= 2 and parts[0] == model and parts[1] == segment:
            return float(parts[2 + header.index("ndcg@20")])
    raise AssertionError(f"no row {model} {segment} in:\n{out}")


# 1. no silent positives ---------------------------------------------------------------------------

def test_the_positive_rule_is_printed_and_kept_in_records(own, tmp_path, capsys):
    assert main(["evaluate", *_data(own), "--model", "popularity", "--output", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "every rated pair is a positive: no --threshold given; 5 distinct rating values seen (1 to 5)" in out
    assert main(["evaluate", *_data(own, "--threshold", "4"), "--model", "popularity",
                 "--output", str(tmp_path / "b.json")]) == 0
    assert "ratings >= 4 are positives (--threshold 4)" in capsys.readouterr().out
    for name, thr in (("a.json", None), ("b.json", 4.0)):
        recs = json.loads((tmp_path / name).read_text())
        recs = recs if isinstance(recs, list) else recs["records"]
        assert recs and all(r["threshold"] == thr and r["rating_col"] == "rating" for r in recs)


def test_a_known_dataset_states_its_rule(capsys):
    from recsys_coldstart.cli.data import DataOptions, positive_rule
    from recsys_coldstart.data import make_synthetic

    rule = positive_rule(DataOptions(dataset="ml-100k"), make_synthetic())
    assert rule == "ratings >= 4 are positives (ml-100k's rule; --threshold to change)"


# 2. saved models remember their data -----------------------------------------------------------------

def test_a_saved_model_carries_its_data_manifest_and_evaluate_reuses_it(own, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", *_data(own, "--threshold", "4"), "--model", "lightgcn", *TINY_GRAPH,
                 "--save", str(run)]) == 0
    trained = _ndcg20(capsys.readouterr().out, "lightgcn", "warm")
    meta = read_model_meta(run)
    data = meta["data"]
    assert data["interactions"] == str(own / "ratings.csv") and len(data["sha256"]) == 64
    assert data["threshold"] == 4.0 and data["columns"]["rating"] == "rating" and data["sep"] is None
    assert data["user_features"]["path"] == str(own / "users.csv") and len(data["item_features"]["sha256"]) == 64
    assert data["split"] == {"kind": "warm", "seed": 0, "k_support": 0}
    assert meta["threshold"] == 4.0 and meta["rating_col"] == "rating"
    # no data options at all: the manifest is reused
    assert main(["evaluate", "--model-path", str(run)]) == 0
    out = capsys.readouterr().out
    assert "--threshold 4" in out and _ndcg20(out, "lightgcn", "warm") == pytest.approx(trained, abs=1e-4)
    # the leak: --interactions alone used to evaluate another split (no threshold): now the
    # saved threshold is filled in and the numbers are the trained model's own
    assert main(["evaluate", "--model-path", str(run), "--interactions", str(own / "ratings.csv")]) == 0
    out = capsys.readouterr().out
    assert "--threshold 4" in out and _ndcg20(out, "lightgcn", "warm") == pytest.approx(trained, abs=1e-4)
    # explicit options that agree are fine
    assert main(["evaluate", "--model-path", str(run), *_data(own, "--threshold", "4", "--split", "warm",
                                                            "--seed", "0")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("extra, says", [
    (["--threshold", "3"], "--threshold 3 does not match"),
    (["--split", "item-cold"], "--split item-cold does not match"),
    (["--seed", "1"], "--seed 1 does not match"),
    (["--dataset", "synthetic"], "--dataset synthetic does not match"),
])
def test_evaluate_refuses_options_that_disagree_with_the_saved_data(own, tmp_path, capsys, extra, says):
    run = tmp_path / "run"
    assert main(["pretrain", *_data(own, "--threshold", "4"), "--model", "lightgcn", *TINY_GRAPH,
                 "--save", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model-path", str(run), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_evaluate_refuses_a_changed_file(own, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", *_data(own, "--threshold", "4"), "--model", "lightgcn", *TINY_GRAPH,
                 "--save", str(run)]) == 0
    changed = tmp_path / "ratings.csv"
    df = pd.read_csv(own / "ratings.csv")
    df.iloc[:-5].to_csv(changed, index=False)
    capsys.readouterr()
    assert main(["evaluate", "--model-path", str(run), "--interactions", str(changed)]) == 2
    err = capsys.readouterr().err.strip()
    assert "differs from the file" in err and len(err.splitlines()) == 1


# 3. defaults, early stop explained, --set ------------------------------------------------------------

def test_graph_defaults_suit_small_tables():
    from recsys_coldstart.pretrain import SGL, LightGCN, SimGCL, XSimGCL

    for cls in (LightGCN, SGL, SimGCL, XSimGCL):
        cfg = cls().config
        assert cfg.lr == 1e-2 and cfg.n_epochs == 300 and cfg.patience == 3 and cfg.eval_every == 5
        assert getattr(cfg, "cl_weight", 0.02) == 0.02


def test_a_run_whose_validation_falls_from_the_start_is_explained():
    from recsys_coldstart.cli.pretrain import explain_stop

    nan = np.nan
    hist = {"epoch": np.arange(1, 21, dtype=float),
            "val_ndcg@20": np.array([nan] * 4 + [0.051] + [nan] * 4 + [0.045] + [nan] * 4 + [0.040]
                                    + [nan] * 4 + [0.0362])}
    line = explain_stop(hist, best_epoch=5, n_epochs=300)
    assert line == ("val ndcg@20 fell from 0.0510 at the start (epoch 5) to 0.0362 (epoch 20): stopping; "
                    "lower lr or cl_weight (--lr, --cl-weight or --set)")
    assert explain_stop(hist, best_epoch=20, n_epochs=300) is None   # it improved
    assert explain_stop(hist, best_epoch=5, n_epochs=20) is None     # it ran its course


def test_set_parses_by_field_type_and_lists_valid_keys(own, tmp_path, capsys):
    from recsys_coldstart.cli.options import parse_set
    from recsys_coldstart.distill import StudentConfig
    from recsys_coldstart.pretrain.simgcl import SimGCLConfig

    got = parse_set(["cl_weight=0.05", "n_epochs=7", "show_progress=false", "checkpoint_dir=none"], SimGCLConfig)
    assert got == {"cl_weight": 0.05, "n_epochs": 7, "show_progress": False, "checkpoint_dir": None}
    assert parse_set(["hidden=64,32"], StudentConfig)["hidden"] == (64, 32)
    assert main(["pretrain", "--dataset", "synthetic", "--model", "simgcl", "--set", "nope=1",
                 "--save", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --set nope: unknown simgcl config key; valid keys: ") and "cl_weight" in err
    assert main(["pretrain", "--dataset", "synthetic", "--model", "simgcl", "--set", "n_epochs=many",
                 "--save", str(tmp_path / "x")]) == 2
    assert "expected an integer" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "synthetic", "--model", "als", "--set", "dim=8", "--set", "n_epochs=2"]) == 0
    assert main(["pretrain", *_data(own), "--model", "simgcl", "--cl-weight", "0.1", *TINY_GRAPH,
                 "--save", str(tmp_path / "s")]) == 0
    assert read_model_meta(tmp_path / "s")["data"]["threshold"] is None
    from recsys_coldstart.io import load_model

    assert load_model(tmp_path / "s").config.cl_weight == 0.1


# 4. leakage refused before the work ------------------------------------------------------------------

def test_distill_refuses_a_teacher_from_another_split_before_training(own, tmp_path, capsys):
    warm = tmp_path / "warm"
    assert main(["pretrain", *_data(own, "--threshold", "4"), "--model", "lightgcn", *TINY_GRAPH,
                 "--save", str(warm)]) == 0
    capsys.readouterr()
    t0 = time.perf_counter()
    code = main(["distill", "--teacher", str(warm), "--split", "item-cold", "--epochs", "1", "--student-dim", "8",
                 "--no-progress", "--save", str(tmp_path / "st")])
    secs = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and secs < 20
    assert "was trained on the warm split (seed 0)" in err and "--allow-leakage" in err and "val/test pairs" in err
    assert not (tmp_path / "st").exists()
    # with --allow-leakage it runs, warning
    assert main(["distill", "--teacher", str(warm), "--split", "item-cold", "--epochs", "1", "--student-dim", "8",
                 "--no-progress", "--allow-leakage", "--save", str(tmp_path / "st")]) == 0
    assert "warning:" in capsys.readouterr().err


def test_distill_from_a_teacher_of_the_same_split_is_leak_free(own, tmp_path, capsys):
    ic = tmp_path / "ic"
    assert main(["pretrain", *_data(own, "--threshold", "4"), "--split", "item-cold", "--model", "lightgcn",
                 *TINY_GRAPH, "--save", str(ic)]) == 0
    assert "warm hold-out of the training" in capsys.readouterr().out
    # the data, threshold, features and seed come from the teacher's manifest
    assert main(["distill", "--teacher", str(ic), "--epochs", "1", "--student-dim", "8", "--no-progress",
                 "--save", str(tmp_path / "st")]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err and "student" in out.out
    meta = read_model_meta(tmp_path / "st")
    assert meta["data"]["split"]["kind"] == "item-cold" and meta["threshold"] == 4.0


# 5. one data option group --------------------------------------------------------------------------

DATA_FLAGS = ["--dataset", "--interactions", "--user-features", "--item-features", "--user-col", "--item-col",
              "--rating-col", "--timestamp-col", "--sep", "--threshold", "--data-dir", "--seed"]


@pytest.mark.parametrize("command", ["evaluate", "split", "pretrain", "distill", "elicit", "tune"])
def test_every_data_command_takes_the_same_data_options(command, capsys):
    from typer.main import get_command

    from recsys_coldstart.cli import _register, app

    _register()
    cmd = get_command(app).commands[command]
    flags = {o for p in cmd.params for o in p.opts}
    missing = [f for f in DATA_FLAGS if f not in flags]
    assert not missing, f"{command} lacks {missing}"
    if command != "elicit":
        assert "--split" in flags and "--k-support" in flags


# 6. small things -------------------------------------------------------------------------------

def test_pretrain_help_keeps_the_config_brackets(capsys):
    assert main(["pretrain", "--help"]) == 0
    out = re.sub(r"[│\s]+", " ", capsys.readouterr().out)
    assert "[config] table" in out


def test_users_print_as_integers_and_the_split_reads_as_a_summary(own, tmp_path, capsys):
    assert main(["pretrain", *_data(own), "--model", "lightgcn", *TINY_GRAPH, "--save", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "ColdStartSplit(" not in out
    assert re.search(r"lightgcn on ratings, warm split \(seed 0\): 120 users, 60 items; positives train [\d,]+", out)
    row = next(ln for ln in out.splitlines() if ln.startswith("lightgcn ") and "warm" in ln)
    assert re.search(r" \d+$", row) and not re.search(r"\d+\.0000$", row)


def test_raw_ids_come_back_through_the_vocabulary(own):
    from recsys_coldstart.baselines import Popularity
    from recsys_coldstart.cli.data import DataOptions

    opts = DataOptions(interactions=str(own / "ratings.csv"), threshold=4)
    data = opts.load(echo=False)
    split = opts.make_split(data)
    ids, _ = Popularity().fit(split.train).recommend(np.array([0]), k=3)
    raw = split.train.items.to_id(ids[0])
    assert all(str(r).startswith("i") for r in raw)


# 8. the own-data walk-through, scaled down -----------------------------------------------------------

def test_own_data_walkthrough_scaled_down(own, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = _data(own, "--threshold", "4")
    assert main(["evaluate", *d, "--split", "user-cold", "--model", "popularity"]) == 0
    assert main(["pretrain", *d, "--split", "user-cold", "--model", "lightgcn", *TINY_GRAPH,
                 "--save", "runs/g"]) == 0
    assert main(["evaluate", "--model-path", "runs/g"]) == 0
    assert main(["distill", "--teacher", "runs/g", "--split", "user-cold", "--epochs", "1", "--student-dim", "8",
                 "--no-progress", "--save", "runs/st"]) == 0
    assert main(["evaluate", "--model-path", "runs/st"]) == 0
    # on user-cold every item is warm: a hybrid student that keeps its item IDs and learns from the
    # teacher's scores alone (student_split_defaults), unless the command line says otherwise
    cfg = json.loads((tmp_path / "runs/st/config.json").read_text())
    assert cfg["config"]["item_ids"] is True and cfg["config"]["id_dropout"] == 0.0 and cfg["config"]["lam"] == 1.0
    assert main(["distill", "--teacher", "runs/g", "--split", "user-cold", "--epochs", "1", "--student-dim", "8",
                 "--lambda", "0.3", "--no-progress", "--save", "runs/st2"]) == 0
    assert json.loads((tmp_path / "runs/st2/config.json").read_text())["config"]["lam"] == 0.3
    assert main(["elicit", *d, "--policy", "popularity", "--policy", "linucb", "--budget", "2",
                 "--output", "elicit.json"]) == 0
    suite = tmp_path / "own.toml"
    suite.write_text(f"""name = "own"
seeds = [0]
ks = [20]

[[datasets]]
name = "own"
splits = ["user-cold"]
options = {{ interactions = "{own / 'ratings.csv'}", user_features = "{own / 'users.csv'}", rating_col = "rating", threshold = 4 }}

[splits.user-cold]
kind = "user-cold"
n_support = 3

[[models]]
name = "popularity"

[[models]]
name = "feature-popularity"
""")
    assert main(["bench", str(suite), "--out", "results/own", "--no-progress"]) == 0
    for cell in (tmp_path / "results/own/cells").glob("*.json"):  # the positive rule is kept in bench records too
        recs = read_cell_records(cell)
        assert recs and all(r["threshold"] == 4.0 and r["rating_col"] == "rating" for r in recs), cell.name
    assert main(["report", "results/own", "--out", "report"]) == 0
    out = capsys.readouterr().out
    assert "ratings >= 4 are positives (--threshold 4)" in out
    assert "using the data runs/g was trained on" in out
    assert (tmp_path / "report" / "report.md").is_file()


# 7. the demo says when a result is odd ------------------------------------------------------------

def test_demo_notes_odd_results():
    from recsys_coldstart.cli.demo import odd_results

    notes = odd_results({"content-knn cold-item": 0.30, "student cold-item": 0.25},
                        {"popularity": [0.20, 0.18, 0.15], "linucb": [0.20, 0.25, 0.30]})
    assert len(notes) == 2
    assert notes[0].startswith("the student (0.2500) is below the content-KNN floor (0.3000)")
    assert notes[1].startswith("popularity asking gets worse with more questions (0.2000 -> 0.1500)")
    assert odd_results({"content-knn cold-item": 0.30, "student cold-item": 0.35}, {"linucb": [0.2, 0.3]}) == []


def test_the_progress_bar_does_not_promise_every_epoch_under_early_stopping(capsys):
    from recsys_coldstart.train import fit_loop

    scores = iter([0.5, 0.4, 0.3, 0.2, 0.1])
    res = fit_loop(lambda epoch: {"loss": 1.0}, n_epochs=1000, validate=lambda: {"val_ndcg@20": next(scores)},
                   patience=2, show_progress=True, desc="simgcl")
    err = capsys.readouterr().err
    assert res.epochs_run == 3 and res.stop_reason == "patience"
    assert "up to 1000 epochs, early stopping" in err and "/1000" not in err
