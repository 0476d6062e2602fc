"""The one top-``k`` of the package: models, retrieval, evaluation and elicitation all rank with it.

The rule, shared by :func:`topk` and every back end of
:class:`~recsys_coldstart.retrieval.EmbeddingIndex`:

- the output width is ``min(k, n_cols)`` (``n_cols``: the items ranked);
- an excluded item is never returned; :func:`topk` (and the exact index) drops nothing else,
  so an item scored ``-inf`` is still returned when it is not excluded;
- a row with fewer admissible items than the width is padded with id ``-1`` (:data:`PAD_ID`)
  and score ``-inf``, after its admissible items: ``ids >= 0`` marks the real results;
- ties keep ``torch.topk``'s order (faiss's for the faiss back ends): implementation-defined,
  deterministic for a given device and torch build, and not guaranteed equal between CPU and
  CUDA. Lower-index-first was tried and rejected: item indices follow raw ids, and on ml-100k
  (ids roughly by popularity) it lifted ALS's cold-item recall@20 (all cold items tie at 0)
  from 0.058 to 0.399, a leak rather than a ranking. A tie rule for evaluation (random or
  pessimistic) is a separate decision.
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

    Ranking: higher score first, by ``torch.topk`` over the scores with the excluded cells set
    to ``-inf``. Ties keep ``torch.topk``'s order (see the module notes: not index order, on
    purpose). Only rows whose ``k``-th score is ``-inf`` while items are excluded are finished
    by a pass over their row, which drops the excluded items, keeps any other ``-inf`` item
    (in column order) and pads.

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
    vals, idx = torch.topk(s, width, dim=1)
    if ex is not None:
        # a -inf k-th score may be an excluded cell: those rows are padded (and keep any
        # non-excluded -inf item); every other row holds only admissible items
        redo_rows = torch.nonzero(torch.isneginf(vals[:, -1])).flatten()
        if len(redo_rows):
            idx[redo_rows] = _pad_rows(s, redo_rows, vals[redo_rows], idx[redo_rows], ex)
    # numpy-owned copies (b x k, cheap): views of torch memory refuse some numpy flag changes
    ids = np.array(idx.cpu().numpy(), dtype=np.int64)
    out = np.array(vals.cpu().numpy(), dtype=dtype)
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


def _pad_rows(s: Any, rows: Any, vals: Any, top: Any, ex: Any) -> Any:
    """Ids for rows of ``s`` whose top-k ends in ``-inf``: the finite part as ``torch.topk`` gave
    it, then the row's non-excluded ``-inf`` items in column order, then ``-1``.

    ``vals``, ``top``: those rows' top-k scores and column ids (b_r, width), best first;
    returns int64 (b_r, width).
    """
    import torch

    r, width = vals.shape
    n_top = (~torch.isneginf(vals)).sum(1, keepdim=True)  # finite (or NaN) scores come first
    pos = torch.arange(width, device=s.device)[None, :]
    idx = torch.where(pos < n_top, top, torch.full_like(top, PAD_ID))
    # excluded cells hold -inf, so the -inf items that are not excluded fill the rest
    left = torch.isneginf(s[rows])
    if isinstance(ex, torch.Tensor):
        left &= ~ex[rows]
    else:
        where = torch.full((s.shape[0],), -1, dtype=torch.int64, device=s.device)
        where[rows] = torch.arange(r, device=s.device)
        hit = where[ex[0]]
        m = hit >= 0
        left[hit[m], ex[1][m]] = False
    rank = torch.cumsum(left, dim=1)
    take = left & (rank <= width - n_top)
    tr, tc = torch.nonzero(take, as_tuple=True)
    idx[tr, n_top[tr, 0] + rank[tr, tc] - 1] = tc
    return idx


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
