"""Replay speed (issue 16): 10,000 cold users x 10 questions, median of 3 runs.

The setting of ``tests/elicit/test_replay.py::test_replay_100_users_10_questions_is_fast`` scaled
to 10,000 users: a synthetic user-cold split with an ml-100k-sized catalogue (1,682 items),
random item / user vectors with d = 64, and the heaviest policy paths (LinUCB, Thompson,
information gain, and the two new learned policies). Each run replays every test cold user
(10,000) for 10 questions, computing raw, prior and paired metrics after every question.

Usage: ``python benchmarks/elicitation_speed.py [--users 10000] [--repeats 3] [--policies ...]``.
Writes ``benchmarks/results/elicitation_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from recsys_coldstart.base import EmbeddingRecommender
from recsys_coldstart.data import make_synthetic
from recsys_coldstart.data.splits import user_cold_split
from recsys_coldstart.elicit import (
    InfoGainPolicy,
    InterviewTreePolicy,
    ItemSpace,
    LinUCBPolicy,
    LookaheadPolicy,
    RandomPolicy,
    ThompsonPolicy,
    replay,
)
from recsys_coldstart.elicit.replay import replay_users

POLICIES = {"random": RandomPolicy, "linucb": LinUCBPolicy, "thompson": ThompsonPolicy, "info-gain": InfoGainPolicy,
            "interview-tree": InterviewTreePolicy, "lookahead": LookaheadPolicy}


def main(argv: list[str] | None = None) -> int:
    """Run the timing and write the results files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--budget", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--policies", nargs="+", default=["random", "linucb", "thompson", "info-gain", "interview-tree",
                                                      "lookahead"])
    ap.add_argument("--out", default="benchmarks/results/elicitation_speed")
    args = ap.parse_args(argv)
    n_users = int(args.users / 0.4 * 1.05) + 200  # 80% cold, half of them test
    data = make_synthetic(n_users=n_users, n_items=1682, mean_ratings=60, random_state=1)
    split = user_cold_split(data, n_support=0, cold_frac=0.8, random_state=0)
    rng = np.random.default_rng(0)
    model = EmbeddingRecommender()
    model.user_factors_ = rng.normal(size=(data.n_users, 64)).astype(np.float32)
    model.item_factors_ = (0.05 * rng.normal(size=(data.n_items, 64))).astype(np.float32)
    users = replay_users(split)[: args.users]
    if len(users) < args.users:
        raise SystemExit(f"only {len(users)} test cold users with truth; raise n_users")
    space = ItemSpace.from_model(model, split.train)
    rows = []
    for name in args.policies:
        times = []
        for _ in range(args.repeats):
            policy = POLICIES[name]()  # fresh: the tree / calibration are fitted inside the timing
            t0 = time.perf_counter()
            replay(policy, model, split, budget=args.budget, users=users, space=space)
            times.append(time.perf_counter() - t0)
            print(f"{name}: run {len(times)} {times[-1]:.2f}s (load average {os.getloadavg()[0]:.1f})", flush=True)
        rows.append({"policy": name, "users": len(users), "budget": args.budget, "n_items": data.n_items, "dim": 64,
                     "seconds": times, "median_s": statistics.median(times)})
        print(f"{name:15s} median {statistics.median(times):7.2f}s  runs {[round(t, 2) for t in times]}", flush=True)
    cmd = "python benchmarks/elicitation_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    meta = {"command": cmd.strip(), "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "load_avg_at_end": os.getloadavg()[0], "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Elicitation replay speed (issue 16)", "",
             f"Command: `{meta['command']}` (OMP_NUM_THREADS={meta['OMP_NUM_THREADS']}, {meta['cpus']} CPUs shared "
             f"with other agents; load average {meta['load_avg_at_end']:.1f} at the end).", "",
             f"{len(users):,} test cold users x {args.budget} questions, synthetic user-cold split, "
             f"{data.n_items:,} items (ml-100k-sized), d = 64; each run computes raw, prior and paired metrics "
             "after every question. Median of "
             f"{args.repeats} runs; the target is < 60 s.", "",
             "| policy | median s | runs (s) | target < 60 s |", "| --- | --- | --- | --- |"]
    for r in rows:
        ok = "met" if r["median_s"] < 60 else "**missed**"
        lines.append(f"| {r['policy']} | {r['median_s']:.1f} | {', '.join(f'{t:.1f}' for t in r['seconds'])} | {ok} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
