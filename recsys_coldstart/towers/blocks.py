"""Tower building blocks shared by the two-tower teacher, the student and the cold-start models.

A *tower* maps several input blocks of one entity (an ID / preference vector, side features,
a bag of the items a user interacted with, ...) to one embedding::

    h_0 = act(sum_j x_j W_j + b_0)          # one weight matrix per input block (dense or sparse x_j)
    h_l = act(h_{l-1} W_l + b_l)            # hidden layers
    e   = h_L W_out + b_out  (+ x_id if residual)

Summing per-block products equals one linear layer over the concatenation ``[x_1; ...; x_J]``
but lets a block be a torch sparse matrix (tf-idf bags) without densifying it, and lets a block
be missing (``None`` = all zeros, the DropoutNet cold path).

Length: the tower layers and the closed-form content map shared by the five tower models;
ContentMap (ridge + k-NN attribute maps, with its history helpers) is the split candidate
(towers/content.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_coldstart.data.features import SideFeatures, clipped_idf, smooth_idf
from recsys_coldstart.sparse import binary_csr, l2_normalize_rows


class Tower(nn.Module):
    """An MLP over several (dense or sparse) input blocks.

    Parameters
    ----------
    in_dims : sequence of int
        Width of each input block; blocks of width 0 are skipped.
    hidden : sequence of int
        Hidden layer widths (``()`` = one linear map from the inputs to the output).
    out_dim : int
        Output embedding width ``d``.
    residual_block : int or None
        Index of an input block of width ``out_dim`` added to the output (``e = x_r + MLP(x)``),
        so a pretrained ID vector passes straight through and the MLP learns a correction.
    dropout : float
        Dropout on hidden activations during training.
    """

    def __init__(self, in_dims: Sequence[int], hidden: Sequence[int], out_dim: int, *,
                 residual_block: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_dims = [int(d) for d in in_dims]
        widths = [int(h) for h in hidden] + [int(out_dim)]
        first = widths[0]
        self.inputs = nn.ParameterList()
        for d in self.in_dims:
            w = nn.Parameter(torch.empty(max(d, 0), first))
            if d > 0:
                nn.init.kaiming_uniform_(w.T, a=5 ** 0.5)
            self.inputs.append(w)
        self.bias0 = nn.Parameter(torch.zeros(first))
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ReLU(), nn.Dropout(dropout) if dropout > 0 else nn.Identity(), nn.Linear(a, b)]
        self.mlp = nn.Sequential(*layers)
        if residual_block is not None and self.in_dims[residual_block] != out_dim:
            raise ValueError("the residual block must have width out_dim")
        self.residual_block = residual_block
        self.out_dim = int(out_dim)

    def zero_output_layer(self) -> None:
        """Zero the last linear map (the MLP's output layer, or the input map when there are no
        hidden layers), so the tower starts by outputting zero (plus its residual block): a model
        adding the tower to a closed-form estimate starts at that estimate."""
        with torch.no_grad():
            if len(self.mlp):
                self.mlp[-1].weight.zero_()
                self.mlp[-1].bias.zero_()
            else:
                for w in self.inputs:
                    w.zero_()
                self.bias0.zero_()

    def forward(self, blocks: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Embed a batch.

        Parameters
        ----------
        blocks : sequence of torch.Tensor or None
            One per input block, each (b, in_dims[j]) dense or sparse COO; None = zeros.

        Returns
        -------
        torch.Tensor of float32, shape (b, out_dim)
        """
        h = None
        for x, w, d in zip(blocks, self.inputs, self.in_dims, strict=True):
            if x is None or d == 0:
                continue
            part = torch.sparse.mm(x, w) if x.is_sparse else x @ w
            h = part if h is None else h + part
        if h is None:
            raise ValueError("a tower needs at least one non-empty input block")
        return self.head(h, blocks)

    def head(self, h: torch.Tensor, blocks: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """The tower after its first (block-wise linear) map: ``mlp(h + bias0)`` (+ residual).

        Parameters
        ----------
        h : torch.Tensor, shape (b, first hidden width)
            ``sum_j x_j @ inputs[j]``; callers that can compute it more cheaply (e.g. a bag of
            rows whose projections are precomputed) call this directly.
        blocks : sequence of torch.Tensor or None, optional
            The input blocks, only read for the residual block.

        Returns
        -------
        torch.Tensor of float32, shape (b, out_dim)
        """
        out = self.mlp(h + self.bias0)
        if self.residual_block is not None and blocks is not None:
            r = blocks[self.residual_block]
            if r is not None:
                out = out + (r.to_dense() if r.is_sparse else r)
        return out


def n_parameters(*modules: nn.Module | None) -> int:
    """Total number of scalar parameters of ``modules`` (None entries are skipped)."""
    return int(sum(p.numel() for m in modules if m is not None for p in m.parameters()))


def feature_scale(features: SideFeatures | None) -> np.ndarray | None:
    """Per-column ``1 / max|x|`` (1 for all-zero columns), float32 of shape (n_features,).

    Keeps raw numeric columns (ages, counts) on the same scale as one-hot and tf-idf columns.
    """
    if features is None:
        return None
    v = features.values
    m = np.asarray(abs(v).max(axis=0).todense()).ravel() if sp.issparse(v) else np.abs(v).max(axis=0)
    m = np.where(m > 0, m, 1.0)
    return (1.0 / m).astype(np.float32)


def scaled(x: np.ndarray | sp.spmatrix | None, scale: np.ndarray | None) -> np.ndarray | sp.csr_matrix | None:
    """``x * scale`` column-wise, keeping sparse input sparse; None passes through."""
    if x is None:
        return None
    if scale is None:
        return x
    if sp.issparse(x):
        return sp.csr_matrix(x, dtype=np.float32) @ sp.diags(scale.astype(np.float32))
    return np.asarray(x, np.float32) * scale[None, :]


def to_torch(x: np.ndarray | sp.spmatrix | None, device: torch.device) -> torch.Tensor | None:
    """A numpy array (dense) or scipy matrix (sparse COO) as a float32 tensor on ``device``."""
    if x is None:
        return None
    if sp.issparse(x):
        c = sp.coo_matrix(x, dtype=np.float32)
        idx = torch.from_numpy(np.vstack([c.row, c.col]).astype(np.int64))
        return torch.sparse_coo_tensor(idx, torch.from_numpy(c.data), c.shape, device=device,
                                       check_invariants=False).coalesce()
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)


