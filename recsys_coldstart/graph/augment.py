"""Graph and embedding augmentations for contrastive graph recommenders.

- SGL (Wu et al., "Self-supervised Graph Learning for Recommendation", SIGIR 2021): edge
  dropout (ED), node dropout (ND) and random walk (RW = an independent edge dropout per layer).
  Each returns boolean *edge keep masks* over the interactions of a
  :class:`~recsys_coldstart.graph.convert.BipartiteGraph`, which re-normalises the kept graph.
- SimGCL / XSimGCL (Yu et al., SIGIR 2022 / TKDE 2023): uniform noise added to the embeddings,
  ``e' = e + ε · sign(e) ⊙ normalize(U(0, 1))``.

Every function takes an explicit ``torch.Generator`` (no global seeding).
"""

from __future__ import annotations

import torch

from recsys_coldstart.graph.convert import BipartiteGraph


def edge_dropout_mask(n_edges: int, drop_rate: float, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """Keep each edge independently with probability ``1 - drop_rate``.

    Returns
    -------
    torch.Tensor of bool, shape (n_edges,)
    """
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
    return torch.rand(n_edges, generator=generator, device=device) >= drop_rate


def node_dropout_mask(graph: BipartiteGraph, drop_rate: float,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each user and item node with probability ``drop_rate`` and every edge touching it.

    Returns
    -------
    torch.Tensor of bool, shape (graph.n_edges,)
        True for edges whose two endpoints both survive.
    """
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
    dev = graph.device
    keep_u = torch.rand(graph.n_users, generator=generator, device=dev) >= drop_rate
    keep_i = torch.rand(graph.n_items, generator=generator, device=dev) >= drop_rate
    return keep_u[graph.edge_user] & keep_i[graph.edge_item]


def random_walk_masks(n_edges: int, drop_rate: float, n_layers: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """SGL's random walk: an independent edge-dropout mask for each of ``n_layers`` layers.

    Returns
    -------
    list of ``n_layers`` torch.Tensor of bool, each of shape (n_edges,)
    """
    return [edge_dropout_mask(n_edges, drop_rate, generator, device) for _ in range(n_layers)]


def uniform_noise_delta(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """The noise SimGCL adds to ``x``: ``eps * sign(x) * normalize(u)``, ``u ~ U(0, 1)^d`` per row.

    Parameters
    ----------
    x : torch.Tensor, shape (..., d)
        Rows are normalised along the last axis.
    eps : float
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor, same shape as ``x``
    """
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return noise_from_uniform(u, x, eps)


def noise_from_uniform(u: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """``eps * sign(x) * normalize(u)`` computed in place in ``u`` (returned).

    Same values as ``torch.sign(x) * F.normalize(u, dim=-1) * eps`` (up to rounding) with two
    fewer full-size temporaries; ``sign`` has zero gradient, so ``x`` is read detached.

    Parameters
    ----------
    u : torch.Tensor, shape (..., d)
        Uniform ``U(0, 1)`` draws, no autograd; overwritten.
    x : torch.Tensor, shape broadcastable to ``u``
        The tensor whose sign the noise follows.
    eps : float
        Noise radius (L2 norm of each row).

    Returns
    -------
    torch.Tensor
        ``u``, same shape.
    """
    norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True).clamp_min_(1e-12)
    return u.mul_(eps / norm).mul_(torch.sign(x.detach()))


def uniform_noise(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """SimGCL's perturbation ``x + eps * sign(x) * normalize(u)`` with ``u ~ U(0, 1)^d`` per row.

    The noise has L2 norm ``eps`` per row and lies in the same hyper-octant as ``x``, so the
    rotation it causes is bounded (Yu et al. 2022, eq. 7).

    Parameters
    ----------
    x : torch.Tensor, shape (n, d)
    eps : float
        Noise radius.
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor, shape (n, d)
    """
    return x + uniform_noise_delta(x, eps, generator)
