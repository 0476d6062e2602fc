"""Elicitation benchmark on MovieLens-100K (issue 5): every policy, 3 seeds, budgets 0..10 and 20.

Protocol (shared/BENCHMARKS.md, "elicitation"): user-cold split (20% cold users, K = 0), item space
= implicit ALS fitted on the split's train part, the test cold users answer from their real
ratings (like >= 4, dislike < 4, unknown if unrated); NDCG@10 / Recall@20 on the query positives
not yet asked, after each question. Budget 0 is the prior (feature-shifted population mean); the
``feature-popularity`` row is the FeaturePopularity baseline on the same users. The
``oracle-likes`` row is a diagnostic ceiling, *not* a policy: it reads each user's answers and
asks random items the user likes, so it shows how much 1..B liked items can teach the posterior
under this protocol.

Usage::

    python benchmarks/elicitation_ml100k.py [--data-dir ../shared/data] [--seeds 0 1 2]

Writes ``benchmarks/results/elicitation_ml100k.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_coldstart.cli.elicit import (
    ALL_POLICIES,
    feature_popularity_reference,
    make_policies,
    plot_curves,
)
from recsys_coldstart.data.datasets import load_dataset
from recsys_coldstart.data.splits import user_cold_split
from recsys_coldstart.elicit import (
    BasePolicy,
    ItemSpace,
    LinUCBPolicy,
    PopularityPolicy,
    RandomPolicy,
    ThompsonPolicy,
    answer_matrix,
    replay,
)
from recsys_coldstart.elicit.replay import replay_users
from recsys_coldstart.evaluate.results import (
    machine,
    peak_rss_mb,
    to_markdown,
    to_records,
    versions,
    write_json,
)

RESULTS = Path(__file__).resolve().parent / "results"

NOTES = """## Reading the numbers

- **Asked items leave the truth.** The protocol scores each user's query positives *not yet
  asked*, so a question answered *like* removes a positive, often one the prior already ranked
  in the top 10. Asking what the current estimate likes most (greedy / LinUCB / Thompson as
  first written, `*-noskip` columns) and plain popularity asking therefore *lower* NDCG@10 below
  the prior: on these splits ~50% of their questions are known, most of them liked top-ranked
  items. Hence the model-based policies skip the user's current top-10 (`skip_top=10`, their
  default); random / popularity with the same rule are the `+skip10` columns.
- **Little to learn from 5 answers.** `oracle-likes` is not a policy: it reads the held-out
  answers and asks random items the user likes (5 guaranteed informative answers); it reaches
  only about +17% NDCG@10 over budget 0 after 5 questions. The issue's +25% target is above
  that ceiling for this posterior (Bayesian linear regression on ALS item vectors) and protocol.
  `elicitation_ceiling.md` widens the check (oracle likes asked without the top-10 rule, EASE and
  item-cosine recommenders): +21% at best for random likes, +27% only when the oracle asks each
  user's 5 least popular likes.
- **Unknown answers.** By the protocol an *unknown* answer teaches nothing. Reading it instead as
  "not interacted" (regression target 0, `+unknown0` columns) adds 0.01-0.03 NDCG@10 from budget
  3 on (+8.6% over budget 0 at budget 5); it is an option (`unknown_value=0.0`), not the default.
- **Settings** (noise variance 0.1, prior scale 1, like/dislike targets 1/0.5, known-probability
  exponent 1, LinUCB alpha 1, skip_top 10) were chosen on the *validation* cold users of seeds
  0-2 (`replay(..., which="val")`, scripts not kept): one-at-a-time changes (noise 0.03 / 0.3,
  prior scale 0.5 / 2, exponent 0.5 / 2, alpha 0.3 / 3, skip_top 5) moved mean NDCG@10 at budget
  5 by at most 0.015 there; dislike target 0 was worse by 0.01-0.03 (measured without the skip
  rule) and skip_top 0 worse by 0.05-0.10 for the four model-based policies (seeds 0-1).
- Differences between the four model-based policies (0.43 at budget 5) and random asking (0.42)
  are within one standard deviation over seeds (~0.03).
