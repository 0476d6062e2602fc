"""Big synthetic interaction graphs for scaling runs: power-law degrees, planted preferences.

:func:`make_synthetic` (the demo's data) builds a dense users x items score matrix, fine for
thousands of users but not for millions. :func:`make_synthetic_graph` draws the interactions
themselves, vectorised (no Python loop over users or edges), so 10^6-5·10^7 interactions take
seconds to a minute and memory linear in the number of interactions:

- user activity and item popularity follow power laws: weights ``w = (1 - U)^(-1/a)`` (Pareto
  with tail index ``a``; smaller ``a`` = heavier tail), as in real implicit-feedback data;
- every user and item belongs to one of ``n_clusters`` planted taste groups; each interaction of
  a user picks an item of the user's own group with probability ``p_in_cluster`` (weighted by
  popularity within the group) and otherwise any item (weighted by popularity), so a model that
  recovers the groups beats popularity (the known answer);
- duplicate (user, item) draws collapse into one positive; up to four rounds of fresh draws top
  the graph up toward ``n_interactions`` positives (the heaviest users can saturate their group,
  so ``nnz`` may stay a little below; it is logged).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.data.interactions import Interactions

logger = logging.getLogger(__name__)


def _pareto_weights(rng: np.random.Generator, n: int, a: float) -> np.ndarray:
    return (1.0 - rng.random(n)) ** (-1.0 / a)


def make_synthetic_graph(n_interactions: int = 1_000_000, *, n_users: int | None = None,
                         n_items: int | None = None, n_clusters: int = 16, user_tail: float = 1.5,
                         item_tail: float = 1.2, p_in_cluster: float = 0.7,
                         random_state: int | np.random.Generator | None = 0,
                         return_clusters: bool = False):
    """Draw an implicit-feedback graph of about ``n_interactions`` positives.

    Parameters
    ----------
    n_interactions : int
        Interactions drawn (before duplicates collapse).
    n_users, n_items : int or None
        Sizes; default ``n_interactions // 50`` users and ``n_interactions // 100`` items (at least
        ``2 * n_clusters`` each), a yelp2018-like density.
    n_clusters : int
        Planted taste groups.
    user_tail, item_tail : float
        Pareto tail indices of user activity and item popularity (> 0).
    p_in_cluster : float
        Probability that an interaction stays inside the user's group, in [0, 1].
    random_state : int, Generator or None
    return_clusters : bool
        Also return the planted groups.

    Returns
    -------
    Interactions
        Binary ``user_items`` (n_users, n_items), vocabularies ``0..n-1``, ``name="synthetic-graph"``.
    user_cluster, item_cluster : np.ndarray of int64, shapes (n_users,), (n_items,)
        Only with ``return_clusters=True``.
    """
    if n_interactions < 1:
        raise ValueError(f"n_interactions must be >= 1, got {n_interactions}")
    if not 0.0 <= p_in_cluster <= 1.0:
        raise ValueError(f"p_in_cluster must be in [0, 1], got {p_in_cluster}")
    if user_tail <= 0 or item_tail <= 0:
        raise ValueError("user_tail and item_tail must be > 0")
    rng = check_random_state(random_state)
    n_users = int(n_users or max(n_interactions // 50, 2 * n_clusters))
    n_items = int(n_items or max(n_interactions // 100, 2 * n_clusters))
    user_cluster = rng.integers(0, n_clusters, n_users)
    item_cluster = rng.integers(0, n_clusters, n_items)

    cu = np.cumsum(_pareto_weights(rng, n_users, user_tail))
    # items sorted by group: one cumulative popularity array; a group is a contiguous segment of it
    order = np.argsort(item_cluster, kind="stable")
    ci = np.cumsum(_pareto_weights(rng, n_items, item_tail)[order])
    seg_end = np.searchsorted(item_cluster[order], np.arange(n_clusters), side="right")
    seg_start = np.concatenate([[0], seg_end[:-1]])
    lo = np.where(seg_start > 0, ci[np.maximum(seg_start - 1, 0)], 0.0)
    hi = np.where(seg_end > 0, ci[np.maximum(seg_end - 1, 0)], 0.0)

    def draw(m: int) -> np.ndarray:
        """``m`` (user, item) draws as sorted unique keys ``user * n_items + item``."""
        users = np.minimum(np.searchsorted(cu, rng.random(m) * cu[-1], side="right"), n_users - 1)
        inside = rng.random(m) < p_in_cluster
        g = user_cluster[users]
        u01 = rng.random(m)
        target = np.where(inside, lo[g] + u01 * (hi[g] - lo[g]), u01 * ci[-1])
        empty = inside & (hi[g] <= lo[g])  # a group without items: the whole catalogue instead
        target[empty] = u01[empty] * ci[-1]
        items = order[np.minimum(np.searchsorted(ci, target, side="right"), n_items - 1)]
        return np.unique(users.astype(np.int64) * np.int64(n_items) + items)

    # duplicates collapse; top up with fresh draws (a few rounds) toward n_interactions positives
    keys = draw(n_interactions)
    for _ in range(4):
        missing = n_interactions - len(keys)
        if missing <= 0.01 * n_interactions:
            break
        keys = np.union1d(keys, draw(missing))
    rows, cols = np.divmod(keys, np.int64(n_items))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_users))]).astype(np.int64)
    ui = sp.csr_matrix((np.ones(len(keys), np.float32), cols.astype(np.int32), indptr), shape=(n_users, n_items))
    logger.info("synthetic graph: %d users x %d items, %d positives (%d draws)", n_users, n_items, ui.nnz,
                n_interactions)
    data = Interactions.from_csr(ui, name="synthetic-graph")
    if return_clusters:
        return data, user_cluster.astype(np.int64), item_cluster.astype(np.int64)
    return data
