"""`coldstart elicit`: replay active-elicitation policies on the test cold users of a dataset."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

ALL_POLICIES: tuple[str, ...] = ("random", "popularity", "pop-entropy", "greedy", "linucb", "thompson", "info-gain")


def make_policies(names: Sequence[str], seed: int = 0, **options: Any) -> dict[str, Any]:
    """Instantiate policies by registered name (``"all"`` expands to every one).

    Parameters
    ----------
    names : sequence of str
        Names from :data:`recsys_coldstart.cli.registry.POLICIES`, or ``"all"``.
    seed : int
        ``random_state`` of each policy.
    **options
        Posterior settings passed to every policy (e.g. ``noise_var``).

    Returns
    -------
    dict mapping name to policy
    """
    from recsys_coldstart.cli.registry import POLICIES, resolve

    expanded: list[str] = []
    for n in names:
        expanded.extend(ALL_POLICIES if n.strip().lower() == "all" else [n.strip().lower()])
    out = {}
    for n in dict.fromkeys(expanded):
        cls = resolve(POLICIES, n, "policy")
        out[n] = cls(random_state=seed, **options)
    return out


def fit_item_space_model(train, seed: int = 0, **als_options: Any):
    """The default item space: implicit ALS fitted on ``train`` (``random_state=seed``)."""
    from recsys_coldstart.baselines.implicit_mf import ALS

    return ALS(random_state=seed, **als_options).fit(train)


def feature_popularity_reference(split, seed: int = 0) -> pd.DataFrame | None:
    """Budget-0 reference rows of ``FeaturePopularity`` on the replayed users (None if unavailable)."""
    from recsys_coldstart.baselines.feature_popularity import FeaturePopularity
    from recsys_coldstart.elicit.replay import reference_rows

    if split.train.user_features is None:
        return None
    fp = FeaturePopularity(random_state=seed).fit(split.train)
    return reference_rows(fp, split, name="feature-popularity", seed=seed)


def run_elicitation(split, policies: dict[str, Any], model, *, budget: int = 10, seed: int = 0,
                    reference: bool = True, show_progress: bool = False) -> pd.DataFrame:
    """Replay every policy on ``split`` (one shared item space) plus the feature-popularity row.

    Returns
    -------
    pandas.DataFrame
        Tidy ``policy, budget, metric, k, value, seed``.
    """
    from recsys_coldstart.elicit.replay import replay_policies

    df = replay_policies(policies, model, split, budget=budget, random_state=seed, show_progress=show_progress)
    if reference:
        ref = feature_popularity_reference(split, seed)
        if ref is not None:
            df = pd.concat([df, ref], ignore_index=True)
    return df


def elicitation_demo(data=None, *, policies: Sequence[str] = ("random", "popularity", "linucb", "thompson"),
                     budget: int = 5, seed: int = 0) -> pd.DataFrame:
    """A small elicitation replay for ``coldstart demo`` (prints nothing).

    Parameters
    ----------
    data : Interactions, optional
        Default: :func:`recsys_coldstart.data.make_synthetic` (seed ``seed``).
    policies : sequence of str
    budget : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        Tidy ``policy, budget, metric, k, value, seed``.
    """
    from recsys_coldstart.data import make_synthetic
    from recsys_coldstart.data.splits import user_cold_split

    data = make_synthetic(random_state=seed) if data is None else data
    split = user_cold_split(data, n_support=0, random_state=seed)
    model = fit_item_space_model(split.train, seed, dim=16)
    return run_elicitation(split, make_policies(policies, seed), model, budget=budget, seed=seed)


def curve_table(df: pd.DataFrame, metrics: Sequence[tuple[str, int]] = (("ndcg", 10), ("recall", 20))) -> pd.DataFrame:
    """Budget x policy table of the mean (over seeds) of each metric, one column per policy/metric."""
    parts = []
    for m, k in metrics:
        sel = df[(df.metric == m) & (df.k == k)]
        t = sel.groupby(["budget", "policy"]).value.mean().unstack("policy")
        t.columns = [f"{c} {m}@{k}" for c in t.columns]
        parts.append(t)
    return pd.concat(parts, axis=1)


def plot_curves(df: pd.DataFrame, path: str | Path, *, title: str = "",
                metrics: Sequence[tuple[str, int]] = (("ndcg", 10), ("recall", 20))) -> Path:
    """Write the elicitation curves (metric vs questions asked, mean ± std over seeds) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), squeeze=False)
    for ax, (m, k) in zip(axes[0], metrics, strict=True):
        sel = df[(df.metric == m) & (df.k == k)]
        styles = ["-", "--", "-.", ":"]
        for i, (name, g) in enumerate(sel.groupby("policy")):
            st = g.groupby("budget").value.agg(["mean", "std"]).fillna(0.0)
            if len(st) == 1:  # a reference row (no questions): draw a horizontal line
                ax.axhline(st["mean"].iloc[0], ls="--", color="grey", lw=1, label=str(name))
                continue
            ax.plot(st.index, st["mean"], marker="o", ms=3, ls=styles[(i // 10) % len(styles)], label=str(name))
            ax.fill_between(st.index, st["mean"] - st["std"], st["mean"] + st["std"], alpha=0.15)
        ax.set_xlabel("questions asked")
        ax.set_ylabel(f"{m.upper() if m == 'ndcg' else m.capitalize()}@{k}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def register(app: typer.Typer) -> None:
    """Add `coldstart elicit` to `app`."""
    from recsys_coldstart.cli.data import DataOptions, data_options

    @app.command("elicit")
    @data_options(split=None, exclude=("k_support",))
    def elicit_cmd(
        policy: list[str] = typer.Option(["all"], "--policy", "-p",
                                         help=f"Policy (repeatable) or 'all': {', '.join(ALL_POLICIES)}."),
        model_path: Path = typer.Option(None, "--model-path",
                                        help="A saved embedding model (fitted on the user-cold split of this seed); default: fit ALS."),
        budget: int = typer.Option(10, "--budget", "-b", help="Questions per user."),
        noise_var: float = typer.Option(None, "--noise-var", help="Observation noise variance of the posterior."),
        output: Path = typer.Option(None, "--output", "-o", help="Write the JSON result records here."),
        plot: Path = typer.Option(None, "--plot", help="Write the curve plot (PNG) here."),
        *, data_opts: DataOptions,
    ) -> None:
        """Replay elicitation policies on the test cold users; print NDCG@10 / Recall@20 per budget."""
        from recsys_coldstart.cli.data import data_manifest, record_extra, saved_data

        if model_path is not None:
            saved_data(model_path, data_opts, split_fields=False)
        seed = data_opts.seed_
        if budget < 0:
            raise DataError("--budget must be >= 0")
        opts = {} if noise_var is None else {"noise_var": noise_var}
        pols = make_policies(policy, seed, **opts)
        data = data_opts.load()
        data_opts.k_support = 0
        split = data_opts.make_split(data, "user-cold")
        t0 = time.perf_counter()
        if model_path is not None:
            from recsys_coldstart.io import load_model

            model = load_model(model_path)
            if not hasattr(model, "item_factors_"):
                raise DataError(f"{model_path}: {type(model).__name__} is not an embedding model (no item_factors_)")
            if model.item_factors_.shape[0] != split.train.n_items:
                raise DataError(f"{model_path}: the model has {model.item_factors_.shape[0]} items, the data "
                                f"{split.train.n_items}: use a model fitted on this dataset")
            model_name = type(model).__name__
        else:
            model = fit_item_space_model(split.train, seed)
            model_name = "ALS"
        df = run_elicitation(split, pols, model, budget=budget, seed=seed, show_progress=True)
        secs = time.perf_counter() - t0
        n_users = int(df[(df.metric == "n_users") & (df.budget == 0)].value.max())
        typer.echo(f"elicitation on {split.name}: {n_users} test cold users, item space {model_name} "
                   f"(d={model.item_factors_.shape[1]}), budget {budget}, seed {seed}: {secs:.1f}s")
        with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 250,
                               "display.max_columns", 50):
            for m, k in (("ndcg", 10), ("recall", 20)):
                sel = df[(df.metric == m) & (df.k == k)]
                typer.echo(f"\n{m.upper() if m == 'ndcg' else m.capitalize()}@{k} by questions asked:")
                typer.echo(sel.pivot_table(index="budget", columns="policy", values="value").to_string())
        if output is not None:
            from recsys_coldstart.evaluate.results import to_records, write_json

            tidy = df.rename(columns={"policy": "model"}).assign(
                dataset=split.name, split="user-cold", segment="elicitation-b" + df.budget.astype(str))
            extra = {"budget": budget, "item_space": model_name, **record_extra(data_manifest(data_opts, data, split))}
            recs = to_records(tidy, config={"policies": {n: _cfg(p) for n, p in pols.items()}}, seconds=secs,
                              extra=extra)
            for r, b in zip(recs, df.budget, strict=True):
                r["policy"] = r["model"]
                r["budget"] = int(b)
            write_json(recs, output)
            typer.echo(f"results -> {output}")
        if plot is not None:
            plot_curves(df, plot, title=f"elicitation on {split.name} (seed {seed})")
            typer.echo(f"plot -> {plot}")


def _cfg(policy: Any) -> dict[str, Any]:
    from recsys_coldstart.io import config_to_dict

    return config_to_dict(getattr(policy, "config", None))


__all__ = ["ALL_POLICIES", "curve_table", "elicitation_demo", "feature_popularity_reference", "make_policies",
           "plot_curves", "run_elicitation"]
