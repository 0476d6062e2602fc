"""The shared config base of the tower models: one set of fields, checked at construction."""

from __future__ import annotations

import dataclasses

import pytest

from recsys_coldstart.coldstart import ALDI, ALDIConfig, DropoutNetConfig, HeaterConfig
from recsys_coldstart.distill import StudentConfig, TwoTowerTeacher, TwoTowerTeacherConfig
from recsys_coldstart.foldin import TOWER_FOLD_IN_MODES
from recsys_coldstart.towers.base import CONTENT_INIT_MODES, ColdStartTowerConfig, TowerConfig

CONFIGS = [TwoTowerTeacherConfig, StudentConfig, DropoutNetConfig, HeaterConfig, ALDIConfig]
COLD_START = [DropoutNetConfig, HeaterConfig, ALDIConfig]


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_tower_config_extends_the_base_and_keeps_its_range_checks(cls):
    assert issubclass(cls, TowerConfig)
    own = {f.name: f for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(TowerConfig):
        # a subclass that redeclares a field to change its default must keep the check
        assert own[f.name].metadata == f.metadata, f"{cls.__name__}.{f.name} lost its range check"


@pytest.mark.parametrize("cls", COLD_START)
def test_cold_start_configs_share_the_content_map_fields(cls):
    assert issubclass(cls, ColdStartTowerConfig)
    own = {f.name: f for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(ColdStartTowerConfig):
        assert own[f.name].metadata == f.metadata


def test_models_keep_their_own_defaults():
    assert StudentConfig().lr == 3e-3 and TwoTowerTeacherConfig().lr == 1e-3
    assert ALDIConfig().fold_in == "tower" and DropoutNetConfig().fold_in == "ridge"
    assert {c().fold_in for c in CONFIGS} <= set(TOWER_FOLD_IN_MODES)
    assert {c().content_init for c in COLD_START} <= set(CONTENT_INIT_MODES)


@pytest.mark.parametrize(("cls", "field", "value", "rule"), [
    (TwoTowerTeacherConfig, "lr", 0.0, "> 0"),
    (StudentConfig, "lr", -1e-3, "> 0"),
    (DropoutNetConfig, "batch_size", 0, "an integer >= 1"),
    (HeaterConfig, "n_epochs", -1, "an integer >= 0"),
    (ALDIConfig, "patience", 0, "an integer >= 1 or None"),
    (StudentConfig, "n_negatives", -5, "an integer >= 0"),
    (TwoTowerTeacherConfig, "fold_in", "graph", "one of 'tower', 'ridge'"),
    (ALDIConfig, "fold_in", "local", "one of 'tower', 'ridge'"),
    (DropoutNetConfig, "fold_in_k", 0, "an integer >= 1"),
    (HeaterConfig, "fold_in_ridge", -1.0, ">= 0"),
    (DropoutNetConfig, "content_init", "ridge", "one of 'map', 'random'"),
    (ALDIConfig, "content_ridge", 0.0, "> 0"),
    (HeaterConfig, "content_neighbors", -1, "an integer >= 0"),
    (DropoutNetConfig, "content_blend", 1.5, ">= 0 and <= 1 or None"),
    (ALDIConfig, "base_dim", 0, "an integer >= 1"),
])
def test_bad_values_fail_at_construction_naming_the_field_and_the_range(cls, field, value, rule):
    with pytest.raises(ValueError) as err:
        cls(**{field: value})
    msg = str(err.value)
    assert msg.startswith(f"{cls.__name__}.{field} must be ")
    assert rule in msg and repr(value) in msg


def test_estimators_validate_keywords_before_any_work():
    with pytest.raises(ValueError, match=r"TwoTowerTeacherConfig\.fold_in must be one of"):
        TwoTowerTeacher(fold_in="graph")
    with pytest.raises(ValueError, match=r"ALDIConfig\.content_blend must be"):
        ALDI(content_blend=-0.1)
    assert ALDIConfig(patience=None, content_blend=None).patience is None


def test_aldi_prior_pull_and_ridge_fold_in_are_distinct_fields():
    names = {f.name for f in dataclasses.fields(ALDIConfig)}
    assert {"fold_in_prior", "fold_in_ridge"} <= names and "fold_in_reg" not in names
