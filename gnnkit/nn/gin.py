"""The graph isomorphism network layer (Xu et al., "How Powerful are Graph Neural Networks?",
ICLR 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph import Graph
from ..ops import dense_features
from ._inputs import check_features, graph_for
from .message_passing import MessagePassing

_GATHER_SUM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class GINConv(MessagePassing):
    r"""h'_i = nn((1 + eps) h_i + sum_{j -> i} h_j).

    In matrix form ``H' = nn((1 + eps) H + A H)`` with ``A[i, j] = 1`` for an edge j -> i
    (counted with multiplicity). The sum over in-neighbours is the fused sum aggregation of
    :class:`MessagePassing` (one CSR product, no [E, F] message tensor). A node without
    incoming edges gets ``nn((1 + eps) h_i)``.

    Args:
        nn: a module mapping [N, F_in] to [N, F_out], typically an MLP (Xu et al. use two
            linear layers with batch normalisation and ReLU).
        eps: the initial value of eps.
        train_eps: learn eps (a parameter) instead of keeping it fixed (a buffer).

    Shapes:
        x [N, F_in] (a sparse CSR/COO x is made dense: ``nn`` takes dense input), graph with N
        nodes (any form :func:`gnnkit.as_graph` takes) -> [N, F_out].
    """

    def __init__(self, nn: nn.Module, eps: float = 0.0, train_eps: bool = False):
        super().__init__(aggr="sum")
        if not isinstance(nn, torch.nn.Module):
            raise TypeError(f"nn must be a torch.nn.Module (e.g. an MLP), got "
                            f"{type(nn).__name__}.")
        self.nn = nn
        # x's width is checked against the first linear layer of nn, when it has one
        self.in_features = next(
            (m.in_features for m in nn.modules() if isinstance(m, torch.nn.Linear)), None)
        self.initial_eps = float(eps)
        if train_eps:
            self.eps = torch.nn.Parameter(torch.empty(1))
        else:
            self.register_buffer("eps", torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Reset every sub-module of ``nn`` that can be reset and set eps to its initial
        value."""
        for module in self.nn.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        with torch.no_grad():
            self.eps.fill_(self.initial_eps)

    def forward(self, x: Tensor, graph) -> Tensor:
        """``nn((1 + eps) x + A x)``: x [N, F_in], graph with N nodes -> [N, F_out]."""
        x = dense_features(check_features(
            x, self.in_features, dtype=next((p.dtype for p in self.nn.parameters()), None)))
        if self._plain_sum() and x.device.type == "cpu" and x.dtype in _GATHER_SUM_DTYPES and (
            not torch.compiler.is_compiling()
        ):
            graph = graph_for(graph, x)
            neighbours = neighbour_sum(graph, x)
        else:
            neighbours = self.propagate(graph, x=x)
        return self.nn(neighbours + (1 + self.eps) * x)

    def _plain_sum(self) -> bool:
        """message, aggregate and update are the base class's (the unweighted sum)."""
        cls = type(self)
        return (cls.message is MessagePassing.message and cls.update is MessagePassing.update
                and cls.aggregate is MessagePassing.aggregate
                and getattr(self.aggr_module, "name", None) == "sum")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nn={self.nn})"


def neighbour_sum(graph: Graph, x: Tensor) -> Tensor:
    """``A x``: row i is the sum of x over i's in-neighbours, [N, F] (0 without any), for a
    CPU float32/float16/bfloat16 x [N, F].

    The unweighted case of :func:`gnnkit.ops.spmm`: one ``embedding_bag`` sum over the CSR
    with no per-edge weight to multiply or permute; the backward is the same sum over the
    cached transpose (``graph.reverse``), itself differentiable.
    """
    if graph.num_edges == 0 or x.numel() == 0:
        return x * 0
    if torch.is_grad_enabled() and x.requires_grad:
        graph.reverse  # noqa: B018 - computed and cached outside the backward
    return _NeighbourSum.apply(x.contiguous(), graph)


class _NeighbourSum(torch.autograd.Function):
    """out = A x on the CSR; backward grad_x = A^T grad_out on the transpose (no atomics)."""

    @staticmethod
    def forward(ctx, x: Tensor, graph: Graph) -> Tensor:
        ctx.graph = graph
        rowptr, col, _ = graph.csr
        return F.embedding_bag(col, x, rowptr, mode="sum", include_last_offset=True)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        return neighbour_sum(ctx.graph.reverse, grad_out.contiguous()), None

