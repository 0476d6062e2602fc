"""Render a folder of benchmark records into ``report.md`` and one self-contained ``report.html``.

The HTML page has inline CSS and every figure embedded as a base64 PNG (matplotlib Agg), so it
can be mailed or attached as a single file. The Markdown page links the same figures as PNG
files under ``figures/``.

Sections: accuracy tables (mean ± std over seeds per model, segment and metric, best mean in
bold), failed cells, elicitation curves, teacher-vs-student trade-off (from records with
``n_params`` / ``latency_ms_per_1k_users``), training curves (per-epoch ``loss`` and ``val_*``
logs), tuning studies, and each cell's config, command, versions and device. A model whose
training a time cap cut is labelled "(capped at N s)" in every table it appears in.

Length: the section builders and both writers (Markdown, HTML) of one report page; the writers
(to_markdown / to_html, about 120 lines) are the split candidate (report/writers.py) once the
section set settles.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_coldstart.evaluate.results import read_results
from recsys_coldstart.report import plots

logger = logging.getLogger(__name__)

TABLE_METRICS: tuple[str, ...] = ("recall", "ndcg")
MAX_METRIC_COLUMNS = 8  # wider accuracy tables are split per segment so a 1280 px page shows every column
_SEGMENT_ORDER = {"warm": 0, "cold-user": 1, "cold-item": 2, "all": 3}


# ---------------------------------------------------------------------------------------------
# a tiny document model rendered twice (Markdown and HTML)
# ---------------------------------------------------------------------------------------------
@dataclass
class Table:
    """Header, rows of strings, and which cells are bold."""

    header: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)
    caption: str = ""


@dataclass
class Figure:
    """A PNG figure (``name`` is its file name under ``figures/``)."""

    name: str
    png: bytes
    caption: str = ""


@dataclass
class Details:
    """A collapsible block (HTML ``<details>``) with a pre-formatted body."""

    summary: str
    body: str


@dataclass
class Section:
    """A titled section holding text (str), tables, figures and details blocks."""

    title: str
    blocks: list[Any] = field(default_factory=list)


@dataclass
class Report:
    """The rendered document and the figures it uses."""

    title: str
    sections: list[Section]
    subtitle: str = ""

    def figures(self) -> list[Figure]:
        """Every figure of the report, in section order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


# ---------------------------------------------------------------------------------------------
# building the sections from records
# ---------------------------------------------------------------------------------------------
def load_records(results_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Every record under ``results_dir`` (one folder or several, searched recursively), with
    defaults for optional fields."""
    dirs = [results_dir] if isinstance(results_dir, (str, os.PathLike)) else list(results_dir)
    frames = [read_results(d) for d in dirs]
    frames = [f for f in frames if not f.empty]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if df.empty:
        return df
    defaults = {"status": "ok", "record_type": "metric", "cell": None, "seconds": np.nan, "device": None,
                "config": None, "command": None, "versions": None, "machine": None}
    for col, val in defaults.items():
        if col not in df.columns:
            df[col] = val
    df["status"] = df["status"].fillna("ok")
    df["record_type"] = df["record_type"].fillna("metric")
    if df["cell"].isna().any():
        synth = (df["dataset"].astype(str) + "__" + df["split"].astype(str) + "__" + df["model"].astype(str) + "__s"
                 + df["seed"].astype(str))
        df["cell"] = df["cell"].fillna(synth)
    return df


def _flag(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_)) and bool(v)


def capped_suffix(records: pd.DataFrame) -> str:
    """``" (capped at N s)"`` when a training time cap cut any of these records' cells (their
    numbers are not a converged model's), else ``""``; a row label carries it wherever such a
    model is shown beside others."""
    cut = pd.Series(False, index=records.index)
    for col in ("capped", "stopped_for_time"):  # stopped_for_time: records written before `capped`
        if col in records:
            cut |= records[col].map(_flag).astype(bool)
    if not cut.any():
        return ""
    caps = pd.to_numeric(records.loc[cut, "max_train_seconds"], errors="coerce").dropna() \
        if "max_train_seconds" in records else pd.Series(dtype=float)
    return f" (capped at {caps.max():g} s)" if len(caps) else " (capped)"


def tuning_label(records: pd.DataFrame) -> str:
    """How a model's rows were configured: ``"tuned (12 trials / 180 s)"``, ``"default"`` or
    ``"no parameters"`` (a tune budget was given but the model has nothing to tune), from the
    records' ``tuning`` / ``tuned`` fields; records without them (written before suites recorded
    it) say ``"as configured"``."""
    if "tuned" in records:
        for t in records["tuned"]:
            if isinstance(t, dict):
                budget = t.get("budget")
                if not budget:
                    budget = f"{t.get('trials')} trials" + ("" if t.get("timeout_s") is None
                                                            else f" / {float(t['timeout_s']):g} s")
                return f"tuned ({budget})"
    if "tuning" in records:
        if (records["tuning"] == "no-parameters").any():
            return "no parameters"
        if (records["tuning"] == "default").any():
            return "default"
    return "as configured"  # records written before suites recorded how a config was chosen


def comparison_group(records: pd.DataFrame) -> str:
    """The group a model's rows may be compared within: its tuning label, or ``"capped"`` when a
    time cap cut a cell (a capped model is never shown beside converged ones)."""
    return "capped" if capped_suffix(records) else tuning_label(records)


def _mean_std(vals: pd.Series) -> tuple[float, float, int]:
    v = vals.astype(float).to_numpy()
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.4f} ± {std:.4f}" if n > 1 else f"{mean:.4f}"


def budget_groups(g: pd.DataFrame) -> list[tuple[str, list[str], list[str]]]:
    """The comparable groups of one (dataset, split)'s records: ``(budget, models, left out)`` per
    :func:`comparison_group` (tuned with one budget, default, capped), parameter-free models in
    every group, capped last; ``left out`` names the other groups' models with their budget."""
    groups = {str(mdl): comparison_group(gm) for mdl, gm in g.groupby("model")}
    budgets = sorted({v for v in groups.values() if v != "no parameters"}, key=lambda b: (b == "capped",
                                                                                     b == "default", b))
    out = []
    for budget in budgets or ["no parameters"]:
        keep = [m for m, b in groups.items() if b == budget or b == "no parameters"]
        out.append((budget, keep, sorted(f"{m} ({b})" for m, b in groups.items() if m not in keep)))
    return out


