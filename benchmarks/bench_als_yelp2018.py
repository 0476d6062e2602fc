"""ALS on yelp2018 (LightGCN warm split): fit, full-ranking evaluation, peak memory, and retrieval.

Run::

    nice -n 10 python benchmarks/bench_als_yelp2018.py --data-dir ../shared/data

Writes ``benchmarks/results/als_yelp2018.json`` (result records, schema of BENCHMARKS.md) and
``benchmarks/results/als_yelp2018.md`` (tables + the exact command). Steps:

1. ``load_predefined_split("yelp2018", "warm")``: LightGCN's ``train.txt`` / ``test.txt``, val =
   a seeded 10% of each user's train (fitted on train only by default; ``--fit-on-val`` fits on
   train + val, as the LightGCN paper's protocol has no validation carve-out).
2. Fit :class:`recsys_coldstart.baselines.ALS` (``--runs`` times; median seconds).
3. ``evaluate`` Recall/NDCG@{10,20} on all test users, ``--batch-size`` users at a time (the
   31,668 x 38,048 score matrix is never materialised).
4. Retrieval: exact torch top-k vs faiss flat / IVF / HNSW over the ALS item factors, for the
   test users' vectors with their train (+ val) items excluded: build seconds, search seconds
   (median of ``--repeats``), recall@20 against exact search.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from recsys_coldstart.baselines import ALS
from recsys_coldstart.data.datasets import load_dataset, load_predefined_split
from recsys_coldstart.data.splits import warm_split
from recsys_coldstart.evaluate import evaluate
from recsys_coldstart.evaluate.results import (
    current_command,
    machine,
    peak_rss_mb,
    summary_table,
    to_markdown,
    to_records,
    versions,
    write_json,
)
from recsys_coldstart.retrieval import EmbeddingIndex

logger = logging.getLogger("bench_als_yelp2018")
RESULTS = Path(__file__).resolve().parent / "results"


def _median_time(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def retrieval_benchmark(model: ALS, split, *, n_queries: int, k: int, repeats: int, seed: int) -> list[dict]:
    """Time exact vs faiss search over ``model.item_factors_`` for test users; recall vs exact."""
    test = split.test.user_items
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    rng = np.random.default_rng(seed)
    if n_queries and len(users) > n_queries:
        users = np.sort(rng.choice(users, n_queries, replace=False))
    exclude = (split.train.user_items + split.val.user_items)[users]
    queries = model.user_factors_[users]
    rows = []
    exact = EmbeddingIndex.from_model(model, backend="exact", device="cpu")
    t_exact, times_exact, (ids_exact, _) = _median_time(lambda: exact.search(queries, k, exclude=exclude), repeats)
    configs = [("exact", {}), ("flat", {}), ("ivf", {"nprobe": 8}), ("ivf", {"nprobe": 32}),
               ("hnsw", {"hnsw_m": 32, "ef_search": 64}), ("hnsw", {"hnsw_m": 32, "ef_search": 256})]
    for backend, opts in configs:
        t0 = time.perf_counter()
        index = exact if backend == "exact" else EmbeddingIndex.from_model(model, backend=backend, device="cpu",
                                                                           random_state=seed, **opts)
        build = time.perf_counter() - t0 if backend != "exact" else 0.0
        if backend == "exact":
            t_med, times, ids = t_exact, times_exact, ids_exact
        else:
            t_med, times, (ids, _) = _median_time(lambda index=index: index.search(queries, k, exclude=exclude),
                                                  repeats)
        hits = sum(len(np.intersect1d(a[a >= 0], b[b >= 0])) for a, b in zip(ids, ids_exact, strict=True))
        recall = hits / max(int((ids_exact >= 0).sum()), 1)
        leaked = int(sum(len(np.intersect1d(ids[r], exclude[r].indices)) for r in range(len(users))))
        label = backend + "".join(f" {key}={val}" for key, val in opts.items())
        if backend == "ivf":
            label += f" nlist={index.nlist}"
        rows.append({"index": label, "build_s": round(build, 3), "search_s_median": round(t_med, 3),
                     "search_s_runs": [round(t, 3) for t in times], "ms_per_1000_queries": round(1000 * t_med /
                                                                                                len(users) * 1000, 2),
                     f"recall@{k}_vs_exact": round(recall, 4), "excluded_returned": leaked,
                     "n_queries": int(len(users)), "n_items": int(model.item_factors_.shape[0]),
                     "dim": int(model.item_factors_.shape[1])})
        logger.info("retrieval %s: build %.2fs search %.3fs recall %.4f", label, build, t_med, recall)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", required=True, help="folder holding yelp2018/train.txt and test.txt")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--regularization", type=float, default=0.05)
    p.add_argument("--alpha", type=float, default=10.0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--threads", type=int, default=0, help="implicit threads (0 = all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fit-on-val", action="store_true", help="fit on train + val (the LightGCN protocol)")
    p.add_argument("--batch-size", type=int, default=1024, help="users scored at once in evaluation")
    p.add_argument("--runs", type=int, default=3, help="fit + evaluate this many times; median seconds reported")
    p.add_argument("--retrieval-queries", type=int, default=10000, help="0 = every test user")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of each search (median reported)")
    p.add_argument("--no-retrieval", action="store_true")
    p.add_argument("--out", default=str(RESULTS / "als_yelp2018"), help="output path without extension")
    args = p.parse_args(argv)
    command = "python benchmarks/" + current_command()  # this script lives in benchmarks/
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    t0 = time.perf_counter()
    split = load_predefined_split("yelp2018", "warm", args.data_dir, random_state=args.seed)
    if split is None:  # pragma: no cover - the registry defines it
        split = warm_split(load_dataset("yelp2018", args.data_dir), random_state=args.seed)
    load_s = time.perf_counter() - t0
    rss_load = peak_rss_mb()
    logger.info("loaded %r in %.1fs (peak RSS %.0f MiB)", split, load_s, rss_load)

    train = split.train
    if args.fit_on_val:
        from dataclasses import replace

        train = replace(train, user_items=(train.user_items + split.val.user_items).tocsr(), timestamps=None,
                        ratings=None)
    fit_times, eval_times, rss_fit, rss_eval = [], [], [], []
    results = model = None
    for run in range(args.runs):
        model = ALS(dim=args.factors, reg=args.regularization, alpha=args.alpha,
                    n_epochs=args.epochs, num_threads=args.threads, random_state=args.seed, device="cpu")
        t0 = time.perf_counter()
        model.fit(train)
        fit_times.append(time.perf_counter() - t0)
        rss_fit.append(peak_rss_mb())
        t0 = time.perf_counter()
        res = evaluate(model, split, ks=(10, 20), batch_size=args.batch_size, model_name="ALS")
        eval_times.append(time.perf_counter() - t0)
        rss_eval.append(peak_rss_mb())
        logger.info("run %d: fit %.1fs, eval %.1fs (peak RSS %.0f MiB)", run, fit_times[-1], eval_times[-1],
                    rss_eval[-1])
        if results is None:
            results = res
        elif not np.allclose(results.value.to_numpy(), res.value.to_numpy()):  # seeded: must not change
            raise RuntimeError("metrics differ between runs with the same seed")
    fit_s, eval_s = statistics.median(fit_times), statistics.median(eval_times)
    # the process peak after the first load + fit + evaluate (what a single run needs)
    rss_fit, rss_eval = rss_fit[0], rss_eval[0]

    retrieval = []
    if not args.no_retrieval:
        retrieval = retrieval_benchmark(model, split, n_queries=args.retrieval_queries, k=20,
                                        repeats=args.repeats, seed=args.seed)
    rss_total = peak_rss_mb()
    extra = {"fit_seconds": round(fit_s, 2), "eval_seconds": round(eval_s, 2), "load_seconds": round(load_s, 2),
             "fit_seconds_runs": [round(t, 2) for t in fit_times], "eval_seconds_runs": [round(t, 2) for t in eval_times],
             "peak_rss_mb_after_load": round(rss_load, 1), "peak_rss_mb_after_fit": round(rss_fit, 1),
             "peak_rss_mb_after_eval": round(rss_eval, 1), "peak_rss_mb": round(rss_total, 1),
             "fit_on_val": bool(args.fit_on_val), "retrieval": retrieval,
             "n_users": int(split.train.n_users), "n_items": int(split.train.n_items),
             "n_train": int(train.nnz), "n_test": int(split.test.nnz)}
    cfg = {f: getattr(model.config, f) for f in model.config.__dataclass_fields__}
    records = to_records(results, config=cfg, command=command, device="cpu",
                         seconds=round(fit_s + eval_s, 2), extra=extra)
    out = Path(args.out)
    write_json(records, out.with_suffix(".json"))

    def metric(name: str, k: int) -> float:
        sel = results[(results.metric == name) & (results.k == k) & (results.segment == "warm")]
        return float(sel.value.iloc[0])

    lines = [
        "# ALS on yelp2018 (LightGCN warm split)", "",
        f"Command (from the repository root): `{command}`", "",
        f"Machine: {machine()}", "",
        f"Versions: {versions()}", "",
        f"Config: {cfg}; fitted on {'train + val' if args.fit_on_val else 'train (LightGCN train.txt minus 10% val)'}"
        f" = {train.nnz:,} pairs; test = {split.test.nnz:,} pairs", "",
        f"Seconds are medians of {args.runs} fit + evaluate runs (fit: {[round(t, 1) for t in fit_times]}, "
        f"eval: {[round(t, 1) for t in eval_times]}); metrics are identical across runs (seeded).", "",
        "| Recall@20 | NDCG@20 | Recall@10 | NDCG@10 | fit s | eval s | peak RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {metric('recall', 20):.4f} | {metric('ndcg', 20):.4f} | {metric('recall', 10):.4f} | "
        f"{metric('ndcg', 10):.4f} | {fit_s:.1f} | {eval_s:.1f} | {rss_eval:.0f} |", "",
        f"Peak RSS of the process after load / fit / evaluate: {rss_load:.0f} / {rss_fit:.0f} / {rss_eval:.0f} MiB "
        f"(after the retrieval benchmark too: {rss_total:.0f} MiB). Evaluation scores {args.batch_size} users at "
        "a time.", "",
        to_markdown(summary_table(results)),
    ]
    if retrieval:
        lines += ["## Retrieval over the ALS item factors", "",
                  f"{retrieval[0]['n_queries']} test-user queries, k=20, train+val items excluded, CPU; "
                  f"search time = median of {args.repeats} runs.", "",
                  "| index | build s | search s (median) | ms / 1000 queries | recall@20 vs exact | excluded returned |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in retrieval:
            lines.append(f"| {r['index']} | {r['build_s']:.2f} | {r['search_s_median']:.3f} | "
                         f"{r['ms_per_1000_queries']:.1f} | {r['recall@20_vs_exact']:.4f} | {r['excluded_returned']} |")
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
