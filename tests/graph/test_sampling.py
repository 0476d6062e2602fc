"""Neighbour-sampled subgraphs: known answer at full fan-out, bounded size, PyG loader glue, training."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.sampler import NodeSamplerInput

from recsys_coldstart.baselines.popularity import Popularity
from recsys_coldstart.data import warm_split
from recsys_coldstart.data.datasets.synthetic_graph import make_synthetic_graph
from recsys_coldstart.evaluate import evaluate, metric_value
from recsys_coldstart.graph import BipartiteGraph, layer_mean, lightgcn_layers
from recsys_coldstart.graph.losses import bpr_loss, l2_reg
from recsys_coldstart.graph.sampling import (
    BipartiteNeighborSampler,
    sampled_layers,
    sampled_noise_offsets,
)
from recsys_coldstart.pretrain import SGL, LightGCN, SimGCL, XSimGCL

N_USERS, N_ITEMS, DIM = 120, 80, 8


@pytest.fixture(scope="module")
def graph():
    ui = sp.random(N_USERS, N_ITEMS, density=0.06, format="csr", random_state=3, dtype=np.float32)
    ui.data[:] = 1
    ui[5] = 0  # a user and an item without edges (cold rows)
    ui[:, 7] = 0
    ui.eliminate_zeros()
    return BipartiteGraph(ui)


def _seeds():
    return torch.tensor([0, 3, 5, 9, N_USERS + 1, N_USERS + 7, N_USERS + 40])


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_full_fan_out_equals_full_propagation(graph, n_layers):
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(graph.n_nodes, DIM, generator=gen)
    sampler = BipartiteNeighborSampler(graph, [-1] * n_layers, generator=gen)
    seeds = _seeds()
    blocks = sampler.sample_blocks(seeds)
    assert torch.equal(blocks.node[: len(seeds)], seeds)
    layers = sampled_layers(blocks, emb[blocks.node])
    full = lightgcn_layers(graph.adjacency(), emb, n_layers)
    for k in range(n_layers + 1):
        torch.testing.assert_close(layers[k][: len(seeds)], full[k][seeds], rtol=1e-5, atol=1e-6)


def test_full_fan_out_loss_and_gradients_equal_full_graph(graph):
    """One LightGCN BPR + L2 step: the sampled loss and the embedding gradients are the full graph's."""
    gen = torch.Generator().manual_seed(1)
    users, pos, neg = torch.tensor([0, 3, 9, 3]), torch.tensor([1, 2, 40, 7]), torch.tensor([7, 11, 2, 60])
    emb_u = torch.randn(graph.n_users, DIM, generator=gen, requires_grad=True)
    emb_i = torch.randn(graph.n_items, DIM, generator=gen, requires_grad=True)

    def loss_of(final, x0, u, p, n):
        bpr = bpr_loss((final[u] * final[p]).sum(1), (final[u] * final[n]).sum(1))
        return bpr + 1e-2 * l2_reg(x0[u], x0[p], x0[n], batch_size=len(u))

    emb0 = torch.cat([emb_u, emb_i])
    final = layer_mean(lightgcn_layers(graph.adjacency(), emb0, 3))
    nu = graph.n_users
    ref = loss_of(final, emb0, users, pos + nu, neg + nu)
    g_ref = torch.autograd.grad(ref, [emb_u, emb_i])

    seeds, inv = torch.unique(torch.cat([users, pos + nu, neg + nu]), return_inverse=True)
    blocks = BipartiteNeighborSampler(graph, [-1, -1, -1], generator=gen).sample_blocks(seeds)
    x0 = blocks.gather(emb_u, emb_i, nu)
    layers = sampled_layers(blocks, x0)
    fin = layer_mean([x[: blocks.n_seeds] for x in layers])
    b = len(users)
    got = loss_of(fin, x0, inv[:b], inv[b:2 * b], inv[2 * b:])
    g_got = torch.autograd.grad(got, [emb_u, emb_i])
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    for a, r in zip(g_got, g_ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-6)


def test_partial_fan_out_is_unbiased_for_one_layer(graph):
    """With replacement + ``d_i / s_i`` scaling: the mean of many sampled layer-1 rows approaches ``Â x``."""
    gen = torch.Generator().manual_seed(2)
    emb = torch.randn(graph.n_nodes, DIM, generator=gen)
    sampler = BipartiteNeighborSampler(graph, [2], generator=gen)
    seeds = _seeds()
    acc = torch.zeros(len(seeds), DIM)
    n = 3000
    for _ in range(n):
        blocks = sampler.sample_blocks(seeds)
        acc += sampled_layers(blocks, emb[blocks.node])[1][: len(seeds)]
    ref = lightgcn_layers(graph.adjacency(), emb, 1)[1][seeds]
    assert (acc / n - ref).abs().max() < 0.06 * ref.abs().max()


