"""Cold-start splits: warm (random / temporal), user-cold with few-shot support, item-cold.

Every split keeps **one vocabulary**: cold users and items stay in the vocabulary with empty
rows / columns in ``train``, so nothing is re-indexed and leakage is easy to test. Every positive
of the source lands in exactly one of ``train``, ``val``, ``test`` and ``support``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsys_coldstart._utils import check_random_state
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

SplitKind = Literal["warm", "user-cold", "item-cold"]
SPLIT_KINDS: tuple[str, ...] = ("warm", "user-cold", "item-cold")


@dataclass(frozen=True, eq=False)
class ColdStartSplit:
    """A train / val / test split on one shared vocabulary.

    Attributes
    ----------
    train : Interactions
        What a model may fit on. Cold users' rows and cold items' columns are empty.
    val, test : Interactions
        Held-out positives (same vocabulary). For ``user-cold`` they hold the *query* positives
        of the val / test cold users; for ``item-cold`` the interactions of the val / test cold
        items; for ``warm`` each user's held-out positives.
    support : Interactions
        What cold users reveal (few-shot ``K`` earliest / random positives); empty otherwise.
    kind : str
        ``"warm"``, ``"user-cold"`` or ``"item-cold"``.
    val_users, test_users : np.ndarray of int64
        Cold user indices held out for validation / test (empty unless ``user-cold``).
    val_items, test_items : np.ndarray of int64
        Cold item indices held out for validation / test (empty unless ``item-cold``).
    n_support : int
        ``K``, the number of support positives each cold user reveals.
    seed : int or None
        Seed the split was drawn with.
    source : Interactions
        The full data the split was cut from; kept for elicitation replay, which answers
        questions from a cold user's real (held-out) ratings. Never train on it.
    """

    train: Interactions
    val: Interactions
    test: Interactions
    support: Interactions
    kind: str
    source: Interactions
    val_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_users: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    val_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_support: int = 0
    seed: int | None = None

    @property
    def cold_users(self) -> np.ndarray:
        """All cold user indices (val and test), sorted, int64."""
        return np.union1d(self.val_users, self.test_users).astype(np.int64)

    @property
    def cold_items(self) -> np.ndarray:
        """All cold item indices (val and test), sorted, int64."""
        return np.union1d(self.val_items, self.test_items).astype(np.int64)

    @property
    def dropped_val_users(self) -> np.ndarray:
        """Val cold users with no held-out positive left (all their positives went to the
        support: fewer than ``n_support + 1``); no evaluation can score them. Sorted int64."""
        return self._without_truth(self.val_users, self.val)

    @property
    def dropped_test_users(self) -> np.ndarray:
        """Test cold users with no held-out positive left (see :attr:`dropped_val_users`)."""
        return self._without_truth(self.test_users, self.test)

    @staticmethod
    def _without_truth(users: np.ndarray, held: Interactions) -> np.ndarray:
        users = np.asarray(users, np.int64)
        return users[np.diff(held.user_items.indptr)[users] == 0] if len(users) else users

    def coverage_note(self) -> str | None:
        """One line on the cold users no evaluation covers, or None when every one is covered.

        Returns
        -------
        str or None
            E.g. ``"8 of 94 test and 7 of 94 val cold users have fewer than K+1=11 positives (all
            of them went to the support, no query is left): they are not evaluated"``.
        """
        n_test, n_val = len(self.dropped_test_users), len(self.dropped_val_users)
        if not (n_test or n_val):
            return None
        return (f"{n_test} of {len(self.test_users)} test and {n_val} of {len(self.val_users)} val cold users "
                f"have fewer than K+1={self.n_support + 1} positives (all of them went to the support, no query "
                "is left): they are not evaluated")

    @property
    def query(self) -> Interactions:
        """Held-out truth of the test cold users (``test`` restricted to them)."""
        return self.test

    @property
    def name(self) -> str:
        """Dataset name."""
        return self.train.name

    def summary(self) -> str:
        """One readable line for people (the CLI prints it); ``repr`` stays the full record.

        Returns
        -------
        str
            E.g. ``"ml-100k, warm split (seed 0): 943 users, 1,682 items; positives train
            44,205 / val 5,585 / test 5,585"``, plus cold users / items and ``K`` where the kind
            has them.
        """
        seed = "" if self.seed is None else f" (seed {self.seed})"
        parts = [f"{self.name or 'data'}, {self.kind} split{seed}: {self.train.n_users:,} users, "
                 f"{self.train.n_items:,} items; positives train {self.train.nnz:,} / val {self.val.nnz:,} / "
                 f"test {self.test.nnz:,}"]
        if self.kind == "user-cold":
            parts.append(f"cold users {len(self.val_users):,} val + {len(self.test_users):,} test, each revealing "
                         f"K={self.n_support} (support {self.support.nnz:,})")
        if self.kind == "item-cold":
            parts.append(f"cold items {len(self.val_items):,} val + {len(self.test_items):,} test")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"ColdStartSplit(kind={self.kind!r}, dataset={self.name!r}, train={self.train.nnz}, "
            f"val={self.val.nnz}, test={self.test.nnz}, support={self.support.nnz}, "
            f"cold_users={len(self.cold_users)}, cold_items={len(self.cold_items)}, K={self.n_support})"
        )


def _parts(data: Interactions, assign: np.ndarray, n_parts: int) -> list[Interactions]:
    """Cut ``data``'s positives into ``n_parts`` Interactions by per-positive label ``assign``."""
    rows, cols, vals, ts = data.to_coo_arrays()
    out = []
    for p in range(n_parts):
        m = assign == p
        out.append(data.with_pairs(rows[m], cols[m], vals[m], None if ts is None else ts[m]))
    return out


