"""`coldstart datasets`, `coldstart split`, `coldstart evaluate`, and the shared data options.

Every command that reads data takes the one option group of :func:`data_options` (a decorator
that adds ``--dataset/--interactions/--user-features/--item-features/--user-col/--item-col/
--rating-col/--timestamp-col/--sep/--encoding/--threshold/--data-dir/--split/--seed/--k-support``
and hands the command a :class:`DataOptions`), loads through the one loader
:func:`load_from_options`, prints the positive rule in use, and saves a :func:`data_manifest`
with every model and result record.

Length: the data option group every command shares (DataOptions, loading, split, data manifest) and
the three data commands; the option group (everything above register) is the split candidate
(cli/data_options.py).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from recsys_coldstart.cli.options import SET_OPT, parse_set
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.data.splits import SPLIT_KINDS, ColdStartSplit, make_split
from recsys_coldstart.exceptions import DataError
from recsys_coldstart.train.validation import split_fit_kwargs

logger = logging.getLogger(__name__)

# Shared option declarations: the one data option group (see :func:`data_options`). Every default is
# None so a command can tell what the user gave from what it fills in (e.g. from a saved model).
DATASET_OPT = typer.Option(None, "--dataset", "-d", help="Known dataset name (see `coldstart datasets`), or 'synthetic'.")
DATA_DIR_OPT = typer.Option(None, "--data-dir", help="Folder holding the datasets (default: $RECSYS_COLDSTART_DATA).")
INTERACTIONS_OPT = typer.Option(None, "--interactions", help="Your own interactions table (CSV or Parquet).")
USER_FEATURES_OPT = typer.Option(None, "--user-features", help="User feature table (CSV or Parquet), one row per user.")
ITEM_FEATURES_OPT = typer.Option(None, "--item-features", help="Item feature table (CSV or Parquet), one row per item.")
USER_COL_OPT = typer.Option(None, "--user-col", help="User id column of --interactions / --user-features (default user).")
ITEM_COL_OPT = typer.Option(None, "--item-col", help="Item id column of --interactions / --item-features (default item).")
RATING_COL_OPT = typer.Option(None, "--rating-col", help="Rating column (default: 'rating' if present).")
TIMESTAMP_COL_OPT = typer.Option(None, "--timestamp-col", help="Timestamp column (default: 'timestamp' if present).")
SEP_OPT = typer.Option(None, "--sep", help="Field separator of --interactions (default: sniffed).")
ENCODING_OPT = typer.Option(None, "--encoding", help="Text encoding of the tables (default utf-8).")
THRESHOLD_OPT = typer.Option(None, "--threshold", help="Ratings >= threshold are positives (default: MovieLens 4; "
                             "your own table: every rated pair, and the command says so).")
SPLIT_OPT = typer.Option("warm", "--split", "-s", help=f"Split kind: {', '.join(SPLIT_KINDS)}.")
SEED_OPT = typer.Option(None, "--seed", help="Random seed of the split and the model (default 0).")
SUPPORT_OPT = typer.Option(None, "--k-support", help="User-cold: positives each cold user reveals (few-shot K, "
                           "default 3).")

DEFAULT_SEED = 0
DEFAULT_K_SUPPORT = 3

#: Names of the shared data options, in the order they are declared (``split`` only where the
#: command chooses a split).
DATA_OPTION_NAMES: tuple[str, ...] = (
    "dataset", "data_dir", "interactions", "user_features", "item_features", "user_col", "item_col",
    "rating_col", "timestamp_col", "sep", "encoding", "threshold", "split", "seed", "k_support")
_OPTION_TYPES: dict[str, Any] = {
    "dataset": str | None, "data_dir": str | None, "interactions": str | None, "user_features": str | None,
    "item_features": str | None, "user_col": str | None, "item_col": str | None, "rating_col": str | None,
    "timestamp_col": str | None, "sep": str | None, "encoding": str | None, "threshold": float | None,
    "split": str | None, "seed": int | None, "k_support": int | None}
_OPTIONS: dict[str, Any] = {
    "dataset": DATASET_OPT, "data_dir": DATA_DIR_OPT, "interactions": INTERACTIONS_OPT,
    "user_features": USER_FEATURES_OPT, "item_features": ITEM_FEATURES_OPT, "user_col": USER_COL_OPT,
    "item_col": ITEM_COL_OPT, "rating_col": RATING_COL_OPT, "timestamp_col": TIMESTAMP_COL_OPT, "sep": SEP_OPT,
    "encoding": ENCODING_OPT, "threshold": THRESHOLD_OPT, "seed": SEED_OPT, "k_support": SUPPORT_OPT}


@dataclass
class DataOptions:
    """The shared data options of one command invocation (None = not given).

    Attributes
    ----------
    dataset, data_dir, interactions, user_features, item_features : str or None
    user_col, item_col, rating_col, timestamp_col, sep, encoding : str or None
    threshold : float or None
    split : str or None
        Split kind (commands without a split choice leave it None).
    seed, k_support : int or None
    """

    dataset: str | None = None
    data_dir: str | None = None
    interactions: str | None = None
    user_features: str | None = None
    item_features: str | None = None
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str | None = None
    timestamp_col: str | None = None
    sep: str | None = None
    encoding: str | None = None
    threshold: float | None = None
    split: str | None = None
    seed: int | None = None
    k_support: int | None = None

    @property
    def seed_(self) -> int:
        """The seed in use (``seed`` or 0)."""
        return DEFAULT_SEED if self.seed is None else int(self.seed)

    @property
    def k_support_(self) -> int:
        """The few-shot ``K`` in use (``k_support`` or 3)."""
        return DEFAULT_K_SUPPORT if self.k_support is None else int(self.k_support)

    def load(self, *, echo: bool = True) -> Interactions:
        """Load the data these options name (:func:`load_from_options`); with ``echo`` print the
        positive rule in use (ratings >= threshold, or every rated pair)."""
        data = load_from_options(self.dataset, self.data_dir, self.interactions, self.user_features,
                                 self.item_features, user_col=self.user_col or "user",
                                 item_col=self.item_col or "item", rating_col=self.rating_col,
                                 timestamp_col=self.timestamp_col, threshold=self.threshold, sep=self.sep,
                                 encoding=self.encoding)
        if echo:
            rule = positive_rule(self, data)
            if rule:
                typer.echo(rule)
        return data

    def make_split(self, data: Interactions, kind: str | None = None) -> ColdStartSplit:
        """The split of ``data`` these options name (``kind`` overrides ``split``; default warm)."""
        return get_split(data, kind or self.split or "warm", self.seed_, self.k_support_, self.data_dir)


def data_options(*, split: str | None = "warm", split_help: str | None = None,
                 exclude: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator adding the shared data option group to a typer command.

    The wrapped function takes a keyword ``data_opts: DataOptions`` instead of the sixteen options;
    the command line shows ``--dataset/--interactions/--user-features/--item-features/--user-col/
    --item-col/--rating-col/--timestamp-col/--sep/--encoding/--threshold/--data-dir/--seed/
    --k-support`` and, unless ``split`` is ``None``, ``--split``.

    Parameters
    ----------
    split : str or None
        The default split kind shown in ``--split``'s help (the option's value stays None when not
        given, so a command can fill it from a saved model); None: the command has no ``--split``.
    split_help : str, optional
        Replaces the default help of ``--split``.
    exclude : tuple of str
        Options the command has no use for (e.g. ``("k_support",)``); left None in ``DataOptions``.
    """
    names = [n for n in DATA_OPTION_NAMES if (split is not None or n != "split") and n not in exclude]

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "data_opts"]
        added = []
        for n in names:
            if n == "split":
                opt = typer.Option(None, "--split", "-s",
                                   help=split_help or f"Split kind: {', '.join(SPLIT_KINDS)} (default {split}).")
            else:
                opt = _OPTIONS[n]
            added.append(inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                           annotation=_OPTION_TYPES[n]))

        def wrapper(**kwargs: Any) -> Any:
            opts = DataOptions(**{n: kwargs.pop(n) for n in names})
            return fn(data_opts=opts, **kwargs)

        wrapper.__name__, wrapper.__qualname__ = fn.__name__, fn.__qualname__
        wrapper.__doc__, wrapper.__module__ = fn.__doc__, fn.__module__
        hints = typing.get_type_hints(fn, localns={"DataOptions": DataOptions, "Path": Path, "Any": Any})
        wrapper.__annotations__ = {**{k: v for k, v in hints.items() if k not in ("data_opts", "return")},
                                   **{n: _OPTION_TYPES[n] for n in names}}
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in own]
        wrapper.__signature__ = sig.replace(parameters=[*own, *added], return_annotation=None)  # type: ignore[attr-defined]
        return wrapper

    return deco


