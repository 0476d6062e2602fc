"""Model folders: atomic saves that survive SIGKILL, and one clear error for every corrupt folder."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from recsys_coldstart import io as model_io
from recsys_coldstart.baselines import Popularity
from recsys_coldstart.data import make_split
from recsys_coldstart.exceptions import DataError, ModelFileError, TrainingDivergedError
from recsys_coldstart.io import (
    fitted_arrays,
    load_model,
    read_model_config,
    read_model_meta,
    save_model,
)

REPO = Path(__file__).resolve().parents[1]


def reseal(folder: Path) -> None:
    """Rewrite manifest.json after tampering, so the checks behind the checksums are reached."""
    files = {p.name: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
             for p in sorted(folder.iterdir()) if p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps({"format": 2, "files": files}))


def same_model(a, b) -> bool:
    """Whether two models hold the same class, config and fitted arrays (bit for bit)."""
    fa, fb = fitted_arrays(a), fitted_arrays(b)
    return (type(a) is type(b) and a.config == b.config and fa.keys() == fb.keys()
            and all(fa[k].dtype == fb[k].dtype and np.array_equal(fa[k], fb[k], equal_nan=fa[k].dtype.kind == "f")
                    for k in fa))


@pytest.fixture(scope="module")
def split(synthetic):
    return make_split(synthetic, "warm", random_state=0)


@pytest.fixture(scope="module")
def graph_model(split):
    """A small fitted LightGCN: config, CSR state, history_ dict, weights.pt."""
    from recsys_coldstart.pretrain.lightgcn import LightGCN

    return LightGCN(dim=8, n_epochs=2, eval_every=1, device="cpu", random_state=0).fit(split.train, val=split.val)


@pytest.fixture(scope="module")
def pop_model(split):
    return Popularity().fit(split.train)


# --------------------------------------------------------------------------- round trip + format
def test_round_trip_keeps_history_meta_and_config(tmp_path, graph_model):
    folder = save_model(graph_model, tmp_path / "m", meta={"dataset": "synthetic", "data": {"sha256": "ab" * 32}})
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "config.json", "manifest.json", "weights.pt"]
    back = load_model(folder)
    assert same_model(graph_model, back)
    assert isinstance(back.history_, dict) and list(back.history_) == list(graph_model.history_)
    for key, values in graph_model.history_.items():
        np.testing.assert_array_equal(back.history_[key], np.asarray(values))
    np.testing.assert_array_equal(back.score(np.arange(5)), graph_model.score(np.arange(5)))
    assert read_model_meta(folder) == {"dataset": "synthetic", "data": {"sha256": "ab" * 32}}
    assert back.meta_ == read_model_meta(folder)
    assert read_model_config(folder)["config"]["dim"] == 8


def test_history_with_nan_is_saved(tmp_path, pop_model):
    """Training logs may hold NaN (epochs without validation); they are not fitted parameters."""
    model = copy.copy(pop_model)
    model.history_ = {"epoch": np.array([1.0, 2.0]), "val_ndcg@20": np.array([np.nan, 0.3])}
    back = load_model(save_model(model, tmp_path / "m"))
    np.testing.assert_array_equal(back.history_["val_ndcg@20"], [np.nan, 0.3])


def test_manifest_lists_every_file_with_size_and_sha256(tmp_path, graph_model):
    folder = save_model(graph_model, tmp_path / "m")
    files = json.loads((folder / "manifest.json").read_text())["files"]
    assert set(files) == {"arrays.npz", "config.json", "weights.pt"}
    for name, entry in files.items():
        data = (folder / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_format_1_folder_without_manifest_still_loads(tmp_path, pop_model, caplog):
    folder = save_model(pop_model, tmp_path / "m")
    (folder / "manifest.json").unlink()
    doc = json.loads((folder / "config.json").read_text())
    doc["format"] = 1
    (folder / "config.json").write_text(json.dumps(doc))
    with caplog.at_level("WARNING", logger="recsys_coldstart.io"):
        assert same_model(load_model(folder), pop_model)
    assert "without a manifest" in caplog.text


# --------------------------------------------------------------------------- save refuses
def test_save_refuses_nan_factors(tmp_path, graph_model):
    old = save_model(graph_model, tmp_path / "m")
    bad = load_model(old)
    bad.item_factors_ = bad.item_factors_.copy()
    bad.item_factors_[3, 1] = np.nan
    with pytest.raises(TrainingDivergedError, match="item_factors_ holds 1 NaN/inf"):
        save_model(bad, tmp_path / "m")
    assert same_model(load_model(tmp_path / "m"), graph_model)  # the old model is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_save_refuses_object_arrays_and_keeps_old(tmp_path, pop_model):
    save_model(pop_model, tmp_path / "m")
    bad = copy.copy(pop_model)
    bad.weird_ = np.array([object()], dtype=object)
    with pytest.raises(TypeError, match="weird_"):
        save_model(bad, tmp_path / "m")
    assert same_model(load_model(tmp_path / "m"), pop_model)


def test_save_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path, pop_model):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a saved model; refusing to replace"):
        save_model(pop_model, tmp_path / "results")
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        save_model(pop_model, tmp_path / "file")


def test_failed_save_keeps_old_model_and_leaves_no_temp(tmp_path, graph_model, pop_model, monkeypatch):
    save_model(pop_model, tmp_path / "m")

    def boom(folder):
        raise OSError("disk full")

    monkeypatch.setattr(type(graph_model), "_save_extra", lambda self, folder: boom(folder))
    with pytest.raises(OSError, match="disk full"):
        save_model(graph_model, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert same_model(load_model(tmp_path / "m"), pop_model)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_replaces_and_cleans_leftovers(tmp_path, pop_model, graph_model, monkeypatch, exchange):
    monkeypatch.setattr(model_io, "_USE_EXCHANGE", exchange)
    save_model(graph_model, tmp_path / "m")
    # leftovers of saves killed earlier (pid 999999999 is not running)
    (tmp_path / ".m.tmp-999999999-abcd").mkdir()
    (tmp_path / ".m.old-999999999-abcd").mkdir()
    save_model(pop_model, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert same_model(load_model(tmp_path / "m"), pop_model)
    assert not (tmp_path / "m" / "weights.pt").exists()  # nothing of the old folder survives


def test_save_through_a_symlink_replaces_its_target(tmp_path, pop_model, graph_model):
    save_model(graph_model, tmp_path / "v1")
    (tmp_path / "latest").symlink_to(tmp_path / "v1")
    save_model(pop_model, tmp_path / "latest")
    assert (tmp_path / "latest").is_symlink()
    assert same_model(load_model(tmp_path / "v1"), pop_model)


def test_load_never_reads_temp_folders(tmp_path, pop_model):
    save_model(pop_model, tmp_path / "m")
    (tmp_path / "m").rename(tmp_path / ".m.tmp-999999999-abcd")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "m")


def test_killed_between_renames_loads_the_backup(tmp_path, pop_model, caplog):
    """Two-rename fallback killed after `target -> backup`: the old model is found, with a warning."""
    save_model(pop_model, tmp_path / "m")
    (tmp_path / "m").rename(tmp_path / ".m.old-999999999-abcd")
    (tmp_path / ".m.tmp-999999999-abcd").mkdir()  # the new, possibly incomplete, folder
    with caplog.at_level("WARNING", logger="recsys_coldstart.io"):
        assert same_model(load_model(tmp_path / "m"), pop_model)
    assert "interrupted" in caplog.text and ".m.old-999999999-abcd" in caplog.text
    # an incomplete backup is never used
    (tmp_path / ".m.old-999999999-abcd" / "manifest.json").unlink()
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "m")


# --------------------------------------------------------------------------- corrupt folders
def _edit_json(name, fn):
    def edit(folder: Path) -> None:
        doc = json.loads((folder / name).read_text())
        fn(doc)
        (folder / name).write_text(json.dumps(doc))
    return edit


def _truncate(name, keep=0.5):
    def edit(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: int(len(data) * keep)])
    return edit


def _edit_arrays(fn):
    def edit(folder: Path) -> None:
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        fn(d)
        np.savez(folder / "arrays.npz", **d)
    return edit


def _set(key, value):
    def fn(d):
        d[key] = value
    return fn


def _nan_in(key):
    def fn(d):
        d[key] = d[key].copy()
        d[key].flat[0] = np.nan
    return fn


def _pickle_weights(folder: Path) -> None:
    with open(folder / "weights.pt", "wb") as f:
        pickle.dump({"user_emb": os.system}, f)


def _nan_weights(folder: Path) -> None:
    import torch

    state = torch.load(folder / "weights.pt", weights_only=True)
    state["user_emb"][0, 0] = float("inf")
    torch.save(state, folder / "weights.pt")


def _bad_csr(d):
    d["train_ui___csr_indices"] = d["train_ui___csr_indices"].copy()
    d["train_ui___csr_indices"][0] = 10_000


# (id, edit, reseal the manifest after editing, file named in the message, message pattern)
CORRUPT = [
    ("empty-weights", lambda f: (f / "weights.pt").write_bytes(b""), False, "weights.pt",
     "0 bytes where manifest.json says"),
    ("empty-weights-sealed", lambda f: (f / "weights.pt").write_bytes(b""), True, "weights.pt",
     "empty or truncated torch file"),
    ("truncated-arrays", _truncate("arrays.npz"), False, "arrays.npz", "truncated or changed"),
    ("truncated-arrays-sealed", _truncate("arrays.npz"), True, "arrays.npz", "not a readable .npz archive"),
    ("truncated-config", _truncate("config.json"), False, "config.json", "truncated or changed"),
    ("truncated-config-sealed", _truncate("config.json"), True, "config.json", "not valid JSON"),
    ("no-manifest", lambda f: (f / "manifest.json").unlink(), False, "manifest.json", "never completed"),
    ("truncated-manifest", _truncate("manifest.json"), False, "manifest.json", "not valid JSON"),
    ("no-arrays", lambda f: (f / "arrays.npz").unlink(), False, "arrays.npz", "missing"),
    ("extra-weights", lambda f: (f / "manifest.json").write_text(json.dumps(
        {"format": 2, "files": {k: v for k, v in json.loads((f / "manifest.json").read_text())["files"].items()
                                if k != "weights.pt"}})), False, "weights.pt", "not listed in manifest.json"),
    ("class-123", _edit_json("config.json", _set("class", 123)), True, "config.json", "'class' must be a string"),
    ("class-os-system", _edit_json("config.json", _set("class", "os:system")), True, "config.json",
     "not a recsys_coldstart model"),
    ("class-not-a-model", _edit_json("config.json", _set("class", "recsys_coldstart.io:load_model")), True,
     "config.json", "not a model class"),
    ("class-dunder-module", _edit_json("config.json", _set("class", "recsys_coldstart.__main__:X")), True,
     "config.json", "not a recsys_coldstart model"),
    ("format-99", _edit_json("config.json", _set("format", 99)), True, "config.json", "unsupported format 99"),
    ("meta-list", _edit_json("config.json", _set("meta", [1])), True, "config.json", "'meta' must be an object"),
    ("dim-string", _edit_json("config.json", lambda d: d["config"].update(dim="sixty-four")), True, "config.json",
     "config key 'dim' must be an integer, got 'sixty-four'"),
    ("lr-bool", _edit_json("config.json", lambda d: d["config"].update(lr=True)), True, "config.json",
     "config key 'lr' must be a number"),
    ("missing-key", _edit_json("config.json", lambda d: d["config"].pop("n_layers")), True, "config.json",
     "config keys missing for LightGCNConfig: n_layers"),
    ("unknown-key", _edit_json("config.json", lambda d: d["config"].update(bogus=1)), True, "config.json",
     "config key 'bogus' is not an option"),
    ("key-score_", _edit_arrays(_set("score_", np.zeros(3))), True, "arrays.npz", "would shadow LightGCN.score"),
    ("key-score", _edit_arrays(_set("score", np.zeros(3))), True, "arrays.npz", "'score' is not fitted state"),
    ("key-recommend_", _edit_arrays(_set("recommend_", np.zeros(3))), True, "arrays.npz",
     "would shadow LightGCN.recommend"),
    ("key-dunder-class", _edit_arrays(_set("__class__", np.zeros(3))), True, "arrays.npz",
     "'__class__' is not fitted state"),
    ("key-meta_", _edit_arrays(_set("meta_", np.zeros(3))), True, "arrays.npz", "'meta_' is not fitted state"),
    ("nan-factors", _edit_arrays(_nan_in("item_factors_")), True, "arrays.npz", "item_factors_ holds 1 NaN/inf"),
    ("inf-csr-values", _edit_arrays(lambda d: d.__setitem__("train_ui___csr_data",
                                                             np.full_like(d["train_ui___csr_data"], np.inf))),
     True, "arrays.npz", "train_ui_ holds"),
    ("bad-csr-indices", _edit_arrays(_bad_csr), True, "arrays.npz", "sparse matrix train_ui_ is inconsistent"),
    ("csr-part-missing", _edit_arrays(lambda d: d.pop("train_ui___csr_indptr")), True, "arrays.npz",
     "sparse matrix train_ui_ lacks its indptr"),
    ("object-array", _edit_arrays(_set("item_factors_", np.array([object()], dtype=object))), True, "arrays.npz",
     "object array"),
    ("pickle-weights", _pickle_weights, True, "weights.pt", "refused, not a plain tensor file"),
    ("inf-weights", _nan_weights, True, "weights.pt", "tensor user_emb holds NaN/inf"),
]


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory, graph_model):
    return save_model(graph_model, tmp_path_factory.mktemp("good") / "m")


def make_corrupt(good: Path, dest: Path, edit, seal: bool) -> Path:
    import shutil

    folder = Path(shutil.copytree(good, dest))
    edit(folder)
    if seal:
        reseal(folder)
    return folder


@pytest.mark.parametrize(("case", "edit", "seal", "file", "pattern"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_folder_is_one_clear_error(tmp_path, good_folder, case, edit, seal, file, pattern):
    folder = make_corrupt(good_folder, tmp_path / case, edit, seal)
    with pytest.raises(ModelFileError) as info:
        load_model(folder)
    msg = str(info.value)
    assert isinstance(info.value, DataError)
    assert "\n" not in msg and len(msg) < 400
    assert f"{folder}/{file}" in msg or f"{folder}{os.sep}{file}" in msg
    assert pattern in msg


def test_out_of_range_config_value_names_it(tmp_path, good_folder):
    folder = make_corrupt(good_folder, tmp_path / "m",
                          _edit_json("config.json", lambda d: d["config"].update(n_layers=-3)), True)
    with pytest.raises(ModelFileError, match="config.json: config") as info:
        load_model(folder)
    assert "n_layers" in str(info.value) or "-3" in str(info.value)


def test_config_from_dict_checks_types():
    from recsys_coldstart.pretrain.lightgcn import LightGCNConfig

    full = model_io.config_to_dict(LightGCNConfig())
    assert model_io.config_from_dict(LightGCNConfig, full) == LightGCNConfig()
    for key, value, pattern in [("max_batches", "7", "an integer or null"), ("random_state", 1.5, "an integer"),
                                ("fold_in", 3, "a string"), ("show_progress", 1, "true or false")]:
        with pytest.raises(DataError, match=f"config key '{key}' must be {pattern}"):
            model_io.config_from_dict(LightGCNConfig, {**full, key: value})
    assert model_io.config_from_dict(LightGCNConfig, {**full, "lr": 1}).lr == 1.0  # JSON 1 is a float here


# --------------------------------------------------------------------------- kill during save
ZYGOTE = textwrap.dedent("""
    import os, sys
    from recsys_coldstart import io as model_io
    from recsys_coldstart.io import load_model, save_model
    target, src_a, src_b, exchange = sys.argv[1:5]
    model_io._USE_EXCHANGE = exchange == "1"
    models = [(load_model(src_a), {"which": "a"}), (load_model(src_b), {"which": "b"})]
    out = sys.stdout.buffer
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:  # the worker: save a, b, a, b, ... over the target until it is killed
            try:
                i = 0
                while True:
                    model, meta = models[i % 2]
                    save_model(model, target, meta=meta)
                    i += 1
            finally:
                os._exit(1)
        out.write(f"{pid}\\n".encode())
        out.flush()
        os.waitpid(pid, 0)
        out.write(b"done\\n")
        out.flush()
