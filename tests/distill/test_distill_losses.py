"""Distillation and task losses against values computed by hand from their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from recsys_coldstart.distill.losses import (
    bpr_loss,
    rank_position_weights,
    ranking_distillation_loss,
)
from recsys_coldstart.towers.losses import (
    embedding_alignment_loss,
    pairwise_alignment_loss,
    sampled_softmax_loss,
    score_distillation_loss,
    score_regression_loss,
)


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(z):
    e = [math.exp(x) for x in z]
    return [x / sum(e) for x in e]


def test_score_distillation_matches_hand_kl():
    t = torch.tensor([[math.log(3.0), 0.0]])
    s = torch.tensor([[0.0, 0.0]])
    # p_t = (0.75, 0.25), p_s = (0.5, 0.5)
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert score_distillation_loss(s, t, temperature=1.0).item() == pytest.approx(want, abs=1e-6)
    # temperature T: KL of the softened distributions, times T^2
    T = 2.0
    want_t = T**2 * _kl(_softmax([math.log(3.0) / T, 0.0]), _softmax([0.0, 0.0]))
    assert score_distillation_loss(s, t, temperature=T).item() == pytest.approx(want_t, abs=1e-6)


def test_score_distillation_zero_when_equal_and_mask_drops_columns():
    z = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    assert score_distillation_loss(z, z, temperature=0.7).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.tensor([[0.0, 0.0, 5.0]])
    t = torch.tensor([[math.log(3.0), 0.0, -5.0]])
    mask = torch.tensor([[False, False, True]])
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert score_distillation_loss(s, t, mask=mask).item() == pytest.approx(want, abs=1e-6)


def test_score_distillation_teacher_gets_no_gradient():
    s = torch.zeros(1, 3, requires_grad=True)
    t = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
    score_distillation_loss(s, t).backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_rank_position_weights():
    w = rank_position_weights(3, lam=1.0)
    e = [math.exp(-1), math.exp(-2), math.exp(-3)]
    for a, b in zip(w.tolist(), [x / sum(e) for x in e], strict=True):
        assert a == pytest.approx(b, rel=1e-6)


def test_ranking_distillation_pointwise_and_pairwise():
    # pointwise: -sum_r w_r log sigma(s_r)
    s = torch.tensor([[0.0, 2.0]])
    w = torch.tensor([0.25, 0.75])
    want = -(0.25 * math.log(0.5) + 0.75 * math.log(1 / (1 + math.exp(-2.0))))
    assert ranking_distillation_loss(s, w).item() == pytest.approx(want, abs=1e-6)
    # pairwise with one negative of score 1: -sum_r w_r log sigma(s_r - 1)
    neg = torch.tensor([[1.0]])
    want = -(0.25 * math.log(1 / (1 + math.exp(1.0))) + 0.75 * math.log(1 / (1 + math.exp(-1.0))))
    assert ranking_distillation_loss(s, w, neg).item() == pytest.approx(want, abs=1e-6)


def test_embedding_alignment():
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    t = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    # mse: squared distances 2 and 2 -> mean 2; cosine: (1 - 0) and (1 - 1) -> mean 0.5
    assert embedding_alignment_loss(s, t, kind="mse").item() == pytest.approx(2.0)
    assert embedding_alignment_loss(s, t, kind="cosine").item() == pytest.approx(0.5, abs=1e-6)
    w = torch.tensor([1.0, 0.0])
    assert embedding_alignment_loss(s, t, kind="cosine", weight=w).item() == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="mse"):
        embedding_alignment_loss(s, t, kind="l1")


def test_task_losses():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    want = math.log(1 + math.exp(-1.0))
    assert sampled_softmax_loss(logits).item() == pytest.approx(want, abs=1e-6)
    # temperature 0.5 doubles the logits
    assert sampled_softmax_loss(logits, temperature=0.5).item() == pytest.approx(math.log(1 + math.exp(-2.0)), abs=1e-6)
    # masking the only negative leaves a certain positive: loss 0
    mask = torch.tensor([[False, True], [True, False]])
    assert sampled_softmax_loss(logits, mask=mask).item() == pytest.approx(0.0, abs=1e-6)
    # log-q correction: z = s - log q per column, q = (2, 1)
    want_q = 0.5 * (math.log(1 + 2 / math.e) + math.log(1 + 0.5 / math.e))
    log_q = torch.tensor([math.log(2.0), 0.0])
    assert sampled_softmax_loss(logits, log_q=log_q).item() == pytest.approx(want_q, abs=1e-6)
    assert bpr_loss(torch.tensor([1.0]), torch.tensor([0.0])).item() == pytest.approx(want, abs=1e-6)
    assert score_regression_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(2.5)
    # soft BCE with teacher gap 0 (target 0.5) and student gap 0: ln 2
    assert pairwise_alignment_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(2))
