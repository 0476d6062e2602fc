"""faiss IVF-PQ at 10^6-10^7 items (issue 17, Must show 4): recall@k against exact, throughput, memory.

Item vectors: a Gaussian mixture in d = 64 (``--centres`` centres with per-centre scales, items
= centre + noise: clustered like trained embeddings), generated in chunks. Queries are drawn
from the same mixture. For each size:

1. exact search (torch matmul + topk, 256 queries per block, float32) of the evaluation
   queries: the ground truth and the exact throughput (queries / s);
2. ``EmbeddingIndex(backend="ivfpq", refine=r)`` built on the vectors, ``tune`` picks the smallest
   ``nprobe`` with Recall@k >= ``--target`` on a tuning sample (queries disjoint from the
   evaluation ones);
3. the evaluation queries through the tuned index: Recall@k against exact, throughput, index
   memory (``memory_bytes``: PQ codes + inverted-list ids + coarse and PQ centroids + the refine
   store) and the process's peak RSS.

Example
-------
nice -n 10 python benchmarks/scale_ann.py --sizes 1000000 10000000 --out benchmarks/results/scale_ann.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mixture(n: int, d: int, n_centres: int, rng: np.random.Generator, centres: np.ndarray | None = None,
            chunk: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors from a Gaussian mixture (float32, generated in chunks) and its centres."""
    if centres is None:
        centres = rng.normal(size=(n_centres, d)).astype(np.float32)
    scale = np.float32(0.6) * (0.5 + rng.random(n_centres).astype(np.float32))
    out = np.empty((n, d), np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        c = rng.integers(0, len(centres), m)
        out[s:s + m] = centres[c] + scale[c, None] * rng.standard_normal((m, d), dtype=np.float32)
    return out, centres


def run_size(n: int, args: argparse.Namespace) -> dict:
    import torch

    from recsys_coldstart.retrieval import EmbeddingIndex
    from recsys_coldstart.retrieval.index import _recall, exact_topk_ids

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    items, centres = mixture(n, args.dim, args.centres, rng)
    queries, _ = mixture(args.queries + args.tune_queries, args.dim, args.centres, rng, centres)
    q_eval, q_tune = queries[: args.queries], queries[args.queries:]
    gen_s = time.perf_counter() - t0
    k = args.k
    t0 = time.perf_counter()
    truth = exact_topk_ids(items, q_eval, k)
    exact_s = time.perf_counter() - t0
    nlist = args.nlist or int(4 * np.sqrt(n))
    t0 = time.perf_counter()
    index = EmbeddingIndex(items, backend="ivfpq", device="cpu", nlist=nlist, refine=args.refine,
                           train_sample=min(n, args.train_per_cell * nlist), batch_size=1024)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = index.tune(q_tune, k, target_recall=args.target, sample=len(q_tune))
    tune_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids, _ = index.search(q_eval, k)
    ann_s = time.perf_counter() - t0
    rec = _recall(ids, truth)
    mem = index.memory_bytes()
    return {"n_items": n, "dim": args.dim, "k": k, "n_queries": len(q_eval), "nlist": index.nlist,
            "pq_m": index.pq_m, "pq_bits": index.pq_bits, "refine": args.refine, "train_sample":
            min(n, args.train_per_cell * nlist), "nprobe": index.nprobe, "tune": report,
            f"recall@{k}": rec, "exact_qps": len(q_eval) / exact_s, "ivfpq_qps": len(q_eval) / ann_s,
            "speedup": exact_s / ann_s, "index_memory_bytes": mem, "float_vectors_bytes": int(items.nbytes),
            "seconds_generate": gen_s, "seconds_exact": exact_s, "seconds_build": build_s, "seconds_tune": tune_s,
            "seconds_ivfpq_search": ann_s, "peak_rss_mb": _rss_mb(), "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--centres", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--tune-queries", type=int, default=300)
    ap.add_argument("--refine", type=int, default=10)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--nlist", type=int, default=None, help="default 4 sqrt(n)")
    ap.add_argument("--train-per-cell", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch and faiss threads for every step (1: no OpenMP spinning on a shared machine)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)

    rows = []
    for n in args.sizes:
        row = run_size(n, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"command": "python benchmarks/scale_ann.py " + " ".join(argv), "rows": rows,
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "load_avg_end": os.getloadavg()},
              "versions": {"python": platform.python_version(), "faiss": faiss.__version__, "torch": torch.__version__,
                           "numpy": np.__version__, "faiss_threads": faiss.omp_get_max_threads()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