def load_from_options(dataset: str | None, data_dir: str | None, interactions: str | None = None,
                      user_features: str | None = None, item_features: str | None = None, *,
                      user_col: str = "user", item_col: str = "item", rating_col: str | None = None,
                      timestamp_col: str | None = None, threshold: float | None = None, sep: str | None = None,
                      encoding: str | None = None) -> Interactions:
    """THE loader of every command: ``--dataset`` (known name or ``synthetic``) or the user's own
    ``--interactions`` file.

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


def _rating_column(opts: DataOptions) -> str | None:
    """The rating column a table load used (``--rating-col`` or a ``rating`` header), else None."""
    if opts.interactions is None:
        return None
    if opts.rating_col:
        return opts.rating_col
    from recsys_coldstart.data.datasets.tabular import table_columns

    head = table_columns(Path(opts.interactions), sep=opts.sep, encoding=opts.encoding or "utf-8")
    return "rating" if "rating" in head else None


def _effective_threshold(opts: DataOptions) -> float | None:
    """The positive threshold in force: ``--threshold``, a known explicit dataset's default (4), or None."""
    from recsys_coldstart.data.datasets import positive_threshold

    return positive_threshold(opts.dataset, opts.threshold)


def positive_rule(opts: DataOptions, data: Interactions) -> str | None:
    """The one line that says which rated pairs are positives, or None when there are no ratings.

    Returns
    -------
    str or None
        ``"ratings >= 4 are positives (--threshold 4)"``, ``"every rated pair is a positive: no
        --threshold given; 5 distinct rating values seen (1 to 5)"``, or for a known dataset
        ``"ratings >= 4 are positives (ml-100k's rule; --threshold to change)"``.
    """
    thr = _effective_threshold(opts)
    if opts.interactions is not None:
        if _rating_column(opts) is None:
            return None
        if opts.threshold is not None:
            return f"ratings >= {_num(thr)} are positives (--threshold {_num(thr)})"
        vals = np.unique(data.ratings.data) if data.ratings is not None else np.zeros(0)
        seen = f" ({_num(vals.min())} to {_num(vals.max())})" if len(vals) else ""
        return (f"every rated pair is a positive: no --threshold given; {len(vals)} distinct rating values "
                f"seen{seen}")
    if thr is None:
        return None
    how = f"--threshold {_num(thr)}" if opts.threshold is not None else f"{opts.dataset}'s rule; --threshold to change"
    return f"ratings >= {_num(thr)} are positives ({how})"


