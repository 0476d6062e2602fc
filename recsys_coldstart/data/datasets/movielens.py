"""MovieLens 100K and 1M loaders (ratings, user demographics, item genres and release decade).

F. M. Harper and J. A. Konstan. "The MovieLens Datasets: History and Context".
ACM Transactions on Interactive Intelligent Systems 5(4), 2015.

Both releases are Latin-1 text. Every rating is kept in ``Interactions.ratings``; a pair is a
positive when ``rating >= threshold``. User features are one-hot age bucket (the ML-1M
buckets, applied to ML-100K's exact ages too), gender and occupation; item features are the
genre flags plus a one-hot release decade (``decade=unknown`` when the date is missing).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_coldstart.data.datasets._common import (
    int_column,
    read_delimited,
    require_files,
    with_line_numbers,
)
from recsys_coldstart.data.interactions import Interactions, encode_feature_table
from recsys_coldstart.exceptions import DataError

logger = logging.getLogger(__name__)

ML100K_FILES = ("u.data", "u.user", "u.item")
ML1M_FILES = ("ratings.dat", "users.dat", "movies.dat")

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# ML-1M uses the same genres without "unknown".
ML1M_GENRES = ML100K_GENRES[1:]

# ML-1M's age codes (its README); ML-100K's exact ages are binned into the same buckets.
AGE_BUCKETS = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
_AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])
_AGE_LABELS = np.array(list(AGE_BUCKETS.values()), dtype=object)

ML1M_OCCUPATIONS = (
    "other or not specified", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student",
    "lawyer", "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)


def age_bucket(age: np.ndarray) -> np.ndarray:
    """ML-1M age bucket label of each exact age, object array of shape (n,)."""
    return _AGE_LABELS[np.searchsorted(_AGE_EDGES, np.asarray(age), side="right")]


def _decade(year: pd.Series) -> np.ndarray:
    """``"1990s"`` style labels from a float year series (NaN -> ``"unknown"``)."""
    y = year.to_numpy(np.float64)
    out = np.full(len(y), "unknown", dtype=object)
    ok = np.isfinite(y)
    out[ok] = [f"{int(v) // 10 * 10}s" for v in y[ok]]
    return out


def _restrict(table: pd.DataFrame, id_col: str, known: pd.Index, path: Path, what: str) -> pd.DataFrame:
    """Keep feature rows whose id has a rating; log how many were dropped and why."""
    keep = table[id_col].isin(known).to_numpy()
    if not keep.all():
        logger.info("%s: %d %s(s) have no rating and are left out of the features", path, int((~keep).sum()), what)
    dup = table[id_col][keep].duplicated()
    if dup.any():
        raise DataError(f"{path}: {what} id {table[id_col][keep][dup].iloc[0]!r} appears on more than one line")
    return table[keep]


def _assemble(ratings: pd.DataFrame, ratings_path: Path, user_table: pd.DataFrame, user_path: Path,
              item_table: pd.DataFrame, item_path: Path, *, threshold: float, name: str) -> Interactions:
    for col in ("user", "item", "timestamp"):
        ratings[col] = int_column(ratings, col, ratings_path)
    try:
        data = Interactions.from_pandas(ratings, user_col="user", item_col="item", rating_col="rating",
                                        timestamp_col="timestamp", threshold=threshold, name=name,
                                        source=str(ratings_path))
    except DataError as e:
        raise with_line_numbers(e, 0) from e
    user_table = _restrict(user_table, "user", pd.Index(data.users.ids), user_path, "user")
    item_table = _restrict(item_table, "item", pd.Index(data.items.ids), item_path, "item")
    uf = encode_feature_table(user_table, data.users, id_col="user", source=str(user_path))
    itf = encode_feature_table(item_table, data.items, id_col="item", source=str(item_path))
    return replace(data, user_features=uf, item_features=itf)


def load_ml100k(folder: str | Path, *, threshold: float = 4.0, name: str = "ml-100k") -> Interactions:
    """Load MovieLens 100K from ``folder`` (holding ``u.data``, ``u.user``, ``u.item``).

    Parameters
    ----------
    folder : str or Path
        The ``ml-100k/`` folder.
    threshold : float
        A rating ``>= threshold`` is a positive.
    name : str
        Dataset name stored on the result.

    Returns
    -------
    Interactions
        943 users x 1,682 items; ``ratings`` holds all 100,000 ratings, ``timestamps`` the
        positives' unix seconds; ``user_features`` (943, 30): ``age=*`` (7 buckets),
        ``gender=*``, ``occupation=*`` one-hot; ``item_features`` (1682, 19 + n_decades):
        ``genre=*`` flags and ``decade=*`` one-hot.
    """
    folder = Path(folder)
    require_files(folder, ML100K_FILES)
    ratings = read_delimited(folder / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    users = read_delimited(folder / "u.user", sep="|", names=["user", "age", "gender", "occupation", "zip"])
    item_cols = ["item", "title", "release", "video_release", "url"] + [f"genre={g}" for g in ML100K_GENRES]
    items = read_delimited(folder / "u.item", sep="|", names=item_cols)
    users["user"] = int_column(users, "user", folder / "u.user")
    items["item"] = int_column(items, "item", folder / "u.item")
    ages = int_column(users, "age", folder / "u.user")
    user_table = pd.DataFrame({"user": users["user"], "age": age_bucket(ages),
                               "gender": users["gender"].astype(str), "occupation": users["occupation"].astype(str)})
    year = pd.to_numeric(items["release"].astype(str).str[-4:], errors="coerce")
    item_table = items[["item"] + [f"genre={g}" for g in ML100K_GENRES]].copy()
    for g in ML100K_GENRES:
        item_table[f"genre={g}"] = int_column(items, f"genre={g}", folder / "u.item").astype(np.float32)
    item_table["decade"] = _decade(year)
    return _assemble(ratings, folder / "u.data", user_table, folder / "u.user", item_table, folder / "u.item",
                     threshold=threshold, name=name)


def load_ml1m(folder: str | Path, *, threshold: float = 4.0, name: str = "ml-1m") -> Interactions:
    """Load MovieLens 1M from ``folder`` (``ratings.dat``, ``users.dat``, ``movies.dat``; ``::``).

    Parameters
    ----------
    folder : str or Path
        The ``ml-1m/`` folder.
    threshold : float
        A rating ``>= threshold`` is a positive.
    name : str

    Returns
    -------
    Interactions
        6,040 users x 3,706 rated movies in the original release; ``user_features``: ``age=*``,
        ``gender=*``, ``occupation=*`` one-hot; ``item_features``: 18 ``genre=*`` flags (from the
        ``|``-separated genre field) and ``decade=*`` (from the year in the title). Movies
        without a rating are left out (count logged).
    """
    folder = Path(folder)
    require_files(folder, ML1M_FILES)
    ratings = read_delimited(folder / "ratings.dat", sep="::", names=["user", "item", "rating", "timestamp"])
    users = read_delimited(folder / "users.dat", sep="::", names=["user", "gender", "age", "occupation", "zip"])
    movies = read_delimited(folder / "movies.dat", sep="::", names=["item", "title", "genres"])
    users_path, movies_path = folder / "users.dat", folder / "movies.dat"
    users["user"] = int_column(users, "user", users_path)
    movies["item"] = int_column(movies, "item", movies_path)
    age_code = int_column(users, "age", users_path)
    occ = int_column(users, "occupation", users_path)
    bad_age = ~np.isin(age_code, list(AGE_BUCKETS))
    if bad_age.any():
        line = int(np.argmax(bad_age))
        raise DataError(f"{users_path}: line {line + 1}: unknown age code {int(age_code[line])} "
                        f"(expected one of {sorted(AGE_BUCKETS)})")
    bad_occ = (occ < 0) | (occ >= len(ML1M_OCCUPATIONS))
    if bad_occ.any():
        line = int(np.argmax(bad_occ))
        raise DataError(f"{users_path}: line {line + 1}: unknown occupation code {int(occ[line])} (expected 0-20)")
    user_table = pd.DataFrame({
        "user": users["user"], "age": [AGE_BUCKETS[a] for a in age_code], "gender": users["gender"].astype(str),
        "occupation": np.asarray(ML1M_OCCUPATIONS, dtype=object)[occ],
    })
    genres = movies["genres"].fillna("").astype(str).str.get_dummies(sep="|")
    extra = [g for g in genres.columns if g not in ML1M_GENRES]
    if extra:
        logger.info("%s: genres outside the ML-1M list kept as extra columns: %s", movies_path, extra)
    genres = genres.reindex(columns=list(ML1M_GENRES) + extra, fill_value=0).astype(np.float32)
    genres.columns = [f"genre={g}" for g in genres.columns]
    year = pd.to_numeric(movies["title"].astype(str).str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    item_table = pd.concat([movies[["item"]].reset_index(drop=True), genres.reset_index(drop=True)], axis=1)
    item_table["decade"] = _decade(year)
    return _assemble(ratings, folder / "ratings.dat", user_table, users_path, item_table, movies_path,
                     threshold=threshold, name=name)
