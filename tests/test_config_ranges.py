"""Every config field of every registered model and policy declares its range (issue 13 defect 4).

One place, one style: :mod:`recsys_coldstart.config` field metadata, checked at construction.
Here: every numeric / choice field of every registry config carries a rule (a few free fields
are listed with the reason), a value just outside each rule is refused naming the config and
field, and a benchmark cell with an out-of-range value is recorded as an error, not ``ok``.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from recsys_coldstart.bench import parse_suite, run_suite
from recsys_coldstart.cli.registry import (
    MODELS,
    POLICIES,
    model_class,
    model_classes,
    policy_classes,
    resolve,
)
from recsys_coldstart.config import Check
from recsys_coldstart.distill.strategies import STRATEGIES
from recsys_coldstart.evaluate.results import read_cell_records

# Fields without a range, and why.
FREE = {
    "random_state": "any seed (or None) is valid",
    "device": "resolved (and refused when unknown) by resolve_device at fit time",
    "checkpoint_dir": "a path",
    "fan_out": "its rule depends on n_layers (one entry per layer, each >= 1 or -1): checked in _check()",
    "like_value": "an answer's regression target: any finite number",
    "dislike_value": "an answer's regression target: any finite number",
    "unknown_value": "an answer's regression target, or None",
}


def _configs() -> dict[str, type]:
    out = {}
    for name in MODELS:
        out[f"model:{name}"] = model_class(name).config_class
    for name in POLICIES:
        out[f"policy:{name}"] = resolve(POLICIES, name, "policy").config_class
    for cls in STRATEGIES:
        out[f"strategy:{cls.__name__}"] = cls
    return {k: v for k, v in out.items() if v is not None}


CONFIGS = _configs()


def _needs_rule(cls: type, f: dataclasses.Field) -> bool:
    if f.name in FREE:
        return False
    hint = typing.get_type_hints(cls)[f.name]
    args = set(typing.get_args(hint)) - {type(None)} or {hint}
    if bool in args:
        return False
    if any(dataclasses.is_dataclass(a) for a in args):
        return False  # a nested config validates itself
    return bool(args & {int, float, str}) or any(typing.get_origin(a) is tuple for a in args)


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_every_field_declares_its_range(key):
    cls = CONFIGS[key]
    missing = [f.name for f in dataclasses.fields(cls) if _needs_rule(cls, f) and "check" not in f.metadata]
    assert not missing, f"{cls.__name__}: declare the range of {missing} (recsys_coldstart.config metadata)"


def _outside(rule: Check):
    """A value just outside ``rule``."""
    if rule.choices is not None:
        return "__not_a_choice__"
    if rule.low is not None:
        bad = rule.low if rule.low_open else rule.low - (1 if rule.integer else 1e-3)
    else:
        bad = rule.high if rule.high_open else rule.high + 1
    return (bad,) if rule.each else bad


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_a_value_outside_each_range_is_refused_naming_the_field(key):
    cls = CONFIGS[key]
    for f in dataclasses.fields(cls):
        rule = f.metadata.get("check")
        if rule is None or (rule.low is None and rule.high is None and rule.choices is None):
            continue
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.{f.name} must be"):
            cls(**{f.name: _outside(rule)})
        if rule.choices is None and not rule.each:
            with pytest.raises(ValueError, match=rf"{cls.__name__}\.{f.name} must be"):
                cls(**{f.name: math.nan})


@pytest.mark.parametrize("make", [
    lambda: model_class("itemknn")(n_neighbors=-5), lambda: model_class("itemknn")(n_neighbors=0),
    lambda: model_class("als")(dim=0), lambda: model_class("als")(reg=-1),
])
def test_issue_13_examples_fail_at_construction(make):
    with pytest.raises(ValueError, match=r"Config\.(n_neighbors|dim|reg) must be"):
        make()


def test_bench_cell_with_out_of_range_config_is_an_error(tmp_path):
    doc = {"name": "ranges", "seeds": [0],
           "datasets": [{"name": "synthetic", "splits": ["warm"],
                         "options": {"n_users": 60, "n_items": 40, "mean_ratings": 8}}],
           "models": [{"name": "itemknn", "label": "itemknn-bad", "config": {"n_neighbors": -5}},
                      {"name": "itemknn", "config": {"n_neighbors": 5}}]}
    summary = run_suite(parse_suite(doc, models=model_classes()), tmp_path, models=model_classes(),
                        policies=policy_classes())
    assert len(summary.failed) == 1 and len(summary.ok) == 1
    rec = read_cell_records(tmp_path / "cells" / f"{summary.failed[0]}.json")[0]
    assert rec["status"] == "error" and "ItemKNNConfig.n_neighbors must be an integer >= 1" in rec["error"]
