"""The distilled student on user-cold: where ``distill.student_split_defaults`` comes from (diagnostic).

The README's own-data walk-through table (MovieLens 100K as ``ratings.csv`` + ``users.csv`` +
``items.csv``, ratings >= 4, user-cold K = 3), as ``coldstart pretrain --split user-cold --model
lightgcn`` then ``coldstart distill --split user-cold`` build it, per seed: popularity, LightGCN, the
teacher initialised from it, and the 32-d hybrid student in three settings:

- ``id_dropout 0.3, lam 0.5``: the StudentConfig defaults (the student before this choice);
- ``id_dropout 0, lam 0.5``: no item-ID dropout (every item is warm on user-cold);
- ``id_dropout 0, lam 1``: pure distillation as well (``student_split_defaults("user-cold", True)``).

Every tower model validates the cold val users on the items they revealed (``support=``). Test
cold-user NDCG@20; one torch thread.

Example
-------
python scripts/make_own_data_example.py --out own_data
python benchmarks/student_user_cold.py --own-data own_data --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {"id_dropout 0.3, lam 0.5": {"id_dropout": 0.3, "lam": 0.5},
            "id_dropout 0, lam 0.5": {"id_dropout": 0.0, "lam": 0.5},
            "id_dropout 0, lam 1 (default)": {"id_dropout": 0.0, "lam": 1.0}}


def run_seed(own: Path, seed: int) -> dict[str, float]:
    """Test cold-user NDCG@20 of every row of the table for one seed."""
    from recsys_coldstart.baselines import Popularity
    from recsys_coldstart.cli.data import DataOptions
    from recsys_coldstart.cli.pretrain import fit_split
    from recsys_coldstart.distill import (
        Student,
        StudentConfig,
        TwoTowerTeacher,
        TwoTowerTeacherConfig,
    )
    from recsys_coldstart.evaluate import evaluate, metric_value
    from recsys_coldstart.pretrain import LightGCN

    opts = DataOptions(interactions=str(own / "ratings.csv"), user_features=str(own / "users.csv"),
                       item_features=str(own / "items.csv"), threshold=4, split="user-cold", seed=seed, k_support=3)
    s = opts.make_split(opts.load(echo=False))

    def ndcg(m) -> float:
        return float(metric_value(evaluate(m, s, segments=["cold-user"]), "ndcg", 20, "cold-user"))

    train, val, _ = fit_split(s, seed)  # as `coldstart pretrain` on a cold split: a warm hold-out
    base = LightGCN(random_state=seed, device="cpu").fit(train, val=val)
    fold = {"fold_in": "ridge", "fold_in_k": 3}
    teacher = TwoTowerTeacher(TwoTowerTeacherConfig(random_state=seed, device="cpu", **fold)).fit(
        s.train, val=s.val, init_factors=base, support=s.support)
    row = {"popularity": ndcg(Popularity().fit(s.train)), "lightgcn": ndcg(base), "teacher": ndcg(teacher)}
    for name, v in VARIANTS.items():
        cfg = StudentConfig(dim=32, hidden=(32,), item_ids=True, random_state=seed, device="cpu", **fold, **v)
        row[f"student: {name}"] = ndcg(Student(cfg).fit(s.train, val=s.val, teacher=teacher, support=s.support))
        print(f"seed {seed} student {name}: {row[f'student: {name}']:.4f}", flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    """Run the seeds and write ``results/student_user_cold.{json,md}``."""
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--own-data", required=True, help="folder made by scripts/make_own_data_example.py")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args(argv)
    import torch

    from recsys_coldstart.evaluate.results import machine, portable_command, versions

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = {seed: run_seed(Path(args.own_data), seed) for seed in args.seeds}
    command = portable_command(["python", "benchmarks/student_user_cold.py", *argv])
    out = {"command": command, "seconds": time.perf_counter() - t0, "machine": machine(), "versions": versions(),
           "metric": "test cold-user NDCG@20", "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "student_user_cold.json").write_text(json.dumps(out, indent=1))
    names = list(next(iter(rows.values())))
    md = ["# The distilled student on user-cold (own-data walk-through table)", "",
          f"Command: `{command}` (after `python scripts/make_own_data_example.py --out own_data`), "
          f"{out['seconds']:.0f} s, one torch thread.", "",
          f"Machine: {out['machine']}", "", f"Versions: {out['versions']}", "",
          "Test cold-user NDCG@20 (ml-100k ratings >= 4 as an own table, user-cold K = 3); every tower model "
          "validates the cold val users on the items they revealed. Student rows: the 32-d hybrid student "
          "(item IDs); `student_split_defaults` picks the last one. No row is tuned.", "",
          "| row | " + " | ".join(f"seed {s}" for s in rows) + " |", "| --- |" + " --- |" * len(rows)]
    for n in names:
        md.append(f"| {n} | " + " | ".join(f"{rows[s][n]:.4f}" for s in rows) + " |")
    (RESULTS / "student_user_cold.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
