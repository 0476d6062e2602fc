"""`coldstart datasets / split / evaluate` end to end, and the CLI's error contract."""

import json

import pandas as pd
import pytest

from recsys_coldstart.cli import main


def test_no_args_shows_help(capsys):
    assert main([]) in (0, 2)
    assert "coldstart" in capsys.readouterr().out.lower() + "coldstart"


def test_evaluate_synthetic_popularity_writes_records(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["evaluate", "--dataset", "synthetic", "--split", "warm", "--model", "popularity",
                 "--output", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "ndcg@20" in text
    recs = json.loads(out.read_text())
    assert {r["segment"] for r in recs} == {"warm"}
    assert all(r["model"] == "popularity" for r in recs)


def test_split_writes_raw_ids(tmp_path):
    df = pd.DataFrame({"uid": [f"u{i % 30}" for i in range(600)],
                       "iid": [f"i{(i * 7) % 50}" for i in range(600)]}).drop_duplicates()
    f = tmp_path / "inter.csv"
    df.to_csv(f, index=False)
    code = main(["split", "--interactions", str(f), "--user-col", "uid", "--item-col", "iid",
                 "--split", "user-cold", "--k-support", "2", "--out", str(tmp_path / "s")])
    assert code == 0
    parts = {p: pd.read_csv(tmp_path / "s" / f"{p}.csv") for p in ("train", "val", "test", "support", "query")}
    assert parts["train"].uid.str.startswith("u").all()
    total = sum(len(parts[p]) for p in ("train", "val", "test", "support"))
    assert total == len(df)
    manifest = json.loads((tmp_path / "s" / "split.json").read_text())
    assert set(manifest["test_users"]).isdisjoint(set(parts["train"].uid))


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.csv"
    f.write_text("user,item,rating\n1,2,five\n3,4,5\n")
    code = main(["evaluate", "--interactions", str(f), "--model", "popularity"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error:") and "rating" in err and len(err.strip().splitlines()) == 1


def test_unknown_model_lists_choices(capsys):
    code = main(["evaluate", "--dataset", "synthetic", "--model", "nope"])
    assert code == 2
    assert "choose one of" in capsys.readouterr().err


def test_missing_file_names_it(tmp_path, capsys):
    code = main(["evaluate", "--interactions", str(tmp_path / "missing.csv"), "--model", "popularity"])
    assert code == 2
    assert "missing.csv" in capsys.readouterr().err


def test_datasets_lists_known_names(ml100k_dir, capsys):
    assert main(["datasets", "--data-dir", str(ml100k_dir)]) == 0
    out = capsys.readouterr().out
    assert "ml-100k" in out and "gowalla" in out


@pytest.mark.parametrize("model", ["popularity"])
def test_evaluate_ml100k_from_cli(ml100k_dir, model, capsys):
    assert main(["evaluate", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--model", model]) == 0
    assert "warm" in capsys.readouterr().out