""")


def kill_loop(tmp_path: Path, split, n_tries: int, exchange: bool, seed: int = 0) -> dict:
    """SIGKILL a process saving over ``tmp_path/m`` after random delays; check the folder after each."""
    rng = np.random.default_rng(seed)
    # two models with enough fitted state (~3 MB) that a save takes a while, told apart by meta
    models = []
    for which in ("a", "b"):
        m = Popularity().fit(split.train)
        m.padding_ = rng.standard_normal((300_000 if which == "a" else 250_000,)).astype(np.float32)
        models.append(m)
        save_model(m, tmp_path / f"src_{which}", meta={"which": which})
    target = tmp_path / "m"
    save_model(models[0], target, meta={"which": "a"})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(target), str(tmp_path / "src_a"),
                             str(tmp_path / "src_b"), "1" if exchange else "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    counts = {"tries": n_tries, "a": 0, "b": 0, "corrupt": 0, "leftovers_seen": 0}
    pyrng = random.Random(seed)
    try:
        for _ in range(n_tries):
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            pid = int(proc.stdout.readline())
            time.sleep(pyrng.uniform(0.0, 0.15))
            os.kill(pid, signal.SIGKILL)
            assert proc.stdout.readline() == b"done\n"
            counts["leftovers_seen"] += any(p.name.startswith(".m.") for p in tmp_path.iterdir())
            try:
                back = load_model(target)
                which = back.meta_["which"]
                ok = same_model(back, models[0 if which == "a" else 1])
                if not ok:
                    counts.setdefault("errors", []).append(f"loadable but wrong: meta says {which!r}")
            except Exception as e:  # noqa: BLE001 - counted, and reported below
                ok, which = False, None
                counts.setdefault("errors", []).append(str(e))
            counts[which if ok else "corrupt"] += 1
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait()
    save_model(models[1], target, meta={"which": "b"})  # the next save cleans every leftover
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "src_a", "src_b"]
    return counts


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill loop forks its workers")
@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_sigkill_during_save_never_corrupts(tmp_path, split, exchange):
    counts = kill_loop(tmp_path, split, n_tries=15, exchange=exchange)
    assert counts["corrupt"] == 0, counts
    assert counts["a"] + counts["b"] == counts["tries"]
    assert counts["leftovers_seen"] > 0, counts  # some kills landed inside a save


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill loop forks its workers")
@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_sigkill_during_save_never_corrupts_long(tmp_path, split, exchange):
    counts = kill_loop(tmp_path, split, n_tries=200, exchange=exchange, seed=1)
    print(f"kill loop ({'renameat2' if exchange else 'two renames'}): {counts}")
    assert counts["corrupt"] == 0, counts
    assert counts["a"] > 0 and counts["b"] > 0