"""
NOTES = NOTES.splitlines()
BUDGETS = list(range(11)) + [20]


class OracleLikes(BasePolicy):
    """Diagnostic only: asks random items the user is known to like (reads the held-out answers)."""

    name = "oracle-likes"

    def __init__(self, answers: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.answers = answers

    def acquisition(self, state):
        return (self.answers == 1) * (1.0 + state.rng.random(self.answers.shape))


def _policy_configs() -> dict[str, dict]:
    from recsys_coldstart.io import config_to_dict

    cfg = {n: config_to_dict(p.config) for n, p in make_policies(["all"], 0).items()}
    cfg["random+skip10"] = config_to_dict(RandomPolicy(skip_top=10).config)
    cfg["popularity+skip10"] = config_to_dict(PopularityPolicy(skip_top=10).config)
    cfg["linucb-noskip"] = config_to_dict(LinUCBPolicy(skip_top=0).config)
    cfg["thompson-noskip"] = config_to_dict(ThompsonPolicy(skip_top=0).config)
    cfg["linucb+unknown0"] = config_to_dict(LinUCBPolicy(unknown_value=0.0).config)
    cfg["thompson+unknown0"] = config_to_dict(ThompsonPolicy(unknown_value=0.0).config)
    return cfg


def run_seed(data, seed: int) -> tuple[pd.DataFrame, dict]:
    from recsys_coldstart.baselines.implicit_mf import ALS

    split = user_cold_split(data, n_support=0, random_state=seed)
    t0 = time.perf_counter()
    model = ALS(random_state=seed).fit(split.train)
    fit_s = time.perf_counter() - t0
    space = ItemSpace.from_model(model, split.train)
    frames = []
    timing: dict[str, float] = {}
    policies = make_policies(["all"], seed)
    # the literature baselines with the model-based policies' "skip the current top-10" rule
    policies["random+skip10"] = RandomPolicy(skip_top=10, random_state=seed)
    policies["popularity+skip10"] = PopularityPolicy(skip_top=10, random_state=seed)
    # the model-based policies without it (ablation)
    policies["linucb-noskip"] = LinUCBPolicy(skip_top=0, random_state=seed)
    policies["thompson-noskip"] = ThompsonPolicy(skip_top=0, random_state=seed)
    # ablation: read "unknown" as "not interacted" (target 0) instead of learning nothing
    policies["linucb+unknown0"] = LinUCBPolicy(unknown_value=0.0, random_state=seed)
    policies["thompson+unknown0"] = ThompsonPolicy(unknown_value=0.0, random_state=seed)
    for name, policy in policies.items():
        t0 = time.perf_counter()
        frames.append(replay(policy, model, split, budget=max(BUDGETS), random_state=seed, space=space,
                             policy_name=name))
        timing[name] = time.perf_counter() - t0
    users = replay_users(split)
    frames.append(replay(OracleLikes(answer_matrix(split, users), random_state=seed), model, split,
                         budget=max(BUDGETS), random_state=seed, space=space))
    ref = feature_popularity_reference(split, seed)
    if ref is not None:
        frames.append(ref)
    df = pd.concat(frames, ignore_index=True)
    return df[df.budget.isin(BUDGETS)], {"als_fit_s": fit_s, "replay_s_budget20": timing,
                                         "n_users": int(len(users)), "d": int(model.item_factors_.shape[1])}


def speed(data, repeats: int = 3) -> dict[str, float]:
    """Median seconds of a replay of 100 test cold users x 10 questions, per policy (seed 0)."""
    from recsys_coldstart.baselines.implicit_mf import ALS

    # the default split has ~94 test cold users; 30% cold gives >= 100 with query positives
    split100 = user_cold_split(data, n_support=0, cold_frac=0.3, random_state=0)
    model = ALS(random_state=0).fit(split100.train)
    users = replay_users(split100)[:100]
    space = ItemSpace.from_model(model, split100.train)
    out = {}
    for name, policy in make_policies(["all"], 0).items():
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            replay(policy, model, split100, budget=10, users=users, space=space)
            ts.append(time.perf_counter() - t0)
        out[name] = float(np.median(ts))
    out["n_users"] = float(len(users))
    return out


def summarise(df: pd.DataFrame, metric: str, k: int) -> pd.DataFrame:
    sel = df[(df.metric == metric) & (df.k == k)]
    g = sel.groupby(["policy", "budget"]).value.agg(["mean", "std"]).reset_index()
    g["cell"] = [f"{m:.4f} ± {s:.4f}" for m, s in zip(g["mean"], g["std"].fillna(0.0), strict=True)]
    t = g.pivot(index="budget", columns="policy", values="cell").reset_index()
    order = (["budget", "feature-popularity"] + list(ALL_POLICIES)
             + ["random+skip10", "popularity+skip10", "linucb-noskip", "thompson-noskip", "linucb+unknown0",
                "thompson+unknown0", "oracle-likes"])
    return t[[c for c in order if c in t.columns]].fillna("")


def checks(df: pd.DataFrame) -> list[str]:
    nd = df[(df.metric == "ndcg") & (df.k == 10)].groupby(["policy", "budget"]).value.mean().unstack("policy")
    per_seed = df[(df.metric == "ndcg") & (df.k == 10)].pivot_table(index=["seed", "budget"], columns="policy",
                                                                     values="value")
    lines = []
    bandit_ok = True
    for b in [x for x in BUDGETS if x >= 3]:
        best_bandit = max(nd.loc[b, "linucb"], nd.loc[b, "thompson"])
        ok = best_bandit > nd.loc[b, "random"] and best_bandit > nd.loc[b, "popularity"]
        bandit_ok &= bool(ok)
        ps = per_seed.xs(b, level="budget")
        wins = int((ps[["linucb", "thompson"]].max(axis=1) > ps["random"]).sum())
        lines.append(f"| {b} | {nd.loc[b, 'linucb']:.4f} | {nd.loc[b, 'thompson']:.4f} | {nd.loc[b, 'random']:.4f} | "
                     f"{nd.loc[b, 'popularity']:.4f} | {'yes' if ok else 'no'} | {wins}/{len(ps)} |")
    fair_ok = all(max(nd.loc[b, "linucb"], nd.loc[b, "thompson"]) > max(nd.loc[b, "random+skip10"], nd.loc[b, "popularity+skip10"])
                  for b in BUDGETS if b >= 3)
    b0 = nd.loc[0, "random"]
    pols = [p for p in ALL_POLICIES if p in nd.columns]
    best5 = nd.loc[5, pols].idxmax()
    gain = nd.loc[5, best5] / b0 - 1
    head = ["## Checks of issue 5 (mean NDCG@10 over seeds)", "",
            f"- LinUCB or Thompson beat random and popularity at every budget >= 3: **{'PASS' if bandit_ok else 'FAIL'}**",
            f"- Same, against random / popularity that also skip the current top-10: **{'PASS' if fair_ok else 'FAIL'}**",
            f"- Best policy after 5 questions: **{best5}** {nd.loc[5, best5]:.4f} vs budget 0 {b0:.4f}: "
            f"**{gain:+.1%}** (target >= +25%: **{'PASS' if gain >= 0.25 else 'FAIL'}**)",
            f"- Ceiling diagnostic, oracle-likes after 5 liked items: {nd.loc[5, 'oracle-likes']:.4f} "
            f"({nd.loc[5, 'oracle-likes'] / b0 - 1:+.1%})", "",
            "| budget | linucb | thompson | random | popularity | bandit beats both (means) | seeds where the better bandit beats random |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    return head + lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("RECSYS_COLDSTART_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(RESULTS / "elicitation_ml100k"))
    args = ap.parse_args()
    data = load_dataset("ml-100k", args.data_dir)
    t_all = time.perf_counter()
    frames, info = [], {}
    for seed in args.seeds:
        df, meta = run_seed(data, seed)
        frames.append(df)
        info[f"seed{seed}"] = meta
    res = pd.concat(frames, ignore_index=True)
    spd = speed(data)
    secs = time.perf_counter() - t_all
    out = Path(args.out)
    command = " ".join(["python", "benchmarks/elicitation_ml100k.py"] + sys.argv[1:])
    # JSON: the curve metrics only (NDCG/Recall @10/@20, users, known rate), each record with its
    # policy's config; the run-wide provenance (command, versions, machine) goes once in a header
    # record (no "metric" key, so read_json skips it) to keep the file small.
    keep = res[(res.metric.isin(["ndcg", "recall"]) & res.k.isin([10, 20]))
               | res.metric.isin(["n_users", "known_rate"])].reset_index(drop=True)
    tidy = keep.rename(columns={"policy": "model"}).assign(dataset="ml-100k", split="user-cold",
                                                           segment="elicitation-b" + keep.budget.astype(str))
    recs = []
    for name, grp in tidy.groupby("model", sort=False):
        cfg = _policy_configs().get(name, {"diagnostic": True})
        part = to_records(grp, config=cfg, seconds=None, command=command)
        for r, b in zip(part, keep.loc[grp.index, "budget"], strict=True):
            r["policy"], r["budget"] = r["model"], int(b)
            for key in ("versions", "machine", "command"):
                r.pop(key, None)
        recs.extend(part)
    header = {"benchmark": "elicitation_ml100k", "command": command, "versions": versions(), "machine": machine(),
              "seconds": secs, "peak_rss_mb": peak_rss_mb(), "speed_100x10_s": spd, "runs": info,
              "item_space": "recsys_coldstart.baselines.implicit_mf.ALS defaults (random_state = seed)"}
    recs.insert(0, header)
    write_json(recs, out.with_suffix(".json"))
    main_rows = res[res.policy.isin(list(ALL_POLICIES) + ["feature-popularity", "oracle-likes"])]
    plot_curves(main_rows, out.with_suffix(".png"),
                title=f"Elicitation on ml-100k, ALS item space, seeds {args.seeds} (mean ± std)")
    md = ["# Elicitation on ml-100k (issue 5)", "",
          f"Command: `{command}`  ", f"Machine: {machine()}  ", f"Versions: {versions()}  ",
          f"Wall time: {secs:.0f} s, peak RSS {peak_rss_mb():.0f} MiB. Seeds {args.seeds}; "
          f"{info[f'seed{args.seeds[0]}']['n_users']} test cold users per seed; ALS d = "
          f"{info[f'seed{args.seeds[0]}']['d']}. Values: mean ± std over seeds.", "",
          f"Curve: `{out.with_suffix('.png').name}`", ""]
    md += checks(res) + [""] + NOTES + [""]
    md += ["## NDCG@10 by questions asked", "", to_markdown(summarise(res, "ndcg", 10)),
           "## Recall@20 by questions asked", "", to_markdown(summarise(res, "recall", 20)),
           "## Share of answers that were not *unknown* (known rate), budget 10", "",
           to_markdown(res[(res.metric == "known_rate") & (res.budget == 10)].groupby("policy").value.mean()
                       .round(3).reset_index()),
           "## Speed: replay of 100 test cold users x 10 questions (median of 3, seconds)", "",
           to_markdown(pd.DataFrame([{"policy": k, "seconds": round(v, 3)} for k, v in spd.items() if k != "n_users"]))]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
