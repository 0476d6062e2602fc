"""Data for benchmark cells: datasets by name and the splits a suite asks for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recsys_coldstart.bench.suite import SplitSpec, split_spec
from recsys_coldstart.exceptions import DataError


def load_data(name: str, data_dir: str | Path | None = None, **options: Any):
    """Load a dataset by name: ``"synthetic"`` (``make_synthetic(**options)``), a user's own table
    (``options`` has ``interactions = "path"`` plus :func:`~recsys_coldstart.data.datasets.tabular.load_table`
    options: ``threshold``, ``rating_col``, ``user_features``, ...) or a registered one.

    Returns
    -------
    Interactions
    """
    if "interactions" in options:
        from recsys_coldstart.data.datasets.tabular import load_table

        opts = dict(options)
        return load_table(opts.pop("interactions"), name=opts.pop("name", name), **opts)
    if name == "synthetic":
        from recsys_coldstart.data import make_synthetic

        return make_synthetic(**options)
    from recsys_coldstart.data.datasets import load_dataset

    return load_dataset(name, None if data_dir is None else str(data_dir), **options)


def data_rule(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """What every record of a cell says about which pairs are positives: ``threshold`` (the suite's
    ``threshold`` option, a registered explicit dataset's default 4, else None) and
    ``rating_col`` (own tables), and the table file for own data.

    Parameters
    ----------
    name : str
        The suite's dataset name.
    options : mapping
        Its loader options.

    Returns
    -------
    dict
    """
    from recsys_coldstart.data.datasets import positive_threshold

    own = "interactions" in options
    return {"threshold": positive_threshold(None if own else name, options.get("threshold")),
            "rating_col": options.get("rating_col"), "interactions": options.get("interactions")}


FEATURE_OPTIONS = ("item_features_min_df", "user_features_min_df", "item_features_svd", "user_features_svd")


def split_feature_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A suite dataset's options as (loader options, side-feature options ``*_features_svd``)."""
    opts = dict(options)
    return {k: v for k, v in opts.items() if k not in FEATURE_OPTIONS}, \
        {k: v for k, v in opts.items() if k in FEATURE_OPTIONS}


def apply_feature_options(split, options: Mapping[str, Any], seed: int):
    """The split with its side features changed as the suite dataset asks, per side:
    ``<side>_features_min_df = k`` drops columns fewer than ``k`` rows use
    (:func:`~recsys_coldstart.data.features.drop_rare_columns`), then
    ``<side>_features_svd = {n = 64, weighting = "tfidf", noise = 0}`` compresses the table
    (:func:`~recsys_coldstart.data.features.compress_features`, seeded with the cell's seed)."""
    from recsys_coldstart.data.features import compress_features, drop_rare_columns
    from recsys_coldstart.data.splits import with_side_features

    new = {}
    for key in sorted(options, key=lambda k: (k.split("_")[0], k.endswith("_svd"))):  # min_df before svd
        value = options[key]
        side = key.split("_")[0]
        table = new.get(f"{side}_features") or (split.train.item_features if side == "item" else split.train.user_features)
        if table is None:
            raise DataError(f"dataset option {key}: the data has no {side} features")
        if key.endswith("_min_df"):
            new[f"{side}_features"] = drop_rare_columns(table, int(value))
            continue
        spec = dict(value) if isinstance(value, Mapping) else {"n": int(value)}
        bad = set(spec) - {"n", "weighting", "noise"}
        if bad or "n" not in spec:
            raise DataError(f"dataset option {key} takes {{n, weighting, noise}} (n required), got {sorted(spec)}")
        new[f"{side}_features"] = compress_features(table, int(spec["n"]), weighting=str(spec.get("weighting", "tfidf")),
                                                    noise_columns=int(spec.get("noise", 0)), random_state=seed)
    return with_side_features(split, **new)


def load_split(dataset: str, spec: SplitSpec | str, seed: int, *, data_dir: str | Path | None = None,
               data=None, options: Mapping[str, Any] | None = None):
    """Cut (or load) the split ``spec`` of ``dataset`` with ``seed``.

    Parameters
    ----------
    dataset : str
    spec : SplitSpec or str
        A split spec or a bare kind.
    seed : int
    data_dir : path, optional
        Default: ``$RECSYS_COLDSTART_DATA`` (the loaders' own default).
    data : Interactions, optional
        Already loaded data (skips loading).
    options : mapping, optional
        Loader options (``make_synthetic`` keywords for ``"synthetic"``).

    Returns
    -------
    ColdStartSplit
    """
    if isinstance(spec, str):
        spec = split_spec(spec, None)
    if spec.predefined:
        from recsys_coldstart.data.datasets import load_predefined_split

        split = load_predefined_split(dataset, spec.kind, None if data_dir is None else str(data_dir),
                                      random_state=seed)
        if split is None:
            raise DataError(f"dataset {dataset!r} has no predefined {spec.kind} split")
        return split
    from recsys_coldstart.data import make_split

    if data is None:
        data = load_data(dataset, data_dir, **dict(options or {}))
    return make_split(data, spec.kind, random_state=seed, n_support=spec.n_support, temporal=spec.temporal)


class SplitCache:
    """Keeps the last dataset and the last split loaded: cells are ordered dataset -> split -> seed,
    so consecutive cells share them and nothing older is needed again."""

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = data_dir
        self._data: dict[str, Any] = {}
        self._splits: dict[tuple, Any] = {}

    def get(self, cell) -> Any:
        """The :class:`ColdStartSplit` of ``cell`` (its dataset, split spec and seed)."""
        # options may hold tables (feature options): keyed by their repr, not hashed
        key = (cell.dataset.name, cell.split, cell.seed, repr(sorted(cell.dataset.options.items())))
        if key in self._splits:
            return self._splits[key]
        self._splits.clear()
        data = None
        options, features = split_feature_options(cell.dataset.options)
        name = cell.dataset.loader
        if not cell.split.predefined:
            dkey = (name, repr(sorted(options.items())))
            if dkey not in self._data:
                self._data.clear()
                self._data[dkey] = load_data(name, self.data_dir, **options)
            data = self._data[dkey]
        split = load_split(name, cell.split, cell.seed, data_dir=self.data_dir, data=data, options=options)
        if features:
            split = apply_feature_options(split, features, cell.seed)
        self._splits[key] = split
        return split
