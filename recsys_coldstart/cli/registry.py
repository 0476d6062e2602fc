"""Name -> class tables used by the CLI and the benchmark runner.

Entries are ``"module:Class"`` strings imported on demand, so ``coldstart --help`` stays fast and
a missing optional model fails only when asked for. Unknown names raise an error that lists the
choices.
"""

from __future__ import annotations

import importlib
from typing import Any

MODELS: dict[str, str] = {
    "popularity": "recsys_coldstart.baselines.popularity:Popularity",
    "feature-popularity": "recsys_coldstart.baselines.feature_popularity:FeaturePopularity",
    "content-knn": "recsys_coldstart.baselines.content_knn:ContentKNN",
    "als": "recsys_coldstart.baselines.implicit_mf:ALS",
    "bpr": "recsys_coldstart.baselines.implicit_mf:BPR",
    "itemknn": "recsys_coldstart.baselines.knn:ItemKNN",
    "ease": "recsys_coldstart.baselines.ease:EASE",
    "random": "recsys_coldstart.baselines.random:RandomRecommender",
    "lightgcn": "recsys_coldstart.pretrain.lightgcn:LightGCN",
    "sgl": "recsys_coldstart.pretrain.sgl:SGL",
    "simgcl": "recsys_coldstart.pretrain.simgcl:SimGCL",
    "xsimgcl": "recsys_coldstart.pretrain.xsimgcl:XSimGCL",
    "teacher": "recsys_coldstart.distill.teacher:TwoTowerTeacher",
    "student": "recsys_coldstart.distill.student:Student",
    "dropoutnet": "recsys_coldstart.coldstart.dropoutnet:DropoutNet",
    "heater": "recsys_coldstart.coldstart.heater:Heater",
    "aldi": "recsys_coldstart.coldstart.aldi:ALDI",
}

POLICIES: dict[str, str] = {
    "random": "recsys_coldstart.elicit.random_policy:RandomPolicy",
    "popularity": "recsys_coldstart.elicit.popularity:PopularityPolicy",
    "pop-entropy": "recsys_coldstart.elicit.pop_entropy:PopEntropyPolicy",
    "greedy": "recsys_coldstart.elicit.greedy:GreedyPolicy",
    "linucb": "recsys_coldstart.elicit.linucb:LinUCBPolicy",
    "thompson": "recsys_coldstart.elicit.thompson:ThompsonPolicy",
    "info-gain": "recsys_coldstart.elicit.info_gain:InfoGainPolicy",
}


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def resolve(table: dict[str, str], name: str, what: str = "model") -> Any:
    """The class registered under ``name`` in ``table``; a clear error lists the choices."""
    key = name.strip().lower()
    if key not in table:
        raise ValueError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}")
    return _load(table[key])


def model_class(name: str) -> Any:
    """The model class registered as ``name`` (see :data:`MODELS`)."""
    return resolve(MODELS, name, "model")