def test_sample_size_bounded_by_fan_out(graph):
    fan_out = [3, 2, 2]
    seeds = _seeds()
    out = BipartiteNeighborSampler(graph, fan_out, generator=torch.Generator().manual_seed(0)).sample_from_nodes(
        NodeSamplerInput(input_id=None, node=seeds))
    bound = len(seeds) * np.cumprod(fan_out)
    assert all(e <= b for e, b in zip(out.num_sampled_edges, bound, strict=True))
    assert out.node[: len(seeds)].tolist() == seeds.tolist()
    assert len(torch.unique(out.node)) == len(out.node)
    # every sampled edge is a graph edge, pointing from a sampled node to a node of the previous hop
    adj = graph.adjacency().to_dense()
    assert bool((adj[out.node[out.col], out.node[out.row]] > 0).all())
    assert torch.equal(graph._col[out.edge], out.node[out.row])


def test_sampler_runs_in_pyg_node_loader(graph):
    """The sampler is a PyG ``BaseSampler``: PyG's ``NodeLoader`` batches seeds through it."""
    data = Data(edge_index=torch.stack([graph._entry_row, graph._col]), num_nodes=graph.n_nodes)
    sampler = BipartiteNeighborSampler(graph, [4, 4], generator=torch.Generator().manual_seed(0))
    loader = NodeLoader(data, node_sampler=sampler, input_nodes=torch.arange(10), batch_size=5)
    batches = list(loader)
    assert len(batches) == 2
    first = batches[0]
    assert first.n_id[:5].tolist() == [0, 1, 2, 3, 4] and first.edge_index.shape[0] == 2
    src, dst = first.n_id[first.edge_index[0]], first.n_id[first.edge_index[1]]
    assert bool((graph.adjacency().to_dense()[dst, src] > 0).all())


def test_sampled_noise_offsets_at_full_fan_out_match_full(graph):
    """SimGCL's offsets on the blocks equal the full-graph recursion given the same uniform draws."""
    from recsys_coldstart.graph.augment import noise_from_uniform

    gen = torch.Generator().manual_seed(4)
    emb = torch.randn(graph.n_nodes, DIM, generator=gen)
    seeds = _seeds()
    blocks = BipartiteNeighborSampler(graph, [-1, -1], generator=gen).sample_blocks(seeds)
    layers = sampled_layers(blocks, emb[blocks.node])
    rows = torch.arange(len(seeds))
    state = torch.Generator().manual_seed(9)
    off1, off2 = sampled_noise_offsets(blocks, layers, 0.1, state, rows)
    # full-graph recursion with the same draws scattered to the sampled nodes' global rows
    replay = torch.Generator().manual_seed(9)
    adj = graph.adjacency()
    full_layers = lightgcn_layers(adj, emb, 2)
    offs = []
    prev = None
    for k in (1, 2):
        n_k = layers[k].shape[0]
        u_local = torch.rand((2, n_k, DIM), generator=replay)
        cur = []
        for v in range(2):
            u = torch.zeros(graph.n_nodes, DIM)
            u[blocks.node[:n_k]] = u_local[v]
            if prev is None:
                cur.append(noise_from_uniform(u, full_layers[1], 0.1))
            else:
                p = torch.sparse.mm(adj, prev[v])
                cur.append(p + noise_from_uniform(u, full_layers[k] + p, 0.1))
        offs.append(cur)
        prev = cur
    for v, got in enumerate((off1, off2)):
        ref = (offs[0][v] + offs[1][v])[seeds] / 2
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_config_and_unsupported_models_refuse():
    with pytest.raises(ValueError, match="sampler"):
        LightGCN(sampler="random")
    with pytest.raises(ValueError, match="fan_out"):
        LightGCN(sampler="neighbor", n_layers=2, fan_out=(10, 10, 10))
    with pytest.raises(ValueError, match="fan_out"):
        LightGCN(sampler="neighbor", n_layers=1, fan_out=(0,))
    data = make_synthetic_graph(3000, n_clusters=4, random_state=0)
    for cls in (SGL, XSimGCL):
        with pytest.raises(ValueError, match="does not support sampler='neighbor'"):
            cls(sampler="neighbor", n_epochs=1).fit(data)


@pytest.fixture(scope="module")
def synth_split():
    return warm_split(make_synthetic_graph(40_000, n_clusters=8, random_state=0), random_state=0)


@pytest.mark.parametrize("cls", [LightGCN, SimGCL])
def test_sampled_training_beats_popularity_and_is_deterministic(cls, synth_split):
    s = synth_split
    pop = metric_value(evaluate(Popularity().fit(s.train), s), "recall", 20, "warm")
    kw = dict(sampler="neighbor", fan_out=(10, 5, 5), lr=1e-2, batch_size=1024, n_epochs=4, device="cpu",
              random_state=0)
    if cls is SimGCL:
        kw["cl_weight"] = 0.02
    model = cls(**kw).fit(s.train)
    rec = metric_value(evaluate(model, s), "recall", 20, "warm")
    assert rec > 1.2 * pop, (rec, pop)
    again = cls(**{**kw, "n_epochs": 1}).fit(s.train)
    once = cls(**{**kw, "n_epochs": 1}).fit(s.train)
    np.testing.assert_array_equal(again.item_emb0_, once.item_emb0_)
