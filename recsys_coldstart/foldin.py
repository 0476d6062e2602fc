"""Every new-user path in one place: how a model embeds a user it did not see at fit time.

Fold-in modes, by model family (each family validates its config's ``fold_in`` against its
own tuple; the names mean the same thing in both):

- graph models (:mod:`recsys_coldstart.pretrain`, :data:`GRAPH_FOLD_IN_MODES`):
  ``"ridge"`` (default, the learned fold-in below), ``"graph"`` (the new users are appended to the
  training graph and propagated), ``"local"`` (only the new user's own aggregation uses the new
  edges);
- tower models (:mod:`recsys_coldstart.towers`, :mod:`recsys_coldstart.distill`,
  :mod:`recsys_coldstart.coldstart`, :data:`TOWER_FOLD_IN_MODES`): ``"tower"`` (the user tower
  embeds the revealed items and features) or ``"ridge"`` (the learned fold-in below);
  :func:`fold_in_for` picks one per split kind;
- ALS / BPR (:mod:`recsys_coldstart.baselines.implicit_mf`): the closed-form weighted ridge
  against the fixed item factors, :func:`ridge_fold_in` (no mode to choose).

The learned (amortised) fold-in: a ridge regression fitted on simulated warm reveals.

A graph model's propagation fold-in (mean of the revealed items' layer-0 embeddings pushed
through the graph with the new edges) ignores the new user's side features and is calibrated
for nobody: on ml-100k user-cold (K=3) it scores far below feature-conditioned popularity. This
module learns the map from what a new user gives us to a user vector, from the warm users:

.. math::

    x_u = [\\, f_u,\\ \\tfrac{1}{|O_u|} \\textstyle\\sum_{i \\in O_u} v_i,\\ 1 \\,] , \\qquad
    \\hat e_u = x_u^\\top W, \\qquad
    W = \\arg\\min_W \\sum_{u\\ \\mathrm{warm}} \\lVert e_u - x_u^\\top W \\rVert^2 + \\lambda \\lVert W_{\\setminus 1} \\rVert^2

where ``f_u`` are the user's side features, ``O_u`` the items they revealed, ``v_i`` the model's
final item vectors (``item_factors_``), ``e_u`` a warm user's final vector (``user_factors_``)
and the intercept is not penalised. The regression is fitted on *simulated* reveals: each warm
user reveals their ``k`` earliest training positives (by timestamp, random when there are no
timestamps), the way :func:`~recsys_coldstart.data.user_cold_split` picks a cold user's support
set, so the map learns what a first-``k`` reveal says about a user (including how much weight
to give to population popularity, which the mean warm vector already carries, versus the
revealed items). This is the linear special case of amortised/meta-learned fold-in (e.g.
DropoutNet, Volkovs et al. NeurIPS 2017, trains its user transform on warm users with their
preference input dropped) and the feature part is the elicitation prior of
:mod:`recsys_coldstart.elicit.state` (ridge from features to warm user vectors).

Missing inputs of a new user (no features given, or nothing revealed) are imputed with their
mean over the simulated warm users, so the map degrades to the feature prior / the revealed
items alone.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state

GRAPH_FOLD_IN_MODES: tuple[str, ...] = ("ridge", "graph", "local")
"""``fold_in`` values of the graph models (``"ridge"`` is their default)."""

TOWER_FOLD_IN_MODES: tuple[str, ...] = ("tower", "ridge")
"""``fold_in`` values of the tower models (teacher, student, DropoutNet, Heater, ALDI)."""


def fold_in_for(split_kind: str) -> str:
    """The tower models' new-user path suited to a split kind.

    ``"ridge"`` on ``user-cold`` (new users reveal a few items; better than the towers on ml-100k,
    ``benchmarks/results/distill_coldstart_foldin.md``), ``"tower"`` otherwise (users are warm:
    their towers embed them from their whole history).

    Parameters
    ----------
    split_kind : str
        ``ColdStartSplit.kind``.

    Returns
    -------
    str
        One of :data:`TOWER_FOLD_IN_MODES`.
    """
    return "ridge" if split_kind == "user-cold" else "tower"


def first_k_positives(user_items: sp.csr_matrix, timestamps: sp.csr_matrix | None, k: int,
                      rows: np.ndarray, random_state=None) -> sp.csr_matrix:
    """Each selected row's ``k`` earliest positives (all of them when it has fewer).

    Parameters
    ----------
    user_items : scipy CSR, shape (n_users, n_items)
        Binary training positives.
    timestamps : scipy CSR, shape (n_users, n_items), optional
        Interaction times aligned with ``user_items``; without them the ``k`` items are random.
    k : int
        Items revealed per user (>= 1).
    rows : np.ndarray of int64, shape (b,)
        Users to simulate.
    random_state : int, Generator or None
        Breaks timestamp ties and draws the items when there are no timestamps.

    Returns
    -------
    scipy CSR of float32, shape (b, n_items)
        Binary revealed positives of the selected users, in the order of ``rows``.
    """
    rng = check_random_state(random_state)
    sub = sp.csr_matrix(user_items[rows], dtype=np.float32)
    sub.eliminate_zeros()
    sub.sort_indices()
    row_of = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    tie = rng.random(sub.nnz)
    if timestamps is not None:
        ts = sp.csr_matrix(timestamps[rows])
        t = np.asarray(ts[row_of, sub.indices]).ravel().astype(np.float64)
    else:
        t = np.zeros(sub.nnz)
    order = np.lexsort((tie, t, row_of))  # by row, then time, then random tie-break
    rank = np.empty(sub.nnz, np.int64)
    rank[order] = np.arange(sub.nnz) - np.repeat(sub.indptr[:-1], np.diff(sub.indptr))
    keep = rank < k
    return sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (row_of[keep], sub.indices[keep])),
                         shape=sub.shape)


def fold_in_design(observed: sp.csr_matrix, features: np.ndarray | sp.spmatrix | None,
                   item_factors: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Regressors ``[f_u, mean of revealed item vectors, 1]`` of a batch of users.

    Parameters
    ----------
    observed : scipy CSR, shape (b, n_items)
        Binary revealed positives.
    features : np.ndarray or scipy sparse, shape (b, d_user), optional
        Side features (None: imputed from ``fill``).
    item_factors : np.ndarray of float32, shape (n_items, d)
    fill : np.ndarray, shape (d_user + d,)
        Imputation of missing blocks (the warm design's column means).

    Returns
    -------
    np.ndarray of float64, shape (b, d_user + d + 1)
    """
    b = observed.shape[0]
    d = item_factors.shape[1]
    d_user = len(fill) - d
    if features is None or d_user == 0:
        f = np.broadcast_to(fill[:d_user], (b, d_user))
    else:
        f = features.toarray() if sp.issparse(features) else np.asarray(features)
        if f.shape != (b, d_user):
            raise ValueError(f"features have shape {f.shape}, expected {(b, d_user)}")
    deg = np.diff(observed.indptr).astype(np.float64)
    items = np.asarray(observed @ item_factors.astype(np.float64)) / np.maximum(deg, 1.0)[:, None]
    items[deg == 0] = fill[d_user:]
    return np.hstack([np.asarray(f, np.float64), items, np.ones((b, 1))])