def accuracy_tables(df: pd.DataFrame, *, metrics: Sequence[str] = TABLE_METRICS,
                    ks: Sequence[int] | None = None) -> list[Any]:
    """Tables per (dataset, split): mean ± std over seeds, best mean per column in bold.

    Rows are models (labelled with how they were configured: *tuned (budget)*, *default*, *no
    parameters*); columns are ``segment metric@k`` plus the median fit seconds. Models are only
    compared within one budget: when a (dataset, split) holds rows of several budgets (or capped
    rows), each budget gets its own table, parameter-free models join every table, and a line
    under each table says which rows were left out. Returns tables and those note strings.
    """
    sel = df[(df.record_type == "metric") & (df.status == "ok") & df.metric.isin(list(metrics))
             & ~df.segment.isin(["elicitation"])].copy()
    if ks is not None:
        sel = sel[sel.k.isin(list(ks))]
    out: list[Any] = []
    for (dataset, split), g in sel.groupby(["dataset", "split"], sort=True):
        groups = budget_groups(g)
        for budget, keep, left in groups:
            caption = f"{dataset} — split {split}: mean ± std over seeds (test set); best in bold"
            if len(groups) > 1:
                caption += f" — {budget}"
            sub = g[g.model.astype(str).isin(keep)]
            segments = sorted(sub.segment.unique(), key=lambda x: (_SEGMENT_ORDER.get(x, 9), x))
            n_cols = len({(s_, m, k) for s_, m, k in zip(sub.segment, sub.metric, sub.k, strict=True)})
            if n_cols > MAX_METRIC_COLUMNS and len(segments) > 1:  # one table per segment: fits 1280 px
                for seg in segments:
                    out.append(_accuracy_table(sub[sub.segment == seg], list(metrics), f"{caption} — segment {seg}"))
            else:
                out.append(_accuracy_table(sub, list(metrics), caption))
            if left:
                out.append(f"Rows left out of this table (another tuning budget, untuned, or time-capped; never "
                           f"compared with these): {', '.join(left)}.")
    return out


def _accuracy_table(g: pd.DataFrame, metrics: list[str], caption: str) -> Table:
    cols = sorted({(s, m, int(k)) for s, m, k in zip(g.segment, g.metric, g.k, strict=True)},
                  key=lambda c: (_SEGMENT_ORDER.get(c[0], 9), c[0], metrics.index(c[1]), c[2]))
    models = sorted(g.model.unique(), key=str)
    stats = {key: _mean_std(v.value) for key, v in g.groupby(["model", "segment", "metric", "k"])}
    has_epochs = "n_epochs_run" in g and pd.to_numeric(g["n_epochs_run"], errors="coerce").notna().any()
    header = ["model (configuration)", "seeds"] + [f"{s} {m}@{k}" for s, m, k in cols] + ["fit s (median)"]
    if has_epochs:
        header.append("epochs run")
    rows = []
    means = np.full((len(models), len(cols)), np.nan)
    for i, mdl in enumerate(models):
        gm = g[g.model == mdl]
        row = [str(mdl) + capped_suffix(gm) + "\n" + tuning_label(gm), str(gm.seed.nunique())]
        for j, (s, m, k) in enumerate(cols):
            st = stats.get((mdl, s, m, k))
            if st is None:
                row.append("—")
            else:
                means[i, j] = st[0]
                row.append(_fmt(*st))
        fit = gm.drop_duplicates("cell")
        fs = fit["fit_seconds"] if "fit_seconds" in fit else fit["seconds"]
        fs = pd.to_numeric(fs, errors="coerce").dropna()
        row.append(f"{fs.median():.1f}" if len(fs) else "—")
        if has_epochs:
            ep = pd.to_numeric(fit["n_epochs_run"], errors="coerce").dropna().astype(int)
            capped = "stopped_for_time" in fit and fit["stopped_for_time"].fillna(False).astype(bool).any()
            row.append(("—" if ep.empty else "/".join(map(str, sorted(set(ep))))) + (" (time cap)" if capped
                                                                                    else ""))
        rows.append(row)
    bold = set()
    for j in range(len(cols)):
        colv = means[:, j]
        if np.isfinite(colv).sum() >= 2:
            best = np.nanmax(colv)
            for i in np.flatnonzero(np.isclose(colv, best, rtol=0, atol=5e-5)):
                bold.add((int(i), j + 2))
    return Table(header=header, rows=rows, bold=bold, caption=caption)


