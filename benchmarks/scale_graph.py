"""Scaling of graph training: full-graph vs neighbour-sampled LightGCN (issue 17, Must show 2 and 3).

Two sub-commands:

``scaling``: for each synthetic graph size (``make_synthetic_graph``, cached as a CSR ``.npz``)
and each sampler (``full``, ``neighbor``; ``neighbor-sharded``: neighbour sampling with TorchRec
tables and fbgemm's fused row-sparse Adagrad on a one-rank process group, optional install), a
fresh subprocess fits LightGCN for one epoch capped at ``--batches`` batches and reports seconds per batch (the capped epoch's wall time / batches, first batch
included), the extrapolated seconds per full epoch (``s/batch * ceil(nnz / batch_size)``),
sampled edges per batch, and the process's peak RSS (``ru_maxrss``, includes the loaded graph, the
final full propagation and the fold-in fit). The growth exponent is the least-squares slope of
log(s/epoch) and log(peak RSS) on log(nnz).

``yelp``: full-graph vs sampled LightGCN on yelp2018 at equal wall time: each trains with
``callback`` stopping once ``--minutes`` have passed (checked after every epoch: epochs are capped
at ``--epoch-batches`` batches so the check is frequent), then test Recall@20 / NDCG@20
(full ranking, ``evaluate``), back to back in the same conditions.

Examples
--------
nice -n 10 python benchmarks/scale_graph.py scaling --sizes 1000000 10000000 50000000 --batches 3
nice -n 10 python benchmarks/scale_graph.py yelp --data-dir $RECSYS_COLDSTART_DATA --minutes 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SCALE_CACHE", "cache/scale_graph"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _versions() -> dict:
    import faiss
    import scipy
    import torch
    import torch_geometric

    return {"python": platform.python_version(), "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__,
            "faiss": faiss.__version__, "torch_threads": torch.get_num_threads()}


def _machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "memory_gb": round(mem, 1), "cpu_model": model,
            "load_avg_at_start": os.getloadavg()}


def _graph_path(n: int) -> Path:
    return CACHE / f"synthetic_{n}.npz"


def _make_graph(n: int) -> dict:
    from recsys_coldstart.data.datasets.synthetic_graph import make_synthetic_graph

    p = _graph_path(n)
    if p.exists():
        return {"size": n, "cached": True}
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = make_synthetic_graph(n, random_state=0)
    sec = time.perf_counter() - t0
    sp.save_npz(p, data.user_items, compressed=False)
    return {"size": n, "seconds_generate": sec, "nnz": int(data.nnz), "peak_rss_mb_generate": _rss_mb()}


def _worker(n: int, sampler: str, batches: int, batch_size: int, fan_out: list[int]) -> dict:
    import torch

    from recsys_coldstart.data.interactions import Interactions
    from recsys_coldstart.graph import sampling
    from recsys_coldstart.pretrain import LightGCN

    ui = sp.load_npz(_graph_path(n)).tocsr()
    data = Interactions.from_csr(ui, name=f"synthetic-{n}")
    rss_load = _rss_mb()
    sampled_edges: list[int] = []
    sampled_nodes: list[int] = []
    orig = sampling.BipartiteNeighborSampler.sample_blocks

    def counting(self, seeds):
        blocks = orig(self, seeds)
        sampled_edges.append(blocks.n_edges)
        sampled_nodes.append(len(blocks.node))
        return blocks

    sampling.BipartiteNeighborSampler.sample_blocks = counting
    marks = {}  # process CPU seconds (all threads) at the epoch's start and end: robust to a busy machine
    orig_start = LightGCN._epoch_start

    def start(self, ctx):
        marks["cpu0"] = time.process_time()
        return orig_start(self, ctx)

    LightGCN._epoch_start = start

    def cb(epoch, logs):
        marks["cpu1"] = time.process_time()
        return False

    kw = {"fan_out": tuple(fan_out)} if sampler.startswith("neighbor") else {}
    if sampler == "neighbor-sharded":  # row-sparse: TorchRec tables + fbgemm's fused Adagrad, on a 1-rank group
        import tempfile

        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"file://{tempfile.mkdtemp()}/init", rank=0, world_size=1)
        kw.update(tables="sharded", optimizer="adagrad", lr=0.1)
    model = LightGCN(sampler=sampler.split("-")[0], n_epochs=1, max_batches=batches, batch_size=batch_size,
                     device="cpu", random_state=0, **kw)
    t0 = time.perf_counter()
    model.fit(data, callback=cb)
    fit_s = time.perf_counter() - t0
    epoch_s = float(model.history_["seconds"][0])
    n_b = min(batches, math.ceil(data.nnz / batch_size))
    per_batch = epoch_s / n_b
    full_batches = math.ceil(data.nnz / batch_size)
    out = {"size": n, "sampler": sampler, "nnz": int(data.nnz), "n_users": int(data.n_users),
           "n_items": int(data.n_items), "batches_timed": n_b, "batch_size": batch_size,
           "fan_out": fan_out if sampler.startswith("neighbor") else None, "seconds_per_batch": per_batch,
           "batches_per_epoch": full_batches, "est_seconds_per_epoch": per_batch * full_batches,
           "cpu_seconds_per_batch": (marks["cpu1"] - marks["cpu0"]) / n_b,
           "fit_seconds_total": fit_s, "rss_after_load_mb": rss_load, "peak_rss_mb": _rss_mb(),
           "torch_threads": torch.get_num_threads()}
    if sampled_edges:
        out["sampled_edges_per_batch"] = float(np.mean(sampled_edges))
        out["sampled_nodes_per_batch"] = float(np.mean(sampled_nodes))
        out["seconds_per_sampled_edge"] = per_batch / out["sampled_edges_per_batch"]
    else:  # full graph: every batch propagates all 2 * nnz adjacency entries
        out["seconds_per_adjacency_entry"] = per_batch / (2 * data.nnz)
    return out


def _slope(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2:
        return None
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def cmd_scaling(args: argparse.Namespace) -> dict:
    rows = []
    gens = []
    for n in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "_gen", str(n)], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr)
        gens.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(gens[-1]), flush=True)
        for mode in args.samplers:
            cmd = [sys.executable, __file__, "_worker", str(n), mode, str(args.batches), str(args.batch_size),
                   *[str(f) for f in args.fan_out]]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                row = {"size": n, "sampler": mode, "error": proc.stderr.strip().splitlines()[-1:]}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"generate": gens, "rows": rows, "fits": _fits(rows)}


def _fits(rows: list[dict]) -> dict:
    """Growth exponents per sampler over the rows that ran (log-log slopes on nnz)."""
    fits = {}
    for mode in dict.fromkeys(r["sampler"] for r in rows):
        ok = [r for r in rows if r["sampler"] == mode and "error" not in r]
        fits[mode] = {"time_exponent": _slope([r["nnz"] for r in ok], [r["est_seconds_per_epoch"] for r in ok]),
                      "rss_exponent": _slope([r["nnz"] for r in ok], [r["peak_rss_mb"] for r in ok]),
                      "batch_time_exponent": _slope([r["nnz"] for r in ok], [r["seconds_per_batch"] for r in ok])}
    return fits


def cmd_yelp(args: argparse.Namespace) -> dict:
    import torch

    from recsys_coldstart.data.datasets import load_predefined_split
    from recsys_coldstart.evaluate import evaluate, metric_value
    from recsys_coldstart.pretrain import LightGCN

    split = load_predefined_split("yelp2018", "warm", args.data_dir, random_state=0)  # the LightGCN train/test
    out = []
    for mode in args.samplers:
        t0 = time.perf_counter()
        state = {"epochs": 0}

        def stop(epoch, logs, t0=t0, state=state):
            state["epochs"] = epoch
            return time.perf_counter() - t0 > args.minutes * 60

        kw = {"fan_out": tuple(args.fan_out)} if mode == "neighbor" else {}
        model = LightGCN(sampler=mode, n_epochs=100000, max_batches=args.epoch_batches, batch_size=args.batch_size,
                         lr=args.lr, device="cpu", random_state=0, **kw)
        model.fit(split.train, callback=stop)
        train_s = time.perf_counter() - t0
        res = evaluate(model, split, segments=("warm",))
        row = {"sampler": mode, "fan_out": args.fan_out if mode == "neighbor" else None, "minutes_budget": args.minutes,
               "train_seconds": train_s, "capped_epochs": state["epochs"],
               "batches": state["epochs"] * args.epoch_batches, "batch_size": args.batch_size, "lr": args.lr,
               "recall@20": metric_value(res, "recall", 20, "warm"), "ndcg@20": metric_value(res, "ndcg", 20, "warm"),
               "torch_threads": torch.get_num_threads(), "load_avg_after": os.getloadavg()}
        out.append(row)
        print(json.dumps(row), flush=True)
    return {"rows": out, "dataset": "yelp2018", "split": "LightGCN given train/test (warm)"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_gen":
        print(json.dumps(_make_graph(int(argv[1]))))
        return
    if argv and argv[0] == "_worker":
        n, mode, batches, bs = int(argv[1]), argv[2], int(argv[3]), int(argv[4])
        print(json.dumps(_worker(n, mode, batches, bs, [int(x) for x in argv[5:]])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scaling")
    s.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 50_000_000])
    s.add_argument("--batches", type=int, default=3)
    s.add_argument("--append", action="store_true", help="add the rows to an existing --out file (its runs are kept)")
    y = sub.add_parser("yelp")
    y.add_argument("--data-dir", default=os.environ.get("RECSYS_COLDSTART_DATA"))
    y.add_argument("--minutes", type=float, default=10.0)
    y.add_argument("--epoch-batches", type=int, default=50)
    y.add_argument("--lr", type=float, default=1e-2)
    for p in (s, y):
        p.add_argument("--samplers", nargs="+", default=["full", "neighbor"])
        p.add_argument("--batch-size", type=int, default=2048)
        p.add_argument("--fan-out", type=int, nargs="+", default=[10, 10, 10])
        p.add_argument("--out", required=True, help="JSON file to write")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    result = cmd_scaling(args) if args.cmd == "scaling" else cmd_yelp(args)
    result.update({"command": "python benchmarks/scale_graph.py " + " ".join(argv), "machine": _machine(),
                   "versions": _versions(), "wall_seconds": time.perf_counter() - t0})
    if getattr(args, "append", False) and Path(args.out).exists():  # add these rows to an earlier run's file
        old = json.loads(Path(args.out).read_text())
        runs = old.get("runs") or [{k: old[k] for k in ("command", "machine", "versions", "wall_seconds") if k in old}]
        runs.append({k: result[k] for k in ("command", "machine", "versions", "wall_seconds")})
        rows = old["rows"] + result["rows"]
        result = {**old, "rows": rows, "fits": _fits(rows), "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
