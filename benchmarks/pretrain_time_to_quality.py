"""Time to quality on yelp2018: wall-clock training time until a graph model's test Recall@20
passes implicit ALS's (fitted in the same run on the same split), and the curve.

The graph model is trained with its published configuration (``benchmarks/configs/``). To get a
curve finer than one pass (544 batches of 2048 on this split), "epochs" can be capped at
``--max-batches`` batches: each capped epoch takes the first batches of a fresh random permutation
of the training interactions (so it is a uniform sample, not a fixed subset). After every
``--eval-every`` capped epochs the trainer's checkpoint is loaded and the test Recall@20 /
NDCG@20 is computed (full ranking, train and val positives excluded); evaluation time is *not*
counted in the training wall-clock. The run stops when ``--minutes`` of training time are used.

Device-aware (``--device auto``: CUDA when present). The results name the device; on a GPU this
same script gives the GPU seconds per epoch.

    nice -n 10 python benchmarks/pretrain_time_to_quality.py --model xsimgcl --minutes 30
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = Path(__file__).resolve().parent / "configs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECSYS_COLDSTART_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--dataset", default="yelp2018")
    ap.add_argument("--model", default="xsimgcl")
    ap.add_argument("--minutes", type=float, default=30.0, help="training-time budget (evaluation excluded)")
    ap.add_argument("--max-batches", type=int, default=136, help="batches per capped epoch (0 = full pass)")
    ap.add_argument("--eval-every", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-layers", type=int, default=None, help="override the published config's layer count")
    ap.add_argument("--full-train", action="store_true",
                    help="train on all of train.txt (no 10%% validation carve-out), as LightGCN / SELFRec do")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS / "pretrain_time_to_quality"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from recsys_coldstart.baselines.implicit_mf import ALS
    from recsys_coldstart.cli.pretrain import build_model, read_config_file
    from recsys_coldstart.data.datasets import load_predefined_split
    from recsys_coldstart.evaluate import evaluate, metric_value
    from recsys_coldstart.evaluate.results import current_command, machine, peak_rss_mb, versions
    from recsys_coldstart.graph.convert import BipartiteGraph

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    split = load_predefined_split(args.dataset, "warm", args.data_dir, random_state=0)
    if args.full_train:  # the val carve-out goes back into train; no early stopping is used here
        merged = ((split.train.user_items + split.val.user_items) > 0).astype(np.float32).tocsr()
        empty = sp.csr_matrix(split.val.user_items.shape, dtype=np.float32)
        split = dataclasses.replace(split, train=dataclasses.replace(split.train, user_items=merged, timestamps=None,
                                                                     ratings=None),
                                    val=dataclasses.replace(split.val, user_items=empty, timestamps=None, ratings=None))
    print(split, flush=True)
    doc: dict = {"benchmark": "pretrain_time_to_quality", "dataset": args.dataset, "command": current_command(),
                 "machine": machine(), "versions": versions(), "threads": args.threads, "curve": []}

    def save() -> None:
        doc["peak_rss_mb"] = peak_rss_mb()
        out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=str))
        lines = [f"# Time to quality: {args.model} vs implicit ALS on {args.dataset}", "",
                 f"Command: `{doc['command']}`", "", f"Machine: {doc['machine']}", "", f"Versions: {doc['versions']}",
                 "", f"Device: {doc.get('device')}, torch threads: {args.threads}", "",
                 f"Config: {doc.get('config')}", "", doc.get("note", ""), "",
                 f"ALS: test Recall@20 = {doc.get('als_recall20', float('nan')):.4f}, NDCG@20 = "
                 f"{doc.get('als_ndcg20', float('nan')):.4f}, fit {doc.get('als_fit_seconds', float('nan')):.0f}s", "",
                 "| capped epoch | batches so far | passes | train minutes | test Recall@20 | test NDCG@20 | eval s |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for c in doc["curve"]:
            lines.append(f"| {c['epoch']} | {c['batches']} | {c['passes']:.2f} | {c['train_minutes']:.1f} | "
                         f"{c['recall20']:.4f} | {c['ndcg20']:.4f} | {c['eval_seconds']:.0f} |")
        lines += ["", f"Minutes until past ALS: {doc.get('minutes_to_beat_als')}", "",
                  f"Best Recall@20: {doc.get('best_recall20')} after {doc.get('train_minutes_total')} training minutes "
                  f"({doc.get('status')})", ""]
        out.with_suffix(".md").write_text("\n".join(lines))

    t0 = time.perf_counter()
    als = ALS(random_state=0).fit(split.train)
    doc["als_fit_seconds"] = time.perf_counter() - t0
    res = evaluate(als, split, model_name="ALS", segments=("warm",))
    doc["als_recall20"] = metric_value(res, "recall", 20, "warm")
    doc["als_ndcg20"] = metric_value(res, "ndcg", 20, "warm")
    doc["als_config"] = {k: v for k, v in als.config.__dict__.items()}
    print("ALS", doc["als_recall20"], doc["als_ndcg20"], doc["als_fit_seconds"], flush=True)
    save()

    cfg_doc = read_config_file(CONFIGS / f"{args.dataset}_{args.model}.toml")
    ckdir = Path(tempfile.mkdtemp(prefix="ttq_"))
    opts = dict(cfg_doc["config"])
    if args.n_layers is not None:
        opts["n_layers"] = args.n_layers
    opts.update(n_epochs=100000, device=args.device, random_state=0, checkpoint_dir=str(ckdir), checkpoint_every=1,
                max_batches=args.max_batches or None)
    model = build_model(args.model, opts)
    full_batches = int(np.ceil(split.train.nnz / opts.get("batch_size", 2048)))
    nb = min(args.max_batches or full_batches, full_batches)
    doc["config"] = dict(opts, checkpoint_dir="<temporary folder>")  # results never name this machine's folders
    doc["device"] = str(torch.device("cuda") if args.device == "auto" and torch.cuda.is_available() else args.device)
    doc["note"] = (f"capped epochs of {nb} batches ({nb / full_batches:.2f} of a pass of {full_batches} batches); "
                   f"training budget {args.minutes} min, evaluation excluded; shortened CPU run "
                   f"(the issue's 60-minute target was not run in full unless train_minutes_total >= 60)")
    adj = BipartiteGraph(split.train.user_items, "cpu").adjacency()
    train_seconds = [0.0]

    def callback(epoch: int, logs: dict) -> bool:
        train_seconds[0] += logs["seconds"]
        if epoch % args.eval_every == 0:
            te = time.perf_counter()
            state = torch.load(ckdir / "checkpoint.pt", map_location="cpu", weights_only=True)["state"]["encoder"]
            emb0 = torch.cat([state["user_emb"], state["item_emb"]])
            with torch.no_grad():
                u, v = model._final(adj, emb0, split.train.n_users)
            snap = build_model(args.model, {"n_layers": opts["n_layers"]})
            snap.user_factors_, snap.item_factors_ = u.numpy(), v.numpy()
            r = evaluate(snap, split, model_name=args.model, segments=("warm",))
            rec, ndcg = metric_value(r, "recall", 20, "warm"), metric_value(r, "ndcg", 20, "warm")
            point = {"epoch": epoch, "batches": epoch * nb, "passes": epoch * nb / full_batches,
                     "train_minutes": train_seconds[0] / 60, "loss": logs["loss"], "recall20": rec, "ndcg20": ndcg,
                     "eval_seconds": time.perf_counter() - te}
            doc["curve"].append(point)
            if rec > doc["als_recall20"] and doc.get("minutes_to_beat_als") is None:
                doc["minutes_to_beat_als"] = point["train_minutes"]
            doc["best_recall20"] = max(c["recall20"] for c in doc["curve"])
            doc["train_minutes_total"] = train_seconds[0] / 60
            doc["status"] = "running"
            save()
            print(point, flush=True)
        return train_seconds[0] >= args.minutes * 60

    try:
        model.fit(split.train, callback=callback)
        doc["status"] = f"stopped at the {args.minutes}-minute training budget"
    finally:
        doc["train_minutes_total"] = train_seconds[0] / 60
        doc["epoch_seconds"] = [float(x) for x in getattr(model, "history_", {}).get("seconds", [])]
        save()
        shutil.rmtree(ckdir, ignore_errors=True)


if __name__ == "__main__":
    main()
