"""Graph building blocks: adjacency, propagation, custom autograd, augmentations, losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_coldstart.graph import (
    BipartiteGraph,
    bpr_loss,
    edge_dropout_mask,
    info_nce,
    l2_reg,
    lightgcn_layers,
    lightgcn_propagate,
    node_dropout_mask,
    normalized_adjacency,
    random_walk_masks,
    spmm,
    to_edge_index,
    uniform_noise,
)


def _toy(seed: int = 0, n_users: int = 7, n_items: int = 5) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = (rng.random((n_users, n_items)) < 0.4).astype(np.float32)
    m[0] = 0  # an isolated user
    m[1, 0] = 1
    return sp.csr_matrix(m)


def _dense_adj(ui: np.ndarray) -> np.ndarray:
    nu, ni = ui.shape
    a = np.zeros((nu + ni, nu + ni))
    a[:nu, nu:] = ui
    a[nu:, :nu] = ui.T
    d = a.sum(1)
    dinv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1)), 0)
    return dinv[:, None] * a * dinv[None, :]


def test_adjacency_is_symmetric_normalised():
    ui = _toy()
    adj = normalized_adjacency(ui)
    assert adj.layout == torch.sparse_csr
    dense = adj.to_dense().numpy()
    np.testing.assert_allclose(dense, dense.T, atol=1e-7)
    np.testing.assert_allclose(dense, _dense_adj(ui.toarray()), atol=1e-6)
    # isolated user row is empty; the largest eigenvalue of D^-1/2 A D^-1/2 is 1
    assert np.abs(dense[0]).sum() == 0
    assert np.max(np.abs(np.linalg.eigvalsh(dense))) == pytest.approx(1.0, abs=1e-5)


def test_masked_adjacency_renormalises_kept_graph():
    ui = _toy(1)
    g = BipartiteGraph(ui)
    keep = torch.tensor([i % 2 == 0 for i in range(g.n_edges)])
    kept = np.zeros(ui.shape, np.float32)
    rows = g.edge_user.numpy()[keep.numpy()]
    cols = g.edge_item.numpy()[keep.numpy()]
    kept[rows, cols] = 1
    np.testing.assert_allclose(g.adjacency(keep).to_dense().numpy(), _dense_adj(kept), atol=1e-6)


def test_edge_index_matches_adjacency_pattern():
    ui = _toy()
    ei = to_edge_index(ui).numpy()
    assert ei.shape == (2, 2 * ui.nnz)
    dense = normalized_adjacency(ui).to_dense().numpy()
    assert set(zip(*np.nonzero(dense), strict=True)) == set(zip(ei[0], ei[1], strict=True))


def test_propagation_equals_dense_reference():
    ui = _toy(2)
    adj = normalized_adjacency(ui)
    a = _dense_adj(ui.toarray())
    x0 = np.random.default_rng(0).normal(size=(a.shape[0], 4))
    layers = [x0]
    for _ in range(3):
        layers.append(a @ layers[-1])
    out = lightgcn_propagate(adj, torch.tensor(x0, dtype=torch.float32), 3).numpy()
    np.testing.assert_allclose(out, np.mean(layers, 0), atol=1e-5)
    out_skip = lightgcn_propagate(adj, torch.tensor(x0, dtype=torch.float32), 3, include_input=False).numpy()
    np.testing.assert_allclose(out_skip, np.mean(layers[1:], 0), atol=1e-5)
    per_layer = lightgcn_layers([adj] * 3, torch.tensor(x0, dtype=torch.float32), 3)
    assert len(per_layer) == 4


def test_symmetric_spmm_gradient_matches_dense():
    ui = _toy(3)
    adj = normalized_adjacency(ui)
    a = torch.tensor(_dense_adj(ui.toarray()), dtype=torch.float64)
    x = torch.randn(a.shape[0], 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = torch.randn_like(x)
    xs = x.clone().float().requires_grad_(True)
    (spmm(adj, spmm(adj, xs)) * w.float()).sum().backward()
    xd = x.clone().requires_grad_(True)
    (a @ (a @ xd) * w).sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xd.grad.numpy(), atol=1e-5)


def test_edge_dropout_rate_and_shapes():
    gen = torch.Generator().manual_seed(0)
    m = edge_dropout_mask(20000, 0.3, gen)
    assert m.shape == (20000,) and m.dtype == torch.bool
    assert abs(1 - m.float().mean().item() - 0.3) < 0.02
    walks = random_walk_masks(100, 0.5, 3, gen)
    assert len(walks) == 3 and not torch.equal(walks[0], walks[1])
    with pytest.raises(ValueError):
        edge_dropout_mask(5, 1.0)


def test_node_dropout_removes_all_edges_of_dropped_nodes():
    ui = sp.random(200, 150, density=0.05, format="csr", random_state=0)
    g = BipartiteGraph(ui)
    keep = node_dropout_mask(g, 0.2, torch.Generator().manual_seed(1))
    assert keep.shape == (g.n_edges,)
    deg_full = g.degrees()
    deg_kept = g.degrees(keep)
    dropped_users = (deg_kept[: g.n_users] == 0) & (deg_full[: g.n_users] > 0)
    # an edge kept never touches a dropped user
    assert not dropped_users[g.edge_user[keep]].any()
    # survival of an edge ~ (1 - 0.2)^2
    assert abs(keep.float().mean().item() - 0.64) < 0.06


def test_uniform_noise_norm_and_sign():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    y = uniform_noise(x, 0.1, torch.Generator().manual_seed(1))
    delta = y - x
    assert y.shape == x.shape
    np.testing.assert_allclose(delta.norm(dim=1).numpy(), 0.1, atol=1e-5)
    assert ((delta * x) >= 0).all()  # same hyper-octant as x


def test_bpr_loss_hand_computed():
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([1.0, 1.0])
    expected = (-math.log(1 / (1 + math.exp(-1))) - math.log(1 / (1 + math.exp(1)))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_hand_computed():
    v1 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    v2 = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    tau = 0.5
    s = np.array([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]]) / tau
    expected = np.mean([-(s[n, n] - np.log(np.exp(s[n]).sum())) for n in range(2)])
    assert info_nce(v1, v2, tau).item() == pytest.approx(expected, rel=1e-6)


def test_l2_reg_hand_computed():
    a = torch.tensor([[1.0, 2.0]])
    b = torch.tensor([[3.0, 0.0]])
    assert l2_reg(a, b, batch_size=2).item() == pytest.approx(0.5 * (5 + 9) / 2)