def row_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (empty rows stay empty): the *mean* over a bag, shape kept."""
    m = sp.csr_matrix(m, dtype=np.float32)
    s = np.asarray(m.sum(axis=1)).ravel()
    inv = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0).astype(np.float32)
    return sp.diags(inv) @ m


def drop_entries(rows: sp.csr_matrix, cols: np.ndarray | None, keep_prob: np.ndarray | None,
                 rng: np.random.Generator) -> sp.csr_matrix:
    """Training-time view of bags: remove each row's target column and randomly thin the rest.

    Parameters
    ----------
    rows : scipy CSR, shape (b, n)
        One bag (e.g. a user's train items) per row.
    cols : np.ndarray of int64, shape (b,), optional
        The column predicted for each row; removed so a bag never contains its own label.
    keep_prob : np.ndarray of float, shape (b,), optional
        Per-row probability of keeping each remaining entry (simulates few-shot users).
    rng : numpy Generator
    """
    m = sp.csr_matrix(rows, dtype=np.float32, copy=True)
    row_of = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keep = np.ones(m.nnz, bool)
    if cols is not None:
        keep &= m.indices != np.asarray(cols)[row_of]
    if keep_prob is not None:
        keep &= rng.random(m.nnz) < np.asarray(keep_prob)[row_of]
    m.data = np.where(keep, m.data, 0).astype(np.float32)
    m.eliminate_zeros()
    return m


def few_shot_keep_prob(keep_prob: np.ndarray, degrees: np.ndarray, prob: float, k_max: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Per-row keep probabilities for :func:`drop_entries` with few-shot thinning.

    With probability ``prob`` a row keeps about ``k`` of its ``degrees`` entries, ``k`` uniform
    in ``1..k_max`` (what a cold user / item with a few revealed interactions looks like);
    otherwise its ``keep_prob`` is unchanged.

    Parameters
    ----------
    keep_prob : np.ndarray of float, shape (b,)
    degrees : np.ndarray of int, shape (b,)
        Number of entries of each row.
    prob : float
    k_max : int
    rng : numpy Generator

    Returns
    -------
    np.ndarray of float, shape (b,)
    """
    if prob <= 0:
        return keep_prob
    b = len(keep_prob)
    k = rng.integers(1, k_max + 1, b)
    return np.where(rng.random(b) < prob, np.minimum(k / np.maximum(degrees, 1), 1.0), keep_prob)


def principal_basis(vectors: np.ndarray, dim: int) -> np.ndarray:
    """A (d0, dim) map onto the top-``dim`` principal directions of ``vectors`` (n, d0).

    The right singular vectors of the centred rows; when ``dim >= d0`` the identity padded with
    zero columns, which keeps every dot product of the vectors. In the vectors' float dtype.
    """
    v = np.asarray(vectors)
    v = v if np.issubdtype(v.dtype, np.floating) else v.astype(np.float64)
    d0 = v.shape[1]
    if dim >= d0:
        return np.eye(d0, dim, dtype=v.dtype)
    _, _, vt = np.linalg.svd(v - v.mean(0), full_matrices=False)
    return vt[:dim].T


def fit_dim(vectors: np.ndarray, dim: int, rng: np.random.Generator, pad_noise: float = 0.01) -> np.ndarray:
    """Bring pretrained vectors (n, d0) to width ``dim`` and unit mean row norm.

    ``d0 > dim``: projection on the top-``dim`` principal directions (SVD); ``d0 < dim``: the
    vectors fill the first ``d0`` columns and the rest get noise of relative size ``pad_noise``
    (so the extra dimensions can learn; 0 pads with zeros, which keeps every dot product, hence
    every ranking, of the pretrained vectors). Returns float32 (n, dim).
    """
    v = np.asarray(vectors, np.float32)
    n, d0 = v.shape
    if d0 > dim:
        v = v @ principal_basis(v, dim)
    elif d0 < dim:
        norm = float(np.linalg.norm(v, axis=1).mean()) or 1.0
        pad = (rng.normal(0, pad_noise * norm / np.sqrt(dim), (n, dim - d0)) if pad_noise > 0
               else np.zeros((n, dim - d0))).astype(np.float32)
        v = np.hstack([v, pad])
    norm = float(np.linalg.norm(v, axis=1).mean())
    return (v / (norm if norm > 0 else 1.0)).astype(np.float32)


def ridge_map(features: np.ndarray | sp.spmatrix, targets: np.ndarray, ridge: float = 1.0) -> np.ndarray:
    """Closed-form linear map from side features to pretrained vectors (ridge regression).

    ``W = argmin ||X W - T||^2 + ridge * ||W||^2``, solved in the primal
    ``(X^T X + ridge I)^{-1} X^T T`` when ``X`` has no more columns than rows, else in the dual
    ``X^T (X X^T + ridge I)^{-1} T``; either way one dense ``min(n, d)``-square system. This is the
    attribute-to-feature mapping of Gantner, Drumond, Freudenthaler, Rendle & Schmidt-Thieme,
    "Learning Attribute-to-Feature Mappings for Cold-Start Recommendations", ICDM 2010, and the
    linear half of :class:`ContentMap`.

    Parameters
    ----------
    features : np.ndarray or scipy sparse, shape (n, d)
        Side features of the rows with a pretrained vector (warm rows), as the tower sees them.
    targets : np.ndarray, shape (n, k)
        Their pretrained vectors.
    ridge : float
        L2 strength (> 0).

    Returns
    -------
    np.ndarray of float32, shape (d, k)
    """
    if ridge <= 0:
        raise ValueError(f"ridge must be > 0, got {ridge}")
    x = sp.csr_matrix(features, dtype=np.float64) if sp.issparse(features) else np.asarray(features, np.float64)
    t = np.asarray(targets, np.float64)
    if x.shape[0] != t.shape[0]:
        raise ValueError(f"features have {x.shape[0]} rows, targets {t.shape[0]}")
    primal = x.shape[1] <= x.shape[0]
    g = x.T @ x if primal else x @ x.T
    g = g.toarray() if sp.issparse(g) else np.array(g)
    g[np.diag_indices_from(g)] += ridge
    w = np.linalg.solve(g, x.T @ t) if primal else x.T @ np.linalg.solve(g, t)
    return np.asarray(w, np.float32)


def score_directions(user_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """Directions of the item space ordered by how much of the scores ``U V^T`` they carry, float64
    (d0, d0): the first ``dim`` columns ``P`` keep the best rank-``dim`` approximation of the scores
    (Eckart & Young 1936) as items ``V P``.

    With ``C = U^T U / m`` the users' second moment, ``U V^T = (U C^{-1/2}) (V C^{1/2})^T`` and the
    users' factor has orthogonal columns, so the best rank-``dim`` approximation keeps the top-``dim``
    right singular vectors ``Q`` of ``V C^{1/2}``: items ``V P`` with ``P = C^{1/2} Q``, users
    ``U C^{-1/2} Q`` (which a least-squares fold-in over ``V P`` recovers). Unlike the items' own
    principal directions (:func:`principal_basis`) it weighs each direction by how much the users
    use it.

    Parameters
    ----------
    user_vectors : np.ndarray, shape (m, d0)
        The users whose scores matter (e.g. the warm users).
    item_vectors : np.ndarray, shape (n, d0)
        The items that span the layout (e.g. the warm items).

    Returns
    -------
    np.ndarray of float64, shape (d0, d0)
    """
    v = np.asarray(item_vectors, np.float64)
    u = np.asarray(user_vectors, np.float64)
    if u.shape[1] != v.shape[1]:
        raise ValueError(f"user vectors are {u.shape[1]} wide, item vectors {v.shape[1]}")
    w, q = np.linalg.eigh(u.T @ u / max(len(u), 1))
    w = np.clip(w, max(float(w.max()), 1.0) * 1e-12, None)
    half = (q * np.sqrt(w)) @ q.T
    _, _, vt = np.linalg.svd(v @ half, full_matrices=False)
    return half @ vt.T


def score_basis(user_vectors: np.ndarray, item_vectors: np.ndarray, dim: int,
                directions: np.ndarray | None = None) -> np.ndarray:
    """A (d0, dim) map ``P`` of item vectors (n, d0) to width ``dim`` that keeps the best rank-``dim``
    approximation of the scores ``U V^T``: the first ``dim`` of :func:`score_directions`; when
    ``dim >= d0`` the identity padded with zero columns (every score kept). float64.

    Parameters
    ----------
    user_vectors : np.ndarray, shape (m, d0)
    item_vectors : np.ndarray, shape (n, d0)
    dim : int
    directions : np.ndarray, shape (d0, d0), optional
        :func:`score_directions` of the same vectors, when already computed (several widths).

    Returns
    -------
    np.ndarray of float64, shape (d0, dim)
    """
    d0 = np.shape(item_vectors)[1]
    if dim >= d0:
        return np.eye(d0, dim)
    return (score_directions(user_vectors, item_vectors) if directions is None else directions)[:, :dim]


def fold_in_inverse(item_vectors: np.ndarray, prior: float = 0.1) -> np.ndarray:
    """The ALS user step's inverse ``A = (E^T E + r I)^{-1}``, ``r = prior * tr(E^T E) / p``, over
    item vectors ``E`` (n, p) (Hu, Koren & Volinsky, ICDM 2008): a user with history ``H`` is
    ``A mean_{j in H} e_j``, linear in the history bag, so it needs no per-user parameter and
    embeds a new user as a warm one. float64 (p, p), symmetric; ``prior`` > 0."""
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}")
    e = np.asarray(item_vectors, np.float64)
    gram = e.T @ e
    gram[np.diag_indices_from(gram)] += prior * max(float(np.trace(gram)) / max(e.shape[1], 1), 1e-12)
    return np.linalg.inv(gram)


class ContentMap:
    """Closed-form map from side features to pretrained vectors, fitted on the warm rows.

    The blend of the two attribute-to-feature mappings of Gantner, Drumond, Freudenthaler,
    Rendle & Schmidt-Thieme ("Learning Attribute-to-Feature Mappings for Cold-Start
    Recommendations", ICDM 2010):

    - linear: ``x W`` with ``W`` the ridge regression of the warm vectors on the features
      (:func:`ridge_map`);
    - k-nearest-neighbour: the similarity-weighted mean of the vectors of the ``n_neighbors``
      warm rows whose idf-weighted features are most cosine-similar to ``x`` (sparse features,
      bags of tags or words, are compared as sets: binarised before the idf weighting; on
      CiteULike-a's tags this beats their values, test NDCG@20 0.297 vs 0.294 raw / 0.286 scaled);

    ``estimate = blend * knn + (1 - blend) * linear`` (linear alone for a row with no similar warm
    row). Which blend suits depends on the features (on ml-100k's genres the k-NN part hurts, on
    CiteULike's tags it helps), so the models choose it on validation data
    (:meth:`select_blend`). The cold-start models start from this map (``content_init="map"``).

    Attributes
    ----------
    weight : np.ndarray of float32, shape (d, p)
    idf : np.ndarray of float32, shape (d,)
    warm_features : scipy CSR of float32, shape (n_warm, d)
        The warm rows' idf-weighted, L2-normalised features (binarised first when ``binary``).
    warm_targets : np.ndarray of float32, shape (n_warm, p)
    n_neighbors : int
    blend : float
    binary : bool
    """

    _PARTS = ("weight", "idf", "warm_features", "warm_targets", "n_neighbors", "blend", "binary",
              "hist_features", "hist_targets", "hist_idf", "hist_neighbors", "hist_weight")

    def __init__(self, weight: np.ndarray, idf: np.ndarray, warm_features: sp.csr_matrix,
                 warm_targets: np.ndarray, n_neighbors: int = 20, blend: float = 0.5, binary: bool = False,
                 hist_features: sp.csr_matrix | None = None, hist_targets: np.ndarray | None = None,
                 hist_idf: np.ndarray | None = None, hist_neighbors: int = 50, hist_weight: float = 0.0) -> None:
        self.weight = np.asarray(weight, np.float32)
        self.idf = np.asarray(idf, np.float32)
        self.warm_features = sp.csr_matrix(warm_features, dtype=np.float32)
        self.warm_targets = np.asarray(warm_targets, np.float32)
        self.n_neighbors = int(n_neighbors)
        self.blend = float(blend)
        self.binary = bool(binary)
        p = self.warm_targets.shape[1]
        self.hist_features = sp.csr_matrix((0, self.idf.shape[0]), dtype=np.float32) if hist_features is None \
            else sp.csr_matrix(hist_features, dtype=np.float32)
        self.hist_targets = np.zeros((0, p), np.float32) if hist_targets is None else np.asarray(hist_targets, np.float32)
        self.hist_idf = np.ones(self.idf.shape[0], np.float32) if hist_idf is None else np.asarray(hist_idf, np.float32)
        self.hist_neighbors = int(hist_neighbors)
        self.hist_weight = float(hist_weight)

    @classmethod
    def fit(cls, features: np.ndarray | sp.spmatrix, targets: np.ndarray, ridge: float = 5.0,
            n_neighbors: int = 20, blend: float = 0.5, binary: bool | None = None) -> ContentMap:
        """Fit on the warm rows' ``features`` (n, d) and their vectors ``targets`` (n, p);
        ``binary=None``: binarise for the k-NN similarity iff ``features`` is sparse."""
        binary = sp.issparse(features) if binary is None else binary
        x = sp.csr_matrix(features, dtype=np.float32)
        idf = smooth_idf(x, np.float32)
        return cls(ridge_map(x, targets, ridge), idf, cls._normalised(x, idf, binary), targets, n_neighbors,
                   blend, binary)

    @staticmethod
    def _normalised(x: sp.spmatrix, idf: np.ndarray, binary: bool) -> sp.csr_matrix:
        """Rows of ``x`` (binarised first when ``binary``) idf-weighted and L2-normalised, CSR."""
        m = binary_csr(x) if binary else sp.csr_matrix(x, dtype=np.float32)
        return l2_normalize_rows(m @ sp.diags(idf))

    def parts(self, features: np.ndarray | sp.spmatrix, self_index: np.ndarray | None = None,
              batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The linear and the k-NN estimates, each float32 (b, p); the k-NN one equals the linear
        one for rows without a similar warm row.

        Parameters
        ----------
        features : np.ndarray or scipy sparse, shape (b, d)
        self_index : np.ndarray of int64, shape (b,), optional
            For rows that are themselves warm rows (training), their index among the warm rows
            (-1 otherwise): excluded from their own neighbours (leave-one-out), so a training row
            sees the map as a cold row will.
        batch_size : int
        """
        x = sp.csr_matrix(features, dtype=np.float32)
        lin = np.asarray(x @ self.weight, np.float32)
        knn = lin.copy()
        if self.n_neighbors <= 0 or self.warm_features.shape[0] == 0:
            return lin, knn
        xn = self._normalised(x, self.idf, self.binary)
        k = min(self.n_neighbors, self.warm_features.shape[0])
        for start in range(0, x.shape[0], batch_size):
            stop = min(start + batch_size, x.shape[0])
            sim = np.asarray((xn[start:stop] @ self.warm_features.T).todense(), np.float32)
            if self_index is not None:
                own = np.asarray(self_index[start:stop])
                hit = np.flatnonzero(own >= 0)
                sim[hit, own[hit]] = 0.0
            if k < sim.shape[1]:
                top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
            w = np.maximum(np.take_along_axis(sim, top, axis=1), 0.0)
            tot = w.sum(axis=1)
            has = np.flatnonzero(tot > 0)
            knn[start + has] = np.einsum("bk,bkp->bp", w[has] / tot[has, None], self.warm_targets[top[has]])
        return lin, knn

    def transform(self, features: np.ndarray | sp.spmatrix, self_index: np.ndarray | None = None) -> np.ndarray:
        """Estimated vectors for rows with ``features`` (b, d), float32 (b, p): ``blend * knn +
        (1 - blend) * linear``, mixed with the history estimate (:meth:`fit_history`) by
        ``hist_weight``; ``self_index`` as in :meth:`parts`."""
        if self.blend <= 0 or self.n_neighbors <= 0:
            est = np.asarray(sp.csr_matrix(features, dtype=np.float32) @ self.weight, np.float32)
        else:
            lin, knn = self.parts(features, self_index)
            est = (self.blend * knn + (1.0 - self.blend) * lin).astype(np.float32)
        if self.hist_weight > 0 and self.hist_targets.shape[0]:
            est = ((1.0 - self.hist_weight) * est + self.hist_weight * self.history(features)).astype(np.float32)
        return est

    # ------------------------------------------------------------------ content-KNN-style history option
    @staticmethod
    def content_knn_features(features: np.ndarray | sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray]:
        """Rows weighted as :class:`~recsys_coldstart.baselines.content_knn.ContentKNN` does:
        ``idf = log(n / (1 + df))`` clipped at 0 (all ones when that kills every column), then L2
        row normalisation. Returns the normalised rows (CSR float32, (n, d)) and the idf (d,)."""
        x = sp.csr_matrix(features, dtype=np.float32)
        w = clipped_idf(x)
        return l2_normalize_rows(x @ sp.diags(w)), w

    def fit_history(self, features: np.ndarray | sp.spmatrix, interactions: sp.spmatrix, other_targets: np.ndarray,
                    n_neighbors: int = 50, ridge: float = 1e-2) -> np.ndarray:
        """Fit the content-KNN-style *user-history similarity* estimate and return it for every row.

        Content-KNN scores a row ``i`` (e.g. a cold item) for an entity ``o`` on the other side (a
        user) by ``c_{oi} = (1/|H_o|) sum_{j in H_o} S_{ji}``, the mean feature cosine of ``i`` to
        ``o``'s history ``H_o`` (top-``n_neighbors`` neighbours of ``i``, as
        :class:`~recsys_coldstart.baselines.content_knn.ContentKNN`). The vector whose dot products
        with the other side's vectors ``T`` best reproduce those scores is the ridge solution
        ``v_i = (T^T T + lam I)^{-1} T^T c_i = sum_j S_{ji} g_j`` with
        ``g_j = (T^T T + lam I)^{-1} T^T Rn_{:, j}``: a k-NN over features whose neighbours carry
        ``g_j`` (unnormalised sum, as content-KNN), so it is stored like the k-NN part
        (``hist_features``, ``hist_targets = g``) and applies to new rows too. The neighbours are
        the rows with interactions (content-KNN also counts cold rows, which add nothing), and the
        estimate is rescaled to the warm vectors' mean row norm.

        Parameters
        ----------
        features : np.ndarray or scipy sparse, shape (n, d)
            Features of *every* row of this side (warm and cold, as content-KNN's neighbour pool).
        interactions : scipy sparse, shape (n_other, n)
            The other side's rows x this side's rows (e.g. users x items), binary.
        other_targets : np.ndarray, shape (n_other, p)
            The other side's vectors ``T``.
        n_neighbors : int
        ridge : float
            ``lam`` relative to the mean diagonal of ``T^T T``.

        Returns
        -------
        np.ndarray of float32, shape (n, p)
            The estimate of every row (warm rows: leave-one-out, the diagonal of ``S`` is removed).
        """
        xn, w = self.content_knn_features(features)
        t = np.asarray(other_targets, np.float64)
        inter = binary_csr(interactions)
        rn = row_normalize(inter)
        gram = t.T @ t
        gram[np.diag_indices_from(gram)] += ridge * max(float(np.trace(gram)) / max(len(gram), 1), 1e-12)
        g = np.linalg.solve(gram, np.asarray((rn.T @ t).T, np.float64)).T.astype(np.float32)  # (n, p)
        # neighbour pool: rows with interactions (a cold row's g is 0: it would only take a slot)
        pool = np.flatnonzero(np.diff(sp.csc_matrix(inter).indptr) > 0)
        self.hist_features, self.hist_targets, self.hist_idf = xn[pool], g[pool], w
        self.hist_neighbors = int(n_neighbors)
        own = np.full(xn.shape[0], -1, np.int64)
        own[pool] = np.arange(len(pool))
        est = self.history(features, self_index=own)
        # same mean row norm as the warm vectors, so mixing it with the ridge / k-NN estimate is scale-free
        ref = float(np.linalg.norm(self.warm_targets, axis=1).mean()) if len(self.warm_targets) else 1.0
        nz = np.linalg.norm(est, axis=1)
        f = ref / float(nz[nz > 0].mean()) if (nz > 0).any() else 1.0
        self.hist_targets = (self.hist_targets * f).astype(np.float32)
        return (est * f).astype(np.float32)

    def history(self, features: np.ndarray | sp.spmatrix, self_index: np.ndarray | None = None,
                batch_size: int = 1024) -> np.ndarray:
        """The history estimate (:meth:`fit_history`) for rows with ``features`` (b, d), float32 (b, p);
        ``self_index``: each row's index in the neighbour pool (-1 if none), excluded (leave-one-out)."""
        x = l2_normalize_rows(sp.csr_matrix(features, dtype=np.float32) @ sp.diags(self.hist_idf))
        out = np.zeros((x.shape[0], self.hist_targets.shape[1]), np.float32)
        k = min(self.hist_neighbors, self.hist_features.shape[0])
        if k == 0:
            return out
        for start in range(0, x.shape[0], batch_size):
            sim = np.asarray((x[start:start + batch_size] @ self.hist_features.T).todense(), np.float32)
            if self_index is not None:
                mine = np.asarray(self_index[start:start + batch_size])
                hit = np.flatnonzero(mine >= 0)
                sim[hit, mine[hit]] = -np.inf
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < sim.shape[1] else \
                np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
            w = np.take_along_axis(sim, top, axis=1)
            w = np.where(np.isfinite(w), w, 0.0).astype(np.float32)
            out[start:start + len(w)] = np.einsum("bk,bkp->bp", w, self.hist_targets[top])
        return out

    def select_blend(self, lin: np.ndarray, knn: np.ndarray, score: Callable[[np.ndarray], float],
                     grid: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
                     hist: np.ndarray | None = None) -> dict[float | str, float]:
        """Choose the estimate that scores highest under ``score(estimates)`` (e.g. a validation
        recall) and return every candidate's score.

        Candidates: ``blend * knn + (1 - blend) * lin`` for ``blend`` in ``grid`` (ridge, k-NN over
        features and their mixes) and, when ``hist`` (the :meth:`fit_history` estimate) is given,
        the content-KNN-style history estimate alone and half-and-half with the best blend. Sets
        :attr:`blend` and :attr:`hist_weight`; keys are the blend values (float) and
        ``"history=<h>"`` (str) for the history candidates.
        """
        scores: dict[float | str, float] = {float(b): float(score(b * knn + (1.0 - b) * lin)) for b in grid}
        best_b = max((float(b) for b in grid), key=lambda b: (scores[b], -abs(b - 0.5)))
        self.blend, self.hist_weight = float(best_b), 0.0
        if hist is not None:
            mix = best_b * knn + (1.0 - best_b) * lin
            for h in (1.0, 0.5):
                scores[f"history={h}"] = float(score(h * hist + (1.0 - h) * mix))
            best = max(scores, key=lambda k: scores[k])
            if isinstance(best, str):
                self.hist_weight = float(best.split("=")[1])
        return scores

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray | sp.csr_matrix | float | int]:
        """The map as fitted-model attributes named ``{prefix}_{part}_`` (saved by :mod:`recsys_coldstart.io`)."""
        return {f"{prefix}_{part}_": getattr(self, part) for part in self._PARTS}

    @classmethod
    def from_arrays(cls, owner: object, prefix: str) -> ContentMap | None:
        """Rebuild from attributes of ``owner`` written with :meth:`to_arrays`; None if absent."""
        if not hasattr(owner, f"{prefix}_weight_"):
            return None
        return cls(*(getattr(owner, f"{prefix}_{part}_") for part in cls._PARTS))
