"""Tower building blocks shared by the two-tower teacher, the student and the cold-start models.

A *tower* maps several input blocks of one entity (an ID / preference vector, side features,
a bag of the items a user interacted with, ...) to one embedding::

    h_0 = act(sum_j x_j W_j + b_0)          # one weight matrix per input block (dense or sparse x_j)
    h_l = act(h_{l-1} W_l + b_l)            # hidden layers
    e   = h_L W_out + b_out  (+ x_id if residual)  (+ x_s W_skip if a linear skip)

Summing per-block products equals one linear layer over the concatenation ``[x_1; ...; x_J]``
but lets a block be a torch sparse matrix (tf-idf bags) without densifying it, and lets a block
be missing (``None`` = all zeros, the DropoutNet cold path).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recsys_coldstart.data.features import SideFeatures


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
    skip_block : int or None
        Index of an input block with a learned *linear* path straight to the output
        (``e = MLP(x) + x_s W_skip``, ``W_skip`` zero until :meth:`init_linear_skip` sets it), so
        a closed-form content map (:func:`ridge_map`) can be the tower's starting point.
    """

    def __init__(self, in_dims: Sequence[int], hidden: Sequence[int], out_dim: int, *,
                 residual_block: int | None = None, dropout: float = 0.0,
                 skip_block: int | None = None) -> None:
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
        self.skip_block = skip_block
        self.skip = (nn.Parameter(torch.zeros(self.in_dims[skip_block], int(out_dim)))
                     if skip_block is not None else None)
        self.out_dim = int(out_dim)

    def init_linear_skip(self, weight: np.ndarray, trainable: bool = False) -> None:
        """Start the tower at the linear map ``e = x_s @ weight``: copy ``weight`` (in_dims[skip_block],
        out_dim) into the skip path and zero the MLP's output layer (its gradients still flow, so
        training learns a non-linear correction on top of the linear start). With ``trainable=False``
        the skip stays fixed (a closed-form backbone the MLP corrects)."""
        if self.skip is None:
            raise ValueError("this tower has no skip_block")
        w = torch.as_tensor(np.asarray(weight, np.float32))
        if tuple(w.shape) != tuple(self.skip.shape):
            raise ValueError(f"skip weight must have shape {tuple(self.skip.shape)}, got {tuple(w.shape)}")
        with torch.no_grad():
            self.skip.copy_(w)
        self.zero_output_layer()
        self.skip.requires_grad_(trainable)

    def zero_output_layer(self) -> None:
        """Zero the last linear map (the MLP's output layer, or the input map when there are no
        hidden layers), so the tower starts at its residual / skip path alone."""
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
        if self.skip is not None and blocks is not None:
            x = blocks[self.skip_block]
            if x is not None:
                out = out + (torch.sparse.mm(x, self.skip) if x.is_sparse else x @ self.skip)
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


def fit_dim(vectors: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Bring pretrained vectors (n, d0) to width ``dim`` and unit mean row norm.

    ``d0 > dim``: projection on the top-``dim`` principal directions (SVD); ``d0 < dim``: the
    vectors fill the first ``d0`` columns and the rest get small noise (so the extra dimensions
    can learn). Returns float32 (n, dim).
    """
    v = np.asarray(vectors, np.float32)
    n, d0 = v.shape
    if d0 > dim:
        _, _, vt = np.linalg.svd(v - v.mean(0), full_matrices=False)
        v = v @ vt[:dim].T
    elif d0 < dim:
        norm = float(np.linalg.norm(v, axis=1).mean()) or 1.0
        pad = rng.normal(0, 0.01 * norm / np.sqrt(dim), (n, dim - d0)).astype(np.float32)
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
    content towers' starting point when ``content_init="ridge"``.

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
    n, d = x.shape
    if d <= n:
        g = x.T @ x
        g = g.toarray() if sp.issparse(g) else np.asarray(g)
        g[np.diag_indices(d)] += ridge
        w = np.linalg.solve(g, np.asarray(x.T @ t))
    else:
        g = x @ x.T
        g = g.toarray() if sp.issparse(g) else np.asarray(g)
        g[np.diag_indices(n)] += ridge
        w = np.asarray(x.T @ np.linalg.solve(g, t))
    return w.astype(np.float32)
