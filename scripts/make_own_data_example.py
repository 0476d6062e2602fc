"""Write MovieLens 100K as "your own data": a ratings CSV plus user and item feature tables.

The README's "Your own data in the first hour" walk-through starts from these files, so it runs
from a fresh clone without committing any data (the MovieLens licence forbids redistribution):

    python scripts/make_own_data_example.py --data-dir $RECSYS_COLDSTART_DATA --out own_data

writes ``own_data/ratings.csv`` (``user,item,rating,timestamp``; ratings 1-5),
``own_data/users.csv`` (``user,age,gender,occupation``) and ``own_data/items.csv``
(``item,year`` + one 0/1 column per genre). Ids are MovieLens' own (1-based integers).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

GENRES = ["unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary", "drama",
          "fantasy", "film_noir", "horror", "musical", "mystery", "romance", "sci_fi", "thriller", "war", "western"]


def main(argv: list[str] | None = None) -> None:
    """Read ml-100k's ``u.data``, ``u.user`` and ``u.item`` and write the three CSV files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECSYS_COLDSTART_DATA"),
                    help="Folder holding ml-100k/ (default: $RECSYS_COLDSTART_DATA).")
    ap.add_argument("--out", default="own_data", help="Output folder (default own_data).")
    args = ap.parse_args(argv)
    if not args.data_dir:
        raise SystemExit("error: give --data-dir DIR or set RECSYS_COLDSTART_DATA")
    src = Path(args.data_dir) / "ml-100k"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ratings = pd.read_csv(src / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    ratings.to_csv(out / "ratings.csv", index=False)
    users = pd.read_csv(src / "u.user", sep="|", names=["user", "age", "gender", "occupation", "zip"])
    users.drop(columns=["zip"]).to_csv(out / "users.csv", index=False)
    items = pd.read_csv(src / "u.item", sep="|", encoding="latin-1", header=None)
    year = pd.to_datetime(items[2], format="%d-%b-%Y", errors="coerce").dt.year
    table = pd.DataFrame({"item": items[0], "year": year.fillna(year.median()).astype(int)})
    for i, g in enumerate(GENRES):
        table[g] = items[5 + i].astype(int)
    table.to_csv(out / "items.csv", index=False)
    print(f"{len(ratings):,} ratings, {len(users):,} users, {len(table):,} items -> {out}/"
          "{ratings,users,items}.csv")


if __name__ == "__main__":
    main()
