"""Write the "Sampled training", "Scaling curve" and "ANN at scale" sections of
``benchmarks/results/scale.md`` (and their keys of ``scale.json``) from the JSON that
``scale_graph.py`` and ``scale_ann.py`` wrote. Other sections of the two files are kept: this
script replaces only the text between its own markers and only its own JSON keys.

Example
-------
python benchmarks/scale_report.py --results benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

START, END = "<!-- scale_report.py: start -->", "<!-- scale_report.py: end -->"
HBM_BYTES_PER_S = 4.8e12  # H200 HBM3e peak
ROW_BYTES = 64 * 4 + 8  # one gathered float32 row of d = 64 plus its column index and weight (int32 + float32)


def _load(p: Path) -> dict | None:
    return json.loads(p.read_text()) if p.exists() else None


def _fmt(x: float | None, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _projection(graph: dict) -> tuple[list[str], dict]:
    rows = [r for r in graph["rows"] if "error" not in r]
    full = max((r for r in rows if r["sampler"] == "full"), key=lambda r: r["nnz"], default=None)
    samp = max((r for r in rows if r["sampler"] == "neighbor"), key=lambda r: r["nnz"], default=None)
    nnz, gpus, batch = 1e9, 8, 2048
    n_nodes = nnz / 50 + nnz / 100  # the generator's default density: nnz/50 users, nnz/100 items
    steps = nnz / (batch * gpus)  # DDP: a global batch of 8 x 2048 per step
    out: dict = {"nnz": nnz, "gpus": gpus, "batch_per_gpu": batch, "steps_per_epoch": steps}
    lines = []
    adam_bytes = n_nodes * 64 * 28  # dense Adam: read param, grad, m, v; write param, m, v (7 x float32)
    adam_s = adam_bytes / HBM_BYTES_PER_S
    if full is not None:
        per_entry = full["cpu_seconds_per_batch"] / (2 * full["nnz"])
        bw = 2 * nnz * ROW_BYTES * full_layers(graph) * 2 / HBM_BYTES_PER_S + adam_s
        out["full"] = {"cpu_s_per_adjacency_entry": per_entry, "cpu_epoch_s_per_gpu_at_cpu_speed": per_entry * 2 * nnz * steps,
                       "hbm_bound_s_per_step": bw, "hbm_bound_epoch_s": bw * steps}
        lines.append(f"- **Full graph**: every step propagates all 2·10^9 adjacency entries on every GPU (data "
                     f"parallelism splits the batches, not the propagation). Bandwidth bound: 3 layers x (forward + "
                     f"backward) x 2·10^9 x {ROW_BYTES} B + dense Adam ({adam_bytes / 1e9:.0f} GB) = "
                     f"{_fmt(bw)} s per step, x {steps:,.0f} steps = **{_fmt(bw * steps / 3600)} h per epoch** on 8 "
                     f"H200s (at the measured CPU cost of {per_entry * 1e9:.2f} ns per entry it would be "
                     f"{_fmt(per_entry * 2 * nnz * steps / 86400)} days). The graph alone (CSR int64 + weights, "
                     f"~24 GB, plus our edge-id arrays ~32 GB) fits one H200 (141 GB) but not comfortably.")
    if samp is not None:
        measured = samp["sampled_edges_per_batch"]
        per_edge = samp["cpu_seconds_per_batch"] / measured
        f, reach, bound = samp["fan_out"], 1, 0
        for x in f:
            reach *= x
            bound += reach
        m = max(measured, 3 * batch * bound)  # the sample's bound: 3 x 2048 seeds x (f1 + f1 f2 + f1 f2 f3) edges
        bw_edges = m * ROW_BYTES * 2 * 1.5 / HBM_BYTES_PER_S  # trimmed layers: ~1.5 M entries (fwd), x2 with backward
        out["neighbor"] = {"sampled_edges_per_batch_measured": m, "cpu_s_per_sampled_edge": per_edge,
                           "cpu_epoch_s_per_gpu_at_cpu_speed": per_edge * m * steps,
                           "hbm_bound_s_per_step_dense_adam": bw_edges + adam_s,
                           "hbm_bound_epoch_s_dense_adam": (bw_edges + adam_s) * steps,
                           "hbm_bound_epoch_s_sparse_adam": bw_edges * steps}
        lines.append(f"- **Sampled** (fan-out {samp['fan_out']}): the sample per batch of 2048 positives is "
                     f"{measured:,.0f} edges at {samp['nnz']:,} interactions, bounded by batch x fan-out (not by the "
                     f"graph): at most {m:,.0f} edges (3 x 2048 seeds x {bound}), the size used at 10^9. Bandwidth "
                     f"bound per step: ~1.5 x {m:,.0f} x {ROW_BYTES} B "
                     f"x 2 (forward + backward) = {_fmt(bw_edges * 1e3)} ms, plus the dense Adam update of all "
                     f"{n_nodes * 64 / 1e9:.1f}·10^9 embedding parameters ({_fmt(adam_s * 1e3)} ms): "
                     f"**{_fmt((bw_edges + adam_s) * steps / 60)} min per epoch** on 8 H200s; with a row-sparse "
                     f"optimiser (only the sampled rows updated: the fused optimiser of `tables=\"sharded\"`, "
                     f"TorchRec + fbgemm, which also spreads the tables over the GPUs) the bound is "
                     f"{_fmt(bw_edges * steps / 60)} min. At the measured CPU cost ({per_edge * 1e6:.2f} µs per "
                     f"sampled edge, one CPU process) one GPU-equivalent would need "
                     f"{_fmt(per_edge * m * steps / 3600)} h per epoch: the projection rests on the bandwidth bound, "
                     f"which a real GPU run (benchmarks' GPU script) has to confirm.")
    lines.append("- Assumptions: 10^9 interactions at the generator's density (2·10^7 users, 10^7 items, d = 64); "
                 "8 GPUs in data parallel, 2048 positives per GPU per step; H200 HBM 4.8 TB/s at peak, every "
                 "gathered embedding row read from HBM (no cache reuse: an upper bound on traffic, a lower bound on "
                 "time), kernels bandwidth-bound, no overlap of the gradient all-reduce "
                 f"({n_nodes * 64 * 4 / 1e9:.1f} GB of dense gradients per step over NVLink at ~450 GB/s would add "
                 f"{n_nodes * 64 * 4 / 450e9 * 1e3:.0f} ms per step unless the gradients are sparse), sampling cost "
                 "ignored.")
    return lines, out


def _load_note(load: list[float] | None) -> str:
    """How far to trust wall times, from the load average recorded when the run started."""
    if not load:
        return "The machine's load was not recorded: trust CPU seconds over wall time."
    shown = ", ".join(f"{x:.1f}" for x in load)
    if max(load) < 3:
        return (f"The machine was otherwise idle (load average {shown} at the start, 2 cores), so wall time is "
                "meaningful too; CPU time exceeds it where torch's two threads both worked.")
    return (f"The machine was shared (load average {shown} at the start, 2 cores), so wall time is inflated by other "
            "jobs: trust CPU seconds.")


def full_layers(graph: dict) -> int:
    """LightGCN layers of the runs (the default, 3)."""
    return 3


def graph_sections(graph: dict | None, yelp: dict | None) -> tuple[list[str], dict]:
    md: list[str] = []
    js: dict = {}
    md += ["## Sampled training", ""]
    md += ["`LightGCN(sampler=\"neighbor\", fan_out=...)` / `SimGCL(...)`: every batch propagates only a "
           "neighbour-sampled subgraph around its users, positives and negatives "
           "(`recsys_coldstart/graph/sampling.py`: a torch-geometric `BaseSampler` over our CSR, global-degree "
           "weights `d_i / (s_i sqrt(d_i d_j))`, unbiased, exactly full propagation at full fan-out — "
           "`tests/graph/test_sampling.py`). torch-geometric 2.8.1's own `NeighborSampler` needs pyg-lib or "
           "torch-sparse (it raises `ImportError` without them), hence the vectorised torch sampler behind PyG's "
           "sampler interface (it runs inside PyG's `NodeLoader`).", ""]
    if yelp:
        js["yelp"] = yelp
        md += [f"Command: `{yelp['command']}` (data: `$RECSYS_COLDSTART_DATA`)", "",
               "yelp2018, LightGCN train/test split (train part minus a 10% validation share, as the package's "
               "predefined warm split), test Recall@20 / NDCG@20 over all items after the same wall-clock budget, "
               "run back to back in one process on the 2-core machine (its load average after each arm is in the "
               "last column: above 2, other jobs shared the cores):", "",
               "| sampler | fan-out | budget min | train s | batches | Recall@20 | NDCG@20 | load avg after |",
               "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in yelp["rows"]:
            md.append(f"| {r['sampler']} | {r['fan_out'] or '-'} | {r['minutes_budget']} | {r['train_seconds']:.0f} | "
                      f"{r['batches']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | "
                      f"{', '.join(f'{x:.1f}' for x in r['load_avg_after'])} |")
        md.append("")
    else:
        md += ["(yelp2018 comparison not run: see the notes.)", ""]
    md += ["## Scaling curve", ""]
    if graph:
        js["scaling"] = graph
        for run in graph.get("runs") or [graph]:  # one entry per command that added rows (scale_graph.py --append)
            md += [f"Command: `nice -n 10 {run['command']}`", "",
                   f"Machine: {run['machine']}", "", f"Versions: {run['versions']}", ""]
        md += [
               "LightGCN (d = 64, 3 layers, batch 2048, dense Adam; `neighbor-sharded`: TorchRec tables trained "
               "by fbgemm's fused row-sparse Adagrad on a one-rank group), synthetic graphs from `make_synthetic_graph` "
               "(power-law degrees, 16 planted groups; users = n/50, items = n/100). Each point is a fresh process "
               "timing one epoch capped at the first few batches (first batch included); seconds per epoch are "
               "extrapolated as s/batch x ceil(nnz / 2048). `cpu s/batch` is process CPU time (all threads). "
               + " ".join(f"Run {i + 1}: " * (len(graph.get("runs") or []) > 1)
                          + _load_note(run["machine"].get("load_avg_at_start"))
                          for i, run in enumerate(graph.get("runs") or [graph]))
               + " Peak RSS is the process's `ru_maxrss` (graph, training, the final full propagation and the "
               "fold-in fit).", "",
               "| interactions | sampler | batches timed | wall s/batch | cpu s/batch | est. epoch (cpu) s | sampled edges/batch | peak RSS MB |",
               "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in graph["rows"]:
            if "error" in r:
                md.append(f"| {r['size']:,} | {r['sampler']} | failed: {r['error']} | | | | | |")
                continue
            est_cpu = r["cpu_seconds_per_batch"] * r["batches_per_epoch"]
            md.append(f"| {r['nnz']:,} | {r['sampler']} | {r['batches_timed']} | {_fmt(r['seconds_per_batch'])} | "
                      f"{_fmt(r['cpu_seconds_per_batch'])} | {_fmt(est_cpu)} | "
                      f"{_fmt(r.get('sampled_edges_per_batch'))} | {r['peak_rss_mb']:,.0f} |")
        md += ["", "Fitted growth exponents (least-squares slope on log-log over the points above; epoch time "
               "from CPU seconds):", ""]
        import numpy as np

        fits = {}
        for mode in dict.fromkeys(r.get("sampler") for r in graph["rows"]):  # full, neighbor[, neighbor-sharded]
            ok = [r for r in graph["rows"] if r.get("sampler") == mode and "error" not in r]
            if len(ok) < 2:
                continue
            x = np.log([r["nnz"] for r in ok])
            t = float(np.polyfit(x, np.log([r["cpu_seconds_per_batch"] * r["batches_per_epoch"] for r in ok]), 1)[0])
            b = float(np.polyfit(x, np.log([r["cpu_seconds_per_batch"] for r in ok]), 1)[0])
            m = float(np.polyfit(x, np.log([r["peak_rss_mb"] for r in ok]), 1)[0])
            fits[mode] = {"epoch_cpu_time_exponent": t, "batch_cpu_time_exponent": b, "peak_rss_exponent": m}
            md.append(f"- {mode}: epoch time ∝ nnz^{t:.2f}, time per batch ∝ nnz^{b:.2f}, peak RSS ∝ nnz^{m:.2f}")
        js["scaling_fits_cpu"] = fits
        md += ["", "### Projection: 10^9 interactions on 8 GPUs", ""]
        lines, proj = _projection(graph)
        js["projection_1e9_8gpu"] = proj
        md += lines + [""]
    else:
        md += ["(scaling run missing: see the notes.)", ""]
    return md, js


def ann_section(anns: list[dict]) -> tuple[list[str], dict]:
    md = ["## ANN at scale", ""]
    if not anns:
        return md + ["(not run)", ""], {}
    for a in anns:
        md.append(f"Command: `nice -n 10 {a['command']}`")
    md += ["", f"Versions: {anns[0]['versions']}", "",
           "Item vectors: Gaussian mixture in d = 64 (1000 centres, per-centre scales), queries from the same "
           "mixture; exact = torch float32 matmul + top-k in blocks of up to 256 queries and 512 MiB of scores "
           "(the ground truth and the baseline throughput); IVF-PQ = `EmbeddingIndex(backend=\"ivfpq\", "
           "refine=r)`: 16 x 8-bit PQ codes (16 B per item), the best r x k PQ candidates re-ranked exactly, "
           "nlist cells trained on 32 vectors per cell, `tune()` picks the smallest nprobe with "
           "Recall@100 >= 0.95 on 300 tuning queries, then 500 other queries are measured. Same process, same "
           "threads, back to back.", "",
           "| items | nlist | refine r | nprobe (tuned) | Recall@100 vs exact | exact q/s | IVF-PQ q/s | speed-up | codes MB | ids MB | centroids MB | refine store MB | index total MB | float vectors MB | build s | peak RSS MB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [r for a in anns for r in a["rows"]]
    for r in rows:
        mem = r["index_memory_bytes"]
        md.append(f"| {r['n_items']:,} | {r['nlist']} | {r['refine']} | {r['nprobe']} | {r['recall@100']:.4f} | {r['exact_qps']:,.0f} | "
                  f"{r['ivfpq_qps']:,.0f} | {r['speedup']:.1f}x | {mb(mem['codes'])} | {mb(mem['ids'])} | "
                  f"{mb(mem['centroids'])} | {mb(mem['refine'])} | {mb(mem['total'])} | "
                  f"{mb(r['float_vectors_bytes'])} | {r['seconds_build']:.0f} | {r['peak_rss_mb']:,.0f} |")
    md += ["", "The refine store is the float vectors the index already holds (`EmbeddingIndex` keeps them for "
           "re-ranking and `recall_against`), so refinement costs no copy; without refinement the index is codes + "
           "ids + centroids. Full-ranking evaluation never builds a users x items matrix: "
           "`evaluate.protocol.rank_and_score` scores `batch_size` users at a time (memory `batch_size x n_items` "
           "floats; `tests/retrieval/test_ann.py` checks block sizes and traced peak memory), and "
           "`EmbeddingIndex.search` answers queries in blocks of `batch_size`.", ""]
    return md, {"ann": rows}


def mb(b: float) -> str:
    """Bytes as MiB with one decimal."""
    return f"{b / 2**20:,.1f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="benchmarks/results")
    ap.add_argument("--notes", default=None, help="a Markdown file appended as the notes")
    args = ap.parse_args(argv)
    res = Path(args.results)
    graph, yelp = _load(res / "scale_graph.json"), _load(res / "scale_yelp.json")
    anns = [a for a in (_load(p) for p in sorted(res.glob("scale_ann_*.json"))) if a]
    md1, js1 = graph_sections(graph, yelp)
    md2, js2 = ann_section(anns)
    notes = Path(args.notes).read_text().strip().splitlines() if args.notes else []
    block = "\n".join([START, *md1, *md2, *notes, END]) + "\n"
    md_path = res / "scale.md"
    text = md_path.read_text() if md_path.exists() else "# Past one machine (issue 17)\n\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    md_path.write_text(text)
    js_path = res / "scale.json"
    js = json.loads(js_path.read_text()) if js_path.exists() else {}
    js["sampled_scaling_ann"] = {**js1, **js2, "command": "python benchmarks/scale_report.py " + " ".join(argv or [])}
    js_path.write_text(json.dumps(js, indent=2))


if __name__ == "__main__":
    main()
