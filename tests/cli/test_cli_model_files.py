"""`coldstart evaluate --model-path BAD`: exit 2 and one line naming the file for every corrupt folder."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsys_coldstart.cli import main
from recsys_coldstart.data import make_split, make_synthetic
from recsys_coldstart.exceptions import ModelFileError
from recsys_coldstart.io import save_model

REPO = Path(__file__).resolve().parents[2]


def reseal(folder: Path) -> None:
    """Rewrite manifest.json after tampering, so the checks behind the checksums are reached."""
    files = {p.name: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
             for p in sorted(folder.iterdir()) if p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps({"format": 2, "files": files}))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """LightGCN fitted on the CLI's synthetic warm split (seed 0), saved with the meta evaluate reads."""
    from recsys_coldstart.pretrain.lightgcn import LightGCN

    split = make_split(make_synthetic(), "warm", random_state=0)
    model = LightGCN(dim=8, n_epochs=1, eval_every=1, device="cpu", random_state=0).fit(split.train, val=split.val)
    meta = {"dataset": "synthetic", "split": "warm", "seed": 0, "model": "lightgcn"}
    return save_model(model, tmp_path_factory.mktemp("good") / "m", meta=meta)


def _json(key, value):
    def edit(folder: Path) -> None:
        doc = json.loads((folder / "config.json").read_text())
        target = doc["config"] if key in doc["config"] or key == "bogus" else doc
        if value is KeyError:
            target.pop(key)
        else:
            target[key] = value
        (folder / "config.json").write_text(json.dumps(doc))
    return edit


def _arrays(fn):
    def edit(folder: Path) -> None:
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        fn(d)
        np.savez(folder / "arrays.npz", **d)
    return edit


def _truncate(name):
    def edit(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return edit


def _nan_factors(d):
    d["item_factors_"] = d["item_factors_"].copy()
    d["item_factors_"][0, 0] = np.nan


def _pickle_weights(folder: Path) -> None:
    with open(folder / "weights.pt", "wb") as f:
        pickle.dump({"user_emb": os.system}, f)


# (id, edit, reseal the manifest after it, file named in the message, text in the message)
CASES = [
    ("empty-weights", lambda f: (f / "weights.pt").write_bytes(b""), False, "weights.pt", "0 bytes"),
    ("empty-weights-sealed", lambda f: (f / "weights.pt").write_bytes(b""), True, "weights.pt",
     "empty or truncated torch file"),
    ("truncated-arrays", _truncate("arrays.npz"), False, "arrays.npz", "truncated or changed"),
    ("truncated-arrays-sealed", _truncate("arrays.npz"), True, "arrays.npz", "not a readable .npz archive"),
    ("truncated-config-sealed", _truncate("config.json"), True, "config.json", "not valid JSON"),
    ("no-manifest", lambda f: (f / "manifest.json").unlink(), False, "manifest.json", "never completed"),
    ("class-123", _json("class", 123), True, "config.json", "'class' must be a string"),
    ("class-os-system", _json("class", "os:system"), True, "config.json", "not a recsys_coldstart model"),
    ("dim-string", _json("dim", "sixty-four"), True, "config.json", "config key 'dim' must be an integer"),
    ("missing-key", _json("n_layers", KeyError), True, "config.json", "config keys missing for LightGCNConfig"),
    ("unknown-key", _json("bogus", 1), True, "config.json", "config key 'bogus' is not an option"),
    ("key-score_", _arrays(lambda d: d.__setitem__("score_", np.zeros(3))), True, "arrays.npz",
     "would shadow LightGCN.score"),
    ("key-score", _arrays(lambda d: d.__setitem__("score", np.zeros(3))), True, "arrays.npz", "not fitted state"),
    ("key-dunder-class", _arrays(lambda d: d.__setitem__("__class__", np.zeros(3))), True, "arrays.npz",
     "not fitted state"),
    ("nan-factors", _arrays(_nan_factors), True, "arrays.npz", "item_factors_ holds 1 NaN/inf"),
    ("object-array", _arrays(lambda d: d.__setitem__("item_factors_", np.array([object()], dtype=object))), True,
     "arrays.npz", "object array"),
    ("pickle-weights", _pickle_weights, True, "weights.pt", "refused, not a plain tensor file"),
]


def corrupt(good: Path, tmp_path: Path, edit, seal: bool) -> Path:
    folder = Path(shutil.copytree(good, tmp_path / "bad"))
    edit(folder)
    if seal:
        reseal(folder)
    return folder


def test_good_folder_evaluates(good, capsys):
    assert main(["evaluate", "--model-path", str(good)]) == 0
    assert "ndcg@20" in capsys.readouterr().out


@pytest.mark.parametrize(("case", "edit", "seal", "file", "text"), CASES, ids=[c[0] for c in CASES])
def test_corrupt_model_folder_exit_2_one_line(good, tmp_path, capsys, case, edit, seal, file, text):
    folder = corrupt(good, tmp_path, edit, seal)
    code = main(["evaluate", "--model-path", str(folder)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("WARNING")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(folder / file) in lines[0] and text in lines[0], err
    assert "Traceback" not in err


def test_missing_model_folder_exit_2(tmp_path, capsys):
    assert main(["evaluate", "--model-path", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing" in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_exception(good, tmp_path):
    folder = corrupt(good, tmp_path, lambda f: (f / "weights.pt").write_bytes(b""), True)
    with pytest.raises(ModelFileError, match="weights.pt"):
        main(["--debug", "evaluate", "--model-path", str(folder)])


def test_real_process_empty_weights_is_not_aborted(good, tmp_path):
    """The reported bug: a 0-byte weights.pt printed only 'aborted' (exit 1) before."""
    folder = corrupt(good, tmp_path, lambda f: (f / "weights.pt").write_bytes(b""), True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", "import sys; from recsys_coldstart.cli import main; sys.exit(main())",
                          "evaluate", "--model-path", str(folder)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == f"error: {folder / 'weights.pt'}: empty or truncated torch file"


def test_eof_error_in_a_command_is_an_error_not_aborted(monkeypatch, capsys):
    """click turns any EOFError into Abort; the CLI reports it as an error with the --debug hint."""
    import recsys_coldstart.cli.data as cli_data

    def eof(*args, **kwargs):
        raise EOFError("ran out of input")

    monkeypatch.setattr(cli_data, "load_from_options", eof)
    assert main(["evaluate", "--dataset", "synthetic", "--model", "popularity"]) == 1
    err = capsys.readouterr().err
    assert "error: EOFError: ran out of input" in err and "aborted" not in err
    with pytest.raises(EOFError):
        main(["--debug", "evaluate", "--dataset", "synthetic", "--model", "popularity"])


def test_save_over_a_folder_that_is_not_a_model_exit_2(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code = main(["pretrain", "--model", "lightgcn", "--dataset", "synthetic", "--epochs", "1", "--dim", "8",
                 "--device", "cpu", "--no-progress", "--save", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "not a saved model; refusing to replace" in err and (out / "notes.txt").read_text() == "keep me"