def _rank_within_rows(indptr: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank (0-based) of each stored entry within its CSR row, ordered by ``keys`` ascending."""
    n = len(keys)
    row_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.lexsort((keys, row_of))
    ranks = np.empty(n, np.int64)
    ranks[order] = np.arange(n) - indptr[row_of[order]]
    return ranks


def warm_split(data: Interactions, *, val_frac: float = 0.1, test_frac: float = 0.1,
               temporal: bool = False, random_state: int | np.random.Generator | None = 0) -> ColdStartSplit:
    """Per-user hold-out: each user's positives go ``1-val-test / val / test`` to train/val/test.

    Parameters
    ----------
    data : Interactions
    val_frac, test_frac : float
        Fractions per user (rounded; at least one positive always stays in train).
    temporal : bool
        If True (needs timestamps), each user's latest positives are test, the ones before
        them val; otherwise the assignment is random.
    random_state : int, Generator or None

    Returns
    -------
    ColdStartSplit of kind ``"warm"``.
    """
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise ValueError("val_frac and test_frac must be in [0, 1) with a sum below 1")
    rng = check_random_state(random_state)
    ui = data.user_items
    deg = np.diff(ui.indptr)
    if temporal:
        if data.timestamps is None:
            raise DataError(f"dataset {data.name!r} has no timestamps: a temporal split needs them")
        keys = -data.timestamps.data  # latest first
        keys = keys + rng.random(len(keys)) * 1e-9  # random tie-break
    else:
        keys = rng.random(ui.nnz)
    rank = _rank_within_rows(ui.indptr, keys)
    deg_per = np.repeat(deg, deg)
    n_test = np.floor(deg_per * test_frac + 0.5).astype(np.int64)
    n_val = np.floor(deg_per * val_frac + 0.5).astype(np.int64)
    # keep at least one train positive
    overflow = np.maximum(n_test + n_val - (deg_per - 1), 0)
    n_val = np.maximum(n_val - overflow, 0)
    n_test = np.minimum(n_test, deg_per - 1 - n_val).clip(min=0)
    assign = np.zeros(ui.nnz, np.int64)
    assign[rank < n_test] = 2
    assign[(rank >= n_test) & (rank < n_test + n_val)] = 1
    train, val, test = _parts(data, assign, 3)
    empty = data.with_pairs(np.zeros(0), np.zeros(0))
    seed = random_state if isinstance(random_state, int) else None
    return ColdStartSplit(train=train, val=val, test=test, support=empty, kind="warm", source=data, seed=seed)


def user_cold_split(data: Interactions, *, cold_frac: float = 0.2, n_support: int = 0,
                    random_state: int | np.random.Generator | None = 0) -> ColdStartSplit:
    """Hold out a fraction of users entirely; each reveals ``n_support`` positives (few-shot).

    ``cold_frac`` of the users with at least one positive become cold, half for validation and
    half for test. A cold user's row in ``train`` is empty; their first ``n_support`` positives
    (earliest by timestamp when timestamps exist, else random) go to ``support``, the rest to
    ``val`` / ``test`` (the query). A cold user with ``n_support`` positives or fewer has no query
    left and cannot be evaluated: they stay cold (so the draw is the same for every ``K``), are
    listed in :attr:`ColdStartSplit.dropped_test_users` / ``dropped_val_users``, and a warning
    gives the count.

    Parameters
    ----------
    data : Interactions
    cold_frac : float
        Fraction of users made cold, in (0, 1).
    n_support : int
        ``K``, the few-shot support size (0, 1, 3, 5, 10 in the benchmark protocol).
    random_state : int, Generator or None

    Returns
    -------
    ColdStartSplit of kind ``"user-cold"``.

    Raises
    ------
    DataError
        Too few users, or no test cold user keeps a held-out positive (``n_support`` too large).
    """
    if not 0 < cold_frac < 1:
        raise ValueError("cold_frac must be in (0, 1)")
    if n_support < 0:
        raise ValueError("n_support must be >= 0")
    rng = check_random_state(random_state)
    ui = data.user_items
    deg = np.diff(ui.indptr)
    val_users, test_users, user_part = _cold_halves(np.flatnonzero(deg > 0), data.n_users, cold_frac, rng,
                                                    f"dataset {data.name!r}: too few users", "user-cold")
    if data.timestamps is not None:
        keys = data.timestamps.data + rng.random(ui.nnz) * 1e-6
    else:
        keys = rng.random(ui.nnz)
    rank = _rank_within_rows(ui.indptr, keys)
    part_per = np.repeat(user_part, deg)
    # 0 train, 1 val (query), 2 test (query), 3 support
    assign = np.where(part_per == 0, 0, np.where(rank < n_support, 3, part_per))
    train, val, test, support = _parts(data, assign, 4)
    seed = random_state if isinstance(random_state, int) else None
    split = ColdStartSplit(train=train, val=val, test=test, support=support, kind="user-cold", source=data,
                           val_users=val_users, test_users=test_users, n_support=n_support, seed=seed)
    if len(split.dropped_test_users) == len(test_users):
        raise DataError(
            f"dataset {data.name!r}: user-cold split with K={n_support} leaves no test cold user with a held-out "
            f"positive (all {len(test_users)} have at most {n_support} positives, the largest has "
            f"{int(deg[test_users].max())}): nothing to evaluate; lower K (--k-support)"
        )
    note = split.coverage_note()
    if note:
        logger.warning("dataset %r, user-cold split: %s", data.name, note)
    return split


def item_cold_split(data: Interactions, *, cold_frac: float = 0.2,
                    random_state: int | np.random.Generator | None = 0) -> ColdStartSplit:
    """Hold out a fraction of items entirely: their interactions appear only in val / test.

    Parameters
    ----------
    data : Interactions
    cold_frac : float
        Fraction of items (with at least one positive) made cold, half val, half test.
    random_state : int, Generator or None

    Returns
    -------
    ColdStartSplit of kind ``"item-cold"``.
    """
    if not 0 < cold_frac < 1:
        raise ValueError("cold_frac must be in (0, 1)")
    rng = check_random_state(random_state)
    val_items, test_items, item_part = _cold_halves(np.flatnonzero(data.item_degrees() > 0), data.n_items,
                                                    cold_frac, rng, f"dataset {data.name!r}: too few items",
                                                    "item-cold")
    assign = item_part[data.user_items.indices]
    train, val, test = _parts(data, assign, 3)
    empty = data.with_pairs(np.zeros(0), np.zeros(0))
    seed = random_state if isinstance(random_state, int) else None
    return ColdStartSplit(train=train, val=val, test=test, support=empty, kind="item-cold", source=data,
                          val_items=val_items, test_items=test_items, seed=seed)


def _cold_halves(active: np.ndarray, n: int, cold_frac: float, rng: np.random.Generator, too_few: str,
                 kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``cold_frac`` of the ``active`` rows drawn cold, halved into val and test (sorted), and the
    part of each of the ``n`` rows (0 warm, 1 val-cold, 2 test-cold)."""
    n_cold = int(round(cold_frac * len(active)))
    if n_cold < 2:
        raise DataError(f"{too_few} ({len(active)}) for a {kind} split")
    cold = rng.permutation(active)[:n_cold]
    val, test = np.sort(cold[: n_cold // 2]), np.sort(cold[n_cold // 2:])
    part = np.zeros(n, np.int64)
    part[val] = 1
    part[test] = 2
    return val, test, part


def make_split(data: Interactions, kind: str, *, random_state: int | np.random.Generator | None = 0,
               n_support: int = 0, temporal: bool = False) -> ColdStartSplit:
    """Dispatch to :func:`warm_split`, :func:`user_cold_split` or :func:`item_cold_split`.

    Parameters
    ----------
    data : Interactions
    kind : {"warm", "user-cold", "item-cold"}
    random_state : int, Generator or None
    n_support : int
        Few-shot support size for ``user-cold``.
    temporal : bool
        Temporal hold-out for ``warm``.
    """
    if kind == "warm":
        return warm_split(data, temporal=temporal, random_state=random_state)
    if kind == "user-cold":
        return user_cold_split(data, n_support=n_support, random_state=random_state)
    if kind == "item-cold":
        return item_cold_split(data, random_state=random_state)
    raise ValueError(f"unknown split kind {kind!r}; choose one of {SPLIT_KINDS}")


def check_no_leakage(split: ColdStartSplit) -> None:
    """Raise ``AssertionError`` if the split leaks held-out data into ``train``.

    Checks: cold rows / columns empty in train; train, val, test and support pairwise
    disjoint; their union equals the source positives.
    """
    tr = split.train.user_items
    if len(split.cold_users):
        assert tr[split.cold_users].nnz == 0, "cold users have train interactions"
    if len(split.cold_items):
        assert tr[:, split.cold_items].nnz == 0, "cold items have train interactions"
    parts = [split.train, split.val, split.test, split.support]
    total = sp.csr_matrix(split.source.shape, dtype=np.float32)
    for p in parts:
        b = p.user_items.copy()
        b.data[:] = 1
        total = total + b
    assert total.nnz == 0 or total.data.max() <= 1, "a positive lands in more than one part"
    src = split.source.user_items.copy()
    src.data[:] = 1
    assert (total != src).nnz == 0, "the parts do not add up to the source positives"


def with_side_features(split: ColdStartSplit, *, item_features=None, user_features=None) -> ColdStartSplit:
    """The same split with its item and / or user side features replaced in every part.

    Parameters
    ----------
    split : ColdStartSplit
    item_features : SideFeatures of shape (n_items, d_item), optional
    user_features : SideFeatures of shape (n_users, d_user), optional
        New tables over the split's item / user vocabulary (None keeps the current one).

    Returns
    -------
    ColdStartSplit
    """
    new = {}
    for key, f, n in (("item_features", item_features, split.train.n_items),
                      ("user_features", user_features, split.train.n_users)):
        if f is not None:
            if f.n_rows != n:
                raise DataError(f"{key} have {f.n_rows} rows; the split's vocabulary has {n}")
            new[key] = f
    if not new:
        return split
    parts = {k: replace(getattr(split, k), **new) for k in ("train", "val", "test", "support", "source")}
    return replace(split, **parts)