def _num(x: float) -> str:
    return f"{float(x):g}"


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_manifest(opts: DataOptions, data: Interactions, split: ColdStartSplit) -> dict[str, Any]:
    """What a saved model / result record keeps about its data: source (path as given + sha256,
    or the built-in dataset's name), columns, separator, positive threshold and rule, feature files
    with their hashes, and the split (kind, seed, K).

    Returns
    -------
    dict
        JSON-able; read back by :func:`options_from_manifest` and :func:`check_against_manifest`.
    """
    def feat(path: str | None) -> dict[str, str] | None:
        return None if path is None else {"path": str(path), "sha256": file_sha256(path)}

    table = opts.interactions is not None
    return {
        "dataset": None if table else opts.dataset,
        "name": data.name,
        "interactions": str(opts.interactions) if table else None,
        "sha256": file_sha256(opts.interactions) if table else None,
        "columns": {"user": opts.user_col or "user", "item": opts.item_col or "item",
                    "rating": _rating_column(opts), "timestamp": opts.timestamp_col} if table else None,
        "sep": opts.sep, "encoding": opts.encoding,
        "threshold": _effective_threshold(opts),
        "rating_col": _rating_column(opts) if table else ("rating" if _effective_threshold(opts) is not None else None),
        "positive_rule": positive_rule(opts, data),
        "user_features": feat(opts.user_features), "item_features": feat(opts.item_features),
        "split": {"kind": split.kind, "seed": opts.seed_,
                  "k_support": int(split.n_support) if split.kind == "user-cold" else 0},
        "n_users": int(data.n_users), "n_items": int(data.n_items), "n_positives": int(data.nnz),
    }


