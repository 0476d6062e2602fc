"""Neighbour-sampled subgraphs of the user-item graph, for graphs too big for full propagation.

Full-graph LightGCN training propagates the whole graph on every mini-batch, so one epoch costs
``O(nnz / batch_size * n_layers * nnz * dim)`` and the autograd memory is ``O(n_layers *
(n_users + n_items) * dim)``. Sampled training (GraphSAGE, Hamilton, Ying & Leskovec, NeurIPS
2017; PinSage, Ying et al., KDD 2018) propagates only an ``n_layers``-hop neighbourhood of the
batch's users and items, with at most ``fan_out[h]`` neighbours per node at hop ``h``, so the work
and activation memory of a batch are bounded by ``batch_size * prod(fan_out)`` whatever the graph
size.

torch-geometric glue: :class:`BipartiteNeighborSampler` is a
:class:`torch_geometric.sampler.BaseSampler`, so it plugs into PyG's
:class:`~torch_geometric.loader.NodeLoader` / :class:`~torch_geometric.loader.LinkLoader` (the
loaders behind ``NeighborLoader`` / ``LinkNeighborLoader``) and returns PyG's
:class:`~torch_geometric.sampler.SamplerOutput`. Why not PyG's own ``NeighborSampler``: in
torch-geometric 2.8 its sampling kernel is ``torch.ops.pyg.neighbor_sample`` (pyg-lib) or
``torch.ops.torch_sparse.neighbor_sample`` (torch-sparse) and it raises ``ImportError`` without
either; we do not depend on those compiled extensions, and their kernels draw from the global
torch RNG (our rule: randomness is explicit). The sampler here is a few vectorised torch ops over
the CSR that :class:`~recsys_coldstart.graph.convert.BipartiteGraph` already holds (the graph is
symmetric, so its CSR is also the CSC PyG samplers read), with a ``torch.Generator``.

Sampling rule (per node expanded at hop ``h``, degree ``d``, fan-out ``f``): every neighbour when
``d <= f`` or ``f < 0``; otherwise ``f`` neighbours drawn uniformly *with replacement*.

Normalisation (global degrees, unbiased): the edge ``j -> i`` carries
``w_ij = d_i / (s_i sqrt(d_i d_j))`` with ``d`` the *global* degrees and ``s_i`` the number of
neighbours sampled for ``i``. ``sum_{j in S(i)} w_ij x_j`` is then an unbiased estimate of the
full ``(Â x)_i = sum_{j in N(i)} x_j / sqrt(d_i d_j)`` (``S(i)`` is a uniform sample with
replacement), and when every neighbour is taken (``s_i = d_i``) it is exactly ``Â x`` at ``i``:
with full fan-out the seeds' layer embeddings equal full propagation's (tests check this to float
tolerance). Degrees recomputed on the sampled edges would bias every layer towards low-degree
nodes and would not reproduce full propagation.

Layered (trimmed) propagation: nodes come out ordered by hop (seeds first) and edges by the hop of
their destination, so the sampled adjacency is one CSR whose row prefixes are the per-layer
blocks (PyG's ``trim_to_layer`` idea): layer ``k`` is computed only on the nodes within
``L - k`` hops of the seeds, which is all the seeds' layer-``L`` representation needs. A node at
hop ``h`` has exact (full fan-out) layer-``k`` embeddings for ``h + k <= L``.

Memory: per batch ``O(sampled edges + sampled nodes * dim)``; the sampler keeps the graph's
CSR, the global degrees and a ``(n_nodes,)`` relabelling map (graph-size state that full
training holds too).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

from recsys_coldstart.graph.augment import noise_from_uniform
from recsys_coldstart.graph.convert import BipartiteGraph

__all__ = ["BipartiteNeighborSampler", "SampledBlocks", "merge_rows", "sampled_layers", "sampled_noise_offsets",
           "split_node_ids"]


class BipartiteNeighborSampler(BaseSampler):
    """Uniform ``fan_out``-neighbour sampler over a :class:`BipartiteGraph` (a PyG ``BaseSampler``).

    Nodes are the homogeneous ids of the bipartite graph: users ``0..n_users-1``, then items
    ``n_users..n_users+n_items-1``.

    Parameters
    ----------
    graph : BipartiteGraph
    fan_out : sequence of int
        Neighbours per node at hop 1, 2, ... (PyG's ``num_neighbors``); ``-1`` = all.
    generator : torch.Generator, optional
        Source of the sampling randomness (on the graph's device).

    Examples
    --------
    >>> sampler = BipartiteNeighborSampler(graph, [10, 10, 10], generator=gen)   # doctest: +SKIP
    >>> out = sampler.sample_from_nodes(NodeSamplerInput(None, seeds))            # doctest: +SKIP
    >>> blocks = SampledBlocks.from_output(out, graph.degrees(), n_layers=3)      # doctest: +SKIP
    """

    def __init__(self, graph: BipartiteGraph, fan_out: Sequence[int], *,
                 generator: torch.Generator | None = None) -> None:
        self.fan_out = [int(f) for f in fan_out]
        if any(f == 0 or f < -1 for f in self.fan_out):
            raise ValueError(f"fan_out entries must be >= 1 or -1 (all neighbours), got {list(fan_out)}")
        self.graph = graph
        self.num_nodes = graph.n_nodes
        self.generator = generator
        self._crow, self._col = graph._crow, graph._col
        self._local = torch.full((graph.n_nodes,), -1, dtype=torch.int64, device=graph.device)
        self._degrees: torch.Tensor | None = None

    def sample_blocks(self, seeds: torch.Tensor) -> SampledBlocks:
        """Sample around ``seeds`` (unique global node ids, int64 of shape (s,)) and cut the
        per-layer blocks (:meth:`SampledBlocks.from_output`, global-degree weights)."""
        if self._degrees is None:
            self._degrees = self.graph.degrees()
        out = self.sample_from_nodes(NodeSamplerInput(input_id=None, node=seeds))
        return SampledBlocks.from_output(out, self._degrees, len(self.fan_out))

    # -- PyG BaseSampler interface ---------------------------------------------------------
    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        """Sample the ``len(fan_out)``-hop neighbourhood of ``index.node`` (global node ids).

        Returns
        -------
        SamplerOutput
            ``node`` (global ids, the seeds first, then each hop's new nodes),
            ``row`` / ``col`` (local source / destination of every sampled edge, grouped by
            destination in node order), ``edge`` (positions in the graph's CSR), and the per-hop
            ``num_sampled_nodes`` / ``num_sampled_edges``.
        """
        return node_sample(index, self._sample)

    def sample_from_edges(self, index: EdgeSamplerInput,
                          neg_sampling: NegativeSampling | None = None) -> SamplerOutput:
        """Sample around both endpoints of the seed links (PyG's ``edge_sample`` glue; its negative
        sampling draws from the global torch RNG, the trainer draws its own negatives instead)."""
        return edge_sample(index, self._sample, self.num_nodes, False, None, neg_sampling)

    @property
    def edge_permutation(self) -> None:
        """None: edge ids are positions in the graph's own CSR (no permutation)."""
        return None

    # -- the sampler ------------------------------------------------------------------------
    def _sample(self, seed: torch.Tensor, seed_time: torch.Tensor | None = None, **kwargs) -> SamplerOutput:
        if seed_time is not None:
            raise ValueError("BipartiteNeighborSampler does not do temporal sampling (seed_time given)")
        dev = self._crow.device
        seed = torch.as_tensor(seed, dtype=torch.int64, device=dev)
        uniq = torch.unique(seed)
        if len(uniq) != len(seed):
            raise ValueError("seed nodes must be unique")
        local = self._local
        nodes = [seed]
        local[seed] = torch.arange(len(seed), device=dev)
        n_total, frontier_start = len(seed), 0
        frontier = seed
        rows, cols, edges = [], [], []
        num_nodes, num_edges = [len(seed)], []
        try:
            for f in self.fan_out:
                start = self._crow[frontier]
                deg = self._crow[frontier + 1] - start
                take = deg if f < 0 else deg.clamp(max=f)
                total = int(take.sum())
                seg_start = torch.cumsum(take, 0) - take
                dst = torch.repeat_interleave(torch.arange(frontier_start, frontier_start + len(frontier),
                                                          device=dev), take, output_size=total)
                within = torch.arange(total, device=dev) - torch.repeat_interleave(seg_start, take, output_size=total)
                deg_rep = torch.repeat_interleave(deg, take, output_size=total)
                sampled = deg_rep > f
                if f > 0 and bool(sampled.any()):
                    draw = (torch.rand(total, generator=self.generator, device=dev) * deg_rep).long()
                    within = torch.where(sampled, torch.minimum(draw, deg_rep - 1), within)
                e = torch.repeat_interleave(start, take, output_size=total) + within
                nbr = self._col[e]
                new = torch.unique(nbr[local[nbr] < 0])
                local[new] = torch.arange(n_total, n_total + len(new), device=dev)
                rows.append(local[nbr])
                cols.append(dst)
                edges.append(e)
                nodes.append(new)
                num_nodes.append(len(new))
                num_edges.append(total)
                frontier_start, n_total, frontier = n_total, n_total + len(new), new
        finally:
            for x in nodes:
                local[x] = -1
        empty = torch.zeros(0, dtype=torch.int64, device=dev)
        return SamplerOutput(node=torch.cat(nodes), row=torch.cat(rows) if rows else empty,
                             col=torch.cat(cols) if cols else empty, edge=torch.cat(edges) if edges else empty,
                             num_sampled_nodes=num_nodes, num_sampled_edges=num_edges)


class _BlockSpMM(torch.autograd.Function):
    """``Y = A X`` for one sparse block (CSR); the backward multiplies by the stored ``Aᵀ`` (CSR)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # noqa: D102
        return None, None, torch.sparse.mm(ctx.a_t, grad_out.contiguous())


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False)


@dataclass
class SampledBlocks:
    """The per-layer sparse blocks of one sampled subgraph.

    Attributes
    ----------
    node : torch.Tensor of int64, shape (n_sampled,)
        Global node ids (users, then items offset by ``n_users``), seeds first, then hop by hop.
    n_seeds : int
    hop_nodes : list of int
        ``hop_nodes[h]``: nodes within ``h`` hops of the seeds (a prefix of ``node``).
    blocks : list of (torch.Tensor, torch.Tensor)
        ``blocks[k-1] = (A_k, A_kᵀ)``: sparse CSR of shape ``(hop_nodes[L-k], hop_nodes[L-k+1])``
        computing layer ``k`` on the nodes within ``L - k`` hops, and its transpose.
    n_edges : int
        Sampled edges.
    """

    node: torch.Tensor
    n_seeds: int
    hop_nodes: list[int]
    blocks: list[tuple[torch.Tensor, torch.Tensor]]
    n_edges: int

    @classmethod
    def from_output(cls, out: SamplerOutput, degrees: torch.Tensor, n_layers: int) -> SampledBlocks:
        """Weight the sampled edges (see the module docstring) and cut the per-layer blocks.

        Parameters
        ----------
        out : SamplerOutput
            From :meth:`BipartiteNeighborSampler.sample_from_nodes` with ``n_layers`` hops.
        degrees : torch.Tensor of float32, shape (n_nodes,)
            Global node degrees (:meth:`BipartiteGraph.degrees`).
        n_layers : int
        """
        n_hops = len(out.num_sampled_edges or [])
        if n_hops != n_layers:
            raise ValueError(f"the sample has {n_hops} hops for {n_layers} layers: fan_out needs one entry per layer")
        node, src, dst = out.node, out.row, out.col
        dev = node.device
        hop_nodes = torch.cumsum(torch.tensor(out.num_sampled_nodes), 0).tolist()
        n = hop_nodes[-1]
        counts = torch.bincount(dst, minlength=n)
        crow = torch.zeros(n + 1, dtype=torch.int64, device=dev)
        crow[1:] = torch.cumsum(counts, 0)
        deg = degrees[node]
        d_dst = deg[dst]
        s_dst = counts[dst].to(deg.dtype)
        w = d_dst.rsqrt() * deg[src].rsqrt() * d_dst / s_dst  # = d_i / (s_i sqrt(d_i d_j)); degrees >= 1 on edges
        order = torch.argsort(src, stable=True)  # one sort; each block's transpose filters it
        blocks = []
        for k in range(1, n_layers + 1):
            n_out, n_in = hop_nodes[n_layers - k], hop_nodes[n_layers - k + 1]
            m = int(crow[n_out])
            a = _csr(crow[: n_out + 1], src[:m], w[:m], (n_out, n_in))
            o = order[order < m]
            t_crow = torch.zeros(n_in + 1, dtype=torch.int64, device=dev)
            t_crow[1:] = torch.cumsum(torch.bincount(src[:m], minlength=n_in), 0)
            a_t = _csr(t_crow, dst[o], w[o], (n_in, n_out))
            blocks.append((a, a_t))
        return cls(node=node, n_seeds=int(out.num_sampled_nodes[0]), hop_nodes=hop_nodes, blocks=blocks,
                   n_edges=int(len(src)))

    def gather(self, user_emb: torch.Tensor, item_emb: torch.Tensor, n_users: int) -> torch.Tensor:
        """Layer-0 embeddings of the sampled nodes, shape (n_sampled, dim); differentiable.

        Reads only the sampled rows of the two tables (never concatenates the full tables).
        """
        (u_pos, users), (i_pos, items) = split_node_ids(self.node, n_users)
        return merge_rows(u_pos, user_emb[users], i_pos, item_emb[items])


def split_node_ids(node: torch.Tensor, n_users: int) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                                   tuple[torch.Tensor, torch.Tensor]]:
    """Split global node ids (users ``< n_users``, items offset by ``n_users``) by table.

    Parameters
    ----------
    node : torch.Tensor of int64, shape (n,)
    n_users : int

    Returns
    -------
    ((u_pos, users), (i_pos, items)) : tensors of int64
        ``u_pos`` (n_u,): positions in ``node`` of the users, ``users`` (n_u,): their user-table rows;
        ``i_pos``, ``items`` (n_i,): the same for items (item-table rows).
    """
    is_item = node >= n_users
    u_pos, i_pos = (~is_item).nonzero().squeeze(1), is_item.nonzero().squeeze(1)
    return (u_pos, node[u_pos]), (i_pos, node[i_pos] - n_users)


def merge_rows(u_pos: torch.Tensor, user_rows: torch.Tensor, i_pos: torch.Tensor,
               item_rows: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_node_ids`: rows back in node order, shape (n_u + n_i, dim); differentiable.

    ``user_rows`` (n_u, dim) and ``item_rows`` (n_i, dim) are the rows at positions ``u_pos`` / ``i_pos``.
    """
    x = user_rows.new_zeros((len(u_pos) + len(i_pos), user_rows.shape[1]))
    x = x.index_put((u_pos,), user_rows)
    return x.index_put((i_pos,), item_rows)


def sampled_layers(blocks: SampledBlocks, x0: torch.Tensor) -> list[torch.Tensor]:
    """LightGCN layers on a sampled subgraph: ``[E^(0), E^(1), ..., E^(L)]``.

    Parameters
    ----------
    blocks : SampledBlocks
    x0 : torch.Tensor, shape (n_sampled, dim)
        Layer-0 embeddings of ``blocks.node`` (:meth:`SampledBlocks.gather`).

    Returns
    -------
    list of torch.Tensor
        ``E^(k)`` of shape ``(hop_nodes[L-k], dim)``: the nodes within ``L - k`` hops; the first
        ``n_seeds`` rows of every layer are the seeds'.
    """
    out = [x0]
    x = x0
    for a, a_t in blocks.blocks:
        x = _BlockSpMM.apply(a, a_t, x) if x.requires_grad else torch.sparse.mm(a, x)
        out.append(x)
    return out


def sampled_noise_offsets(blocks: SampledBlocks, layers: list[torch.Tensor], eps: float,
                          generator: torch.Generator | None, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SimGCL's two noise offsets ``mean_{k=1..L} N^(k)`` at seed rows ``rows``, on a sampled subgraph.

    The same recursion as :func:`recsys_coldstart.pretrain.simgcl.noise_offsets`
    (``N^(1) = ε sign(E^(1)) ⊙ normalize(u_1)``,
    ``N^(k) = A_k N^(k-1) + ε sign(E^(k) + A_k N^(k-1)) ⊙ normalize(u_k)``) over the trimmed blocks,
    without autograd.

    Parameters
    ----------
    blocks : SampledBlocks
    layers : list of torch.Tensor
        From :func:`sampled_layers`.
    eps : float
    generator : torch.Generator, optional
    rows : torch.Tensor of int64, shape (r,)
        Local seed rows (``< n_seeds``).

    Returns
    -------
    (torch.Tensor, torch.Tensor), each of shape (r, dim)
    """
    n_layers = len(layers) - 1
    d = layers[0].shape[1]
    dev, dt = layers[0].device, layers[0].dtype
    total = [torch.zeros(len(rows), d, device=dev, dtype=dt) for _ in range(2)]
    with torch.no_grad():
        prev: list[torch.Tensor] | None = None
        for k in range(1, n_layers + 1):
            clean = layers[k].detach()
            u = torch.rand((2, clean.shape[0], d), generator=generator, device=dev, dtype=dt)
            cur = []
            for v in range(2):
                if prev is None:
                    cur.append(noise_from_uniform(u[v], clean, eps))
                else:
                    p = torch.sparse.mm(blocks.blocks[k - 1][0], prev[v])
                    cur.append(p.add_(noise_from_uniform(u[v], clean + p, eps)))
                total[v] += cur[v][rows]
            prev = cur
    scale = 1.0 / max(n_layers, 1)
    return total[0].mul_(scale), total[1].mul_(scale)
