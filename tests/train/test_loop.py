"""The one fit loop: patience in evaluations, start state, callback, NaN guard, hooks, history format."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys_coldstart.exceptions import TrainingDivergedError
from recsys_coldstart.train import World, fit_loop


def _net(value: float = 0.0) -> torch.nn.Linear:
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(value)
    return net


def test_patience_counts_evaluations_and_best_state_is_restored():
    net = _net()
    scores = {2: 0.5, 4: 0.4, 6: 0.3, 8: 0.9}

    def epoch_fn(epoch):
        with torch.no_grad():
            net.weight.fill_(float(epoch))
        return {"loss": 1.0 / epoch}

    res = fit_loop(epoch_fn, n_epochs=10, validate=lambda: {"val_ndcg@20": scores[int(net.weight.detach())]},
                   eval_every=2, patience=2, module=net)
    # evaluations at 2 (best), 4, 6 (two without improvement) -> stop after epoch 6, not epoch 3
    assert res.stop_reason == "patience" and res.epochs_run == 6
    assert res.best_epoch == 2 and float(net.weight.detach()) == 2.0
    h = res.history
    assert list(h)[:3] == ["epoch", "loss", "seconds"] and len({len(v) for v in h.values()}) == 1
    np.testing.assert_array_equal(h["epoch"], [1, 2, 3, 4, 5, 6])
    assert np.isnan(h["val_ndcg@20"][[0, 2, 4]]).all()
    np.testing.assert_allclose(h["val_ndcg@20"][[1, 3, 5]], [0.5, 0.4, 0.3])


def test_start_state_is_kept_when_no_epoch_beats_it():
    net = _net(1.0)

    def worse(epoch):
        with torch.no_grad():
            net.weight.sub_(1.0)

    res = fit_loop(worse, n_epochs=3, module=net, validate=lambda: {"val_recall@20": float(net.weight.detach())},
                   score_start=True)
    assert res.best_epoch == 0 and float(net.weight.detach()) == 1.0
    assert len(res.history["epoch"]) == 3 and np.isnan(res.history["loss"]).all()


def test_callback_stops_and_sees_logs():
    seen = []

    def cb(epoch, logs):
        seen.append((epoch, dict(logs)))
        return epoch == 2

    res = fit_loop(lambda e: {"loss": 0.1}, n_epochs=10, validate=lambda: {"val_ndcg@20": 0.2, "val_recall@20": 0.3},
                   callback=cb)
    assert res.stop_reason == "callback" and [e for e, _ in seen] == [1, 2]
    assert {"loss", "seconds", "val_ndcg@20", "val_recall@20"} <= set(seen[0][1])


@pytest.mark.parametrize("where", ["loss", "parameters"])
def test_nan_guard_names_the_epoch(where):
    net = _net(1.0)

    def epoch_fn(epoch):
        if epoch == 2:
            if where == "loss":
                return {"loss": math.inf}
            with torch.no_grad():
                net.weight.fill_(math.nan)
        return {"loss": 1.0}

    with pytest.raises(TrainingDivergedError, match="at epoch 2"):
        fit_loop(epoch_fn, n_epochs=5, module=net, desc="M")


def test_hooks_for_distributed_training_are_called():
    class CountingWorld(World):
        def __init__(self):
            self.averaged, self.broadcasts = 0, 0

        def average(self, logs):
            self.averaged += 1
            return logs

        def broadcast(self, obj):
            self.broadcasts += 1
            return obj

    world, starts = CountingWorld(), []
    fit_loop(lambda e: {"loss": 1.0}, n_epochs=4, validate=lambda: {"val_ndcg@20": 0.1}, eval_every=2,
             on_epoch_start=starts.append, world=world)
    assert starts == [1, 2, 3, 4] and world.averaged == 4 and world.broadcasts == 2

    class Worker(CountingWorld):
        rank = 1  # not the main rank: validation comes from rank 0 through broadcast

        def broadcast(self, obj):
            assert obj is None
            return {"val_ndcg@20": 0.7}

    res = fit_loop(lambda e: {"loss": 1.0}, n_epochs=2, validate=lambda: pytest.fail("validated on rank 1"),
                   world=Worker())
    np.testing.assert_allclose(res.history["val_ndcg@20"], [0.7, 0.7])
