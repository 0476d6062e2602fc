"""CUDA checks (``-m gpu``; skipped without CUDA): device placement, NCCL-free single-GPU training,
and data-parallel training over NCCL on every visible GPU. Run by ``scripts/gpu_check.sh``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from recsys_coldstart.train.sharded import torchrec_available

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _split():
    from recsys_coldstart.data import make_synthetic, warm_split

    return warm_split(make_synthetic(n_users=400, n_items=300, mean_ratings=30, random_state=0), random_state=0)


@pytest.mark.parametrize("name", ["lightgcn", "simgcl"])
def test_graph_model_trains_on_cuda_and_matches_cpu_quality(name):
    from recsys_coldstart.cli.registry import model_class

    s = _split()
    out = {}
    for dev in ("cpu", "cuda"):
        m = model_class(name)(dim=16, n_epochs=20, eval_every=5, batch_size=512, device=dev, random_state=0)
        m.fit(s.train, val=s.val)
        assert isinstance(m.item_factors_, np.ndarray)  # fitted state is CPU numpy
        out[dev] = float(np.nanmax(m.history_["val_ndcg@20"]))
    assert out["cuda"] > 0.5 * out["cpu"]


def test_teacher_trains_on_cuda():
    from recsys_coldstart.cli.registry import model_class

    s = _split()
    m = model_class("teacher")(dim=16, n_epochs=2, device="cuda", random_state=0)
    m.fit(s.train, val=s.val)
    assert np.isfinite(m.item_factors_).all()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs for NCCL")
def test_nccl_data_parallel_cli(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(u, i) for u in range(300) for i in rng.choice(200, 12, replace=False)]
    csv = tmp_path / "ui.csv"
    csv.write_text("user,item\n" + "".join(f"u{u},i{i}\n" for u, i in rows))
    n = torch.cuda.device_count()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           "-m", "recsys_coldstart.cli", "pretrain", "-m", "lightgcn", "--interactions", str(csv), "--epochs", "3",
           "--eval-every", "1", "--batch-size", str(256 * n), "--device", "cuda", "--no-progress",
           "--save", str(tmp_path / "m")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert (tmp_path / "m" / "weights.pt").is_file()


@pytest.mark.skipif(not torchrec_available(), reason="TorchRec with the CUDA fbgemm-gpu wheel is not installed")
def test_sharded_tables_adam_on_cuda_match_torch_adam_on_the_first_step(tmp_path):
    """fbgemm's fused (row-sparse) Adam on a one-rank NCCL group: its first step equals
    ``torch.optim.Adam``'s on the looked-up rows and leaves the others alone (it diverges from
    dense Adam later, by design: untouched rows keep their moments)."""
    import torch.distributed as dist

    from recsys_coldstart.train.sharded import ShardedTables

    dist.init_process_group("nccl", init_method=f"file://{tmp_path}/init", rank=0, world_size=1)
    try:
        g = torch.Generator().manual_seed(0)
        users, items = torch.randn(40, 8, generator=g), torch.randn(20, 8, generator=g)
        tables = ShardedTables(users, items, lr=0.01, optimizer="adam", device="cuda")
        node = torch.tensor([0, 3, 3, 41, 59])  # users 0, 3 (twice); items 1, 19
        tables.lookup(node).pow(3).sum(1).mean().backward()
        got = torch.cat(tables.full()).cpu()
    finally:
        dist.destroy_process_group()
    w = torch.cat([users, items]).requires_grad_()
    opt = torch.optim.Adam([w], lr=0.01)
    w[node].pow(3).sum(1).mean().backward()
    opt.step()
    torch.testing.assert_close(got, w.detach(), rtol=1e-4, atol=1e-5)