def _elicitation_section(df: pd.DataFrame, figs: list) -> Section | None:
    curves = _elicitation_metrics(df[(df.record_type == "elicitation") & (df.status == "ok")])
    summ = _elicitation_metrics(df[(df.record_type == "metric") & (df.status == "ok") & (df.segment == "elicitation")],
                                extra=("known_rate", "like_rate"))
    if curves.empty and summ.empty:
        return None
    sec = Section("Elicitation")
    spans = sorted({str(v) for v in summ.get("budget_mean_over", pd.Series(dtype=object)).dropna()})
    span = " and ".join(v.replace("..", "…") for v in spans) if spans else "1…10"
    sec.blocks.append("Offline replay on each test cold user's real held-out ratings: one question at a time, "
                      "answers like / dislike / unknown. Curves are means over seeds (band: ± std); the table "
                      f"gives the mean over budgets {span}.")
    for (dataset, split), g in summ.groupby(["dataset", "split"]):
        cols = sorted({(m, int(k)) for m, k in zip(g.metric, g.k, strict=True)}, key=lambda c: (c[1] == 0, c))
        pols = sorted(g.model.unique(), key=str)
        rows, means = [], np.full((len(pols), len(cols)), np.nan)
        for i, p in enumerate(pols):
            row = [str(p), str(g[g.model == p].seed.nunique())]
            for j, (m, k) in enumerate(cols):
                v = g[(g.model == p) & (g.metric == m) & (g.k == k)].value
                if v.empty:
                    row.append("—")
                    continue
                st = _mean_std(v)
                means[i, j] = st[0]
                row.append(_fmt(*st))
            rows.append(row)
        bold = {(int(i), j + 2) for j in range(len(cols)) if np.isfinite(means[:, j]).sum() >= 2
                for i in np.flatnonzero(np.isclose(means[:, j], np.nanmax(means[:, j]), rtol=0, atol=5e-5))}
        sec.blocks.append(Table(["policy", "seeds"] + [(f"{m}@{k}" if k else m) + " (mean over budgets)" for m, k in cols], rows, bold,
                                caption=f"{dataset} — {split}: elicitation, mean ± std over seeds"))
    for (dataset, split), g in curves.groupby(["dataset", "split"]):
        fig = plots.elicitation_figure(g[["model", "budget", "metric", "k", "value", "seed"]],
                                       title=f"{dataset} — {split}")
        if fig is not None:
            sec.blocks.append(_figure(f"elicitation_{dataset}_{split}", fig, f"Elicitation curves, {dataset} {split}",
                                      figs))
    return sec


ELICITATION_METRICS: tuple[tuple[str, int], ...] = (("ndcg", 10), ("recall", 20))


