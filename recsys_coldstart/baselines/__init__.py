"""Baselines: popularity, implicit ALS/BPR, item-KNN, and side-feature cold-start floors."""

from recsys_coldstart.baselines.popularity import Popularity

__all__ = ["Popularity"]
