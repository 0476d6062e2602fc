"""Data layer: vocabularies, interactions, side features, splits, loaders (numpy/scipy/pandas only)."""

from recsys_coldstart.data.datasets import (
    DATASETS,
    DatasetInfo,
    dataset_status,
    load_dataset,
    load_predefined_split,
    load_table,
    resolve_data_dir,
)
from recsys_coldstart.data.datasets.synthetic import make_synthetic
from recsys_coldstart.data.features import SideFeatures
from recsys_coldstart.data.interactions import Interactions, encode_feature_table
from recsys_coldstart.data.splits import (
    SPLIT_KINDS,
    ColdStartSplit,
    check_no_leakage,
    item_cold_split,
    make_split,
    user_cold_split,
    warm_split,
)
from recsys_coldstart.data.vocab import IdVocab

__all__ = [
    "IdVocab", "SideFeatures", "Interactions", "encode_feature_table", "ColdStartSplit", "SPLIT_KINDS",
    "warm_split", "user_cold_split", "item_cold_split", "make_split", "check_no_leakage", "make_synthetic",
    "DATASETS", "DatasetInfo", "dataset_status", "load_dataset", "load_predefined_split", "load_table",
    "resolve_data_dir",
]
