"""`coldstart datasets`, `coldstart split`, `coldstart evaluate`, and the shared data options.

Other command modules reuse :func:`load_from_options`, :func:`get_split` and the ``*_OPT``
option declarations so every command that takes ``--dataset`` also takes a user's own files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.data.splits import SPLIT_KINDS, ColdStartSplit, make_split
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

# Shared option declarations (reused by every command that loads data).
DATASET_OPT = typer.Option(None, "--dataset", "-d", help="Known dataset name (see `coldstart datasets`), or 'synthetic'.")
DATA_DIR_OPT = typer.Option(None, "--data-dir", help="Folder holding the datasets (default: $RECSYS_COLDSTART_DATA).")
INTERACTIONS_OPT = typer.Option(None, "--interactions", help="Your own interactions table (CSV or Parquet).")
USER_FEATURES_OPT = typer.Option(None, "--user-features", help="User feature table (CSV or Parquet), one row per user.")
ITEM_FEATURES_OPT = typer.Option(None, "--item-features", help="Item feature table (CSV or Parquet), one row per item.")
USER_COL_OPT = typer.Option("user", "--user-col", help="User id column of --interactions / --user-features.")
ITEM_COL_OPT = typer.Option("item", "--item-col", help="Item id column of --interactions / --item-features.")
RATING_COL_OPT = typer.Option(None, "--rating-col", help="Rating column (default: 'rating' if present).")
TIMESTAMP_COL_OPT = typer.Option(None, "--timestamp-col", help="Timestamp column (default: 'timestamp' if present).")
SEP_OPT = typer.Option(None, "--sep", help="Field separator of --interactions (default: sniffed).")
ENCODING_OPT = typer.Option(None, "--encoding", help="Text encoding of the tables (default utf-8).")
THRESHOLD_OPT = typer.Option(None, "--threshold", help="Ratings >= threshold are positives (default 4 for MovieLens).")
SPLIT_OPT = typer.Option("warm", "--split", "-s", help=f"Split kind: {', '.join(SPLIT_KINDS)}.")
SEED_OPT = typer.Option(0, "--seed", help="Random seed of the split and the model.")
SUPPORT_OPT = typer.Option(3, "--k-support", help="User-cold: positives each cold user reveals (few-shot K).")


def load_from_options(dataset: str | None, data_dir: str | None, interactions: str | None = None,
                      user_features: str | None = None, item_features: str | None = None, *,
                      user_col: str = "user", item_col: str = "item", rating_col: str | None = None,
                      timestamp_col: str | None = None, threshold: float | None = None, sep: str | None = None,
                      encoding: str | None = None) -> Interactions:
    """Load ``--dataset`` (known name or ``synthetic``) or the user's own ``--interactions`` file.

    Raises
    ------
    DataError
        When neither or both are given, or when the data is invalid (the message names the file).
    """
    if (dataset is None) == (interactions is None):
        raise DataError("give exactly one of --dataset NAME or --interactions FILE")
    if dataset is not None:
        if dataset == "synthetic":
            from recsys_coldstart.data import make_synthetic

            return make_synthetic()
        from recsys_coldstart.data.datasets import load_dataset

        kwargs: dict[str, Any] = {}
        if threshold is not None:
            kwargs["threshold"] = threshold
        return load_dataset(dataset, data_dir, **kwargs)
    from recsys_coldstart.data.datasets.tabular import load_table, table_columns

    path = Path(interactions)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file (--interactions takes the table file itself)")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    head = table_columns(path, sep=sep, encoding=encoding or "utf-8")
    rating_col = rating_col or ("rating" if "rating" in head else None)
    timestamp_col = timestamp_col or ("timestamp" if "timestamp" in head else None)
    return load_table(path, user_col=user_col, item_col=item_col, rating_col=rating_col,
                      timestamp_col=timestamp_col, threshold=threshold, user_features=user_features,
                      item_features=item_features, name=path.stem, sep=sep,
                      **({"encoding": encoding} if encoding else {}))


def get_split(data: Interactions, kind: str, seed: int = 0, n_support: int = 0,
              data_dir: str | None = None) -> ColdStartSplit:
    """The split ``kind`` of ``data``: a dataset's predefined split when it has one
    (LightGCN sets' train/test, CiteULike's DropoutNet split), else a seeded protocol split."""
    if kind not in SPLIT_KINDS:
        raise DataError(f"unknown split {kind!r}; choose one of {', '.join(SPLIT_KINDS)}")
    from recsys_coldstart.data.datasets import DATASETS, load_predefined_split

    if data.name in DATASETS:
        pre = load_predefined_split(data.name, kind, data_dir, random_state=seed)
        if pre is not None:
            return pre
    return make_split(data, kind, random_state=seed, n_support=n_support if kind == "user-cold" else 0)


def print_results(df: pd.DataFrame, metrics: tuple[str, ...] = ("recall", "ndcg", "hitrate", "mrr")) -> None:
    """Print a compact metrics table (rows: model/segment, columns: metric@k)."""
    sel = df[df.metric.isin(metrics)]
    if sel.empty:
        typer.echo("(no results: no evaluated users with truth)")
        return
    table = sel.assign(col=sel.metric + "@" + sel.k.astype(str)).pivot_table(
        index=["model", "segment"], columns="col", values="value", aggfunc="mean")
    n = df[df.metric == "n_users"].set_index(["model", "segment"]).value.rename("users")
    table = table.join(n)
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 200):
        typer.echo(table.to_string())


def register(app: typer.Typer) -> None:
    """Add ``datasets``, ``split`` and ``evaluate`` to ``app``."""

    @app.command("datasets")
    def datasets_cmd(data_dir: str = DATA_DIR_OPT) -> None:
        """List the known datasets and whether each is found in the data folder."""
        from recsys_coldstart.data.datasets import DATASETS, dataset_status

        try:
            status = dataset_status(data_dir)
        except DataError as e:
            typer.echo(f"(data folder not set: {e})")
            status = [(name, False, None) for name in DATASETS]
        typer.echo(f"{'dataset':<14}{'found':<8}{'path / description'}")
        typer.echo(f"{'synthetic':<14}{'yes':<8}built in: planted clusters + side features (coldstart demo)")
        for name, found, path in status:
            info = DATASETS[name]
            typer.echo(f"{name:<14}{'yes' if found else 'no':<8}{path if found else info.description}")

    @app.command("split")
    def split_cmd(
        out: Path = typer.Option(..., "--out", help="Output folder."),
        dataset: str = DATASET_OPT, data_dir: str = DATA_DIR_OPT, interactions: str = INTERACTIONS_OPT,
        user_features: str = USER_FEATURES_OPT, item_features: str = ITEM_FEATURES_OPT,
        user_col: str = USER_COL_OPT, item_col: str = ITEM_COL_OPT, rating_col: str = RATING_COL_OPT,
        timestamp_col: str = TIMESTAMP_COL_OPT, threshold: float = THRESHOLD_OPT,
        sep: str = SEP_OPT, encoding: str = ENCODING_OPT, split: str = SPLIT_OPT, seed: int = SEED_OPT, k_support: int = SUPPORT_OPT,
        fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
    ) -> None:
        """Write a split (train/val/test, and support/query for cold users) with raw ids."""
        if fmt not in ("csv", "parquet"):
            raise DataError("--format must be csv or parquet")
        data = load_from_options(dataset, data_dir, interactions, user_features, item_features, user_col=user_col,
                                 item_col=item_col, rating_col=rating_col, timestamp_col=timestamp_col,
                                 threshold=threshold, sep=sep, encoding=encoding)
        s = get_split(data, split, seed, k_support, data_dir)
        note = s.coverage_note()
        out.mkdir(parents=True, exist_ok=True)
        parts = {"train": s.train, "val": s.val, "test": s.test}
        if s.kind == "user-cold":
            parts["support"] = s.support
            parts["query"] = s.query
        written = []
        for name, part in parts.items():
            df = part.to_pandas(user_col=user_col, item_col=item_col)
            path = out / f"{name}.{fmt}"
            df.to_parquet(path, index=False) if fmt == "parquet" else df.to_csv(path, index=False)
            written.append((name, len(df)))
        manifest = {
            "dataset": s.name, "kind": s.kind, "seed": seed, "n_support": s.n_support,
            "n_users": s.train.n_users, "n_items": s.train.n_items,
            "val_users": s.train.users.to_id(s.val_users).tolist(),
            "test_users": s.train.users.to_id(s.test_users).tolist(),
            "val_items": s.train.items.to_id(s.val_items).tolist(),
            "test_items": s.train.items.to_id(s.test_items).tolist(),
            "dropped_val_users": s.train.users.to_id(s.dropped_val_users).tolist(),
            "dropped_test_users": s.train.users.to_id(s.dropped_test_users).tolist(),
            "note": note,
            "counts": dict(written),
        }
        (out / "split.json").write_text(json.dumps(manifest, default=_json_default, indent=1))
        for name, n in written:
            typer.echo(f"{name:<8}{n:>10,} rows -> {out / f'{name}.{fmt}'}")
        typer.echo(f"manifest -> {out / 'split.json'}")
        if note:
            typer.echo(f"note: {note} (listed in split.json)")

    @app.command("evaluate")
    def evaluate_cmd(
        model: str = typer.Option(None, "--model", "-m", help="Model name to fit (e.g. popularity, als)."),
        model_path: Path = typer.Option(None, "--model-path", help="A saved model folder to evaluate instead."),
        dataset: str = DATASET_OPT, data_dir: str = DATA_DIR_OPT, interactions: str = INTERACTIONS_OPT,
        user_features: str = USER_FEATURES_OPT, item_features: str = ITEM_FEATURES_OPT,
        user_col: str = USER_COL_OPT, item_col: str = ITEM_COL_OPT, rating_col: str = RATING_COL_OPT,
        timestamp_col: str = TIMESTAMP_COL_OPT, threshold: float = THRESHOLD_OPT,
        sep: str = SEP_OPT, encoding: str = ENCODING_OPT,
        split: str = typer.Option(None, "--split", "-s", help=f"Split kind: {', '.join(SPLIT_KINDS)} (default: warm, or the saved model's)."),
        seed: int = typer.Option(None, "--seed", help="Split/model seed (default 0, or the saved model's)."),
        k_support: int = SUPPORT_OPT,
        output: Path = typer.Option(None, "--output", "-o", help="Write the JSON result records here."),
        which: str = typer.Option("test", "--which", help="Evaluate on test or val."),
    ) -> None:
        """Fit a model (or load a saved one) and print full-ranking metrics by segment."""
        from recsys_coldstart.evaluate import evaluate, to_records, write_json

        if (model is None) == (model_path is None):
            raise DataError("give exactly one of --model NAME or --model-path DIR")
        meta: dict[str, Any] = {}
        if model_path is not None:
            from recsys_coldstart.io import load_model, read_model_config

            meta = read_model_config(model_path).get("meta", {})
        kind = split or meta.get("split", "warm")
        seed_ = seed if seed is not None else int(meta.get("seed", 0))
        if dataset is None and interactions is None and meta.get("dataset"):
            dataset = meta["dataset"]
        data = load_from_options(dataset, data_dir, interactions, user_features, item_features, user_col=user_col,
                                 item_col=item_col, rating_col=rating_col, timestamp_col=timestamp_col,
                                 threshold=threshold, sep=sep, encoding=encoding)
        s = get_split(data, kind, seed_, int(meta.get("n_support", k_support)), data_dir)
        note = s.coverage_note()
        t0 = time.perf_counter()
        if model_path is not None:
            est = load_model(model_path)
            name = meta.get("model", type(est).__name__)
            if getattr(est, "n_items_", s.train.n_items) != s.train.n_items:
                raise DataError(f"{model_path}: the model has {est.n_items_} items, the split {s.train.n_items}: "
                                "evaluate it on the dataset and split it was trained on")
        else:
            from recsys_coldstart.cli.registry import model_class

            cls = model_class(model)
            kwargs = {"random_state": seed_} if _has_field(cls, "random_state") else {}
            est = cls(**kwargs).fit(s.train, val=s.val)
            name = model
        res = evaluate(est, s, which=which, model_name=name, seed=seed_)
        secs = time.perf_counter() - t0
        n_eval = res.loc[res.metric == "n_users", "value"]
        if res.empty or (len(n_eval) and float(n_eval.sum()) == 0):
            raise DataError(f"{s.name} ({s.kind} split, seed {seed_}): no user has held-out {which} positives, "
                            "so nothing was evaluated; the table is too small for this split")
        typer.echo(f"{name} on {s.name} ({s.kind}, seed {seed_}, {which}): {secs:.1f}s")
        if note:
            typer.echo(f"note: {note}")
        print_results(res)
        if output is not None:
            from recsys_coldstart.io import config_to_dict

            write_json(to_records(res, config=config_to_dict(getattr(est, "config", None)), seconds=secs), output)
            typer.echo(f"results -> {output}")


def _has_field(cls: type, name: str) -> bool:
    import dataclasses

    cfg = getattr(cls, "config_class", None)
    return cfg is not None and any(f.name == name for f in dataclasses.fields(cfg))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    return str(o)
