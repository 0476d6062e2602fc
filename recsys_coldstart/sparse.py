"""Sparse-matrix helpers shared across the package (numpy / scipy only, no torch).

- :func:`binary_csr`: a float32 CSR copy with every stored entry set to 1;
- :func:`l2_normalize_rows`: rows scaled to unit L2 norm, dense or sparse;
- :func:`as_observed`: validate / coerce new users' revealed interactions;
- :func:`take_rows`: rows of an array / sparse matrix, None passing through.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def binary_csr(matrix: sp.spmatrix) -> sp.csr_matrix:
    """A float32 CSR copy of ``matrix`` with every stored entry set to 1 (explicit zeros dropped).

    Parameters
    ----------
    matrix : scipy sparse, shape (n_rows, n_cols)

    Returns
    -------
    scipy CSR of float32, shape (n_rows, n_cols)
    """
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def l2_normalize_rows(x: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); dense in, dense out; sparse in, CSR out.

    Parameters
    ----------
    x : np.ndarray or scipy sparse, shape (n, d)

    Returns
    -------
    np.ndarray of float32 or scipy CSR of float32, shape (n, d)
    """
    if sp.issparse(x):
        m = sp.csr_matrix(x, dtype=np.float32, copy=True)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m, dtype=np.float32)
    a = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0).astype(np.float32, copy=False)


def as_observed(observed: sp.spmatrix | np.ndarray | None, n_rows: int | None, n_items: int) -> sp.csr_matrix:
    """Validate / coerce revealed interactions of new users to a binary CSR of shape (b, n_items).

    Parameters
    ----------
    observed : scipy sparse or np.ndarray, shape (b, n_items), or None
        Revealed positives (None: nobody revealed anything).
    n_rows : int or None
        ``b`` when ``observed`` is None.
    n_items : int
        Number of item columns the model was fitted on.

    Returns
    -------
    scipy CSR of float32, shape (b, n_items)
    """
    if observed is None:
        if n_rows is None:
            raise ValueError("observed is None and the number of users is unknown")
        return sp.csr_matrix((n_rows, n_items), dtype=np.float32)
    m = binary_csr(observed)
    if m.shape[1] != n_items:
        raise ValueError(f"observed has {m.shape[1]} item columns, the model was fitted on {n_items}")
    return m


def take_rows(x: np.ndarray | sp.spmatrix | None, idx: np.ndarray) -> np.ndarray | sp.spmatrix | None:
    """Rows ``idx`` of an array / sparse matrix, None passing through.

    Parameters
    ----------
    x : np.ndarray or scipy sparse, shape (n, ...), or None
    idx : np.ndarray of int64, shape (b,)

    Returns
    -------
    np.ndarray or scipy sparse, shape (b, ...), or None
    """
    return None if x is None else x[idx]