def _elicitation_metrics(df: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Keep the protocol's elicitation metrics (NDCG@10, Recall@20; else the first two present)
    plus the ``extra`` k=0 rates."""
    if df.empty:
        return df
    pairs = {(m, int(k)) for m, k in zip(df.metric, df.k, strict=True)}
    want = [p for p in ELICITATION_METRICS if p in pairs] or sorted(p for p in pairs if p[1] > 0)[:2]
    want += [(m, 0) for m in extra if (m, 0) in pairs]
    keep = [(m, int(k)) in want for m, k in zip(df.metric, df.k, strict=True)]
    return df[keep]


def _primary_accuracy(g: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    for seg in ("warm", "cold-user", "cold-item", "all"):
        for metric, k in (("ndcg", 20), ("ndcg", 10), ("recall", 20)):
            s = g[(g.segment == seg) & (g.metric == metric) & (g.k == k)]
            if not s.empty:
                return f"{seg} {metric}@{k}", s
    return None


def _tradeoff_section(df: pd.DataFrame, figs: list) -> Section | None:
    if "latency_ms_per_1k_users" not in df and "n_params" not in df:
        return None
    ok = df[(df.record_type == "metric") & (df.status == "ok") & (df.segment != "elicitation")]
    sec = Section("Teacher vs student trade-off")
    sec.blocks.append("Accuracy against cost: scoring latency (ms per 1,000 known users against the whole "
                      "catalogue, median of 3 calls of `score`, on the device of the run; on a shared machine it "
                      "swings with the load) and fitted parameter count (marker size). A record's `role` field "
                      "(teacher / student), when present, colours the points.")
    for (dataset, split), g in ok.groupby(["dataset", "split"]):
        prim = _primary_accuracy(g)
        if prim is None:
            continue
        label, acc = prim
        rows = []
        for mdl, gm in acc.groupby("model"):
            cells = g[g.model == mdl].drop_duplicates("cell")
            lat = pd.to_numeric(cells.get("latency_ms_per_1k_users"), errors="coerce")
            par = pd.to_numeric(cells.get("n_params"), errors="coerce")
            role = cells["role"].dropna().iloc[0] if "role" in cells and cells["role"].notna().any() else None
            rows.append({"model": str(mdl) + capped_suffix(cells), "accuracy": gm.value.mean(), "acc_std": gm.value.std(ddof=1) if len(gm) > 1
                         else 0.0, "n_seeds": len(gm), "latency_ms_per_1k_users": lat.median() if lat is not None else np.nan,
                         "n_params": par.median() if par is not None else np.nan, "role": role})
        pts = pd.DataFrame(rows)
        if pts[["latency_ms_per_1k_users", "n_params"]].isna().all().all():
            continue
        best = pts.accuracy.max()
        tab = Table(["model", "role", label, "params", "latency ms / 1k users"],
                    [[str(r.model), "—" if r.role is None or pd.isna(r.role) else str(r.role), _fmt(r.accuracy, r.acc_std, r.n_seeds),
                      "—" if pd.isna(r.n_params) else f"{int(r.n_params):,}",
                      "—" if pd.isna(r.latency_ms_per_1k_users) else f"{r.latency_ms_per_1k_users:.2f}"]
                     for r in pts.itertuples()],
                    {(i, 2) for i, v in enumerate(pts.accuracy) if np.isclose(v, best, rtol=0, atol=5e-5)},
                    caption=f"{dataset} — {split}")
        sec.blocks.append(tab)
        fig = None if len(pts) < 2 else plots.tradeoff_figure(pts, x="latency_ms_per_1k_users", y_label=label, title=f"{dataset} — {split}")
        if fig is not None:
            sec.blocks.append(_figure(f"tradeoff_{dataset}_{split}", fig,
                                      f"Accuracy vs scoring latency, {dataset} {split}", figs))
    return sec if len(sec.blocks) > 1 else None


FLOOR_MODELS: tuple[str, ...] = ("content-knn", "feature-popularity")  # the no-training floors, first present wins
STUDENT_KEEPS = 0.95  # the share of the teacher a student must keep


def _start_info(gm: pd.DataFrame) -> dict[str, Any]:
    """What the start section reads off one model's cell records (one per seed)."""
    def first(col: str) -> Any:
        return gm[col].dropna().iloc[0] if col in gm and gm[col].notna().any() else None

    cfg = gm["config"].iloc[0]
    return {"tower": gm["kept_start"].notna().any(), "role": first("role"), "init": first("teacher"),
            "name": first("model_name"), "kept": gm["kept_start"].dropna().astype(bool),
            "epochs": float(cfg.get("n_epochs", np.nan)) if isinstance(cfg, dict) else np.nan}


def _start_row(mdl: str, gm: pd.DataFrame, info: dict[str, Any], acc: pd.Series) -> list[str]:
    """One table row: label, role, test accuracy, val start -> kept, kept-start seeds, parameters / stored."""
    def val_recall(col: str) -> float:
        return float(np.nanmean([v.get("val_recall@20", np.nan) if isinstance(v, dict) else np.nan for v in gm[col]]))

    label = str(mdl) + (" (n_epochs = 0: the start)" if info["epochs"] == 0 else "")
    vtxt = kept = ptxt = "—"
    if info["tower"]:
        if info["epochs"] != 0 and len(info["kept"]) and info["kept"].all():
            label += " = its start (training did not improve val on any seed)"
        vtxt = f"{val_recall('val_start'):.4f} → {val_recall('val_best'):.4f}"
        kept = f"{int(info['kept'].sum())}/{len(info['kept'])}"
        par, sto, dim = (pd.to_numeric(gm.get(c), errors="coerce") for c in ("n_params", "n_stored", "dim"))
        dims = sorted({int(d) for d in dim.dropna()}) if dim is not None else []
        ptxt = (f"{int(par.mean()):,}" if par is not None and par.notna().any() else "—") + \
            (f" / {int(sto.mean()):,}" if sto is not None and sto.notna().any() else "") + \
            (f" ({'/'.join(map(str, dims))}-d)" if dims else "")
    return [label, info["role"] or "—", _fmt(*_mean_std(acc)) if len(acc) else "—", vtxt, kept, ptxt]


def _start_checks(info: dict[str, dict[str, Any]], nd: pd.Series, cells: pd.DataFrame) -> list[str]:
    """The cold-start checks of one comparable group, from its mean test accuracies ``nd``."""
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    checks = []
    towers = [m for m, v in info.items() if v["tower"] and m in nd.index]
    floor = next((m for m in nd.index if info.get(m, {}).get("name") in FLOOR_MODELS), None)
    if floor is not None:
        checks.append(f"floor `{floor}` {nd[floor]:.4f}: " + ", ".join(
            f"{m} {nd[m]:.4f} {verdict(nd[m] >= nd[floor] - 1e-9)}" for m in towers))
    for t in [m for m in towers if info[m]["role"] == "teacher"]:
        init = next((m for m in towers if info[m]["epochs"] == 0 and info[m]["init"] == info[t]["init"]), None)
        if init is not None:
            checks.append(f"teacher `{t}` {nd[t]:.4f} vs the start it trains from (`{init}`) {nd[init]:.4f}: "
                          f"{verdict(nd[t] >= nd[init] - 1e-9)}")
        for st in [m for m in towers if info[m]["role"] == "student" and info[m]["init"] == t]:
            size = ""
            for col, what in (("n_params", "parameters"), ("n_stored", "stored numbers")):
                if col in cells:
                    pt, ps = (pd.to_numeric(cells[cells.model == m][col], errors="coerce").mean() for m in (t, st))
                    if np.isfinite(pt) and np.isfinite(ps) and pt > 0:
                        size += f"{' and' if size else ' with'} {ps / pt:.1%} of its {what}"
            r = nd[st] / nd[t] if nd[t] > 0 else np.nan
            checks.append(f"student `{st}` keeps {r:.1%} of the teacher{size}: "
                          f"{verdict(r >= STUDENT_KEEPS)} (>= {STUDENT_KEEPS:.0%})")
    moved = {m: float((~info[m]["kept"]).mean()) for m in towers if info[m]["epochs"] != 0 and len(info[m]["kept"])}
    if moved:
        checks.append("training raised val over the start (share of seeds): " +
                      ", ".join(f"{m} {v:.0%}" for m, v in moved.items()) +
                      "; 0% means the model is its start on this data (its objective did not improve val)")
    by_name = {info[m]["name"]: m for m in towers if info[m]["epochs"] != 0}
    if "dropoutnet" in by_name and "heater" in by_name:
        d, h = by_name["dropoutnet"], by_name["heater"]
        checks.append(f"DropoutNet vs Heater: {'identical' if abs(nd[d] - nd[h]) < 1e-6 else 'differ'} "
                      f"({nd[d]:.4f} / {nd[h]:.4f})")
    return checks


def _start_section(df: pd.DataFrame) -> Section | None:
    """Models that start at a closed-form point and train from it (the tower models): how far
    training moved val from the start, and the cold-start checks of each (dataset, split) and
    comparable group (:func:`budget_groups`: a tuned row is never checked against an untuned or
    time-capped one): every model >= the floor, the teacher >= the model it starts from (the row
    with ``n_epochs = 0`` and the same init), the student >= 95% of the teacher, DropoutNet vs Heater."""
    ok = df[(df.record_type == "metric") & (df.status == "ok")]
    if "kept_start" not in ok or not ok["kept_start"].notna().any():
        return None
    sec = Section("Cold start: training from the start, floors, distillation")
    sec.blocks.append(
        "For every model that starts at a closed-form point (the content map on the init model's vectors, the "
        "teacher distilled in closed form) and trains from it: test accuracy on the split's primary segment, "
        "val Recall@20 of the start and of the kept state (early stopping counts the start, so the kept state "
        "is never below it on val), on how many seeds the start was kept (training did not improve val), and "
        "`parameters / stored`: network weights / every number kept to serve (content maps' arrays and a "
        "student's item memory included), with the width. A row with `n_epochs = 0` is the closed-form start "
        f"itself. Checks: every model >= the floor ({' / '.join(FLOOR_MODELS)}); the teacher >= the `n_epochs = 0` "
        f"row with the same init; the student >= {STUDENT_KEEPS:.0%} of the teacher; DropoutNet and Heater apart. "
        "Rows of different tuning budgets (or time-capped) get separate tables and are never checked together.")
    for (dataset, split), g in ok.groupby(["dataset", "split"], sort=False):
        prim = _primary_accuracy(g)
        if prim is None:
            continue
        label, acc = prim
        groups = budget_groups(g)
        for budget, models, _ in groups:
            cells = g[g.model.astype(str).isin(models)].drop_duplicates("cell")
            info = {str(m): _start_info(gm) for m, gm in cells.groupby("model", sort=False)}
            if not any(v["tower"] for v in info.values()):
                continue
            sub = acc[acc.model.astype(str).isin(models)]
            rows = [_start_row(m, cells[cells.model.astype(str) == m], info[m], sub[sub.model.astype(str) == m].value)
                    for m in info]
            caption = f"{dataset} — {split}" + (f" — {budget}" if len(groups) > 1 else "")
            sec.blocks.append(Table(["model", "role", f"{label} (test)", "val R@20 start → kept",
                                     "kept start (seeds)", "parameters / stored"], rows, caption=caption))
            sec.blocks.extend(f"- {c}" for c in _start_checks(info, sub.groupby("model").value.mean(), cells))
    return sec if len(sec.blocks) > 1 else None


def _training_section(df: pd.DataFrame, figs: list) -> Section | None:
    cur = df[(df.record_type == "curve") & (df.status == "ok")]
    if cur.empty or "curve" not in cur:
        return None
    sec = Section("Training curves")
    sec.blocks.append("Per-epoch logs reported by each model's fit callback (lowest seed of each model).")
    for (dataset, split), g in cur.groupby(["dataset", "split"]):
        curves = []
        for mdl, gm in g.groupby("model"):
            seed0 = gm.seed.min()
            for r in gm[gm.seed == seed0].itertuples():
                if isinstance(r.curve, list) and len(r.curve) > 1 and _plotted_log(str(r.metric)):
                    curves.append((str(mdl), str(r.metric), r.curve))
        fig = plots.training_curves_figure(curves, title=f"{dataset} — {split}")
        if fig is not None:
            sec.blocks.append(_figure(f"training_{dataset}_{split}", fig, f"Training curves, {dataset} {split}", figs))
    return sec if len(sec.blocks) > 1 else None


def _plotted_log(key: str) -> bool:
    """Training-curve keys drawn: losses and validation metrics (timings stay in the records)."""
    return "loss" in key or key in ("bpr", "ssl", "cl", "reg") or key.startswith("val_")


def _tuning_section(df: pd.DataFrame, figs: list) -> Section | None:
    tun = df[df.record_type == "tune"]
    if tun.empty:
        return None
    sec = Section("Hyper-parameter tuning")
    sec.blocks.append("Optuna TPE studies on the validation set (median pruning from the per-epoch callback). "
                      "`default` is the model's default config (trial 0 of the study); `tuned` is the best "
                      "trial's config refitted (\"default won\" when no tried config beat the default on val); test numbers are for information only, never used for selection.")
    rows = []
    for study, g in tun.groupby("study", sort=True):
        def val(variant, which, g=g):
            s = g[(g.variant == variant) & (g.which == which)].value
            return float(s.iloc[0]) if len(s) else None

        r0 = g.iloc[0]
        d_val, t_val, d_test, t_test = val("default", "val"), val("tuned", "val"), val("default", "test"), \
            val("tuned", "test")
        gain = "—" if d_val in (None, 0) or t_val is None else f"{(t_val / d_val - 1) * 100:+.1f}%"
        if _flag(r0.get("default_won")):
            gain = "default won"
        n_complete = int(r0.get("n_complete", 0) or 0)
        n_pruned = int(r0.get("n_pruned", 0) or 0)
        params = r0.get("best_params") or {}
        rows.append([str(r0.model), str(r0.dataset), str(r0.split), str(r0.segment), f"{r0.metric}@{int(r0.k)}",
                     _f(d_val), _f(t_val), gain, _f(d_test), _f(t_test), f"{n_complete} / {n_pruned}",
                     json.dumps(params, sort_keys=True)])
        trials = r0.get("trial_values")
        states = r0.get("trial_states")
        if isinstance(trials, list) and isinstance(states, list):
            fig = plots.tuning_figure(trials, states, default_value=d_val, metric=f"{r0.metric}@{int(r0.k)}",
                                      title=f"{r0.model} on {r0.dataset} {r0.split} ({r0.segment})")
            if fig is not None:
                sec.blocks.append(_figure(f"tuning_{study}", fig, f"Tuning study {study}", figs))
    sec.blocks.insert(1, Table(["model", "dataset", "split", "segment", "metric", "default val", "tuned val",
                                "val gain", "default test", "tuned test", "trials done / pruned", "best params"],
                               rows, {(i, 6) for i in range(len(rows))} | {(i, 9) for i in range(len(rows))},
                               caption="Default vs tuned configuration"))
    return sec


def _suite_tuning_section(df: pd.DataFrame, figs: list) -> Section | None:
    """The studies a suite ran before its tuned cells (records' ``tuned`` field)."""
    if "tuned" not in df:
        return None
    rows = []
    ok = df[(df.record_type == "metric") & (df.status == "ok")]
    for (dataset, split, model), g in ok.groupby(["dataset", "split", "model"], sort=True):
        t = next((x for x in g["tuned"] if isinstance(x, dict)), None)
        if t is None:
            continue
        won = bool(t.get("default_won"))
        rows.append([str(model), str(dataset), str(split), str(t.get("budget") or t.get("trials")),
                     f"{t.get('n_complete', '—')} / {t.get('n_pruned', '—')} / {t.get('n_failed', '—')}",
                     "—" if t.get("seconds") is None else f"{float(t['seconds']):.0f}",
                     f"val {t.get('metric', '')}: {_f(t.get('default_value'))}",
                     _f(t.get("best_value")), "default won" if won else "tuned won",
                     json.dumps(t.get("best_params") or {}, sort_keys=True, default=str)])
    if not rows:
        return None
    sec = Section("Tuning studies of the suite")
    sec.blocks.append("Each tuned row's study: an optuna TPE study on the validation set of the first seed's split "
                      "(median pruning from the per-evaluation val metric), the default config as trial 0, stopped "
                      "at the trial count or the time budget, whichever came first; the best config then ran on "
                      "every seed. \"default won\": no tried config beat the default on val, so the default ran.")
    sec.blocks.append(Table(["model", "dataset", "split", "budget", "trials complete / pruned / failed",
                             "study s", "default", "best val", "winner", "best params"], rows,
                            caption="Studies (validation set only; test never read here)"))
    return sec


def _f(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4f}"


def _failures_section(df: pd.DataFrame) -> Section | None:
    bad = df[df.status != "ok"].drop_duplicates("cell")
    if bad.empty:
        return None
    rows = [[str(r.cell), str(r.model), str(r.dataset), str(r.split), str(r.seed),
             str(getattr(r, "error", "") or "")[:300]] for r in bad.itertuples()]
    return Section("Failed cells", [f"{len(rows)} cell(s) failed; the others ran. Rerun the suite with resume "
                                    "on to retry only these.",
                                    Table(["cell", "model", "dataset", "split", "seed", "error"], rows)])


def _none_if_nan(v: Any) -> Any:
    return None if isinstance(v, float) and np.isnan(v) else v


def _json_compact(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "{}"
    return json.dumps(v, sort_keys=True, default=str)


def _cells_section(df: pd.DataFrame) -> Section:
    cells = df.drop_duplicates("cell").sort_values("cell")
    versions_ids: dict[str, str] = {}
    machines_ids: dict[str, str] = {}
    command_ids: dict[str, str] = {}
    rows, details = [], []
    for r in cells.itertuples():
        vkey = _json_compact(r.versions)
        vid = versions_ids.setdefault(vkey, f"V{len(versions_ids) + 1}")
        mkey = _json_compact(r.machine)
        mid = machines_ids.setdefault(mkey, f"M{len(machines_ids) + 1}")
        secs = pd.to_numeric(pd.Series([r.seconds]), errors="coerce").iloc[0]
        rss = getattr(r, "peak_rss_mb", np.nan)
        rss = pd.to_numeric(pd.Series([rss]), errors="coerce").iloc[0]
        cid = command_ids.setdefault(str(r.command), f"C{len(command_ids) + 1}")
        rows.append([str(r.cell), str(r.status), str(r.device or "—"), "—" if pd.isna(secs) else f"{secs:.1f}",
                     "—" if pd.isna(rss) else f"{rss:.0f}", vid, mid, cid, _json_compact(r.config)])
        body = {"cell": r.cell, "status": r.status, "config": r.config, "command": r.command, "device": r.device,
                "seconds": None if pd.isna(secs) else round(float(secs), 3),
                "peak_rss_mb": None if pd.isna(rss) else round(float(rss), 1), "versions": r.versions,
                "machine": r.machine, "git_commit": _none_if_nan(getattr(r, "git_commit", None))}
        if r.status != "ok":
            body["error"] = _none_if_nan(getattr(r, "error", None))
            body["traceback"] = _none_if_nan(getattr(r, "traceback", None))
        details.append(Details(f"{r.cell} ({r.status})", json.dumps(body, indent=1, default=str)))
    sec = Section("Cells: config, command, versions, device")
    sec.blocks.append(Table(["cell", "status", "device", "seconds", "peak RSS MiB", "versions", "machine", "command",
                             "config"], rows))
    for cmd, cid in command_ids.items():
        sec.blocks.append(f"**{cid}**: `{cmd}`")
    for vkey, vid in versions_ids.items():
        sec.blocks.append(f"**{vid}**: `{vkey}`")
    for mkey, mid in machines_ids.items():
        sec.blocks.append(f"**{mid}**: `{mkey}`")
    sec.blocks.append(Details(f"Full provenance of each of the {len(details)} cells (JSON)",
                              "\n\n".join(d.body for d in details)))
    return sec


def _figure(name: str, fig, caption: str, figs: list) -> Figure:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    f = Figure(name=f"{safe}.png", png=plots.figure_png(fig), caption=caption)
    figs.append(f)
    return f


def build_report(df: pd.DataFrame, *, title: str = "Benchmark report", notes: str = "") -> Report:
    """Assemble the report sections from records (see :func:`load_records`)."""
    figs: list[Figure] = []
    sections = []
    n_cells = df["cell"].nunique() if not df.empty else 0
    n_bad = df[df.status != "ok"]["cell"].nunique() if not df.empty else 0
    overview = Section("Overview")
    if df.empty:
        overview.blocks.append("No records found.")
        return Report(title, [overview])
    datasets = ", ".join(sorted(map(str, df.dataset.dropna().unique())))
    overview.blocks.append(f"{n_cells} cells ({n_cells - n_bad} ok, {n_bad} failed) over datasets: {datasets}. "
                           f"Models: {', '.join(sorted(map(str, df.model.dropna().unique())))}.")
    if notes:
        overview.blocks.append(notes)
    sections.append(overview)
    acc = Section("Accuracy (test set)")
    acc.blocks.append("Full ranking over all candidates; train positives excluded. Segments and metrics follow "
                      "the benchmark protocol in benchmarks/README.md (cold-item: ranking among the test cold items "
                      "only). Rows say how each model was configured: *tuned (budget)* on the validation set, "
                      "*default*, or *no parameters*; only rows of one budget share a table.")
    acc.blocks.extend(accuracy_tables(df))
    sections.append(acc)
    for build in (_failures_section, _start_section):
        s = build(df)
        if s is not None:
            sections.append(s)
    for build in (_elicitation_section, _tradeoff_section, _training_section, _suite_tuning_section,
                  _tuning_section):
        s = build(df, figs)
        if s is not None:
            sections.append(s)
    sections.append(_cells_section(df))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Report(title, sections, subtitle=f"generated {stamp}")


# ---------------------------------------------------------------------------------------------
# Markdown and HTML
# ---------------------------------------------------------------------------------------------
def _md_cell(s: str) -> str:
    first, _, second = s.partition("\n")
    s = f"{first} — *{second}*" if second else first
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report, *, figure_dir: str = "figures") -> str:
    """The report as GitHub-flavoured Markdown; figures are linked as ``figure_dir/<name>``."""
    out = [f"# {report.title}", ""]
    if report.subtitle:
        out += [f"_{report.subtitle}_", ""]
    for sec in report.sections:
        out += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if isinstance(b, str):
                out += [b, ""]
            elif isinstance(b, Table):
                if b.caption:
                    out += [f"**{b.caption}**", ""]
                out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
                out.append("| " + " | ".join("---" for _ in b.header) + " |")
                for i, row in enumerate(b.rows):
                    cells = [f"**{_md_cell(c)}**" if (i, j) in b.bold else _md_cell(c) for j, c in enumerate(row)]
                    out.append("| " + " | ".join(cells) + " |")
                out.append("")
            elif isinstance(b, Figure):
                out += [f"![{b.caption}]({figure_dir}/{b.name})", ""]
            elif isinstance(b, Details):
                out += ["<details><summary>" + html.escape(b.summary) + "</summary>", "", "```json", b.body, "```",
                        "", "</details>", ""]
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1260px;
padding:16px 14px;color:#1f2328;background:#fff;line-height:1.45}
h1{font-size:26px;border-bottom:2px solid #d0d7de;padding-bottom:6px}
h2{font-size:20px;margin-top:34px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#656d76;margin-top:-8px}
.tw{overflow-x:auto;max-width:100%;margin:4px 0 18px}
table{border-collapse:collapse;font-size:12px}
p.cap{font-weight:600;font-size:12.5px;margin:14px 0 2px;color:#24292f}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f6f8fa;white-space:normal;vertical-align:bottom;min-width:48px}
td .sd{display:block;color:#656d76;font-size:10.5px;line-height:1.15;font-style:italic}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fbfcfd}
td.best{font-weight:700;background:#e6f4ea!important}
td.wrap{white-space:normal;text-align:left;min-width:160px;max-width:420px;word-break:break-word}
@media (max-width:600px){body{padding:8px 10px}table{font-size:11.5px}td.wrap{min-width:120px}}
figure{margin:10px 0 22px}
figure img{max-width:100%;border:1px solid #eaeef2}
figcaption{color:#656d76;font-size:12px}
details{margin:6px 0;font-size:12px}
summary{cursor:pointer;color:#0969da}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:11.5px;max-height:480px}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:12px;word-break:break-all}
nav a{margin-right:14px;font-size:13px}
"""

_INLINE_MD = re.compile(r"(\*\*[^*]+\*\*|`[^`]+`|\*[^*\s][^*]*\*)")


def _inline(text: str) -> str:
    parts = []
    for piece in _INLINE_MD.split(text):
        if piece.startswith("**") and piece.endswith("**") and len(piece) > 4:
            parts.append(f"<b>{html.escape(piece[2:-2])}</b>")
        elif piece.startswith("`") and piece.endswith("`") and len(piece) > 2:
            parts.append(f"<code>{html.escape(piece[1:-1])}</code>")
        elif piece.startswith("*") and piece.endswith("*") and len(piece) > 2:
            parts.append(f"<i>{html.escape(piece[1:-1])}</i>")
        else:
            parts.append(html.escape(piece))
    return "".join(parts)


def _cell_html(text: str) -> str:
    """A table cell's HTML: inline Markdown; a second line (after ``"\n"``) is drawn small under
    the first (a model's configuration under its name, so no column is spent on it)."""
    first, _, second = text.partition("\n")
    return _inline(first) + (f'<span class="sd">{_inline(second)}</span>' if second else "")


def to_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS, base64 PNG figures)."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(report.title)}</title>", f"<style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(report.title)}</h1>"]
    if report.subtitle:
        out.append(f'<p class="sub">{html.escape(report.subtitle)}</p>')
    out.append("<nav>" + "".join(f'<a href="#s{i}">{html.escape(s.title)}</a>' for i, s in enumerate(report.sections))
               + "</nav>")
    for i, sec in enumerate(report.sections):
        out.append(f'<section id="s{i}"><h2>{html.escape(sec.title)}</h2>')
        for b in sec.blocks:
            if isinstance(b, str):
                out.append(f"<p>{_inline(b)}</p>")
            elif isinstance(b, Table):
                # the caption sits outside the scrolling box, so a phone shows it whole
                if b.caption:
                    out.append(f'<p class="cap">{html.escape(b.caption)}</p>')
                out.append('<div class="tw"><table>')
                out.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in b.header) + "</tr></thead>")
                out.append("<tbody>")
                for r, row in enumerate(b.rows):
                    tds = []
                    for j, c in enumerate(row):
                        cls = ["best"] if (r, j) in b.bold else []
                        if len(c) > 40 and "\n" not in c:
                            cls.append("wrap")
                        attr = f' class="{" ".join(cls)}"' if cls else ""
                        body = _cell_html(c)
                        body = f"<b>{body}</b>" if (r, j) in b.bold else body
                        tds.append(f"<td{attr}>{body}</td>")
                    out.append("<tr>" + "".join(tds) + "</tr>")
                out.append("</tbody></table></div>")
            elif isinstance(b, Figure):
                data = base64.b64encode(b.png).decode("ascii")
                out.append(f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
            elif isinstance(b, Details):
                out.append(f"<details><summary>{html.escape(b.summary)}</summary><pre>{html.escape(b.body)}</pre>"
                           "</details>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_report(results_dir: str | os.PathLike | Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                  title: str | None = None, notes: str = "") -> tuple[Path, Path]:
    """Render every record under ``results_dir`` into ``out_dir/report.md`` and ``out_dir/report.html``.

    Parameters
    ----------
    results_dir : path or sequence of paths
        Folder(s) searched recursively for ``*.json`` record files (``out_dir`` may sit inside).
    out_dir : path
        Output folder (created); Markdown figures go to ``out_dir/figures/``.
    title : str, optional
        Default: ``"Benchmark report: <suite name(s)>"`` from the records (the folder name for
        records without a suite).
    notes : str
        A paragraph added to the overview (e.g. what a shortened CPU run left out).

    Returns
    -------
    (markdown path, html path)
    """
    df = load_records(results_dir)
    first = results_dir if isinstance(results_dir, (str, os.PathLike)) else next(iter(results_dir), "results")
    if title is None:
        suites = sorted(map(str, df["suite"].dropna().unique())) if "suite" in df else []
        title = f"Benchmark report: {', '.join(suites) if suites else Path(first).name}"
    report = build_report(df, title=title, notes=notes)
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for f in report.figures():
        (out / "figures" / f.name).write_bytes(f.png)
    md = out / "report.md"
    md.write_text(to_markdown(report))
    page = out / "report.html"
    page.write_text(to_html(report))
    logger.info("wrote %s and %s (%d figures)", md, page, len(report.figures()))
    return md, page
