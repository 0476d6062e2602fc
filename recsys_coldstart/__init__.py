"""recsys_coldstart: a toolkit for the cold-start problem of recommender systems.

The public API: core data types, split functions, evaluation, and the main estimators.
Estimators are imported lazily (on first attribute access) so that ``import recsys_coldstart``
stays light and the data layer never pulls in torch.

Examples
--------
>>> import recsys_coldstart as rc
>>> data = rc.make_synthetic(n_users=200, n_items=100, random_state=0)
>>> split = rc.user_cold_split(data, n_support=3, random_state=0)
>>> model = rc.FeaturePopularity().fit(split.train)
>>> from recsys_coldstart.evaluate import evaluate
>>> results = evaluate(model, split)
"""

from __future__ import annotations

import importlib
from typing import Any

from recsys_coldstart.data import (
    ColdStartSplit,
    IdVocab,
    Interactions,
    SideFeatures,
    item_cold_split,
    make_split,
    make_synthetic,
    user_cold_split,
    warm_split,
)
from recsys_coldstart.exceptions import (
    ColdStartError,
    DataError,
    NotFittedError,
    TrainingDivergedError,
)
from recsys_coldstart.types import ColdStartModel, ElicitationPolicy, EmbeddingModel, Recommender

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # data loading
    "load_dataset": "recsys_coldstart.data.datasets",
    "load_predefined_split": "recsys_coldstart.data.datasets",
    "load_table": "recsys_coldstart.data.datasets",
    # io (evaluation lives in the ``recsys_coldstart.evaluate`` subpackage: ``evaluate.evaluate``)
    "save_model": "recsys_coldstart.io",
    "load_model": "recsys_coldstart.io",
    # baselines
    "Popularity": "recsys_coldstart.baselines",
    "RandomRecommender": "recsys_coldstart.baselines",
    "ALS": "recsys_coldstart.baselines",
    "BPR": "recsys_coldstart.baselines",
    "ItemKNN": "recsys_coldstart.baselines",
    "EASE": "recsys_coldstart.baselines",
    "FeaturePopularity": "recsys_coldstart.baselines",
    "ContentKNN": "recsys_coldstart.baselines",
    # graph pretraining
    "LightGCN": "recsys_coldstart.pretrain",
    "SGL": "recsys_coldstart.pretrain",
    "SimGCL": "recsys_coldstart.pretrain",
    "XSimGCL": "recsys_coldstart.pretrain",
    # distillation and cold-start models
    "TwoTowerTeacher": "recsys_coldstart.distill",
    "Student": "recsys_coldstart.distill",
    "DropoutNet": "recsys_coldstart.coldstart",
    "Heater": "recsys_coldstart.coldstart",
    "ALDI": "recsys_coldstart.coldstart",
    # elicitation
    "ElicitationSession": "recsys_coldstart.elicit",
    "LinUCBPolicy": "recsys_coldstart.elicit",
    "ThompsonPolicy": "recsys_coldstart.elicit",
    "InfoGainPolicy": "recsys_coldstart.elicit",
    "replay": "recsys_coldstart.elicit",
    # retrieval
    "EmbeddingIndex": "recsys_coldstart.retrieval",
}

__all__ = [
    "ColdStartSplit", "IdVocab", "Interactions", "SideFeatures", "item_cold_split", "make_split",
    "make_synthetic", "user_cold_split", "warm_split", "ColdStartError", "DataError", "NotFittedError",
    "TrainingDivergedError", "ColdStartModel", "ElicitationPolicy", "EmbeddingModel", "Recommender",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the estimators of the public API on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recsys_coldstart' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
