"""Softmax of edge scores over the incoming edges of each target node."""

from __future__ import annotations

import torch
from torch import Tensor

from ..graph import Graph
from ._checks import check_graph
from .gather import take_rows


def _sum_per_target(values: Tensor, graph: Graph) -> Tensor:
    """[E, H] (CSR order) -> [E, H]: each edge gets the sum over the edges into its target."""
    rowptr, target = graph.csr[0], graph.csr_target
    if torch.is_grad_enabled():  # differentiable form, used for second derivatives
        sums = values.new_zeros((graph.num_nodes,) + values.shape[1:])
        return take_rows(sums.index_add(0, target, values), target)
    return take_rows(torch.segment_reduce(values, "sum", offsets=rowptr, axis=0), target)


class _EdgeSoftmax(torch.autograd.Function):
    """alpha[k] = exp(s[k] - m_i) / sum_{k' -> i} exp(s[k'] - m_i), m_i = max_{k' -> i} s[k'].

    Saves only alpha [E, H]. Backward: ds[k] = alpha[k] * (g[k] - sum_{k' -> i} alpha[k'] g[k']),
    in place when no second derivative is asked for, else with differentiable operations.
    """

    @staticmethod
    def forward(ctx, scores: Tensor, graph: Graph) -> Tensor:
        rowptr = graph.csr[0]
        row_max = torch.segment_reduce(scores, "max", offsets=rowptr, axis=0)
        alpha = (scores - take_rows(row_max, graph.csr_target)).exp_()
        alpha /= _sum_per_target(alpha, graph)
        ctx.graph = graph
        ctx.save_for_backward(alpha)
        return alpha

    @staticmethod
    def backward(ctx, grad_alpha: Tensor):
        (alpha,) = ctx.saved_tensors
        graph: Graph = ctx.graph
        weighted = alpha * grad_alpha
        row_sum = _sum_per_target(weighted, graph)
        if torch.is_grad_enabled():
            return weighted - row_sum * alpha, None
        return weighted.sub_(row_sum.mul_(alpha)), None  # in place: two [E, H] buffers fewer


def edge_softmax(graph: Graph, scores: Tensor) -> Tensor:
    """Softmax of ``scores`` [E, H] (CSR order) over the incoming edges of each target.

    Returns alpha [E, H] with ``sum_{k -> i} alpha[k, h] = 1`` for every node i that has an
    incoming edge. The maximum is subtracted per target, so large scores do not overflow;
    float16/bfloat16 scores are normalised in float32 and returned in their own dtype.
    """
    check_graph(graph)
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores must be a torch tensor [E, H], got {type(scores).__name__}.")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating tensor, got {scores.dtype}.")
    if scores.dim() != 2 or scores.size(0) != graph.num_edges:
        raise ValueError(
            f"scores must have shape [E, H] with E = {graph.num_edges}, got {tuple(scores.shape)}."
        )
    if graph.num_edges == 0:
        return scores.clone()
    if scores.dtype in (torch.float16, torch.bfloat16):
        return _EdgeSoftmax.apply(scores.float().contiguous(), graph).to(scores.dtype)
    return _EdgeSoftmax.apply(scores.contiguous(), graph)
