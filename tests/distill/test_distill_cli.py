"""``coldstart distill`` end to end on the synthetic dataset (tiny epochs)."""

from __future__ import annotations

from recsys_coldstart.baselines.implicit_mf import ALS
from recsys_coldstart.cli import main
from recsys_coldstart.cli.data import get_split, load_from_options
from recsys_coldstart.io import load_model, save_model


def test_distill_command_saves_an_evaluable_student(tmp_path, capsys):
    s = get_split(load_from_options("synthetic", None), "item-cold", 0, 3)
    base = ALS(dim=16, n_epochs=3, num_threads=1).fit(s.train)
    save_model(base, tmp_path / "als", meta={"dataset": "synthetic", "split": "item-cold", "seed": 0})
    code = main(["distill", "--dataset", "synthetic", "--split", "item-cold", "--teacher", str(tmp_path / "als"),
                 "--student-dim", "8", "--lambda", "0.5", "--loss", "score", "--epochs", "1", "--no-progress",
                 "--save", str(tmp_path / "student"), "--save-teacher", str(tmp_path / "teacher")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "teacher" in out and "student" in out and "faster" in out
    st = load_model(tmp_path / "student")
    assert st.meta_["split"] == "item-cold" and st.config.dim == 8
    # a saved TwoTowerTeacher can be the --teacher directly
    code = main(["distill", "--dataset", "synthetic", "--split", "item-cold", "--teacher", str(tmp_path / "teacher"),
                 "--student-dim", "8", "--loss", "embed", "--epochs", "1", "--no-progress",
                 "--save", str(tmp_path / "student2")])
    assert code == 0
    assert "loaded TwoTowerTeacher" in capsys.readouterr().out
    code = main(["evaluate", "--model-path", str(tmp_path / "student")])
    assert code == 0
    assert "cold-item" in capsys.readouterr().out
    assert main(["distill", "--dataset", "synthetic", "--split", "warm", "--teacher", str(tmp_path / "als"),
                 "--save", str(tmp_path / "x")]) == 2


def test_distill_user_cold_uses_the_ridge_fold_in_by_default(tmp_path, capsys):
    s = get_split(load_from_options("synthetic", None), "user-cold", 0, 3)
    base = ALS(dim=16, n_epochs=3, num_threads=1).fit(s.train)
    save_model(base, tmp_path / "als", meta={"dataset": "synthetic", "split": "user-cold", "seed": 0})
    args = ["distill", "--dataset", "synthetic", "--split", "user-cold", "--teacher", str(tmp_path / "als"),
            "--student-dim", "8", "--epochs", "1", "--no-progress"]
    assert main(args + ["--save", str(tmp_path / "st")]) == 0, capsys.readouterr().out
    st = load_model(tmp_path / "st")
    assert st.config.fold_in == "ridge" and st.config.fold_in_k == 3
    assert st.fold_in_coef_.shape[1] == st.item_factors_.shape[1]
    assert main(args + ["--fold-in", "tower", "--save", str(tmp_path / "st2")]) == 0
    assert load_model(tmp_path / "st2").config.fold_in == "tower"
    capsys.readouterr()
    assert main(args + ["--fold-in", "graph", "--save", str(tmp_path / "st3")]) == 2
    assert "--fold-in" in capsys.readouterr().err
