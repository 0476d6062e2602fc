"""Matplotlib figures of a results table (Agg backend, no display needed).

Every function takes tidy records (a ``pandas.DataFrame`` as read by
:func:`recsys_coldstart.evaluate.results.read_results`) and returns a ``matplotlib`` Figure or
None when there is nothing to draw; :func:`figure_png` turns a figure into PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, *, dpi: int = 110) -> bytes:
    """Render ``fig`` to PNG bytes and close it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def elicitation_figure(curves: pd.DataFrame, title: str = ""):
    """Elicitation curves: metric vs number of questions, one line per policy (mean ± std over seeds).

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``model`` (policy), ``budget``, ``metric``, ``k``, ``value``, ``seed``.
    """
    if curves.empty:
        return None
    plt = _plt()
    panels = sorted({(m, int(k)) for m, k in zip(curves.metric, curves.k, strict=True)})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, (metric, k) in zip(axes[0], panels, strict=True):
        sub = curves[(curves.metric == metric) & (curves.k == k)]
        for pol, g in sub.groupby("model"):
            agg = g.groupby("budget").value.agg(["mean", "std"]).sort_index()
            x = agg.index.to_numpy(dtype=float)
            ax.plot(x, agg["mean"], marker="o", ms=3, label=str(pol))
            sd = agg["std"].fillna(0.0).to_numpy()
            ax.fill_between(x, agg["mean"] - sd, agg["mean"] + sd, alpha=0.15)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("questions asked (budget)")
        ax.set_ylabel(f"{metric}@{k}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tradeoff_figure(points: pd.DataFrame, *, x: str, y_label: str, title: str = ""):
    """Accuracy vs cost scatter (teacher vs student trade-off).

    Parameters
    ----------
    points : pandas.DataFrame
        One row per model: ``model``, ``accuracy``, the cost column ``x`` (e.g.
        ``latency_ms_per_1k_users``), optional ``n_params`` and ``role``.
    x : str
        Cost column (log scale).
    """
    pts = points.dropna(subset=[x, "accuracy"])
    pts = pts[pts[x] > 0]
    if pts.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    roles = pts["role"].fillna("model") if "role" in pts else pd.Series("model", index=pts.index)
    params = pts["n_params"].astype(float) if "n_params" in pts else pd.Series(np.nan, index=pts.index)
    pmax = np.nanmax(params.to_numpy()) if params.notna().any() else 1.0
    for role in sorted(roles.unique()):
        sel = roles == role
        sizes = 30 + 270 * np.sqrt(np.nan_to_num(params[sel].to_numpy(), nan=0.0) / max(pmax, 1.0))
        ax.scatter(pts.loc[sel, x], pts.loc[sel, "accuracy"], s=sizes, alpha=0.7, label=str(role))
    for _, r in pts.iterrows():
        ax.annotate(str(r["model"]), (r[x], r["accuracy"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(x.replace("_", " ") + " (log)")
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    if roles.nunique() > 1:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def training_curves_figure(curves: Sequence[tuple[str, str, Sequence[float]]], title: str = ""):
    """Per-epoch training curves: one panel per log key (``loss``, ``val_ndcg@20``, ...).

    Parameters
    ----------
    curves : sequence of (model, key, values)
        ``values[e]`` is the log at epoch ``e + 1`` (None/NaN where missing).
    """
    if not curves:
        return None
    plt = _plt()
    keys = []
    for _, key, _ in curves:
        if key not in keys:
            keys.append(key)
    keys = sorted(keys, key=lambda k: (0 if "loss" in k else 1, k))[:6]
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.8 * ncol, 3.3 * nrow), squeeze=False)
    for ax, key in zip(axes.ravel(), keys, strict=False):
        for model, k2, vals in curves:
            if k2 != key:
                continue
            v = np.array([np.nan if a is None else float(a) for a in vals])
            x = np.arange(1, len(v) + 1)
            ok = np.isfinite(v)  # e.g. validation logged every few epochs only
            ax.plot(x[ok], v[ok], label=str(model), lw=1.4, marker="." if ok.sum() < 30 else None)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tuning_figure(values: Sequence[float | None], states: Sequence[str], *, default_value: float | None,
                  metric: str, title: str = ""):
    """Objective per trial (completed dots, pruned crosses), running best, and the default config."""
    if not values:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    x = np.arange(len(values))
    v = np.array([np.nan if a is None else float(a) for a in values])
    done = np.array([s == "COMPLETE" for s in states])
    ax.scatter(x[done], v[done], s=18, label="completed trial")
    if (~done).any():
        ax.scatter(x[~done], np.where(np.isnan(v[~done]), np.nanmin(v) if np.isfinite(v).any() else 0, v[~done]),
                   marker="x", s=18, color="grey", label="pruned / failed")
    best = np.fmax.accumulate(np.where(done, v, -np.inf))
    ax.step(x, np.where(np.isfinite(best), best, np.nan), where="post", color="C1", label="best so far")
    if default_value is not None:
        ax.axhline(default_value, color="C3", ls="--", lw=1, label="default config")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"val {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
