"""Distillation and cold-start benchmark (issue 4): teacher vs students vs cold-start models vs floors.

Scenarios: ml-100k item-cold, ml-100k user-cold (K support positives per cold user), citeulike-a
item-cold (DropoutNet's predefined cold split), each over several seeds. Per scenario and seed:

- base: implicit ALS fitted on the split's train part (the pretrained embeddings): 64 factors,
  and ``--base-factors`` (default 400 on citeulike-a, where a 64-d base caps every content map
  below the content-KNN floor; DropoutNet and Heater used a 200-d WMF base on CiteULike) for the
  cold-start models;
- ``teacher``: :class:`TwoTowerTeacher` (256-d, 2 hidden layers) initialised from ALS(64);
- ``student-{score,rank,embed}``: 32-d one-hidden-layer students distilled from the teacher
  (lambda = 0.5), and ``student-nodistill``: the same student on the task loss only;
- ``dropoutnet`` / ``heater`` (preference input: the base ALS at its full width) and ``aldi``
  (warm teacher: the same base ALS), each starting from the closed-form content map
  (``content_init="map"``: ridge + k-NN attribute-to-feature maps, the k-NN weight chosen on val);
  ``content-map``: that map alone (no training), to show what training adds;
- floors: ``content-knn`` (item-cold), ``feature-popularity`` (user-cold), ``popularity``.

Reported: NDCG@20 / Recall@20 on the cold segment (``cold-item``: ranking among the test cold
items; ``cold-user``: full ranking for test cold users), parameter counts (serving parameters of
the torch models; floors have none), and scoring latency: median ms to embed 1,000 users online
(``score_new_users`` from their interactions + features) and rank the whole catalogue (top-20),
CPU, one torch thread, all models in the same process. ``--warm`` adds a warm split of ml-100k so
the table can say how each model does on warm users.

Usage::

    nice -n 10 python benchmarks/distill_coldstart.py [--data-dir ../shared/data] [--seeds 0 1 2]
        [--epochs 15] [--scenarios ml-100k:item-cold ml-100k:user-cold citeulike-a:item-cold]
    python benchmarks/distill_coldstart.py --report-only     # rebuild .md/.png from the JSON

Writes ``benchmarks/results/distill_coldstart.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recsys_coldstart.base import topk
from recsys_coldstart.cli.registry import distill_strategy
from recsys_coldstart.evaluate.results import (
    current_command,
    machine,
    peak_rss_mb,
    read_json,
    to_markdown,
    to_records,
    versions,
    write_json,
)

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "distill_coldstart"
STUDENTS = ("student-score", "student-rank", "student-embed")
SEGMENT = {"item-cold": "cold-item", "user-cold": "cold-user", "warm": "warm"}


def latency_ms(model, obs, feats, n_repeats: int = 3) -> tuple[float, float]:
    """Median ms per 1,000 users: ``score_new_users(obs, feats)`` over the whole catalogue, and the
    same plus the top-20 selection."""
    score_t, total_t = [], []
    for _ in range(n_repeats):
        t0 = time.perf_counter()
        s = model.score_new_users(obs, feats)
        t1 = time.perf_counter()
        topk(s, 20)
        t2 = time.perf_counter()
        score_t.append(t1 - t0)
        total_t.append(t2 - t0)
    per = 1000 * 1000 / obs.shape[0]
    return float(np.median(score_t) * per), float(np.median(total_t) * per)


def latency_buffer_ms(model, obs, feats, n_repeats: int = 5) -> float | None:
    """Median ms per 1,000 users for ``score_new_users(obs, feats, out=buf)``: embed them and score
    the whole catalogue into one reused output buffer, as a serving loop would (no fresh
    users x items allocation per call); None for models without that option."""
    from recsys_coldstart.base import EmbeddingRecommender

    if not isinstance(model, EmbeddingRecommender):
        return None
    buf = np.empty((obs.shape[0], model.item_factors_.shape[0]), np.float32)
    ts = []
    for _ in range(n_repeats):
        t0 = time.perf_counter()
        model.score_new_users(obs, feats, out=buf)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1000 * 1000 / obs.shape[0])


def filter_item_features(split, min_df: int):
    """The split with item feature columns used by fewer than ``min_df`` items (counted over the
    whole catalogue's content, no interactions involved) dropped from every part
    (:func:`recsys_coldstart.data.features.drop_rare_columns`).

    Returns ``(split, n_kept, n_total)``.
    """
    from recsys_coldstart.data.features import drop_rare_columns
    from recsys_coldstart.data.splits import with_side_features

    f = split.source.item_features
    if f is None or min_df <= 1:
        return split, (0 if f is None else f.n_features), (0 if f is None else f.n_features)
    new = drop_rare_columns(f, min_df)
    return with_side_features(split, item_features=new), new.n_features, f.n_features


def run_scenario(dataset: str, kind: str, seed: int, data_dir: str, epochs: int, n_support: int,
                 logq: bool = False, min_df: int = 1, skip: tuple[str, ...] = (),
                 item_bias: bool = False, fold_in: str = "tower", base_factors: int = 64,
                 student_tie: bool = False) -> list[dict]:
    from recsys_coldstart.baselines.content_knn import ContentKNN
    from recsys_coldstart.baselines.feature_popularity import FeaturePopularity
    from recsys_coldstart.baselines.implicit_mf import ALS
    from recsys_coldstart.baselines.popularity import Popularity
    from recsys_coldstart.cli.data import get_split
    from recsys_coldstart.coldstart import ALDI, DropoutNet, Heater
    from recsys_coldstart.data.datasets import load_dataset
    from recsys_coldstart.distill import Student, TwoTowerTeacher
    from recsys_coldstart.evaluate.protocol import evaluate

    data = load_dataset(dataset, data_dir)
    split = get_split(data, kind, seed=seed, n_support=n_support, data_dir=data_dir)
    full_train = split.train
    split, n_kept, n_all = filter_item_features(split, min_df)
    if n_kept != n_all:
        print(f"  {dataset}: kept {n_kept} of {n_all} item feature columns (min_df={min_df})", flush=True)
    train, val = split.train, split.val
    seg = SEGMENT[kind]
    segments = [seg] + (["all"] if kind == "item-cold" else [])
    common = dict(n_epochs=epochs, patience=3, random_state=seed, device="cpu", fold_in=fold_in)
    models: dict[str, object] = {}
    seconds: dict[str, float] = {}

    def fit(name, make):
        t0 = time.perf_counter()
        models[name] = make()
        seconds[name] = time.perf_counter() - t0
        print(f"  {dataset} {kind} seed {seed}: {name} fitted in {seconds[name]:.1f}s", flush=True)

    fit("als", lambda: ALS(dim=64, random_state=seed, num_threads=1).fit(train))
    als = models["als"]
    if base_factors != 64:
        fit("base", lambda: ALS(dim=base_factors, random_state=seed, num_threads=1).fit(train))
    base = models.get("base", als)
    tx = {"logq_correction": True} if logq else {}
    sx = {"logq_correction": True, "few_shot_prob": 0.5} if logq else {}
    if item_bias:  # per-item bias with the log-popularity prior, teacher and students
        tx, sx = {**tx, "item_bias": True}, {**sx, "item_bias": True}
    fit("teacher", lambda: TwoTowerTeacher(**common, **tx).fit(train, val=val, init_factors=als))
    teacher = models["teacher"]
    item_ids = kind != "item-cold"
    sx = {**sx, "tie_item_inputs": student_tie}
    fit("student-nodistill", lambda: Student(item_ids=item_ids, **common, **sx).fit(train, val=val))
    for loss in ("score", "rank", "embed"):
        fit(f"student-{loss}", lambda loss=loss: Student(item_ids=item_ids, distill=distill_strategy(loss), **common, **sx).fit(
            train, val=val, teacher=teacher))
    fit("content-map", lambda: DropoutNet(**{**common, "n_epochs": 0}, pref_dim=None).fit(train, val=val, init_factors=base))
    if "dropoutnet" not in skip:
        fit("dropoutnet", lambda: DropoutNet(**common, pref_dim=None).fit(train, val=val, init_factors=base))
    if "heater" not in skip:
        fit("heater", lambda: Heater(**common, pref_dim=None).fit(train, val=val, init_factors=base))
    if "aldi" not in skip:
        fit("aldi", lambda: ALDI(**common).fit(train, val=val, init_factors=base))
    if kind == "item-cold":
        fit("content-knn", lambda: ContentKNN().fit(train))
        if n_kept != n_all:  # the floor on every feature column too
            fit("content-knn-allfeatures", lambda: ContentKNN().fit(full_train))
    else:
        fit("feature-popularity", lambda: FeaturePopularity().fit(train))
    fit("popularity", lambda: Popularity().fit(train))

    rng = np.random.default_rng(seed)
    users = rng.choice(train.n_users, 1000, replace=train.n_users < 1000)
    obs = (train.user_items + split.support.user_items)[users].tocsr()
    feats = None if train.user_features is None else train.user_features.take(users)
    frames, extra_rows = [], []
    for name, m in models.items():
        if name in ("als", "base"):
            continue
        df = evaluate(m, split, segments=segments, ks=(10, 20), model_name=name, seed=seed)
        frames.append(df)
        n_params = int(getattr(m, "n_parameters", 0) or 0)
        lat, lat_top = latency_ms(m, obs, feats)
        lat_buf = latency_buffer_ms(m, obs, feats)
        for metric, value in (("n_parameters", n_params), ("ms_per_1k_users", lat), ("ms_per_1k_users_top20", lat_top),
                              ("ms_per_1k_users_buffer", float("nan") if lat_buf is None else lat_buf),
                              ("fit_seconds", seconds[name])):
            extra_rows.append((name, split.name, kind, seg, metric, 0, float(value), seed))
    res = pd.concat(frames + [pd.DataFrame(extra_rows, columns=frames[0].columns)], ignore_index=True)
    cfg = {"epochs": epochs, "min_df": min_df, "n_item_features": n_kept, "patience": 3, "n_support": n_support, "base": f"ALS({base_factors})", "torch_threads": 1,
           "teacher": "TwoTowerTeacher(dim=256, hidden=(256,256))",
           "student": f"Student(dim=32, hidden=(32,), item_ids={item_ids}, lam=0.5, tie_item_inputs={student_tie})",
           "teacher_extra": tx,
           "student_extra": sx, "fold_in": fold_in}
    return to_records(res, config=cfg, command=current_command(), device="cpu",
                      seconds=sum(seconds.values()), extra={"peak_rss_mb": peak_rss_mb(), "machine": machine(),
                                                            "versions": versions()})


def run_latency(dataset: str, kind: str, data_dir: str, n_support: int, n_repeats: int = 11,
                min_df: int = 1, base_factors: int = 64, student_tie: bool = False) -> list[dict]:
    """Serving latency only: architectures at their benchmark sizes, trained for one epoch (latency does
    not depend on the weights), all measured in this one process."""
    from recsys_coldstart.baselines.content_knn import ContentKNN
    from recsys_coldstart.baselines.feature_popularity import FeaturePopularity
    from recsys_coldstart.baselines.implicit_mf import ALS
    from recsys_coldstart.cli.data import get_split
    from recsys_coldstart.coldstart import DropoutNet, Heater
    from recsys_coldstart.data.datasets import load_dataset
    from recsys_coldstart.distill import Student, TwoTowerTeacher
    from recsys_coldstart.foldin import fold_in_for

    data = load_dataset(dataset, data_dir)
    split = get_split(data, kind, seed=0, n_support=n_support, data_dir=data_dir)
    split, _, _ = filter_item_features(split, min_df)
    train = split.train
    one = dict(n_epochs=1, patience=None, random_state=0, device="cpu",
               fold_in=fold_in_for(kind))
    als = ALS(dim=64, num_threads=1).fit(train)
    base = als if base_factors == 64 else ALS(dim=base_factors, num_threads=1).fit(train)
    models = {"teacher": TwoTowerTeacher(**one).fit(train, init_factors=als),
              "student": Student(item_ids=kind != "item-cold", tie_item_inputs=student_tie, **one).fit(train),
              "dropoutnet": DropoutNet(**one, pref_dim=None).fit(train, init_factors=base),
              "heater": Heater(**one, pref_dim=None).fit(train, init_factors=base),
              "content-knn" if kind == "item-cold" else "feature-popularity":
                  (ContentKNN() if kind == "item-cold" else FeaturePopularity()).fit(train)}
    rng = np.random.default_rng(0)
    users = rng.choice(train.n_users, 1000, replace=train.n_users < 1000)
    obs = (train.user_items + split.support.user_items)[users].tocsr()
    feats = None if train.user_features is None else train.user_features.take(users)
    rows = []
    for name, m in models.items():
        lat, lat_top = latency_ms(m, obs, feats, n_repeats=n_repeats)
        lat_buf = latency_buffer_ms(m, obs, feats, n_repeats=n_repeats)
        rows.append({"model": name, "dataset": dataset, "split": kind, "n_items": train.n_items,
                     "params": int(getattr(m, "n_parameters", 0) or 0), "score_ms_per_1k": lat,
                     "score_top20_ms_per_1k": lat_top, "score_reused_buffer_ms_per_1k": lat_buf,
                     "min_df": min_df, "command": current_command()})
        print(f"  latency {dataset} {kind} {name}: {lat:.1f} ms ({lat_top:.1f} with top-20)", flush=True)
    return rows


def run_warm_teacher(seed: int, data_dir: str, epochs: int) -> list[dict]:
    """The warm reference: ALS and the teacher on ml-100k's warm split, NDCG / Recall@20 on warm users."""
    from recsys_coldstart.baselines.implicit_mf import ALS
    from recsys_coldstart.cli.data import get_split
    from recsys_coldstart.data.datasets import load_dataset
    from recsys_coldstart.distill import TwoTowerTeacher
    from recsys_coldstart.evaluate.protocol import evaluate, metric_value

    split = get_split(load_dataset("ml-100k", data_dir), "warm", seed=seed, data_dir=data_dir)
    t0 = time.perf_counter()
    als = ALS(dim=64, random_state=seed, num_threads=1).fit(split.train)
    teacher = TwoTowerTeacher(n_epochs=epochs, patience=3, random_state=seed, device="cpu").fit(
        split.train, val=split.val, init_factors=als)
    rows = []
    for name, m in (("als", als), ("teacher", teacher)):
        df = evaluate(m, split, segments=["warm"], ks=(20,), model_name=name, seed=seed)
        rows.append({"model": name, "dataset": "ml-100k", "split": "warm", "segment": "warm", "seed": seed,
                     "ndcg@20": metric_value(df, "ndcg", 20, "warm"), "recall@20": metric_value(df, "recall", 20, "warm"),
                     "epochs": epochs, "fit_seconds": time.perf_counter() - t0, "command": current_command()})
        print(f"  warm seed {seed} {name}: NDCG@20 {rows[-1]['ndcg@20']:.4f}", flush=True)
    return rows


def warm_table(records: pd.DataFrame, warm: pd.DataFrame) -> str:
    """Markdown: the warm teacher on warm users next to every model's cold-segment NDCG@20."""
    t = warm[warm.model == "teacher"]["ndcg@20"]
    a = warm[warm.model == "als"]["ndcg@20"]
    lines = ["", "## Warm teacher on warm users vs the cold segments", "",
             f"Command: `{warm['command'].iloc[0]}`. Warm reference (ml-100k warm split, warm users, seeds "
             f"{sorted(int(x) for x in warm.seed.unique())}): teacher NDCG@20 {_mean_std(t)}, ALS(64) {_mean_std(a)}. "
             "Each cell: cold-segment NDCG@20 (mean over seeds) and its ratio to the warm teacher's warm-user "
             "NDCG@20 (different users / candidate sets, so this says how much accuracy a cold entity costs, "
             "not which model is better).", ""]
    tw = float(t.mean())
    sel = records[(records.metric == "ndcg") & (records.k == 20)]
    sel = sel[sel.segment == sel.split.map(SEGMENT)]
    piv = sel.groupby(["model", "dataset", "split"], sort=False).value.mean().reset_index()
    piv["col"] = piv.dataset + " " + piv.split
    cols = list(dict.fromkeys(piv.col))
    rows = []
    for model, g in piv.groupby("model", sort=False):
        row = {"model": model}
        for c in cols:
            v = g[g.col == c].value
            row[c] = f"{float(v.iloc[0]):.4f} ({float(v.iloc[0]) / tw:.0%})" if len(v) else "-"
        rows.append(row)
    lines += [to_markdown(pd.DataFrame(rows)), ""]
    return "\n".join(lines)


def _mean_std(x: pd.Series) -> str:
    return f"{x.mean():.4f} ± {x.std(ddof=1):.4f}" if len(x) > 1 else f"{x.mean():.4f}"


def report(records: pd.DataFrame) -> str:
    """Markdown tables + checks, and the PNG figure."""
    lines = ["# Distillation and cold-start benchmark (issue 4)", "",
             "Commands: " + ", ".join(f"`{c}`" for c in records["command"].unique()) if "command" in records else "",
             ""]
    if "versions" in records and isinstance(records["versions"].iloc[0], dict):
        v = records["versions"].iloc[0]
        lines.append("Versions: " + ", ".join(f"{k} {v[k]}" for k in ("python", "torch", "numpy") if k in v))
    if "machine" in records and isinstance(records["machine"].iloc[0], dict):
        lines.append(f"Machine: {records['machine'].iloc[0]}")
    lines.append("")
    checks = []
    fig_data = []
    for (dataset, kind), g in records.groupby(["dataset", "split"], sort=False):
        seg = SEGMENT[kind]
        seeds = sorted(int(x) for x in g.seed.unique())
        lines += [f"## {dataset} {kind} (segment `{seg}`, seeds {seeds})", ""]
        rows = []
        for model, gm in g.groupby("model", sort=False):
            def pick(metric, k, segment=seg, gm=gm):
                s = gm[(gm.metric == metric) & (gm.k == k) & (gm.segment == segment)].value
                return s
            row = {"model": model, "NDCG@20": _mean_std(pick("ndcg", 20)), "Recall@20": _mean_std(pick("recall", 20))}
            if kind == "item-cold":
                row["NDCG@20 (all items)"] = _mean_std(pick("ndcg", 20, "all"))
            npar = pick("n_parameters", 0).mean()
            lat = pick("ms_per_1k_users", 0)
            row["params"] = f"{int(npar):,}" if npar > 0 else "-"
            row["score ms / 1k users"] = f"{lat.median():.1f}"
            buf = pick("ms_per_1k_users_buffer", 0)
            row["into reused buffer"] = f"{buf.median():.1f}" if buf.notna().any() else "-"
            row["score+top-20 ms / 1k users"] = f"{pick('ms_per_1k_users_top20', 0).median():.1f}"
            row["fit s"] = f"{pick('fit_seconds', 0).median():.0f}"
            rows.append(row)
            fig_data.append((dataset, kind, model, pick("ndcg", 20).mean(), npar, lat.median()))
        lines += [to_markdown(pd.DataFrame(rows)), ""]

        def nd(model, g=g, seg=seg):
            s = g[(g.model == model) & (g.metric == "ndcg") & (g.k == 20) & (g.segment == seg)].value
            return float(s.mean()) if len(s) else float("nan")

        def val(model, metric, g=g):
            s = g[(g.model == model) & (g.metric == metric)].value
            return float(s.median()) if len(s) else float("nan")

        t = nd("teacher")
        best_student = max(STUDENTS, key=nd)
        floor = "content-knn" if kind == "item-cold" else "feature-popularity"
        ratio = val(best_student, "n_parameters") / val("teacher", "n_parameters")
        speed = val("teacher", "ms_per_1k_users") / val(best_student, "ms_per_1k_users")
        speed_top = val("teacher", "ms_per_1k_users_top20") / val(best_student, "ms_per_1k_users_top20")
        speed_buf = val("teacher", "ms_per_1k_users_buffer") / val(best_student, "ms_per_1k_users_buffer")
        checks += [
            f"- **{dataset} {kind}**: best distilled student `{best_student}` NDCG@20 {nd(best_student):.4f} vs "
            f"no-distillation {nd('student-nodistill'):.4f} → "
            f"{'PASS' if nd(best_student) > nd('student-nodistill') else 'FAIL'} (distilled beats plain); "
            + "; ".join(f"{s} {nd(s):.4f}" for s in STUDENTS),
            f"  - keeps {nd(best_student) / t:.1%} of the teacher's NDCG@20 ({t:.4f}) → "
            f"{'PASS' if nd(best_student) >= 0.95 * t else 'FAIL'} (≥95%); params {ratio:.1%} of the teacher → "
            f"{'PASS' if ratio <= 0.10 else 'FAIL'} (≤10%); scoring {speed:.1f}× faster with a fresh output "
            f"array per call → {'PASS' if speed >= 5 else 'FAIL'} (≥5×), {speed_buf:.1f}× into a reused output "
            f"buffer → {'PASS' if speed_buf >= 5 else 'FAIL'}; with the top-20 selection included "
            f"{speed_top:.1f}× faster",
            "  - cold-start models vs floor `" + floor + f"` ({nd(floor):.4f}): "
            + ", ".join(f"{m} {nd(m):.4f} {'PASS' if nd(m) > nd(floor) else 'FAIL'}"
                        for m in ("dropoutnet", "heater", "aldi", "content-map", "teacher", best_student) if m in set(g.model))
            + (" (ALDI is a cold-item method)" if kind == "user-cold" else ""),
        ]
    lines = lines[:4] + ["## Checks (computed from the numbers below)", ""] + checks + [""] + lines[4:]
    lines += ["Notes: `params` counts serving parameters of the torch models (ID tables + towers; ALDI keeps "
              "the teacher's warm vectors as arrays, not counted); floors have none. Latency: median ms to "
              "embed 1,000 users online (their train rows / support + features) and score the whole catalogue "
              "(`score_new_users`), and the same plus the top-20 selection; one torch / BLAS thread, median of "
              "3 repeats, then the median over seeds; CPU shared with other jobs (timings swing up to 2×)."]
    _figure(fig_data)
    return "\n".join(lines) + "\n"


def _figure(fig_data) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(fig_data, columns=["dataset", "kind", "model", "ndcg", "params", "ms"])
    scen = list(dict.fromkeys(zip(df.dataset, df.kind, strict=True)))
    fig, axes = plt.subplots(len(scen), 2, figsize=(11, 3.6 * len(scen)), squeeze=False)
    for r, (d, k) in enumerate(scen):
        g = df[(df.dataset == d) & (df.kind == k)]
        for c, (col, label) in enumerate((("params", "parameters (log)"), ("ms", "ms per 1,000 users (log)"))):
            ax = axes[r, c]
            for row in g.itertuples():
                x = getattr(row, col)
                if col == "params" and x <= 0:
                    x = 1.0  # floors: no parameters, plotted at 1
                marker = "s" if row.model == "teacher" else ("o" if row.model.startswith("student") else "^")
                ax.scatter(x, row.ndcg, marker=marker, s=40)
                ax.annotate(row.model, (x, row.ndcg), fontsize=7, xytext=(3, 3), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel(f"NDCG@20 ({SEGMENT[k]})")
            ax.set_title(f"{d} {k}")
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=120)
    plt.close(fig)



# ---------------------------------------------------------------------------------------------- issue 15
HOLD_CELLS = ("citeulike-a:item-cold", "citeulike-a/svd64:item-cold", "ml-100k:item-cold",
              "ml-100k:user-cold", "ml-100k/dense-user:user-cold")


def feature_variant(split, variant: str, seed: int):
    """The split with its side features replaced (:func:`recsys_coldstart.data.features.compress_features`):
    ``svd64`` = item tags -> tf-idf -> 64 dense SVD dimensions; ``dense-user`` = user one-hot
    demographics -> standardised -> dense SVD (all but one dimension) plus 8 N(0, 1) noise columns.
    The suite ``benchmarks/suites/coldstart_hold.toml`` asks for the same variants by dataset options."""
    from recsys_coldstart.data.features import compress_features
    from recsys_coldstart.data.splits import with_side_features

    if not variant:
        return split
    if variant == "svd64":
        return with_side_features(split, item_features=compress_features(split.source.item_features, 64,
                                                                          weighting="tfidf", random_state=seed))
    if variant == "dense-user":
        return with_side_features(split, user_features=compress_features(
            split.source.user_features, -1, weighting="standardize", noise_columns=8, random_state=seed))
    raise ValueError(f"unknown feature variant {variant!r}; choose 'svd64' or 'dense-user'")


def run_hold(cell: str, seed: int, data_dir: str, epochs: int, n_support: int, min_df: int = 1,
             base_dim: int = 64) -> list[dict]:
    """One issue-15 cell: teacher vs its init model, learned cold-start models vs the map they start
    from and the floor; per model the val of the start, of the kept state, and whether the start was kept.
    Every model starts from one ALS(``base_dim``) (the teacher is ``base_dim`` wide too)."""
    from recsys_coldstart.baselines.content_knn import ContentKNN
    from recsys_coldstart.baselines.feature_popularity import FeaturePopularity
    from recsys_coldstart.baselines.implicit_mf import ALS
    from recsys_coldstart.cli.data import get_split
    from recsys_coldstart.coldstart import ALDI, DropoutNet, Heater
    from recsys_coldstart.data.datasets import load_dataset
    from recsys_coldstart.distill import Student, TwoTowerTeacher, student_split_defaults
    from recsys_coldstart.evaluate.protocol import evaluate, metric_value

    name_var, kind = cell.split(":")
    dataset, _, variant = name_var.partition("/")
    data = load_dataset(dataset, data_dir)
    split = get_split(data, kind, seed=seed, n_support=n_support, data_dir=data_dir)
    split, _, _ = filter_item_features(split, min_df)
    split = feature_variant(split, variant, seed)
    train, val = split.train, split.val
    seg = SEGMENT[kind]
    heavy = dataset == "citeulike-a"
    from recsys_coldstart.foldin import fold_in_for

    common = dict(n_epochs=epochs, patience=2, random_state=seed, device="cpu", fold_in=fold_in_for(kind))
    out: list[dict] = []
    t_all = time.perf_counter()
    als = ALS(dim=base_dim, random_state=seed, num_threads=1).fit(train)
    models: dict[str, object] = {}
    secs: dict[str, float] = {}

    def fit(name, make):
        t0 = time.perf_counter()
        models[name] = make()
        secs[name] = time.perf_counter() - t0
        print(f"  {cell} seed {seed}: {name} fitted in {secs[name]:.1f}s", flush=True)

    # user-cold: cold val users are validated on the items they revealed, as the test scores them
    sup = {"support": split.support} if kind == "user-cold" else {}
    hybrid = kind != "item-cold"
    # the teacher's init model on the teacher's path: ALS(64) + the content map on its vectors
    fit("content-map", lambda: DropoutNet(**{**common, "n_epochs": 0}, pref_dim=None).fit(
        train, val=val, init_factors=als, **sup))
    fit("teacher", lambda: TwoTowerTeacher(**common, dim=base_dim, hidden=(128,) if heavy else (256, 256)).fit(
        train, val=val, init_factors=als, **sup))
    # item-cold: the feature-only student starts at the teacher distilled in closed form (split
    # defaults); with wide sparse features (CiteULike's tags) its wide first layer is stored once
    student = {**common, **student_split_defaults(kind, hybrid), "tie_item_inputs": heavy and not hybrid,
               "keep_teacher": None}  # fixed widths here: 32 and the teacher's (the suite lets it choose)
    fit("student-score", lambda: Student(item_ids=hybrid, **student).fit(
        train, val=val, teacher=models["teacher"], **sup))
    if kind == "item-cold":  # the same student as wide as the teacher: what width keeping it costs
        fit("student-wide", lambda: Student(item_ids=False, **{**student, "dim": base_dim}).fit(
            train, val=val, teacher=models["teacher"]))
    fit("dropoutnet", lambda: DropoutNet(**common, pref_dim=None).fit(train, val=val, init_factors=als, **sup))
    fit("heater", lambda: Heater(**common, pref_dim=None, n_experts=2 if heavy else 5).fit(
        train, val=val, init_factors=als, **sup))
    if kind == "item-cold":
        fit("aldi", lambda: ALDI(**common).fit(train, val=val, init_factors=als))
        fit("content-knn", lambda: ContentKNN().fit(train))
    else:
        fit("feature-popularity", lambda: FeaturePopularity().fit(train))
    for name, m in models.items():
        df = evaluate(m, split, segments=[seg], ks=(20,), model_name=name, seed=seed)
        vs, vb = getattr(m, "val_start_", {}) or {}, getattr(m, "val_best_", {}) or {}
        row = {"cell": cell, "dataset": name_var, "split": kind, "model": name, "seed": seed,
               "ndcg@20": metric_value(df, "ndcg", 20, seg), "recall@20": metric_value(df, "recall", 20, seg),
               "val_recall@20_start": vs.get("val_recall@20", np.nan), "val_recall@20_best": vb.get("val_recall@20", np.nan),
               "val_ndcg@20_start": vs.get("val_ndcg@20", np.nan), "val_ndcg@20_best": vb.get("val_ndcg@20", np.nan),
               "kept_start": bool(getattr(m, "kept_start_", False)) if hasattr(m, "kept_start_") else None,
               "best_epoch": int(getattr(m, "best_epoch_", -1)),
               "map_option": str(getattr(m, f"{'item' if kind == 'item-cold' else 'user'}_cmap_val_", "")),
               "fit_seconds": secs[name], "epochs": epochs, "base_dim": base_dim, "command": current_command(),
               "n_parameters": int(m.n_parameters) if hasattr(m, "_nets") else None,
               "dim": int(m.item_factors_.shape[1]) if hasattr(m, "item_factors_") else None}
        out.append(row)
        print(f"  {cell} seed {seed} {name}: NDCG@20 {row['ndcg@20']:.4f} val start {row['val_recall@20_start']:.4f} "
              f"best {row['val_recall@20_best']:.4f} kept_start {row['kept_start']}", flush=True)
    print(f"  {cell} seed {seed}: {time.perf_counter() - t_all:.0f}s", flush=True)
    return out


def hold_report(df: pd.DataFrame) -> str:
    """Markdown of the issue-15 cells: per cell and model, mean test NDCG@20, val start -> best, kept start,
    and the checks (learned >= floor, teacher >= init model, student >= 95% teacher, training moves val)."""
    lines = ["# Cold-start models and distillation on data we did not tune on (issue 15)", "",
             "Commands: " + ", ".join(f"`{c}`" for c in df["command"].unique()), "",
             "Test NDCG@20 / Recall@20 on the cold segment (`cold-item`: ranked among the cold items; "
             "`cold-user`: K=3 support), mean ± std over the seeds run. `val start -> best`: val Recall@20 of "
             "the state before training and of the kept state (early stopping counts the start as a candidate). "
             "`content-map` is ALS(d) + the closed-form content map (ridge / k-NN / content-KNN-style history, "
             "chosen on val) = the teacher's init model on the teacher's new-user / new-item path, and the start "
             "of DropoutNet / Heater / ALDI; d (the `base` of each cell's heading) is the width of the one ALS "
             "every model of the cell starts from (the teacher is d wide too). A row whose training never beat "
             "its start on val on any seed is labelled `= content map (training did not improve val)`. On "
             "user-cold the tower models validate the cold val users on the K items they revealed (the test's "
             "path) and the student is the hybrid one with the user-cold defaults (no ID dropout, lambda 1). "
             "On item-cold the student is feature-only and starts at the teacher distilled in closed form "
             "(`content_init=\"map\"`: ridge item map onto the teacher's top principal directions, ALS fold-in "
             "users; the item-cold split default); `student-score` is 32 wide, `student-wide` as wide as the "
             "teacher. `parameters` is `n_parameters`, the networks' weights (towers, ID tables, the student's maps); "
             "it does not count the arrays a content map keeps for its k-NN part (the warm rows' features and "
             "vectors), which the map-started models and the teacher also serve from. "
             "No row is tuned: every model runs with its library defaults, and every learned one trains for "
             "at most the same number of epochs (`epochs` in the JSON, patience 2; no time cap).", ""]
    checks = []
    for cell, g in df.groupby("cell", sort=False):
        seeds = sorted(int(x) for x in g.seed.unique())
        base = sorted(int(x) for x in g["base_dim"].dropna().unique()) if "base_dim" in g else []
        lines += [f"## {cell} (seeds {seeds}{', base ALS(' + '/'.join(map(str, base)) + ')' if base else ''})", "",
                  "| model | NDCG@20 | Recall@20 | val R@20 start -> best | kept start (seeds) | parameters (width) | "
                  "map options on val R@20 (first seed) |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        nd = {}
        for model, gm in g.groupby("model", sort=False):
            nd[model] = float(gm["ndcg@20"].mean())
            ks = gm["kept_start"].dropna()
            kept = f"{int(ks.sum())}/{len(ks)}" if len(ks) else "-"
            label = model
            if model in ("dropoutnet", "heater", "aldi", "teacher") and len(ks) and ks.all():
                label = f"{model} = content map (training did not improve val)"
            vs, vb = gm["val_recall@20_start"].mean(), gm["val_recall@20_best"].mean()
            vtxt = f"{vs:.4f} -> {vb:.4f}" if np.isfinite(vs) else (f"- -> {vb:.4f}" if np.isfinite(vb) else "-")
            opt = ""
            if model == "content-map" and gm["map_option"].iloc[0]:
                import ast

                d = ast.literal_eval(gm["map_option"].iloc[0])
                opt = ", ".join(f"{k} {v:.3f}" for k, v in d.items()) + f" -> **{max(d, key=d.get)}**"
            params = gm["n_parameters"].dropna() if "n_parameters" in gm else pd.Series(dtype=float)
            ptxt = f"{int(params.mean()):,} ({int(gm['dim'].dropna().iloc[0])}-d)" if len(params) else "-"
            lines.append(f"| {label} | {_mean_std(gm['ndcg@20'])} | {_mean_std(gm['recall@20'])} | {vtxt} | {kept} | "
                         f"{ptxt} | {opt} |")
        floor = "content-knn" if "content-knn" in nd else "feature-popularity"
        learned = [m for m in ("dropoutnet", "heater", "aldi", "teacher", "student-score", "student-wide") if m in nd]
        fl = nd.get(floor, np.nan)
        checks.append(f"- **{cell}**: floor `{floor}` {fl:.4f}; " + ", ".join(
            f"{m} {nd[m]:.4f} {'PASS' if nd[m] >= fl - 1e-9 else 'FAIL'}" for m in learned))
        if "teacher" in nd and "content-map" in nd:
            checks.append(f"  - teacher {nd['teacher']:.4f} vs its init model (content-map) {nd['content-map']:.4f}: "
                          f"{'PASS' if nd['teacher'] >= nd['content-map'] - 1e-9 else 'FAIL'} (test); on val the kept state is "
                          "never below the start by construction")
        for st in ("student-score", "student-wide"):
            if st in nd and "teacher" in nd:
                r = nd[st] / nd["teacher"] if nd["teacher"] > 0 else np.nan
                size = ""
                if "n_parameters" in g:
                    pt, ps = (g[g.model == m]["n_parameters"].mean() for m in ("teacher", st))
                    size = f" with {ps / pt:.1%} of its parameters" if np.isfinite(pt) and np.isfinite(ps) else ""
                checks.append(f"  - {st} keeps {r:.1%} of the teacher{size}: {'PASS' if r >= 0.95 else 'FAIL'} (>= 95%)")
        moved = g[g.model.isin(["dropoutnet", "heater", "aldi", "teacher", "student-score", "student-wide"])
                  & g["kept_start"].notna()]
        if len(moved):
            raised = moved.groupby("model").apply(lambda x: float((x.kept_start == False).mean()))  # noqa: E712
            checks.append("  - training raised val over the start (share of seeds): " +
                          ", ".join(f"{k} {v:.0%}" for k, v in raised.items()))
        if {"dropoutnet", "heater"} <= set(nd):
            same = abs(nd["dropoutnet"] - nd["heater"]) < 1e-6
            checks.append(f"  - DropoutNet vs Heater test NDCG@20: {'identical' if same else 'differ'}"
                          f" ({nd['dropoutnet']:.4f} / {nd['heater']:.4f}); content map {nd.get('content-map', np.nan):.4f}")
        lines.append("")
    return "\n".join(lines[:5] + ["## Checks", ""] + checks + [""] + lines[5:])


def hold_main(args) -> None:
    path = RESULTS / f"{args.out}.json"
    if not args.hold:  # `--hold` alone: rebuild the report from the JSON files of --merge (and --out)
        import json

        frames = [pd.DataFrame(json.loads((RESULTS / f"{stem}.json").read_text())) for stem in args.merge
                  if (RESULTS / f"{stem}.json").is_file()]
        df = pd.concat(frames, ignore_index=True)
        write_json(df.to_dict("records"), path)
        notes = RESULTS / f"{args.out}_notes.md"
        text = hold_report(df) + ("\n" + notes.read_text() if notes.is_file() else "")
        (RESULTS / f"{args.out}.md").write_text(text)
        return
    import json

    rows = json.loads(path.read_text()) if (args.append and path.is_file()) else []
    for seed in args.seeds:
        for cell in args.hold:
            dataset = cell.split(":")[0].partition("/")[0]
            rows += run_hold(cell, seed, args.data_dir, args.epochs, args.n_support, args.min_df,
                             base_dim=args.base_dims.get(dataset, 64))
            write_json(rows, path)
            (RESULTS / f"{args.out}.md").write_text(hold_report(pd.DataFrame(rows)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--n-support", type=int, default=3)
    p.add_argument("--scenarios", nargs="+",
                   default=["ml-100k:item-cold", "ml-100k:user-cold", "citeulike-a:item-cold"])
    p.add_argument("--warm", action="store_true", help="also run ml-100k warm (warm-user comparison)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--warm-teacher", action="store_true",
                   help="fit only the teacher (and ALS) on ml-100k warm for --seeds into distill_coldstart_warm.json")
    p.add_argument("--min-df", type=int, default=1,
                   help="keep item feature columns used by >= this many items (e.g. citeulike-a tags)")
    p.add_argument("--skip", nargs="*", default=[], choices=["dropoutnet", "heater", "aldi"],
                   help="cold-start models not to fit (time)")
    p.add_argument("--logq", action="store_true",
                   help="teacher and students with the log-q correction (+ few-shot history sampling for students)")
    p.add_argument("--fold-in", default=None, choices=["tower", "ridge"],
                   help="how every tower model embeds new users (ridge: learned fold-in on warm users' first-K "
                        "reveals); default: foldin.fold_in_for(split)")
    p.add_argument("--item-bias", action="store_true",
                   help="teacher and students with a learned per-item bias (log-popularity prior)")
    p.add_argument("--base-factors", nargs="*", default=["citeulike-a=400"], metavar="DATASET=N",
                   help="ALS factors of the cold-start models' base per dataset (others: 64)")
    p.add_argument("--student-tie", nargs="*", default=["citeulike-a"], metavar="DATASET",
                   help="datasets whose students share one item-feature input matrix between their towers "
                        "(Student tie_item_inputs; keeps them within 10%% of the teacher's parameters on "
                        "CiteULike-a's 19k tag columns at min_df=2)")
    p.add_argument("--out", default="distill_coldstart", help="results file stem in benchmarks/results/")
    p.add_argument("--merge", nargs="*", default=[], metavar="STEM",
                   help="with --hold and no cells: results stems to merge into --out's report")
    p.add_argument("--hold", nargs="*", default=None, metavar="CELL",
                   help=f"issue 15 cells (dataset[/variant]:split), e.g. {' '.join(HOLD_CELLS)}")
    p.add_argument("--append", action="store_true", help="add to the records already in the JSON file")
    p.add_argument("--latency-only", action="store_true",
                   help="re-measure serving latency only (1-epoch models) into distill_coldstart_latency.json")
    args = p.parse_args()
    from recsys_coldstart.foldin import fold_in_for

    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread too: the machine's 2 cores are shared
    RESULTS.mkdir(parents=True, exist_ok=True)
    global OUT
    OUT = RESULTS / args.out
    path = OUT.with_suffix(".json")
    lat_path = RESULTS / "distill_coldstart_latency.json"
    warm_path = RESULTS / "distill_coldstart_warm.json"
    args.base_dims = {k: int(v) for k, v in (x.split("=") for x in args.base_factors)}
    if args.hold is not None:
        hold_main(args)
        return
    if args.warm_teacher:
        import json

        rows = []
        for seed in args.seeds:
            rows += run_warm_teacher(seed, args.data_dir, args.epochs)
            warm_path.write_text(json.dumps(rows, indent=1))
        args.report_only = True
    base_factors = args.base_dims
    student_tie = set(args.student_tie)
    if args.latency_only:
        import json

        rows = []
        for sc in args.scenarios:
            rows += run_latency(*sc.split(":"), args.data_dir, args.n_support,
                                min_df=args.min_df if sc.startswith("citeulike") else 1,
                                base_factors=base_factors.get(sc.split(":")[0], 64),
                                student_tie=sc.split(":")[0] in student_tie)
            lat_path.write_text(json.dumps(rows, indent=1))
        args.report_only = True
    if not args.report_only:
        scen = [s.split(":") for s in args.scenarios] + ([["ml-100k", "warm"]] if args.warm else [])
        records: list[dict] = []
        if args.append and path.is_file():
            import json

            records = json.loads(path.read_text())
            records = records.get("records", records) if isinstance(records, dict) else records
        for seed in args.seeds:  # seeds outermost: partial results cover every scenario
            for dataset, kind in scen:
                records += run_scenario(dataset, kind, seed, args.data_dir, args.epochs, args.n_support, args.logq,
                                        min_df=args.min_df, skip=tuple(args.skip), item_bias=args.item_bias,
                                        fold_in=args.fold_in or fold_in_for(kind), base_factors=base_factors.get(dataset, 64),
                                        student_tie=dataset in student_tie)
                write_json(records, path)
    df = read_json(path)
    text = report(df)
    if lat_path.is_file() and args.out == "distill_coldstart":
        import json

        lat = pd.DataFrame(json.loads(lat_path.read_text()))
        text += ("\n## Serving latency, re-measured (`--latency-only`)\n\nSame architectures and sizes, trained one "
                 "epoch (latency does not depend on the weights), measured one after another in one process with "
                 f"the current code. Command: `{lat['command'].iloc[0]}`\n\n")
        text += to_markdown(lat.drop(columns=["command"]).round(2))
        for (d, k), g in lat.groupby(["dataset", "split"], sort=False):
            t = g[g.model == "teacher"].iloc[0]
            st = g[g.model == "student"].iloc[0]
            buf = ""
            if "score_reused_buffer_ms_per_1k" in g and pd.notna(st.get("score_reused_buffer_ms_per_1k")):
                buf = (f", {t.score_reused_buffer_ms_per_1k / st.score_reused_buffer_ms_per_1k:.1f}x with a reused "
                       "output buffer")
            text += (f"\n- {d} {k}: student scores {t.score_ms_per_1k / st.score_ms_per_1k:.1f}x faster than the "
                     f"teacher ({t.score_top20_ms_per_1k / st.score_top20_ms_per_1k:.1f}x with the top-20 selection{buf}); "
                     f"{st.params / t.params:.1%} of its parameters")
        text += "\n"
    if warm_path.is_file() and args.out == "distill_coldstart":
        import json

        text += warm_table(df, pd.DataFrame(json.loads(warm_path.read_text())))
    OUT.with_suffix(".md").write_text(text)
    print(OUT.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
