"""LightGCN propagation (He et al., SIGIR 2020), with the graph passed on every call.

LightGCN has no weights and no non-linearity: layer ``k+1`` is ``E^{(k+1)} = Â E^{(k)}`` with
``Â = D^{-1/2} A D^{-1/2}`` (see :mod:`recsys_coldstart.graph.convert`), and the final
representation is the mean of the layer embeddings. Because the graph is an argument, callers can
propagate over an augmented graph (SGL), a graph with new users' edges (fold-in), or a different
graph per layer (SGL's random walk).

Speed: ``Â`` is a torch sparse CSR tensor and the product goes through :class:`SymmetricSpMM`,
whose backward reuses ``Â`` itself (``∂L/∂X = Âᵀ G = Â G`` because ``Â`` is symmetric), so
autograd never builds or multiplies by a transpose. Several views propagated over the *same*
graph (SimGCL's clean + two noisy views) can be concatenated along the feature axis and pushed
through one wider product, which reads the sparse index once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


class SymmetricSpMM(torch.autograd.Function):
    """``Y = Â X`` for a *symmetric* sparse ``Â``; the backward is ``Â G`` (no transpose).

    Inputs: ``adj`` torch sparse (CSR or COO) of shape (n, n), not differentiated;
    ``x`` dense of shape (n, d). Output: dense (n, d).
    """

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # noqa: D102
        return None, torch.sparse.mm(ctx.adj, grad_out.contiguous())


def spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``adj @ x`` for a symmetric sparse ``adj`` (n, n) and dense ``x`` (n, d); differentiable in ``x``."""
    if x.requires_grad:
        return SymmetricSpMM.apply(adj, x)
    return torch.sparse.mm(adj, x)


def lightgcn_layers(adj: torch.Tensor | Sequence[torch.Tensor], emb0: torch.Tensor, n_layers: int, *,
                    perturb: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Layer embeddings ``[E^(0), E^(1), ..., E^(L)]`` of LightGCN.

    Parameters
    ----------
    adj : torch sparse (n, n), or a sequence of ``n_layers`` of them
        Symmetric-normalised adjacency; a sequence gives one graph per layer (SGL random walk).
    emb0 : torch.Tensor, shape (n, d)
        Layer-0 embeddings (users first, then items).
    n_layers : int
    perturb : callable, optional
        Applied to each propagated layer (``E^(k) <- perturb(E^(k))`` for k >= 1), e.g. SimGCL's
        uniform noise; the perturbed layer is what the next layer propagates.

    Returns
    -------
    list of torch.Tensor, each of shape (n, d), length ``n_layers + 1``
    """
    graphs = list(adj) if isinstance(adj, (list, tuple)) else [adj] * n_layers
    if len(graphs) != n_layers:
        raise ValueError(f"{len(graphs)} graphs for {n_layers} layers")
    out = [emb0]
    x = emb0
    for g in graphs:
        x = spmm(g, x)
        if perturb is not None:
            x = perturb(x)
        out.append(x)
    return out


def layer_mean(layers: Sequence[torch.Tensor], *, include_input: bool = True) -> torch.Tensor:
    """Mean of the layer embeddings, shape (n, d).

    ``include_input=True`` is LightGCN / SGL (``α_k = 1/(L+1)`` over layers 0..L);
    ``False`` is SimGCL / XSimGCL, which skip the unperturbed ``E^(0)`` (Yu et al. 2022, §4).
    """
    sel = layers if include_input else layers[1:]
    return torch.stack(list(sel), 0).mean(0)


def lightgcn_propagate(adj: torch.Tensor | Sequence[torch.Tensor], emb0: torch.Tensor, n_layers: int, *,
                       include_input: bool = True,
                       perturb: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Final LightGCN representation: :func:`layer_mean` of :func:`lightgcn_layers`, shape (n, d)."""
    if n_layers == 0:
        return emb0
    return layer_mean(lightgcn_layers(adj, emb0, n_layers, perturb=perturb), include_input=include_input)


class LightGCNEncoder(torch.nn.Module):
    """Trainable layer-0 embeddings + LightGCN propagation over a graph given at call time.

    Parameters
    ----------
    n_users, n_items, dim : int
    n_layers : int
    include_input : bool
        Whether ``E^(0)`` enters the layer mean (see :func:`layer_mean`).
    generator : torch.Generator, optional
        For the Xavier-uniform initialisation (as in SELFRec / SimGCL's code).

    Attributes
    ----------
    user_emb, item_emb : torch.nn.Parameter, shapes (n_users, dim), (n_items, dim)
    """

    def __init__(self, n_users: int, n_items: int, dim: int, n_layers: int, *, include_input: bool = True,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.n_users, self.n_items, self.n_layers, self.include_input = n_users, n_items, n_layers, include_input
        self.user_emb = torch.nn.Parameter(self._xavier(n_users, dim, generator, device))
        self.item_emb = torch.nn.Parameter(self._xavier(n_items, dim, generator, device))

    @staticmethod
    def _xavier(n: int, d: int, generator: torch.Generator | None, device) -> torch.Tensor:
        bound = (6.0 / (n + d)) ** 0.5
        return (torch.rand(n, d, generator=generator, device=device) * 2 - 1) * bound

    def emb0(self) -> torch.Tensor:
        """Concatenated layer-0 embeddings, shape (n_users + n_items, dim)."""
        return torch.cat([self.user_emb, self.item_emb], 0)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(users (n_users, d), items (n_items, d))`` of a node matrix (n_users + n_items, d)."""
        return x[: self.n_users], x[self.n_users:]

    def forward(self, adj: torch.Tensor | Sequence[torch.Tensor], *,
                perturb: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user (n_users, d) and item (n_items, d) representations over graph ``adj``."""
        return self.split(lightgcn_propagate(adj, self.emb0(), self.n_layers, include_input=self.include_input,
                                             perturb=perturb))
