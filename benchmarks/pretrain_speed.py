"""Seconds per epoch and peak memory: this project's LightGCN / SimGCL vs torch-geometric's LightGCN.

Side by side in one run, same machine, same data (yelp2018 LightGCN split, train part), same
dims (64), layers (3) and batch size (2048). Each variant runs in its own subprocess so that its
peak RSS is its own. The torch-geometric variant is ``torch_geometric.nn.models.LightGCN``
driven by the loop of torch-geometric's ``examples/lightgcn.py`` (``edge_index`` of both
directions, ``model(edge_index, edge_label_index)``, ``recommendation_loss``).

An "epoch" may be capped at ``--batches`` batches for every variant (a full yelp2018 epoch is
ceil(1,237,259 * 0.9 / 2048) = 544 batches here); the per-full-epoch figure is then extrapolated
from the median per-batch time, and the results say so. Device-aware: ``--device auto`` uses
CUDA when present (not available on the machine these results were measured on).

    nice -n 10 python benchmarks/pretrain_speed.py --batches 20 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from recsys_coldstart._utils import resolve_device
    from recsys_coldstart.data.datasets import load_predefined_split

    split = load_predefined_split(args.dataset, "warm", args.data_dir, random_state=0)
    train = split.train
    del split
    device = resolve_device(args.device)
    rss_loaded = _rss_mb()
    out = {"variant": args.worker, "n_users": train.n_users, "n_items": train.n_items, "nnz": train.nnz,
           "threads": args.threads, "device": str(device), "rss_after_load_mb": rss_loaded}
    full_batches = math.ceil(train.nnz / args.batch_size)
    if args.worker in ("ours_lightgcn", "ours_simgcl", "ours_xsimgcl", "ours_sgl"):
        from recsys_coldstart.pretrain import SGL, LightGCN, SimGCL, XSimGCL

        cls = {"ours_lightgcn": LightGCN, "ours_simgcl": SimGCL, "ours_xsimgcl": XSimGCL, "ours_sgl": SGL}[args.worker]
        model = cls(n_epochs=args.epochs + 1, max_batches=args.batches, batch_size=args.batch_size, dim=64,
                    n_layers=3, device=str(device), random_state=0)
        model.fit(train)
        secs = list(model.history_["seconds"][1:])  # epoch 1 is warm-up
    elif args.worker == "pyg_lightgcn":
        from torch_geometric.nn.models import LightGCN as PygLightGCN

        from recsys_coldstart.graph.convert import to_edge_index

        nu, ni = train.n_users, train.n_items
        edge_index = to_edge_index(train.user_items).to(device)
        label_index = edge_index[:, : train.nnz]  # user -> item (item ids offset by nu)
        model = PygLightGCN(nu + ni, embedding_dim=64, num_layers=3).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loader = torch.utils.data.DataLoader(range(train.nnz), shuffle=True, batch_size=args.batch_size)
        secs = []
        for epoch in range(args.epochs + 1):
            t0 = time.perf_counter()
            for b, index in enumerate(loader):
                if b >= args.batches:
                    break
                pos = label_index[:, index.to(device)]
                neg = torch.stack([pos[0], torch.randint(nu, nu + ni, (index.numel(),), device=device)], 0)
                eli = torch.cat([pos, neg], 1)
                opt.zero_grad()
                pos_rank, neg_rank = model(edge_index, eli).chunk(2)
                loss = model.recommendation_loss(pos_rank, neg_rank, node_id=eli.unique())
                loss.backward()
                opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if epoch > 0:
                secs.append(time.perf_counter() - t0)
    else:
        raise SystemExit(f"unknown worker {args.worker}")
    n_b = min(args.batches, full_batches)
    med = float(np.median(secs))
    out.update(capped_epoch_seconds=secs, batches_per_capped_epoch=n_b, full_epoch_batches=full_batches,
               median_seconds_per_batch=med / n_b, est_full_epoch_seconds=med / n_b * full_batches,
               peak_rss_mb=_peak_mb())
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="yelp2018")
    ap.add_argument("--data-dir", default=os.environ.get("RECSYS_COLDSTART_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--batches", type=int, default=20, help="cap on batches per epoch (all variants)")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in every variant")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--variants", default="ours_lightgcn,pyg_lightgcn,ours_simgcl,ours_xsimgcl")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS / "pretrain_speed"))
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    from recsys_coldstart.evaluate.results import current_command, machine, versions

    rows = []
    for v in args.variants.split(","):
        cmd = [sys.executable, __file__, "--worker", v, "--dataset", args.dataset, "--data-dir", args.data_dir,
               "--batches", str(args.batches), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads), "--device", args.device]
        print("running", v, flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        if p.returncode != 0:
            print(p.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {v} failed")
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    by = {r["variant"]: r for r in rows}
    summary = {}
    if "ours_lightgcn" in by and "pyg_lightgcn" in by:
        summary["speedup_vs_pyg"] = by["pyg_lightgcn"]["median_seconds_per_batch"] / by["ours_lightgcn"]["median_seconds_per_batch"]
        summary["peak_rss_ratio_ours_over_pyg"] = by["ours_lightgcn"]["peak_rss_mb"] / by["pyg_lightgcn"]["peak_rss_mb"]
        summary["train_rss_increment_mb"] = {k: by[k]["peak_rss_mb"] - by[k]["rss_after_load_mb"]
                                             for k in ("ours_lightgcn", "pyg_lightgcn")}
    for k in ("ours_simgcl", "ours_xsimgcl", "ours_sgl"):
        if k in by and "ours_lightgcn" in by:
            summary[f"{k}_over_lightgcn"] = by[k]["median_seconds_per_batch"] / by["ours_lightgcn"]["median_seconds_per_batch"]
    doc = {"benchmark": "pretrain_speed", "dataset": args.dataset, "command": current_command(), "machine": machine(),
           "versions": versions(), "batch_size": args.batch_size, "dim": 64, "n_layers": 3, "threads": args.threads,
           "note": (f"epochs capped at {args.batches} batches for every variant; est_full_epoch_seconds extrapolates "
                    "the median per-batch time to a full pass; one warm-up epoch excluded; each variant in its own "
                    "subprocess (peak_rss_mb is that process's ru_maxrss, including the data)"),
           "results": rows, "summary": summary}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    lines = [f"# Pretraining speed on {args.dataset}", "", f"Command: `{doc['command']}`", "",
             f"Machine: {doc['machine']}", "", f"Versions: {doc['versions']}", "", doc["note"], "",
             "| variant | device | threads | s/batch (median) | capped epoch s | est. full epoch s | peak RSS MB | RSS after load MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['device']} | {r['threads']} | {r['median_seconds_per_batch']:.3f} | "
                     f"{', '.join(f'{s:.1f}' for s in r['capped_epoch_seconds'])} | {r['est_full_epoch_seconds']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['rss_after_load_mb']:.0f} |")
    lines += ["", "Summary: " + json.dumps(summary), ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
