"""Checkpoints resume only the run that wrote them (issue 13, defect 1), and are written atomically."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from recsys_coldstart.data import warm_split
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.pretrain import LightGCN
from recsys_coldstart.train import CHECKPOINT_FILE, Checkpointer, run_fingerprint

OPTS = {"n_epochs": 2, "batch_size": 512, "lr": 0.01, "dim": 8, "eval_every": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def splits(synthetic):
    return warm_split(synthetic, random_state=0), warm_split(synthetic, random_state=1)


def test_checkpoint_of_another_seed_is_refused_never_resumed(splits, tmp_path):
    """Regression: seed 1 with seed 0's checkpoint folder used to resume seed 0's run."""
    warm, _ = splits
    ck = str(tmp_path / "ck")
    LightGCN(**OPTS, random_state=0, checkpoint_dir=ck, checkpoint_every=1).fit(warm.train, val=warm.val)
    with pytest.raises(DataError) as err:
        LightGCN(**OPTS, random_state=1, checkpoint_dir=ck, checkpoint_every=1).fit(warm.train, val=warm.val)
    msg = str(err.value)
    assert "\n" not in msg and CHECKPOINT_FILE in msg and "seed 0 != 1" in msg and "resume='never'" in msg


def test_checkpoint_of_another_split_or_config_is_refused(splits, tmp_path):
    warm, other = splits
    ck = str(tmp_path / "ck")
    LightGCN(**OPTS, checkpoint_dir=ck, checkpoint_every=1).fit(warm.train, val=warm.val)
    with pytest.raises(DataError, match="train data .* != "):
        LightGCN(**OPTS, checkpoint_dir=ck, checkpoint_every=1).fit(other.train, val=other.val)
    with pytest.raises(DataError, match="config reg: 0.0001 != 0.001"):
        LightGCN(**{**OPTS, "reg": 1e-3}, checkpoint_dir=ck, checkpoint_every=1).fit(warm.train, val=warm.val)
    # a longer run of the same configuration is the same run: it resumes
    longer = LightGCN(**{**OPTS, "n_epochs": 3}, checkpoint_dir=ck, checkpoint_every=1).fit(warm.train, val=warm.val)
    np.testing.assert_array_equal(longer.history_["epoch"], [1, 2, 3])


def test_resume_never_starts_fresh_with_a_warning(splits, tmp_path, caplog):
    warm, _ = splits
    ck = str(tmp_path / "ck")
    LightGCN(**OPTS, random_state=0, checkpoint_dir=ck, checkpoint_every=1).fit(warm.train, val=warm.val)
    plain = LightGCN(**OPTS, random_state=1).fit(warm.train, val=warm.val)
    with caplog.at_level(logging.WARNING):
        fresh = LightGCN(**OPTS, random_state=1, checkpoint_dir=ck, checkpoint_every=1,
                         resume="never").fit(warm.train, val=warm.val)
    assert "starting fresh" in caplog.text
    np.testing.assert_array_equal(fresh.item_factors_, plain.item_factors_)
    state = torch.load(tmp_path / "ck" / CHECKPOINT_FILE, weights_only=True)
    assert state["fingerprint"]["seed"] == 1  # the stale checkpoint was replaced


def test_resume_must_needs_a_checkpoint(splits, tmp_path):
    warm, _ = splits
    with pytest.raises(DataError, match="no checkpoint to resume"):
        LightGCN(**OPTS, checkpoint_dir=str(tmp_path), resume="must").fit(warm.train)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", None])
def test_unreadable_or_foreign_checkpoint_is_a_one_line_error_naming_the_file(splits, tmp_path, content):
    warm, _ = splits
    path = tmp_path / CHECKPOINT_FILE
    if content is None:
        torch.save({"epoch": 3, "encoder": {}}, path)  # an older version's checkpoint: no fingerprint
    else:
        path.write_bytes(content)
    with pytest.raises(DataError) as err:
        LightGCN(**OPTS, checkpoint_dir=str(tmp_path)).fit(warm.train)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_dir_without_every_checkpoints_every_evaluation(splits, tmp_path):
    warm, _ = splits
    LightGCN(**{**OPTS, "n_epochs": 4, "eval_every": 2}, checkpoint_dir=str(tmp_path)).fit(warm.train, val=warm.val)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 4 and [r["epoch"] for r in state["history"]] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="checkpoint_every=0 with a checkpoint_dir would write nothing"):
        LightGCN(checkpoint_dir=str(tmp_path), checkpoint_every=0)


def test_atomic_save_leaves_no_temporary_file(splits, tmp_path):
    warm, _ = splits
    ck = Checkpointer(tmp_path, run_fingerprint(LightGCN(), warm.train, warm.val), every=1)
    for epoch in (1, 2):
        ck.save({"epoch": epoch})
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]
    assert ck.load()["epoch"] == 2


def test_cli_checkpoint_flags(tmp_path, capsys):
    from recsys_coldstart.cli import main

    ck = str(tmp_path / "ck")
    base = ["pretrain", "--dataset", "synthetic", "--model", "lightgcn", "--epochs", "2", "--dim", "8",
            "--eval-every", "1", "--device", "cpu", "--no-progress", "--checkpoint-dir", ck]
    assert main([*base, "--seed", "0", "--save", str(tmp_path / "m0")]) == 0
    assert (tmp_path / "ck" / CHECKPOINT_FILE).is_file()  # no --checkpoint-every: every evaluation
    capsys.readouterr()
    assert main([*base, "--seed", "1", "--save", str(tmp_path / "m1")]) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "seed 0 != 1" in err
    assert not (tmp_path / "m1").exists()
    assert main([*base, "--seed", "1", "--resume", "never", "--checkpoint-every", "1",
                 "--save", str(tmp_path / "m1")]) == 0