def own_table_options(opts: DataOptions) -> dict[str, Any] | None:
    """The loader options of the user's own table (``interactions``, feature files, columns,
    separator, encoding, threshold) as a suite's ``[[datasets]] options`` table, so a written
    suite (``tune``'s best.toml) reads the same data; None for a named dataset."""
    if opts.interactions is None:
        return None
    keys = ("interactions", "user_features", "item_features", "user_col", "item_col", "rating_col",
            "timestamp_col", "sep", "encoding", "threshold")
    return {k: getattr(opts, k) for k in keys if getattr(opts, k) is not None}


def record_extra(manifest: dict[str, Any]) -> dict[str, Any]:
    """What every result record carries about its data (threshold, rating column, rule, source)."""
    return {"threshold": manifest.get("threshold"), "rating_col": manifest.get("rating_col"),
            "positive_rule": manifest.get("positive_rule"),
            "data": {k: manifest.get(k) for k in ("dataset", "interactions", "sha256", "split")}}


def fill_from_manifest(opts: DataOptions, manifest: dict[str, Any], *, what: str,
                       split_fields: bool = True) -> list[str]:
    """Fill the options the user did not give from a saved ``manifest``; refuse a given one that
    disagrees (a different file hash, dataset, threshold, columns, feature file or split).

    Parameters
    ----------
    opts : DataOptions
        Updated in place.
    manifest : dict
        A :func:`data_manifest`.
    what : str
        Names the model folder in messages.
    split_fields : bool
        Also fill / check the split kind, seed and K (False: the command chooses its own split,
        e.g. ``distill``; only the seed and K are filled then).

    Returns
    -------
    list of str
        The options filled in (for one "using the saved model's data" line).

    Raises
    ------
    DataError
        One line naming the option, the given value and the saved one.
    """
    filled: list[str] = []

    def mismatch(option: str, given: Any, saved: Any) -> DataError:
        return DataError(f"{option} {given} does not match the data {what} was trained on ({saved}): evaluate "
                         f"it on its own data, or leave {option} out to reuse the saved one")

    saved_ds, saved_file = manifest.get("dataset"), manifest.get("interactions")
    if opts.dataset is None and opts.interactions is None:
        if saved_ds is not None:
            opts.dataset = saved_ds
            filled.append(f"--dataset {saved_ds}")
        elif saved_file is not None:
            if not Path(saved_file).is_file():
                raise DataError(f"{what} was trained on {saved_file}, which is not found from here: pass "
                                "--interactions FILE (the same content)")
            opts.interactions = saved_file
            filled.append(f"--interactions {saved_file}")
    elif opts.dataset is not None and saved_ds is not None and opts.dataset != saved_ds:
        raise mismatch("--dataset", opts.dataset, saved_ds)
    elif opts.dataset is not None and saved_file is not None:
        raise mismatch("--dataset", opts.dataset, f"--interactions {saved_file}")
    elif opts.interactions is not None and saved_ds is not None:
        raise mismatch("--interactions", opts.interactions, f"--dataset {saved_ds}")
    if opts.interactions is not None and manifest.get("sha256"):
        digest = file_sha256(opts.interactions)
        if digest != manifest["sha256"]:
            raise DataError(f"--interactions {opts.interactions}: its content (sha256 {digest[:12]}) differs from "
                            f"the file {what} was trained on ({manifest.get('interactions')}, sha256 "
                            f"{manifest['sha256'][:12]})")
    cols = manifest.get("columns") or {}
    for opt, attr, key in (("--user-col", "user_col", "user"), ("--item-col", "item_col", "item"),
                           ("--rating-col", "rating_col", "rating"), ("--timestamp-col", "timestamp_col", "timestamp")):
        saved = cols.get(key)
        given = getattr(opts, attr)
        if given is None and saved is not None and opts.interactions is not None:
            setattr(opts, attr, saved)
        elif given is not None and saved is not None and given != saved:
            raise mismatch(opt, given, saved)
    for attr in ("sep", "encoding"):
        if getattr(opts, attr) is None and manifest.get(attr) is not None:
            setattr(opts, attr, manifest[attr])
    saved_thr = manifest.get("threshold")
    if opts.threshold is None:
        if saved_thr is not None and saved_thr != _effective_threshold(opts):
            opts.threshold = float(saved_thr)
            filled.append(f"--threshold {_num(saved_thr)}")
    elif saved_thr is None or float(opts.threshold) != float(saved_thr):
        raise mismatch("--threshold", _num(opts.threshold),
                       "no threshold: every rated pair a positive" if saved_thr is None else
                       f"--threshold {_num(saved_thr)}")
    for opt, attr in (("--user-features", "user_features"), ("--item-features", "item_features")):
        saved = manifest.get(attr)
        given = getattr(opts, attr)
        if given is None and saved is not None:
            if not Path(saved["path"]).is_file():
                raise DataError(f"{what} was trained with {opt} {saved['path']}, which is not found from here: pass "
                                f"{opt} FILE (the same content)")
            setattr(opts, attr, saved["path"])
            filled.append(f"{opt} {saved['path']}")
        elif given is not None and saved is not None and file_sha256(given) != saved.get("sha256"):
            raise DataError(f"{opt} {given}: its content differs from the file {what} was trained with "
                            f"({saved['path']})")
    sp_ = manifest.get("split") or {}
    if split_fields and sp_.get("kind"):
        if opts.split is None:
            opts.split = sp_["kind"]
            filled.append(f"--split {sp_['kind']}")
        elif opts.split != sp_["kind"]:
            raise mismatch("--split", opts.split, sp_["kind"])
    for opt, attr, key in (("--seed", "seed", "seed"), ("--k-support", "k_support", "k_support")):
        saved = sp_.get(key)
        if saved is None or (key == "k_support" and not saved):
            continue
        if getattr(opts, attr) is None:
            setattr(opts, attr, int(saved))
            filled.append(f"{opt} {saved}")
        elif split_fields and int(getattr(opts, attr)) != int(saved):
            raise mismatch(opt, getattr(opts, attr), saved)
    return filled


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
    """Print a compact metrics table (rows: model/segment, columns: metric@k; ``users`` as an integer)."""
    sel = df[df.metric.isin(metrics)]
    if sel.empty:
        typer.echo("(no results: no evaluated users with truth)")
        return
    table = sel.assign(col=sel.metric + "@" + sel.k.astype(str)).pivot_table(
        index=["model", "segment"], columns="col", values="value", aggfunc="mean")
    n = df[df.metric == "n_users"].groupby(["model", "segment"]).value.max().rename("users")
    table = table.join(n)
    table["users"] = table["users"].round().astype("Int64")
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 200):
        typer.echo(table.to_string())


