"""CiteULike-a: user libraries of scientific articles, item tag features, DropoutNet's splits.

H. Wang, B. Chen, W.-J. Li. "Collaborative Topic Regression with Social Regularization for Tag
Recommendation". IJCAI 2013 (the release); C. Wang and D. M. Blei, "Collaborative Topic Modeling
for Recommending Scientific Articles", KDD 2011 (the interactions). Splits: M. Volkovs, G. Yu,
T. Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems", NeurIPS 2017.

Files: ``users.dat`` (line ``u``: ``n item_1 ... item_n``, 0-based ids), ``item-tag.dat`` (line
``i``: ``n tag_1 ... tag_n``), ``tags.dat`` (tag strings, line = tag id) and, for the splits,
``dropoutnet_split/{warm,cold}/{train,test,test_item_ids}.csv`` (``user,item,1``, **1-based**).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.data.datasets._common import (
    int_column,
    isin_sorted,
    read_delimited,
    read_ragged_ints,
    require_files,
)
from recsys_coldstart.data.features import SideFeatures
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.data.splits import ColdStartSplit, warm_split
from recsys_coldstart.data.vocab import IdVocab
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

FILES = ("users.dat", "item-tag.dat", "tags.dat")
SPLIT_DIR = "dropoutnet_split"


def tag_tfidf(counts: sp.csr_matrix, *, tfidf: bool = True) -> sp.csr_matrix:
    """Row-normalised tf-idf of an item x tag count matrix.

    ``w[i, t] = tf[i, t] * (log((1 + n_items) / (1 + df[t])) + 1)``, then each non-empty row is
    scaled to unit L2 norm (the smoothed idf of scikit-learn's ``TfidfTransformer``).

    Parameters
    ----------
    counts : scipy CSR, shape (n_items, n_tags)
        How often tag ``t`` was given to item ``i``.
    tfidf : bool
        If False, return the binary item x tag matrix (row-normalised all the same).

    Returns
    -------
    scipy CSR of float32, shape (n_items, n_tags)
    """
    x = sp.csr_matrix(counts, dtype=np.float64)
    if tfidf:
        n = x.shape[0]
        df = np.bincount(x.indices, minlength=x.shape[1])
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        x.data *= idf[x.indices]
    else:
        x.data[:] = 1.0
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    x = sp.diags(1.0 / norms) @ x
    return sp.csr_matrix(x, dtype=np.float32)


def _read_tags(folder: Path, counts: np.ndarray, tag_ids: np.ndarray, n_items: int, *, tfidf: bool,
               min_df: int) -> SideFeatures:
    names = (folder / "tags.dat").read_bytes().decode("utf-8", errors="replace").splitlines()
    n_tags = len(names)
    if len(counts) != n_items:
        logger.warning("%s: %d lines for %d items (missing lines read as no tags)",
                       folder / "item-tag.dat", len(counts), n_items)
        if len(counts) > n_items:
            raise DataError(f"{folder / 'item-tag.dat'}: {len(counts)} lines but users.dat knows only {n_items} items")
        counts = np.concatenate([counts, np.zeros(n_items - len(counts), np.int64)])
    if len(tag_ids) and tag_ids.max() >= n_tags:
        raise DataError(f"{folder / 'item-tag.dat'}: tag id {int(tag_ids.max())} but tags.dat has {n_tags} lines")
    rows = np.repeat(np.arange(n_items, dtype=np.int64), counts)
    m = sp.csr_matrix((np.ones(len(rows), np.float64), (rows, tag_ids)), shape=(n_items, n_tags))
    m.sum_duplicates()
    keep_names = [f"tag={t}" for t in names]
    if min_df > 1:
        df = np.bincount(m.indices, minlength=n_tags)
        keep = np.flatnonzero(df >= min_df)
        logger.info("%s: %d of %d tags used by fewer than min_df=%d items dropped",
                    folder / "tags.dat", n_tags - len(keep), n_tags, min_df)
        m = m[:, keep]
        keep_names = [keep_names[k] for k in keep]
    n_untagged = int((np.diff(m.indptr) == 0).sum())
    if n_untagged:
        logger.info("%s: %d of %d items have no tag (all-zero feature rows)", folder / "item-tag.dat",
                    n_untagged, n_items)
    return SideFeatures(tag_tfidf(m, tfidf=tfidf), tuple(keep_names))


def load_citeulike(folder: str | Path, *, name: str = "citeulike-a", tfidf: bool = True,
                   min_df: int = 1) -> Interactions:
    """Load CiteULike-a: ``users.dat`` positives and item tag features.

    Parameters
    ----------
    folder : str or Path
        The ``citeulike-a/`` folder.
    name : str
    tfidf : bool
        Tag features as row-normalised tf-idf (default) or binary.
    min_df : int
        Drop tags given to fewer than ``min_df`` items (1 keeps all 46,391).

    Returns
    -------
    Interactions
        5,551 users x 16,980 items, 204,986 positives (ids == indices);
        ``item_features``: CSR (16980, n_tags) named ``tag=<tag>``.
    """
    folder = Path(folder)
    require_files(folder, FILES)
    path = folder / "users.dat"
    users, counts, items = read_ragged_ints(path, first_is_count=True)
    rows = np.repeat(users, counts)
    n_users = len(users)
    _, tag_counts, tag_ids = read_ragged_ints(folder / "item-tag.dat", first_is_count=True)
    n_items = max(int(items.max(initial=-1)) + 1, len(tag_counts))
    key = rows * n_items + items
    uniq = np.unique(key)
    if len(uniq) < len(key):
        logger.info("%s: %d repeated (user, item) pair(s) removed", path, len(key) - len(uniq))
        rows, items = uniq // n_items, uniq % n_items
    n_empty = int((counts == 0).sum())
    if n_empty:
        logger.info("%s: %d user(s) with an empty library (kept, empty rows)", path, n_empty)
    ui = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, items)), shape=(n_users, n_items))
    feats = _read_tags(folder, tag_counts, tag_ids, n_items, tfidf=tfidf, min_df=min_df)
    return Interactions(user_items=ui, users=IdVocab.range(n_users, name="user"),
                        items=IdVocab.range(n_items, name="item"), item_features=feats, name=name)


def _read_pairs(path: Path, data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """0-based (user, item) indices of a 1-based DropoutNet ``user,item,1`` csv."""
    df = read_delimited(path, sep=",", names=["user", "item", "value"], encoding="ascii")
    u = int_column(df, "user", path) - 1
    i = int_column(df, "item", path) - 1
    bad = (u < 0) | (u >= data.n_users) | (i < 0) | (i >= data.n_items)
    if bad.any():
        line = int(np.argmax(bad))
        raise DataError(f"{path}: line {line + 1}: ({u[line] + 1}, {i[line] + 1}) is outside the 1-based id range "
                        f"of users.dat ({data.n_users} users, {data.n_items} items)")
    return u, i


def _check_cover(data: Interactions, parts: list[tuple[np.ndarray, np.ndarray]], files: list[Path]) -> None:
    """The split files must hold exactly the ``users.dat`` pairs, each once."""
    n = data.n_items
    keys = [u * n + i for u, i in parts]
    allk = np.concatenate(keys)
    uniq = np.unique(allk)
    if len(uniq) != len(allk):
        raise DataError(f"{', '.join(map(str, files))}: {len(allk) - len(uniq)} pair(s) occur more than once")
    rows, cols, _, _ = data.to_coo_arrays()
    src = rows * n + cols  # row-major order == sorted keys
    if len(src) != len(uniq) or not np.array_equal(src, uniq):
        extra = np.setdiff1d(uniq, src)
        raise DataError(
            f"{', '.join(map(str, files))}: the split does not hold exactly the users.dat pairs "
            f"({len(extra)} pair(s) not in users.dat, {len(np.setdiff1d(src, uniq))} users.dat pair(s) missing)"
        )


def citeulike_split(folder: str | Path, kind: str, *, name: str = "citeulike-a", val_frac: float = 0.1,
                    random_state: int | np.random.Generator | None = 0) -> ColdStartSplit:
    """DropoutNet's CiteULike split (``kind="item-cold"`` or ``"warm"``) with a seeded validation part.

    - ``item-cold``: ``cold/train.csv`` / ``cold/test.csv``; ``test_items`` = ``test_item_ids.csv``.
      A seeded ``val_frac`` of the items that have train interactions become *val cold items*:
      their train interactions move to ``val``. The given test stays intact.
    - ``warm``: ``warm/train.csv`` / ``warm/test.csv``; val = seeded ``val_frac`` of each user's
      train pairs.

    Parameters
    ----------
    folder : str or Path
        The ``citeulike-a/`` folder (with ``dropoutnet_split/``).
    kind : {"item-cold", "warm"}
    name : str
    val_frac : float
    random_state : int, Generator or None

    Returns
    -------
    ColdStartSplit (``source`` = all ``users.dat`` positives, with the tag features)

    Raises
    ------
    DataError
        Missing split files, ids out of range, or split files that do not partition ``users.dat``.
    """
    if kind not in ("item-cold", "warm"):
        raise ValueError(f"citeulike-a has predefined splits 'item-cold' and 'warm', not {kind!r}")
    folder = Path(folder)
    sub = folder / SPLIT_DIR / ("cold" if kind == "item-cold" else "warm")
    files = ["train.csv", "test.csv"] + (["test_item_ids.csv"] if kind == "item-cold" else [])
    require_files(sub, files)
    data = load_citeulike(folder, name=name)
    tr_u, tr_i = _read_pairs(sub / "train.csv", data)
    te_u, te_i = _read_pairs(sub / "test.csv", data)
    _check_cover(data, [(tr_u, tr_i), (te_u, te_i)], [sub / "train.csv", sub / "test.csv"])
    rng = check_random_state(random_state)
    seed = random_state if isinstance(random_state, int) else None
    empty = data.with_pairs(np.zeros(0), np.zeros(0))
    test = data.with_pairs(te_u, te_i)
    if kind == "warm":
        inner = warm_split(data.with_pairs(tr_u, tr_i), val_frac=val_frac, test_frac=0.0, random_state=rng)
        return ColdStartSplit(train=inner.train, val=inner.val, test=test, support=empty, kind="warm",
                              source=data, seed=seed)
    ids_path = sub / "test_item_ids.csv"
    ids_df = read_delimited(ids_path, sep=",", names=["item"], encoding="ascii")
    test_items = np.unique(int_column(ids_df, "item", ids_path) - 1)
    if len(test_items) and (test_items[0] < 0 or test_items[-1] >= data.n_items):
        raise DataError(f"{ids_path}: item ids outside 1..{data.n_items}")
    in_train = isin_sorted(tr_i, test_items)
    if in_train.any():
        raise DataError(f"{sub / 'train.csv'}: {int(in_train.sum())} interaction(s) of cold test items "
                        f"listed in {ids_path.name}")
    outside = ~isin_sorted(te_i, test_items)
    if outside.any():
        logger.warning("%s: %d test interaction(s) of items not in %s (kept in test)", sub / "test.csv",
                       int(outside.sum()), ids_path.name)
    train_items = np.unique(tr_i)
    n_val = int(round(val_frac * len(train_items)))
    val_items = np.sort(rng.permutation(train_items)[:n_val])
    to_val = isin_sorted(tr_i, val_items)
    logger.info("%s: %d of %d train items (%d interactions) carved out as val cold items (seed %s)",
                sub, n_val, len(train_items), int(to_val.sum()), seed)
    train = data.with_pairs(tr_u[~to_val], tr_i[~to_val])
    val = data.with_pairs(tr_u[to_val], tr_i[to_val])
    return ColdStartSplit(train=train, val=val, test=test, support=empty, kind="item-cold", source=data,
                          val_items=val_items.astype(np.int64), test_items=test_items.astype(np.int64), seed=seed)
