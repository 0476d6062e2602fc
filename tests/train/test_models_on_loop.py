"""Every iterative model runs on the one loop: same history format, same log keys (optuna pruning)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_coldstart.cli.registry import model_class
from recsys_coldstart.data import warm_split

FAST = {
    "lightgcn": {"dim": 8, "eval_every": 1, "batch_size": 1024},
    "sgl": {"dim": 8, "eval_every": 1, "batch_size": 1024},
    "simgcl": {"dim": 8, "eval_every": 1, "batch_size": 1024},
    "xsimgcl": {"dim": 8, "eval_every": 1, "batch_size": 1024},
    "als": {"dim": 8, "num_threads": 1},
    "bpr": {"dim": 8},
    "teacher": {"dim": 8, "hidden": (8,), "n_negatives": 8, "batch_size": 256},
    "dropoutnet": {"batch_size": 256, "base_dim": 8},
    "heater": {"batch_size": 256, "base_dim": 8},
    "aldi": {"batch_size": 256, "base_dim": 8},
}


@pytest.fixture(scope="module")
def warm(synthetic):
    return warm_split(synthetic, random_state=0)


@pytest.mark.parametrize("name", list(FAST))
def test_logs_and_history_share_one_format(name, warm):
    seen = []
    model = model_class(name)(**FAST[name], n_epochs=2, random_state=0, device="cpu")
    model.fit(warm.train, val=warm.val, callback=lambda epoch, logs: seen.append((epoch, dict(logs))))
    assert [e for e, _ in seen] == [1, 2]
    # tune --metric ndcg@20 / recall@20 find their key in every model's logs
    assert {"val_ndcg@20", "val_recall@20", "seconds"} <= set(seen[-1][1])
    h = model.history_
    assert isinstance(h, dict) and {"epoch", "loss", "seconds", "val_ndcg@20", "val_recall@20"} <= set(h)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 and v.shape == (2,) for v in h.values())
    np.testing.assert_array_equal(h["epoch"], [1, 2])
