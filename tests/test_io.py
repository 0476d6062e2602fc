"""Saving and loading models without pickle."""

import hashlib
import json

import numpy as np
import pytest

from recsys_coldstart.baselines import Popularity
from recsys_coldstart.data import warm_split
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.io import load_model, save_model


def reseal(folder):
    """Rewrite manifest.json after tampering, so the checks behind the checksums are reached."""
    files = {p.name: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
             for p in sorted(folder.iterdir()) if p.name != "manifest.json"}
    (folder / "manifest.json").write_text(json.dumps({"format": 2, "files": files}))


def test_round_trip_identical_scores(tmp_path, synthetic):
    split = warm_split(synthetic, random_state=0)
    model = Popularity().fit(split.train)
    save_model(model, tmp_path / "m", meta={"dataset": "synthetic"})
    back = load_model(tmp_path / "m")
    users = np.arange(10)
    np.testing.assert_array_equal(model.score(users), back.score(users))
    assert back.meta_["dataset"] == "synthetic"


def test_foreign_class_is_refused(tmp_path, synthetic):
    split = warm_split(synthetic, random_state=0)
    save_model(Popularity().fit(split.train), tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    doc["class"] = "os:system"
    (tmp_path / "m" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="changed after saving"):
        load_model(tmp_path / "m")
    reseal(tmp_path / "m")
    with pytest.raises(DataError, match="not a recsys_coldstart model"):
        load_model(tmp_path / "m")
    doc["class"] = "recsys_coldstart.io:load_model"
    (tmp_path / "m" / "config.json").write_text(json.dumps(doc))
    reseal(tmp_path / "m")
    with pytest.raises(DataError):
        load_model(tmp_path / "m")


def test_pickled_arrays_are_refused(tmp_path, synthetic):
    split = warm_split(synthetic, random_state=0)
    save_model(Popularity().fit(split.train), tmp_path / "m")
    np.savez(tmp_path / "m" / "arrays.npz", item_counts_=np.array([object()], dtype=object))
    reseal(tmp_path / "m")
    with pytest.raises(ValueError):
        load_model(tmp_path / "m")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no config.json"):
        load_model(tmp_path / "nothing")