def fit_fold_in(user_items: sp.csr_matrix, timestamps: sp.csr_matrix | None,
                user_features: np.ndarray | sp.spmatrix | None, user_factors: np.ndarray,
                item_factors: np.ndarray, *, k: int = 3, ridge: float = 10.0,
                random_state=None) -> tuple[np.ndarray, np.ndarray]:
    """Fit the fold-in regression ``W`` on the warm users' simulated first-``k`` reveals.

    Parameters
    ----------
    user_items : scipy CSR, shape (n_users, n_items)
        Training positives (users with an empty row are cold and skipped).
    timestamps : scipy CSR, shape (n_users, n_items), optional
    user_features : np.ndarray or scipy sparse, shape (n_users, d_user), optional
    user_factors : np.ndarray, shape (n_users, d)
        Regression targets ``e_u`` (the model's final user vectors).
    item_factors : np.ndarray, shape (n_items, d)
    k : int
        Simulated reveal size (match the new users' expected number of revealed items).
    ridge : float
        ``lambda`` (the intercept is not penalised).
    random_state : int, Generator or None

    Returns
    -------
    coef : np.ndarray of float32, shape (d_user + d + 1, d)
        ``W``; a new user's vector is ``fold_in_design(...) @ W``.
    fill : np.ndarray of float32, shape (d_user + d,)
        Column means of the warm design, used to impute missing inputs.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ui = sp.csr_matrix(user_items)
    warm = np.flatnonzero(np.diff(ui.indptr) > 0)
    obs = first_k_positives(ui, timestamps, k, warm, random_state)
    d = item_factors.shape[1]
    d_user = 0 if user_features is None else int(user_features.shape[1])
    f = None if d_user == 0 else user_features[warm]
    x = fold_in_design(obs, f, item_factors, np.zeros(d_user + d))
    y = np.asarray(user_factors, np.float64)[warm]
    pen = np.full(x.shape[1], float(ridge))
    pen[-1] = 0.0
    coef = np.linalg.solve(x.T @ x + np.diag(pen), x.T @ y)
    return coef.astype(np.float32), x[:, :-1].mean(axis=0).astype(np.float32)


def apply_fold_in(observed: sp.csr_matrix, features: np.ndarray | sp.spmatrix | None, item_factors: np.ndarray,
                  coef: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """New users' vectors ``fold_in_design(observed, features) @ coef``.

    Parameters
    ----------
    observed : scipy CSR, shape (b, n_items)
    features : np.ndarray or scipy sparse, shape (b, d_user), optional
    item_factors : np.ndarray, shape (n_items, d)
    coef : np.ndarray, shape (d_user + d + 1, d)
    fill : np.ndarray, shape (d_user + d,)

    Returns
    -------
    np.ndarray of float32, shape (b, d)
    """
    x = fold_in_design(observed, features, item_factors, np.asarray(fill, np.float64))
    return (x @ np.asarray(coef, np.float64)).astype(np.float32)


def ridge_fold_in(observed: sp.csr_matrix, item_factors: np.ndarray, *, alpha: float, regularization: float,
                  gram: np.ndarray | None = None, prior: np.ndarray | None = None, prior_weight: float = 0.0,
                  max_floats: int = 1 << 25) -> np.ndarray:
    """Closed-form implicit-feedback user vectors for fixed item factors (Hu, Koren & Volinsky 2008).

    Solves, for every row ``u`` of ``observed``,

    ``x_u = argmin_x  sum_i c_ui (p_ui - x . y_i)^2 + lambda ||x||^2``

    with ``p_ui = 1`` for observed items (0 otherwise) and confidence ``c_ui = 1 + alpha`` for
    observed items (1 otherwise), i.e. ``x_u = (Y^T Y + alpha Y_u^T Y_u + lambda I)^{-1} (1 + alpha) Y_u^T 1``.
    With ``prior_weight = beta > 0`` the penalty ``beta ||x - mu||^2`` toward a prior vector ``mu``
    (e.g. the mean train user) is added: ``A += beta I``, ``b += beta mu``, which pulls a user
    who revealed little toward the population (popularity-like) vector.
    Batched: one ``(b, d, d)`` system solve; the per-user Gram terms are accumulated in chunks
    of at most ``max_floats`` floats. Empty rows give the zero vector (callers substitute a prior).

    Parameters
    ----------
    observed : scipy CSR of float32, shape (b, n_items)
        Binary revealed positives.
    item_factors : np.ndarray of float32, shape (n_items, d)
    alpha : float
        Confidence weight of a positive.
    regularization : float
        ``lambda``.
    gram : np.ndarray, shape (d, d), optional
        Precomputed ``Y^T Y``.
    prior : np.ndarray, shape (d,), optional
        ``mu``; required when ``prior_weight > 0``.
    prior_weight : float
        ``beta``.
    max_floats : int
        Memory bound for the per-interaction outer products.

    Returns
    -------
    np.ndarray of float32, shape (b, d)
    """
    y = np.asarray(item_factors, dtype=np.float64)
    b, d = observed.shape[0], y.shape[1]
    if gram is None:
        gram = y.T @ y
    base = gram + (regularization + prior_weight) * np.eye(d)
    out = np.zeros((b, d), np.float32)
    deg = np.diff(observed.indptr)
    rows = np.flatnonzero(deg > 0)
    if len(rows) == 0:
        return out
    # right-hand side: (1 + alpha) * sum of observed item vectors
    rhs = (1.0 + alpha) * (observed[rows] @ y)
    if prior_weight > 0:
        rhs = rhs + prior_weight * np.asarray(prior, np.float64)[None, :]
    a = np.broadcast_to(base, (len(rows), d, d)).copy()
    # accumulate alpha * Y_u^T Y_u per user in chunks of users so nnz * d * d stays bounded
    sub = observed[rows]
    per_user = max(1, d * d)
    start = 0
    while start < len(rows):
        stop = start + 1
        budget = max_floats // per_user
        cum = sub.indptr[start]
        while stop < len(rows) and sub.indptr[stop + 1] - cum <= budget:
            stop += 1
        lo, hi = sub.indptr[start], sub.indptr[stop]
        yy = y[sub.indices[lo:hi]]
        outer = yy[:, :, None] * yy[:, None, :]
        seg = sub.indptr[start:stop] - lo
        a[start:stop] += alpha * np.add.reduceat(outer, seg, axis=0)
        start = stop
    out[rows] = np.linalg.solve(a, rhs[:, :, None])[:, :, 0].astype(np.float32)
    return out