def saved_data(model_path: Path, opts: DataOptions, *, split_fields: bool = True) -> dict[str, Any]:
    """Read a saved model's ``meta`` and fill / check ``opts`` against its data manifest (one
    "using the saved model's data" line when something was filled); returns the meta."""
    from recsys_coldstart.io import read_model_meta

    meta = read_model_meta(model_path)
    manifest = meta.get("data")
    if isinstance(manifest, dict):
        filled = fill_from_manifest(opts, manifest, what=str(model_path), split_fields=split_fields)
        if filled:
            typer.echo(f"using the data {model_path} was trained on: {' '.join(filled)}")
        return meta
    # models saved before the data manifest: dataset / split / seed / K only
    if opts.dataset is None and opts.interactions is None and meta.get("dataset"):
        opts.dataset = meta["dataset"]
    if split_fields and opts.split is None and meta.get("split"):
        opts.split = meta["split"]
    if opts.seed is None and meta.get("seed") is not None:
        opts.seed = int(meta["seed"])
    if opts.k_support is None and meta.get("n_support"):
        opts.k_support = int(meta["n_support"])
    return meta


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
    @data_options(split="warm")
    def split_cmd(
        out: Path = typer.Option(..., "--out", help="Output folder."),
        fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
        *, data_opts: DataOptions,
    ) -> None:
        """Write a split (train/val/test, and support/query for cold users) with raw ids."""
        if fmt not in ("csv", "parquet"):
            raise DataError("--format must be csv or parquet")
        data = data_opts.load()
        s = data_opts.make_split(data)
        note = s.coverage_note()
        out.mkdir(parents=True, exist_ok=True)
        parts = {"train": s.train, "val": s.val, "test": s.test}
        if s.kind == "user-cold":
            parts["support"] = s.support
            parts["query"] = s.query
        written = []
        user_col, item_col = data_opts.user_col or "user", data_opts.item_col or "item"
        for name, part in parts.items():
            df = part.to_pandas(user_col=user_col, item_col=item_col)
            path = out / f"{name}.{fmt}"
            df.to_parquet(path, index=False) if fmt == "parquet" else df.to_csv(path, index=False)
            written.append((name, len(df)))
        manifest = {
            "dataset": s.name, "kind": s.kind, "seed": data_opts.seed_, "n_support": s.n_support,
            "n_users": s.train.n_users, "n_items": s.train.n_items,
            "val_users": s.train.users.to_id(s.val_users).tolist(),
            "test_users": s.train.users.to_id(s.test_users).tolist(),
            "val_items": s.train.items.to_id(s.val_items).tolist(),
            "test_items": s.train.items.to_id(s.test_items).tolist(),
            "dropped_val_users": s.train.users.to_id(s.dropped_val_users).tolist(),
            "dropped_test_users": s.train.users.to_id(s.dropped_test_users).tolist(),
            "note": note,
            "counts": dict(written),
            "data": data_manifest(data_opts, data, s),
        }
        (out / "split.json").write_text(json.dumps(manifest, default=_json_default, indent=1))
        for name, n in written:
            typer.echo(f"{name:<8}{n:>10,} rows -> {out / f'{name}.{fmt}'}")
        typer.echo(f"manifest -> {out / 'split.json'}")
        if note:
            typer.echo(f"note: {note} (listed in split.json)")

    @app.command("evaluate")
    @data_options(split="warm", split_help=f"Split kind: {', '.join(SPLIT_KINDS)} (default: warm, or the saved "
                  "model's).")
    def evaluate_cmd(
        model: str = typer.Option(None, "--model", "-m", help="Model name to fit (e.g. popularity, als)."),
        model_path: Path = typer.Option(None, "--model-path", help="A saved model folder to evaluate instead; "
                                        "its data (file, threshold, split) is reused, and options that disagree "
                                        "with it are refused."),
        set_: list[str] = SET_OPT,
        output: Path = typer.Option(None, "--output", "-o", help="Write the JSON result records here."),
        which: str = typer.Option("test", "--which", help="Evaluate on test or val."),
        *, data_opts: DataOptions,
    ) -> None:
        """Fit a model (or load a saved one) and print full-ranking metrics by segment."""
        from recsys_coldstart.evaluate import evaluate, to_records, write_json

        if (model is None) == (model_path is None):
            raise DataError("give exactly one of --model NAME or --model-path DIR")
        meta: dict[str, Any] = {}
        if model_path is not None:
            from recsys_coldstart.io import load_model

            if set_:
                raise DataError("--set configures a model fitted here (--model); a saved model keeps its config")
            meta = saved_data(model_path, data_opts)
        seed_ = data_opts.seed_
        data = data_opts.load()
        s = data_opts.make_split(data)
        manifest = data_manifest(data_opts, data, s)
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
            cfg_cls = getattr(cls, "config_class", None)
            if set_:
                if cfg_cls is None:
                    raise DataError(f"{model} has no config: --set does not apply")
                kwargs.update(parse_set(set_, cfg_cls, what=model))
            try:
                est = cls(**kwargs)
            except (TypeError, ValueError) as e:
                raise DataError(f"{model}: {e}") from None
            est = est.fit(s.train, val=s.val, **split_fit_kwargs(est, s))
            name = model
        res = evaluate(est, s, which=which, model_name=name, seed=seed_)
        secs = time.perf_counter() - t0
        n_eval = res.loc[res.metric == "n_users", "value"]
        if res.empty or (len(n_eval) and float(n_eval.sum()) == 0):
            raise DataError(f"{s.name} ({s.kind} split, seed {seed_}): no user has held-out {which} positives, "
                            "so nothing was evaluated; the table is too small for this split")
        typer.echo(f"{name} on {s.summary()} ({which}): {secs:.1f}s")
        if note:
            typer.echo(f"note: {note}")
        print_results(res)
        if output is not None:
            from recsys_coldstart.io import config_to_dict

            write_json(to_records(res, config=config_to_dict(getattr(est, "config", None)), seconds=secs,
                                  extra=record_extra(manifest)), output)
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
