"""Config validation: one style for every model family (recsys_coldstart.config)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from recsys_coldstart.baselines import EASE, ContentKNN, FeaturePopularity, ItemKNN
from recsys_coldstart.config import Config, at_least, between, greater_than, one_of


@dataclass(frozen=True)
class _Demo(Config):
    n: int = field(default=3, metadata=at_least(1, integer=True))
    p: float = field(default=0.5, metadata=between(0.0, 1.0, high_open=True))
    t: float | None = field(default=None, metadata=greater_than(0.0, none=True))
    mode: str = field(default="a", metadata=one_of("a", "b"))
    free: int = 7


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 0}, "_Demo.n must be an integer >= 1, got 0"),
    ({"n": 2.5}, "_Demo.n must be an integer >= 1, got 2.5"),
    ({"n": True}, "_Demo.n must be an integer >= 1, got True"),
    ({"p": 1.0}, "_Demo.p must be a finite number >= 0 and < 1, got 1.0"),
    ({"p": float("nan")}, "_Demo.p must be a finite number >= 0 and < 1, got nan"),
    ({"t": 0}, "_Demo.t must be a finite number > 0 or None, got 0"),
    ({"mode": "c"}, "_Demo.mode must be one of 'a', 'b', got 'c'"),
    ({"n": "3"}, "_Demo.n must be an integer >= 1, got '3'"),
])
def test_each_rule_names_config_field_range_and_value(kwargs, message):
    with pytest.raises(ValueError) as e:
        _Demo(**kwargs)
    assert str(e.value) == message


def test_valid_values_pass():
    assert _Demo(n=1, p=0.0, t=None, mode="b").n == 1
    assert _Demo(n=4.0).n == 4.0  # an integral float is an integer value


@pytest.mark.parametrize("make", [
    lambda: ItemKNN(n_neighbors=-5), lambda: ItemKNN(n_neighbors=0), lambda: ItemKNN(shrinkage=-1),
    lambda: ContentKNN(n_neighbors=0), lambda: FeaturePopularity(power=0), lambda: FeaturePopularity(shrinkage=-1),
    lambda: EASE(reg=0), lambda: EASE(reg=-3),
])
def test_models_refuse_out_of_range_hyper_parameters_at_construction(make):
    with pytest.raises(ValueError, match=r"Config\.\w+ must be"):
        make()
