"""Dataset registry and loaders: MovieLens, the LightGCN text sets, CiteULike-a, any table.

Data never downloads at runtime: the files live under a data folder given as ``data_dir=`` (the
CLI's ``--data-dir``) or the ``RECSYS_COLDSTART_DATA`` environment variable, one sub-folder per
dataset (``<data_dir>/ml-100k/u.data``, ...). ``data_scripts/`` fetches and verifies them for
users with internet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys_coldstart.data.datasets.synthetic import make_synthetic
from recsys_coldstart.data.datasets.tabular import load_table
from recsys_coldstart.data.interactions import Interactions
from recsys_coldstart.data.splits import SPLIT_KINDS, ColdStartSplit
from recsys_coldstart.exceptions import DataError

DATA_ENV = "RECSYS_COLDSTART_DATA"


@dataclass(frozen=True)
class DatasetInfo:
    """What the toolkit knows about a public dataset.

    Attributes
    ----------
    name : str
        Registry key (``"ml-100k"``).
    folder : str
        Sub-folder of the data directory holding the files.
    files : tuple of str
        Files (relative to ``folder``) that must exist for :func:`load_dataset`.
    description : str
        One line for ``coldstart datasets``.
    feedback : str
        How positives are defined.
    has_user_features, has_item_features : bool
        Whether the loader attaches side features.
    predefined_splits : tuple of str
        Split kinds :func:`load_predefined_split` can return for this dataset.
    """

    name: str
    folder: str
    files: tuple[str, ...]
    description: str
    feedback: str
    has_user_features: bool = False
    has_item_features: bool = False
    predefined_splits: tuple[str, ...] = ()


_LGCN = ("train.txt", "test.txt")
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("ml-100k", "ml-100k", ("u.data", "u.user", "u.item"),
                    "MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings + demographics, genres, decade",
                    "explicit 1-5; positive if rating >= threshold (4)", True, True),
        DatasetInfo("ml-1m", "ml-1m", ("ratings.dat", "users.dat", "movies.dat"),
                    "MovieLens 1M: 6,040 users, 3,706 movies, 1,000,209 ratings + demographics, genres, decade",
                    "explicit 1-5; positive if rating >= threshold (4)", True, True),
        DatasetInfo("gowalla", "gowalla", _LGCN,
                    "Gowalla check-ins, LightGCN split: 29,858 users, 40,981 items, 1,027,370 pairs",
                    "implicit: every pair", predefined_splits=("warm",)),
        DatasetInfo("yelp2018", "yelp2018", _LGCN,
                    "Yelp2018, LightGCN split: 31,668 users, 38,048 items, 1,561,406 pairs",
                    "implicit: every pair", predefined_splits=("warm",)),
        DatasetInfo("amazon-book", "amazon-book", _LGCN,
                    "Amazon-book, LightGCN split: 52,643 users, 91,599 items, 2,984,108 pairs",
                    "implicit: every pair", predefined_splits=("warm",)),
        DatasetInfo("citeulike-a", "citeulike-a", ("users.dat", "item-tag.dat", "tags.dat"),
                    "CiteULike-a: 5,551 users, 16,980 articles, 204,986 pairs + item tag tf-idf; DropoutNet splits",
                    "implicit: every pair", False, True, predefined_splits=("item-cold", "warm")),
    )
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: ``data_dir`` if given, else ``$RECSYS_COLDSTART_DATA``.

    Parameters
    ----------
    data_dir : str or path-like, optional

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataError
        If neither is set, or the folder does not exist.
    """
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(DATA_ENV, "")
        if not env:
            raise DataError(
                f"no data folder given: pass --data-dir DIR (data_dir=DIR in Python) or set {DATA_ENV}=DIR; "
                "DIR holds one sub-folder per dataset (e.g. DIR/ml-100k/u.data)"
            )
        data_dir = env
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist")
    return path


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def dataset_folder(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Folder of dataset ``name``: ``<data_dir>/<folder>``, or ``data_dir`` itself if it holds the files."""
    info = _info(name)
    root = resolve_data_dir(data_dir)
    sub = root / info.folder
    if not sub.is_dir() and all((root / f).is_file() for f in info.files):
        return root
    return sub


def dataset_status(data_dir: str | os.PathLike | None = None) -> list[tuple[str, bool, Path]]:
    """``(name, found, folder)`` for every registered dataset, without loading anything."""
    out = []
    for name, info in DATASETS.items():
        folder = dataset_folder(name, data_dir)
        out.append((name, all((folder / f).is_file() for f in info.files), folder))
    return out


def positive_threshold(name: str | None, threshold: float | None = None) -> float | None:
    """The positive threshold in force: ``threshold`` when given, else the one a registered
    dataset ``name`` is loaded with by default: 4 (ratings >= 4) for explicit-feedback sets
    (MovieLens); None for implicit sets, unknown names, ``"synthetic"`` and own tables
    (``name=None``: every rated pair is a positive unless a threshold is given)."""
    if threshold is not None:
        return float(threshold)
    info = DATASETS.get(name) if name is not None else None
    return 4.0 if info is not None and "explicit" in info.feedback else None


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, threshold: float = 4.0,
                 **options: Any) -> Interactions:
    """Load a registered public dataset as :class:`Interactions`.

    Parameters
    ----------
    name : str
        One of ``DATASETS``: ``ml-100k``, ``ml-1m``, ``gowalla``, ``yelp2018``, ``amazon-book``,
        ``citeulike-a``.
    data_dir : str or path-like, optional
        Folder holding one sub-folder per dataset; default ``$RECSYS_COLDSTART_DATA``.
    threshold : float
        Positive threshold for explicit ratings (MovieLens); ignored for implicit data.
    **options
        Passed to the family loader (e.g. ``tfidf=False`` for citeulike-a).

    Returns
    -------
    Interactions

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the choices).
    DataError
        A required file is missing (named) or malformed.
    """
    info = _info(name)
    folder = dataset_folder(name, data_dir)
    if name == "ml-100k":
        from recsys_coldstart.data.datasets.movielens import load_ml100k

        return load_ml100k(folder, threshold=threshold, name=name, **options)
    if name == "ml-1m":
        from recsys_coldstart.data.datasets.movielens import load_ml1m

        return load_ml1m(folder, threshold=threshold, name=name, **options)
    if name in ("gowalla", "yelp2018", "amazon-book"):
        from recsys_coldstart.data.datasets.lightgcn_txt import load_lightgcn

        return load_lightgcn(folder, name=name, **options)
    if name == "citeulike-a":
        from recsys_coldstart.data.datasets.citeulike import load_citeulike

        return load_citeulike(folder, name=name, **options)
    raise ValueError(f"no loader for dataset {info.name!r}")  # pragma: no cover - registry and dispatch agree


def load_predefined_split(name: str, kind: str, data_dir: str | os.PathLike | None = None, *,
                          random_state: int | None = 0) -> ColdStartSplit | None:
    """The split that ships with a dataset, when there is one.

    - ``gowalla`` / ``yelp2018`` / ``amazon-book``, ``"warm"``: train = ``train.txt`` minus a
      seeded 10% of each user's pairs (val), test = ``test.txt``.
    - ``citeulike-a``, ``"item-cold"``: DropoutNet's cold split (test = its 3,396 cold items);
      val = the train interactions of a seeded 10% of the train items, which become val cold items.
    - ``citeulike-a``, ``"warm"``: DropoutNet's warm split; val = seeded 10% of each user's train.

    Parameters
    ----------
    name : str
    kind : str
        ``"warm"``, ``"user-cold"`` or ``"item-cold"``.
    data_dir : str or path-like, optional
    random_state : int, optional
        Seed of the validation carve-out.

    Returns
    -------
    ColdStartSplit, or None when ``(name, kind)`` has no predefined split.
    """
    info = _info(name)
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; choose one of {SPLIT_KINDS}")
    if kind not in info.predefined_splits:
        return None
    folder = dataset_folder(name, data_dir)
    if name in ("gowalla", "yelp2018", "amazon-book"):
        from recsys_coldstart.data.datasets.lightgcn_txt import lightgcn_warm_split

        return lightgcn_warm_split(folder, name=name, random_state=random_state)
    from recsys_coldstart.data.datasets.citeulike import citeulike_split

    return citeulike_split(folder, kind, name=name, random_state=random_state)


__all__ = [
    "DATA_ENV", "DATASETS", "DatasetInfo", "dataset_folder", "dataset_status", "load_dataset",
    "load_predefined_split", "load_table", "make_synthetic", "positive_threshold", "resolve_data_dir",
]
