"""Softmax of edge scores over the incoming edges of each target node."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..graph import Graph


def _segment_sum(values: Tensor, rowptr: Tensor) -> Tensor:
    return torch.segment_reduce(values, "sum", offsets=rowptr, axis=0)


class _EdgeSoftmax(torch.autograd.Function):
    """alpha[k] = exp(s[k] - m_i) / sum_{k' -> i} exp(s[k'] - m_i), m_i = max_{k' -> i} s[k'].

    Saves only alpha [E, H]. Backward: ds[k] = alpha[k] * (g[k] - sum_{k' -> i} alpha[k'] g[k']).
    """

    @staticmethod
    def forward(ctx, scores: Tensor, graph: Graph) -> Tensor:
        rowptr = graph.csr[0]
        target = graph.csr_target
        row_max = torch.segment_reduce(scores, "max", offsets=rowptr, axis=0)
        alpha = (scores - row_max.index_select(0, target)).exp_()
        alpha /= _segment_sum(alpha, rowptr).index_select(0, target)
        ctx.graph = graph
        ctx.save_for_backward(alpha)
        return alpha

    @staticmethod
    @once_differentiable  # the backward works in place; a second derivative is not supported
    def backward(ctx, grad_alpha: Tensor):
        (alpha,) = ctx.saved_tensors
        graph: Graph = ctx.graph
        weighted = alpha * grad_alpha
        row_sum = _segment_sum(weighted, graph.csr[0]).index_select(0, graph.csr_target)
        return weighted.sub_(row_sum.mul_(alpha)), None  # in place: two [E, H] buffers fewer


def edge_softmax(scores: Tensor, graph: Graph) -> Tensor:
    """Softmax of ``scores`` [E, H] (CSR order) over the incoming edges of each target.

    Returns alpha [E, H] with ``sum_{k -> i} alpha[k, h] = 1`` for every node i that has an
    incoming edge. The maximum is subtracted per target, so large scores do not overflow.
    """
    if scores.dim() != 2 or scores.size(0) != graph.num_edges:
        raise ValueError(
            f"scores must have shape [E, H] with E = {graph.num_edges}, got {tuple(scores.shape)}."
        )
    if graph.num_edges == 0:
        return scores.clone()
    return _EdgeSoftmax.apply(scores.contiguous(), graph)
