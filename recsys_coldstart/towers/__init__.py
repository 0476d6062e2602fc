"""The tower family: layers, the shared base estimator and losses of every tower model.

Public building blocks used by :mod:`recsys_coldstart.distill` (two-tower teacher, student) and
:mod:`recsys_coldstart.coldstart` (DropoutNet, Heater, ALDI):

- :mod:`~recsys_coldstart.towers.blocks`: :class:`Tower` (an MLP over dense / sparse input
  blocks), :class:`ContentMap` and :func:`ridge_map` (closed-form attribute-to-feature maps),
  feature scaling and bag helpers;
- :mod:`~recsys_coldstart.towers.base`: :class:`TowerConfig` / :class:`ColdStartTowerConfig` (the
  config fields every tower model shares), :class:`TowerRecommender` (features, batched embedding,
  fold-in of new users, save / load, serving), :func:`base_factors` (pretrained factors or an SVD)
  and the sampling helpers;
- :mod:`~recsys_coldstart.towers.preference`: :class:`PreferenceTowerModel`, the base of the
  models fed frozen pretrained preference vectors plus content;
- :mod:`~recsys_coldstart.towers.losses`: the losses shared by distillation and cold-start models.

New users are folded in as described in :mod:`recsys_coldstart.foldin`.
"""

from recsys_coldstart.towers.base import (
           ColdStartTowerConfig,
           TowerConfig,
           TowerRecommender,
           base_factors,
)
from recsys_coldstart.towers.blocks import ContentMap, Tower, ridge_map
from recsys_coldstart.towers.preference import PreferenceTowerModel

__all__ = ["ColdStartTowerConfig", "ContentMap", "PreferenceTowerModel", "Tower", "TowerConfig", "TowerRecommender",
           "base_factors", "ridge_map"]
