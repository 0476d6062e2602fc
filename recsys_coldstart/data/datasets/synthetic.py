"""Synthetic cold-start data with planted preferences and informative side features.

The embedded default of ``coldstart demo``: it needs no download and has a known answer.
Each user and item belongs to one of ``n_clusters`` latent groups; a user's affinity for an
item is the dot product of noisy group-centred latent vectors. Users see (rate) items with a
probability that mixes item popularity and affinity, rate them 1-5 according to affinity, and
a rating >= 4 is a positive. Side features reveal the latent group (with noise): a user's
``group`` (one-hot, ``feature_noise`` of them wrong) and an item's ``genre`` (one-hot) plus a
distractor ``tag``. A model that uses the features can therefore beat popularity on cold users
and items, and a graph/MF model can recover the clusters from interactions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.data.interactions import Interactions


def make_synthetic(n_users: int = 1200, n_items: int = 600, *, n_clusters: int = 8, mean_ratings: int = 40,
                   feature_noise: float = 0.15, affinity_scale: float = 1.5,
                   random_state: int | np.random.Generator | None = 0) -> Interactions:
    """Generate a synthetic explicit-feedback dataset with side features.

    Parameters
    ----------
    n_users, n_items : int
        Sizes.
    n_clusters : int
        Number of planted taste groups (also the number of genres).
    mean_ratings : int
        Mean number of rated items per user (each user rates between 5 and 3x this).
    feature_noise : float
        Probability that a user's ``group`` feature or an item's ``genre`` is wrong.
    affinity_scale : float
        How strongly affinity drives exposure and ratings (larger = easier).
    random_state : int, Generator or None

    Returns
    -------
    Interactions
        ``name="synthetic"``, with ``ratings`` (1-5), ``timestamps``, user features
        (``group=*``, ``activity``) and item features (``genre=*``, ``tag=*``); positives are
        ratings >= 4.
    """
    rng = check_random_state(random_state)
    d = n_clusters
    user_cluster = rng.integers(0, d, n_users)
    item_cluster = rng.integers(0, d, n_items)
    centres = np.eye(d) * 2.0
    u = centres[user_cluster] + rng.normal(0, 0.5, (n_users, d))
    v = centres[item_cluster] + rng.normal(0, 0.5, (n_items, d))
    affinity = (u @ v.T) / 4.0  # ~N(0..1) range, in-cluster ~1
    log_pop = rng.normal(0, 1.0, n_items)
    n_rated = np.clip(rng.poisson(mean_ratings, n_users), 5, min(3 * mean_ratings, n_items - 1))
    keys = log_pop[None, :] + affinity_scale * affinity + rng.gumbel(size=(n_users, n_items))
    order = np.argsort(-keys, axis=1)
    take = np.arange(n_items)[None, :] < n_rated[:, None]  # each user's first n_rated[u] picks
    r = np.repeat(np.arange(n_users), n_rated)
    c = order[take]  # row-major, aligned with r
    a = affinity[r, c]
    a_std = (a - a.mean()) / (a.std() + 1e-9)
    rating = np.clip(np.round(3.2 + 1.3 * affinity_scale / 1.5 * a_std + rng.normal(0, 0.7, len(a))), 1, 5)
    ts = 1_600_000_000 + rng.integers(0, 10**7, len(r)).astype(np.int64)
    df = pd.DataFrame({"user": r, "item": c, "rating": rating, "timestamp": ts})

    noisy_group = np.where(rng.random(n_users) < feature_noise, rng.integers(0, d, n_users), user_cluster)
    user_feats = pd.DataFrame({"user": np.arange(n_users), "group": [f"g{g}" for g in noisy_group],
                               "activity": np.log1p(n_rated).astype(np.float32)})
    noisy_genre = np.where(rng.random(n_items) < feature_noise, rng.integers(0, d, n_items), item_cluster)
    item_feats = pd.DataFrame({"item": np.arange(n_items), "genre": [f"c{g}" for g in noisy_genre],
                               "tag": [f"t{t}" for t in rng.integers(0, 4, n_items)]})
    # only ids that occur in interactions carry features (the loader's contract)
    user_feats = user_feats[user_feats.user.isin(df.user.unique())]
    item_feats = item_feats[item_feats.item.isin(df.item.unique())]
    return Interactions.from_pandas(df, rating_col="rating", timestamp_col="timestamp", threshold=4.0,
                                    user_features=user_feats, item_features=item_feats, name="synthetic",
                                    source="synthetic generator")
