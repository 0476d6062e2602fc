"""The one top-``k`` of the package: models, retrieval, evaluation and elicitation all rank with it.

The rule, shared by :func:`topk` and every back end of
:class:`~recsys_coldstart.retrieval.EmbeddingIndex`:

- the output width is ``min(k, n_cols)`` (``n_cols``: the items ranked);
- an excluded item is never returned; :func:`topk` (and the exact index) drops nothing else,
  so an item scored ``-inf`` is still returned when it is not excluded;
- a row with fewer admissible items than the width is padded with id ``-1`` (:data:`PAD_ID`)
  and score ``-inf``, after its admissible items: ``ids >= 0`` marks the real results;
- equal scores rank in column order (lower item index first; with ``candidates``, earlier in
  ``candidates`` first), at the ``k`` boundary too, so the result does not depend on the device
  or on ``torch.topk``'s internal order. The faiss back ends keep faiss's order among ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

PAD_ID: int = -1
"""Id of a padding entry (its score is ``-inf``)."""


def topk(scores: Any, k: int, *, exclude: Any = None, candidates: np.ndarray | None = None,
         overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of each row of ``scores``, never an excluded item, padded with ``-1`` / ``-inf``.

    Ranking: higher score first; equal scores in increasing column order (stable), including at
    the ``k`` boundary. The selection is ``torch.topk`` (fetching ``k + 1`` to detect a tie at the
    boundary); only rows with such a tie, or whose ``k``-th score is ``-inf``, are re-ranked by
    a pass over their full row, so float scores pay for the stable order with two sorts of
    ``(b, k)``.

    Parameters
    ----------
    scores : np.ndarray or torch.Tensor, shape (b, n_cols)
        Scores over all items (``candidates is None``) or over ``candidates``. float32 and
        float64 are kept, other dtypes are cast to float32. A tensor stays on its device (the
        exact :class:`~recsys_coldstart.retrieval.EmbeddingIndex` ranks on the GPU). NaN ranks
        above every number (``torch.topk``'s order).
    k : int
        Cutoff; the output width is ``min(k, n_cols)``.
    exclude : scipy sparse matrix or np.ndarray of bool, shape (b, n_items), optional
        Items never to return (every stored entry of a sparse matrix; the ``True`` cells of a
        dense mask), rows aligned with ``scores``, in *item index* space (``n_items == n_cols``
        when ``candidates is None``).
    candidates : np.ndarray of int64, shape (n_cols,), optional
        Item indices of the columns of ``scores``; returned ids are these indices.
    overwrite : bool
        Allow writing ``-inf`` into ``scores`` at the excluded cells instead of copying it first
        (for a caller that owns a freshly computed score matrix).

    Returns
    -------
    ids : np.ndarray of int64, shape (b, min(k, n_cols))
        Item indices, best first; ``-1`` pads a row with fewer admissible items than the width.
    scores : np.ndarray of float32 (float64 for float64 input), same shape
        Their scores; ``-inf`` on padding.

    Raises
    ------
    ValueError
        If ``scores`` is not 2-D, ``k`` is negative, or ``exclude`` / ``candidates`` do not
        match the shape of ``scores``.
    """
    import torch

    s, owned = _as_tensor(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D (b, n_cols), got shape {tuple(s.shape)}")
    b, n_cols = s.shape
    if int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    cand = None if candidates is None else np.asarray(candidates, dtype=np.int64).ravel()
    if cand is not None and len(cand) != n_cols:
        raise ValueError(f"candidates has {len(cand)} items for {n_cols} score columns")
    width = min(int(k), n_cols)
    dtype = np.float64 if s.dtype == torch.float64 else np.float32
    if b == 0 or width == 0:
        return np.full((b, width), PAD_ID, np.int64), np.full((b, width), -np.inf, dtype)
    ex = _excluded(exclude, b, n_cols, cand, s.device)
    if ex is not None:
        if not (owned or overwrite):
            s = s.clone()
        s[ex] = -torch.inf
    vals, idx = torch.topk(s, min(width + 1, n_cols), dim=1)
    kth = vals[:, width - 1]
    # rows whose k-th score ties with the next one (the boundary is torch.topk's choice) or is
    # -inf (excluded cells, padding, or -inf scores mixed with them) are re-ranked exactly
    redo = torch.isneginf(kth)
    if width < n_cols:
        redo |= vals[:, width] == kth
    vals, idx = vals[:, :width], idx[:, :width]
    # stable order inside the k: columns ascending, then a stable sort by score
    idx, perm = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    idx = torch.gather(idx, 1, perm)
    redo_rows = torch.nonzero(redo).flatten()
    if len(redo_rows):
        idx[redo_rows], vals[redo_rows] = _rerank_rows(s, redo_rows, kth[redo_rows], width, ex)
    ids = idx.cpu().numpy().astype(np.int64, copy=False)
    out = vals.cpu().numpy().astype(dtype, copy=False)
    if cand is not None:
        ids = np.where(ids >= 0, cand[np.maximum(ids, 0)], PAD_ID)
    return ids, out


def _as_tensor(scores: Any) -> tuple[Any, bool]:
    """``scores`` as a float tensor, and whether it is a private copy (safe to mask in place)."""
    import torch

    if isinstance(scores, torch.Tensor):
        if scores.dtype in (torch.float32, torch.float64):
            return scores, False
        return scores.float(), True
    arr = np.asarray(scores)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    if not arr.flags.writeable:  # torch.from_numpy wants a writable buffer
        arr = arr.copy()
    arr = np.ascontiguousarray(arr)
    owned = not (isinstance(scores, np.ndarray) and np.may_share_memory(arr, scores))
    return torch.from_numpy(arr), owned


def _excluded(exclude: Any, b: int, n_cols: int, cand: np.ndarray | None, device: Any) -> Any:
    """The excluded cells in column space as a torch index on ``device``: a bool mask (b, n_cols)
    for a dense ``exclude``, a ``(rows, cols)`` pair of int64 tensors for a sparse one; ``None``
    when nothing is excluded."""
    import torch

    if exclude is None:
        return None
    if isinstance(exclude, torch.Tensor):
        exclude = exclude.cpu().numpy()
    if isinstance(exclude, np.ndarray):
        mask = np.asarray(exclude, dtype=bool)
        if mask.ndim != 2 or mask.shape[0] != b or (cand is None and mask.shape[1] != n_cols):
            raise ValueError(f"exclude has shape {mask.shape} for {b} x {n_cols} scores")
        if cand is not None:
            mask = mask[:, cand]
        return torch.from_numpy(np.ascontiguousarray(mask)).to(device) if mask.any() else None
    ex = sp.csr_matrix(exclude)
    if ex.shape[0] != b:
        raise ValueError(f"exclude has {ex.shape[0]} rows for {b} score rows")
    if cand is None and ex.shape[1] != n_cols:
        raise ValueError(f"exclude has {ex.shape[1]} columns for {n_cols} score columns")
    rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(ex.indptr))
    cols = ex.indices.astype(np.int64)
    if cand is not None and len(cols):
        pos = np.full(max(int(ex.shape[1]), int(cand.max(initial=-1)) + 1), -1, np.int64)
        pos[cand] = np.arange(len(cand))
        cols = pos[cols]
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
    if not len(rows):
        return None
    return torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)


