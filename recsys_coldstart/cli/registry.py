"""The registry: the one place where names become classes (design rule 6).

Entries are ``"module:Class"`` strings imported on demand, so ``coldstart --help`` stays fast and
a missing optional model fails only when asked for. Unknown names raise an error that lists the
choices. The benchmark runner and the tuner never read these tables: the CLI hands them
name -> class mappings (:func:`model_classes`, :func:`policy_classes`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
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
    "oracle": "recsys_coldstart.elicit.oracle:OraclePolicy",
    "interview-tree": "recsys_coldstart.elicit.interview_tree:InterviewTreePolicy",
    "lookahead": "recsys_coldstart.elicit.lookahead:LookaheadPolicy",
}

DISTILL_STRATEGIES: dict[str, str] = {
    "score": "recsys_coldstart.distill.strategies:ScoreDistillation",
    "rank": "recsys_coldstart.distill.strategies:RankingDistillation",
    "embed": "recsys_coldstart.distill.strategies:EmbeddingAlignment",
}
"""``coldstart distill --loss`` names -> :class:`~recsys_coldstart.distill.strategies.DistillStrategy` classes."""


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


def distill_strategy(name: str, **settings: Any) -> Any:
    """The distillation strategy registered as ``name`` (see :data:`DISTILL_STRATEGIES`), built
    with those of ``settings`` it declares (e.g. ``temperature`` for ``"score"``)."""
    import dataclasses

    cls = resolve(DISTILL_STRATEGIES, name, "distillation loss")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in settings.items() if k in names})


class ClassTable(Mapping):
    """A read-only name -> class mapping over a registry table, importing each class when first
    looked up (so handing the whole table to the runner imports nothing yet).

    Parameters
    ----------
    table : dict of str to str
        ``name -> "module:Class"``.
    extra : mapping of str to class, optional
        Classes added by name (they win over the table).
    """

    def __init__(self, table: Mapping[str, str], extra: Mapping[str, type] | None = None) -> None:
        self._table = dict(table)
        self._extra = dict(extra or {})
        self._loaded: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        if name in self._extra:
            return self._extra[name]
        key = name.strip().lower() if isinstance(name, str) else name
        if key not in self._table:
            raise KeyError(name)
        if key not in self._loaded:
            self._loaded[key] = _load(self._table[key])
        return self._loaded[key]

    def __contains__(self, name: object) -> bool:
        return name in self._extra or (isinstance(name, str) and name.strip().lower() in self._table)

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        yield from (k for k in self._table if k not in self._extra)

    def __len__(self) -> int:
        return len(self._extra) + sum(k not in self._extra for k in self._table)


def model_classes(extra: Mapping[str, type] | None = None) -> ClassTable:
    """Every registered model as a name -> class mapping (classes imported on first use), for
    injection into :func:`recsys_coldstart.bench.run_suite`; ``extra`` adds classes by name."""
    return ClassTable(MODELS, extra)


def policy_classes(extra: Mapping[str, type] | None = None) -> ClassTable:
    """Every registered elicitation policy as a name -> class mapping (see :func:`model_classes`)."""
    return ClassTable(POLICIES, extra)
