"""``coldstart demo`` (the README's main job) end to end on the embedded synthetic data."""

from __future__ import annotations

import re

import torch

from recsys_coldstart.cli import main


def test_demo_runs_every_stage_and_learned_models_beat_popularity(capsys):
    n = torch.get_num_threads()
    try:
        assert main(["demo", "--seed", "0"]) == 0
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    for stage in range(1, 6):
        assert f"== {stage}. " in out
    assert "done in" in out

    def ndcg(pattern: str) -> float:
        m = re.search(pattern + r".*?(\d\.\d{4})", out)
        assert m, pattern
        return float(m.group(1))

    pop_warm = ndcg(r"NDCG@20 popularity warm")
    assert ndcg(r"NDCG@20 als warm") > pop_warm
    assert ndcg(r"XSimGCL trained .*? warm NDCG@20") > pop_warm
    assert ndcg(r"fold-in of cold users .*? cold-user NDCG@20") > ndcg(r"NDCG@20 popularity cold-user")
    assert ndcg(r"teacher: .*? cold-item NDCG@20") > ndcg(r"NDCG@20 popularity cold-item")
