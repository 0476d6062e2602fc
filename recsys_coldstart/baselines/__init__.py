"""Baselines: popularity, implicit ALS/BPR, item-KNN, and side-feature cold-start floors."""

from recsys_coldstart.baselines.content_knn import ContentKNN, ContentKNNConfig
from recsys_coldstart.baselines.ease import EASE, EASEConfig
from recsys_coldstart.baselines.feature_popularity import FeaturePopularity, FeaturePopularityConfig
from recsys_coldstart.baselines.implicit_mf import ALS, BPR, ALSConfig, BPRConfig
from recsys_coldstart.baselines.knn import ItemKNN, ItemKNNConfig
from recsys_coldstart.baselines.popularity import Popularity
from recsys_coldstart.baselines.random import RandomConfig, RandomRecommender

__all__ = [
    "Popularity", "ALS", "ALSConfig", "BPR", "BPRConfig", "ItemKNN", "ItemKNNConfig", "FeaturePopularity",
    "FeaturePopularityConfig", "ContentKNN", "ContentKNNConfig", "RandomRecommender", "RandomConfig", "EASE", "EASEConfig",
]
