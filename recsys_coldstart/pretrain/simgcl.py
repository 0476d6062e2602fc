"""SimGCL: Yu, Yin, Xia, Chen, Cui, Nguyen. "Are Graph Augmentations Necessary? Simple Graph
Contrastive Learning for Recommendation." SIGIR 2022. https://arxiv.org/abs/2112.08679
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from recsys_coldstart.config import at_least, greater_than
from recsys_coldstart.graph import encoders
from recsys_coldstart.graph.augment import noise_from_uniform
from recsys_coldstart.graph.encoders import layer_mean, lightgcn_layers
from recsys_coldstart.graph.losses import info_nce
from recsys_coldstart.graph.sampling import SampledBlocks, sampled_layers, sampled_noise_offsets
from recsys_coldstart.pretrain._trainer import GraphRecommender, GraphTrainConfig, TrainContext


@dataclass(frozen=True)
class SimGCLConfig(GraphTrainConfig):
    """SimGCL options; ε, τ and the layers are the published yelp2018 setting (SELFRec
    leaderboard: λ=0.5, ε=0.1, τ=0.2, 3 layers, batch 2048, dim 64, lr 1e-3, reg 1e-4); λ and lr
    are set for ml-100k-sized tables: λ=0.5 collapses there (val NDCG@20 falls from the first
    evaluation, test 0.057), λ=0.02 with lr 1e-2 reaches 0.258 (see :class:`GraphTrainConfig`).
    The published setting is ``benchmarks/configs/yelp2018_simgcl.toml``.

    Parameters
    ----------
    eps : float
        ``ε``, radius of the uniform noise added at every layer.
    cl_weight : float
        ``λ``, weight of the contrastive loss.
    cl_temp : float
        ``τ`` of the InfoNCE loss.
    """

    eps: float = field(default=0.1, metadata=at_least(0.0))
    cl_weight: float = field(default=0.02, metadata=at_least(0.0))
    cl_temp: float = field(default=0.2, metadata=greater_than(0.0))


class SimGCL(GraphRecommender):
    """SimGCL (Yu et al., SIGIR 2022): contrast two *noise-perturbed* views, no graph augmentation.

    Each view propagates the layer-0 embeddings with uniform noise added after every layer,
    ``E^(k) = Â E^(k-1) + ε sign(Â E^(k-1)) ⊙ normalize(U(0,1))``, and the representation is the
    mean of layers ``1..L`` (the paper skips the unperturbed ``E^(0)``, also at inference).

    ``L = L_bpr(clean) + λ (InfoNCE_τ(Z'_U, Z''_U) + InfoNCE_τ(Z'_I, Z''_I)) + reg * L2``

    over the batch's unique users ``U`` and unique positive items ``I``.

    Speed (exact, not an approximation): LightGCN propagation is linear and the noise enters
    only through ``sign(·)``, whose gradient is zero, so a perturbed view is the clean view plus a
    constant offset: ``E'^(k) = E^(k) + N^(k)`` with ``N^(0) = 0`` and
    ``N^(k) = Â N^(k-1) + ε sign(E^(k) + Â N^(k-1)) ⊙ normalize(u_k)``. The offsets of both views
    are computed without autograd in one ``(n, 2·dim)`` product per layer (none for layer 1,
    where ``N^(0) = 0``), and back-propagation runs through the clean propagation only. Values and
    gradients equal those of three separate perturbed forward passes (SELFRec's implementation)
    up to float rounding. The contrastive loss reads only the batch's unique users and items, so
    the last layer's offsets are propagated for those rows only (:func:`noise_offsets` with
    ``rows``). Measured cost: see ``benchmarks/results/pretrain_speed.md`` (SimGCL / LightGCN
    seconds per batch on yelp2018).

    Parameters
    ----------
    config : SimGCLConfig, optional
    **kwargs
        Fields of :class:`SimGCLConfig`.
    """

    config_class = SimGCLConfig

    @classmethod
    def search_space(cls, trial) -> dict:
        """Optuna search space: config keyword arguments drawn from ``trial``.

        The shared graph ranges (optimiser and lr, L2 weight 1e-6..1e-2, dim up to 256, 1-4 layers,
        sampler where the model has two; :meth:`GraphRecommender.backbone_space`) plus SimGCL's
        own (Yu et al., SIGIR 2022, Sec. 4.3 and the SELFRec configs): noise magnitude ε in
        {0.01, 0.05, 0.1, 0.2, 0.5, 1.0} (best 0.1 on yelp2018 / amazon-book, 0.2 elsewhere),
        contrastive weight λ in {0.01, ..., 5} (best 0.5 on yelp2018, 2 on amazon-book, 0.2 on
        iFashion), temperature τ 0.2.
        """
        return {
            **cls.backbone_space(trial),
            "eps": trial.suggest_float("eps", 0.01, 1.0, log=True),
            "cl_weight": trial.suggest_float("cl_weight", 0.01, 5.0, log=True),
            "cl_temp": trial.suggest_float("cl_temp", 0.05, 1.0, log=True),
        }
    include_input = False
    samplers = ("full", "neighbor")

    def _batch_loss(self, ctx: TrainContext, users: torch.Tensor, pos: torch.Tensor,
                    neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, nu = self.config, ctx.graph.n_users
        emb0 = ctx.encoder.emb0()
        layers = lightgcn_layers(ctx.adj, emb0, cfg.n_layers)
        final = layer_mean(layers, include_input=cfg.n_layers == 0)
        bpr, reg = self._rec_loss(ctx, emb0, final, users, pos, neg)
        u = torch.unique(users)
        i = torch.unique(pos) + nu
        rows = torch.cat([u, i])  # the contrastive loss reads only these rows of the two views
        off1, off2 = noise_offsets(ctx.adj, layers, cfg.eps, ctx.generator, rows=rows)
        f = final[rows]
        v1, v2 = f + off1, f + off2
        nu_b = len(u)
        cl = (info_nce(v1[:nu_b], v2[:nu_b], cfg.cl_temp)
              + info_nce(v1[nu_b:], v2[nu_b:], cfg.cl_temp))
        return bpr + cfg.cl_weight * cl + reg, {"bpr": bpr, "cl": cl, "reg": reg}

    def _sampled_batch_loss(self, ctx: TrainContext, blocks: SampledBlocks, users: torch.Tensor, pos: torch.Tensor,
                            neg: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # the same loss on the batch's sampled subgraph (local seed rows); noise offsets on its blocks
        cfg = self.config
        x0 = ctx.layer0(blocks)
        layers = sampled_layers(blocks, x0)
        final = layer_mean([x[: blocks.n_seeds] for x in layers], include_input=cfg.n_layers == 0)
        bpr, reg = self._local_rec_loss(x0, final, users, pos, neg)
        u, i = torch.unique(users), torch.unique(pos)
        rows = torch.cat([u, i])
        off1, off2 = sampled_noise_offsets(blocks, layers, cfg.eps, ctx.generator, rows)
        f = final[rows]
        v1, v2 = f + off1, f + off2
        cl = (info_nce(v1[: len(u)], v2[: len(u)], cfg.cl_temp) + info_nce(v1[len(u):], v2[len(u):], cfg.cl_temp))
        return bpr + cfg.cl_weight * cl + reg, {"bpr": bpr, "cl": cl, "reg": reg}


def noise_offsets(adj: torch.Tensor, layers: list[torch.Tensor], eps: float,
                  generator: torch.Generator | None, rows: torch.Tensor | None = None,
                  uniforms: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer-mean noise offsets of two SimGCL views, ``mean_{k=1..L} N^(k)`` (no autograd).

    Parameters
    ----------
    adj : torch sparse CSR (n, n)
        The normalised graph.
    layers : list of torch.Tensor, each (n, d)
        Clean layer embeddings ``[E^(0), ..., E^(L)]``.
    eps : float
    generator : torch.Generator, optional
    rows : torch.Tensor of int64, optional
        Only these rows of the offsets are needed (the batch's users and items the contrastive
        loss reads). Layer ``k`` is then computed only on the rows layer ``k + 1`` reads (the
        graph neighbours of the rows needed there, plus ``rows``) while those are under half the
        graph, with row slices of ``adj``: on yelp2018 the last layer costs a product over the
        batch's ~4k rows (14% of the edges) instead of the whole graph, and uniform noise is
        drawn only for the rows computed.
    uniforms : list of torch.Tensor, each (2, n, d), optional
        The ``U(0, 1)`` draws of each layer (default: drawn from ``generator``); given the same
        draws, the offsets at ``rows`` equal the full computation's (tests use this).

    Returns
    -------
    (torch.Tensor, torch.Tensor), each (n, d) or (len(rows), d)
        Adding them to the clean layer mean (at the same rows) gives the two perturbed views.
    """
    n_layers = len(layers) - 1
    n, d = layers[0].shape
    dev, dt = layers[0].device, layers[0].dtype
    with torch.no_grad():
        # need[k]: rows of N^(k) to compute (None = all); slices[k]: adj restricted to need[k]
        need: list[torch.Tensor | None] = [None] * (n_layers + 1)
        slices: list[torch.Tensor | None] = [None] * (n_layers + 1)
        if rows is not None and n_layers >= 1:
            need[n_layers] = rows
            for k in range(n_layers, 1, -1):
                slices[k] = csr_row_slice(adj, need[k])
                mask = torch.zeros(n, dtype=torch.bool, device=dev)
                mask[slices[k].col_indices()] = True
                mask[rows] = True
                below = mask.nonzero().squeeze(1)
                if 2 * len(below) > n:  # most of the graph: the full layer is cheaper than gathers
                    break
                need[k - 1] = below
        m = n if rows is None else len(rows)
        total = [torch.zeros(m, d, device=dev, dtype=dt) for _ in range(2)]
        # per view (kept as separate contiguous (rows, d) tensors: two d-wide sparse products are
        # much cheaper than one 2d-wide product on the CPU, and no concatenation copies)
        prop: list[torch.Tensor] | None = None  # Â N^(k-1) at need[k]
        for k in range(1, n_layers + 1):
            r = need[k]
            clean = layers[k].detach() if r is None else layers[k].detach()[r]
            if uniforms is not None:
                u = uniforms[k - 1].clone() if r is None else uniforms[k - 1][:, r]
            else:
                u = torch.rand((2, n if r is None else len(r), d), generator=generator, device=dev, dtype=dt)
            sign_clean = torch.sign(clean) if prop is None else None
            offsets = []
            for v in range(2):
                if prop is None:  # layer 1: N^(0) = 0, the noise follows the clean sign
                    u[v].mul_(eps / torch.linalg.vector_norm(u[v], dim=-1, keepdim=True).clamp_min_(1e-12))
                    offsets.append(u[v].mul_(sign_clean))
                else:
                    noise = noise_from_uniform(u[v], clean + prop[v], eps)
                    offsets.append(prop[v].add_(noise))  # N^(k) at need[k]
            for v in range(2):
                if rows is None or k == n_layers:
                    total[v] += offsets[v]
                else:
                    total[v] += offsets[v][rows] if r is None else offsets[v][torch.searchsorted(r, rows)]
            if k < n_layers:
                a = adj if need[k + 1] is None else slices[k + 1]
                prop = []
                for v in range(2):
                    full = offsets[v]
                    if r is not None:
                        full = torch.zeros(n, d, device=dev, dtype=dt)
                        full[r] = offsets[v]
                    prop.append(encoders.spmm(a, full))
        scale = 1.0 / max(n_layers, 1)
    return total[0].mul_(scale), total[1].mul_(scale)


def csr_row_slice(adj: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of a torch sparse CSR matrix as a (len(rows), n_cols) sparse CSR tensor.

    (``index_select`` is not implemented for sparse CSR on CPU; this gathers the row segments.)
    """
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    starts = crow[rows]
    lengths = crow[rows + 1] - starts
    new_crow = torch.zeros(len(rows) + 1, dtype=crow.dtype, device=crow.device)
    new_crow[1:] = torch.cumsum(lengths, 0)
    total = int(new_crow[-1])
    idx = torch.repeat_interleave(starts - new_crow[:-1], lengths) + torch.arange(total, device=crow.device)
    return torch.sparse_csr_tensor(new_crow, col[idx], val[idx], (len(rows), adj.shape[1]),
                                   check_invariants=False)
