"""The LightGCN / NGCF text format (gowalla, yelp2018, amazon-book): ``user item item ...`` lines.

X. He, K. Deng, X. Wang, Y. Li, Y. Zhang, M. Wang. "LightGCN: Simplifying and Powering Graph
Convolution Network for Recommendation". SIGIR 2020 (and NGCF, Wang et al., SIGIR 2019).

``train.txt`` and ``test.txt`` hold one line per user with 0-based, contiguous user and item
ids. The full dataset is the union of both files on one vocabulary (users ``0..N-1``, items
``0..M-1`` with N, M one past the largest id in either file); raw id == index.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from recsys_coldstart.data.datasets._common import isin_sorted, read_ragged_ints, require_files
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.data.splits import ColdStartSplit, warm_split
from recsys_coldstart.data.vocab import IdVocab
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

FILES = ("train.txt", "test.txt")


def read_lightgcn_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of one ``user item item ...`` file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    users, items : np.ndarray of int64, shape (n_pairs,)
        In file order. Repeated pairs within the file are removed (count logged).
    """
    path = Path(path)
    heads, counts, values = read_ragged_ints(path, first_is_count=False)
    users = np.repeat(heads, counts)
    users, items = _dedupe(users, values, str(path))
    return users, items


def _dedupe(users: np.ndarray, items: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    if len(users) == 0:
        return users, items
    width = int(items.max()) + 1
    key = users * width + items
    _, first = np.unique(key, return_index=True)
    if len(first) < len(key):
        logger.info("%s: %d repeated (user, item) pair(s) removed", source, len(key) - len(first))
        first.sort()
        return users[first], items[first]
    return users, items


def _read_both(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], int, int]:
    require_files(folder, FILES)
    tr = read_lightgcn_file(folder / "train.txt")
    te = read_lightgcn_file(folder / "test.txt")
    n_users = int(max(tr[0].max(initial=-1), te[0].max(initial=-1))) + 1
    n_items = int(max(tr[1].max(initial=-1), te[1].max(initial=-1))) + 1
    if n_users == 0 or n_items == 0:
        raise DataError(f"{folder}: train.txt and test.txt hold no interactions")
    return tr, te, n_users, n_items


def _build(folder: Path, name: str) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Union of both files; also returns the (row, col) of the test pairs not in train."""
    (tr_u, tr_i), (te_u, te_i), n_users, n_items = _read_both(folder)
    tr_key = tr_u * n_items + tr_i
    te_key = te_u * n_items + te_i
    overlap = isin_sorted(te_key, np.sort(tr_key))
    if overlap.any():
        logger.warning("%s: %d test.txt pair(s) also occur in train.txt; they are kept once (as train)",
                       folder, int(overlap.sum()))
        te_u, te_i = te_u[~overlap], te_i[~overlap]
    rows = np.concatenate([tr_u, te_u])
    cols = np.concatenate([tr_i, te_i])
    users = IdVocab.range(n_users, name="user")
    items = IdVocab.range(n_items, name="item")
    base = Interactions.from_csr(_empty(n_users, n_items), users=users, items=items, name=name)
    data = base.with_pairs(rows, cols)
    n_cold_u = int((data.user_degrees() == 0).sum())
    n_cold_i = int((data.item_degrees() == 0).sum())
    if n_cold_u or n_cold_i:
        logger.info("%s: %d user id(s) and %d item id(s) below the largest id have no interaction (kept, empty)",
                    folder, n_cold_u, n_cold_i)
    return data, te_u, te_i


def _empty(n_users: int, n_items: int):
    import scipy.sparse as sp

    return sp.csr_matrix((n_users, n_items), dtype=np.float32)


def load_lightgcn(folder: str | Path, *, name: str = "") -> Interactions:
    """All interactions of a LightGCN-format dataset: ``train.txt`` union ``test.txt``.

    Parameters
    ----------
    folder : str or Path
        Folder with ``train.txt`` and ``test.txt``.
    name : str

    Returns
    -------
    Interactions
        Implicit positives (weight 1), raw ids == indices, no features, no timestamps.
    """
    folder = Path(folder)
    data, _, _ = _build(folder, name or folder.name)
    return data


def lightgcn_warm_split(folder: str | Path, *, name: str = "", val_frac: float = 0.1,
                        random_state: int | np.random.Generator | None = 0) -> ColdStartSplit:
    """The given LightGCN split: test = ``test.txt``; val = seeded ``val_frac`` of each user's train.

    Parameters
    ----------
    folder : str or Path
    name : str
    val_frac : float
        Per-user fraction of ``train.txt`` moved to val (at least one pair stays in train).
    random_state : int, Generator or None

    Returns
    -------
    ColdStartSplit of kind ``"warm"``; ``source`` is the union of both files.
    """
    folder = Path(folder)
    data, te_u, te_i = _build(folder, name or folder.name)
    test = data.with_pairs(te_u, te_i)
    test_mask = test.user_items.copy()
    test_mask.data[:] = 1
    train_all = data.user_items - data.user_items.multiply(test_mask)
    train_all.eliminate_zeros()
    inner = warm_split(data.with_pairs(*_coo(train_all)), val_frac=val_frac, test_frac=0.0,
                       random_state=random_state)
    seed = random_state if isinstance(random_state, int) else None
    return ColdStartSplit(train=inner.train, val=inner.val, test=test, support=inner.support, kind="warm",
                          source=data, seed=seed)


def _coo(m) -> tuple[np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return rows, m.indices.astype(np.int64)