def _rerank_rows(s: Any, rows: Any, kth: Any, width: int, ex: Any) -> tuple[Any, Any]:
    """Exact stable top-``width`` of ``s[rows]`` given each row's ``width``-th score ``kth``.

    Everything above ``kth`` is in; items equal to ``kth`` (admissible ones only: excluded cells
    hold ``-inf``) fill the rest in column order; a row short of ``width`` is padded.
    """
    import torch

    sub = s[rows]
    r = sub.shape[0]
    gt = (sub > kth[:, None]) | torch.isnan(sub)
    eq = sub == kth[:, None]
    # excluded cells hold -inf, so only a -inf kth could take them
    if isinstance(ex, torch.Tensor):
        eq &= ~ex[rows]
    elif ex is not None:
        where = torch.full((s.shape[0],), -1, dtype=torch.int64, device=s.device)
        where[rows] = torch.arange(r, device=s.device)
        hit = where[ex[0]]
        m = hit >= 0
        eq[hit[m], ex[1][m]] = False
    need = width - gt.sum(1, keepdim=True)
    sel = gt | (eq & (torch.cumsum(eq, dim=1) <= need))
    sel_r, sel_c = torch.nonzero(sel, as_tuple=True)  # row-major: columns ascending within a row
    count = sel.sum(1)
    pos = torch.arange(len(sel_r), device=s.device) - (torch.cumsum(count, 0) - count)[sel_r]
    idx = torch.full((r, width), PAD_ID, dtype=torch.int64, device=s.device)
    vals = torch.full((r, width), -torch.inf, dtype=s.dtype, device=s.device)
    idx[sel_r, pos] = sel_c
    vals[sel_r, pos] = sub[sel_r, sel_c]
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)  # padding stays last
    return torch.gather(idx, 1, perm), vals


def drop_excluded(ids: np.ndarray, scores: np.ndarray, exclude: sp.csr_matrix,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """Filter ranked lists: drop excluded (and ``-1``) ids, keep the first ``k``, pad with ``-1`` / ``-inf``.

    The faiss back ends of :class:`~recsys_coldstart.retrieval.EmbeddingIndex` over-fetch and
    then call this, so they pad exactly as :func:`topk` does.

    Parameters
    ----------
    ids : np.ndarray of int64, shape (b, f)
        Ranked item ids, best first; ``-1`` entries (a search that found fewer) are dropped.
    scores : np.ndarray of float32, shape (b, f)
    exclude : scipy CSR of shape (b, n_items)
        Items to drop from each row.
    k : int
        Output width (``<= f``).

    Returns
    -------
    ids : np.ndarray of int64, shape (b, k)
    scores : np.ndarray of float32, shape (b, k)
    """
    ex = sp.csr_matrix(exclude)
    b = ids.shape[0]
    n_items = np.int64(ex.shape[1])
    # (row, item) pairs as one int64 key each; membership by np.isin
    ex_keys = np.repeat(np.arange(b, dtype=np.int64), np.diff(ex.indptr)) * n_items + ex.indices
    cand_keys = np.arange(b, dtype=np.int64)[:, None] * n_items + np.where(ids >= 0, ids, 0)
    keep = ~np.isin(cand_keys, ex_keys) & (ids >= 0)
    order = np.argsort(~keep, axis=1, kind="stable")  # kept entries first, original order
    ids_k = np.take_along_axis(ids, order, axis=1)[:, :k]
    sc_k = np.take_along_axis(scores, order, axis=1)[:, :k]
    valid = np.take_along_axis(keep, order, axis=1)[:, :k]
    return np.where(valid, ids_k, PAD_ID), np.where(valid, sc_k, -np.inf).astype(np.float32)
