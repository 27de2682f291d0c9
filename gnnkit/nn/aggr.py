"""Aggregations: modules that reduce the messages arriving at each node to one row.

Every aggregation is called as ``aggr(x, index, dim_size)`` with ``x`` [E, F] (one row per
message), ``index`` [E] (the receiving node of each message) and ``dim_size`` N, and returns
[N, F]. A node that receives no message gets 0, wherever it sits (node 0, the middle, the end).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..graph import Graph
from ..ops import scatter
from ..ops.median import _median_rows, gather_per_feature, segment_median_index
from ..ops.scatter import check_index


class Aggregation(nn.Module):
    """Base class: checks the arguments, then calls :meth:`reduce`.

    ``graph`` (given by :class:`MessagePassing`) is the graph whose edges the messages follow,
    in its edge order (``index = graph.target``); an aggregation may use its cached CSR.
    """

    def forward(self, x: Tensor, index: Tensor, dim_size: int, *,
                graph: Graph | None = None) -> Tensor:
        index = check_index(index, x, dim_size)
        return self.reduce(x, index, dim_size, graph)

    def reduce(self, x: Tensor, index: Tensor, dim_size: int, graph: Graph | None) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SumAggregation(Aggregation):
    """out_i = sum_{k: index[k] = i} x_k."""

    def reduce(self, x, index, dim_size, graph):
        return scatter(index, x, dim_size, "sum")


class MeanAggregation(Aggregation):
    """out_i = (1 / d_i) sum_{k: index[k] = i} x_k, with d_i the number of messages (0 if none)."""

    def reduce(self, x, index, dim_size, graph):
        return scatter(index, x, dim_size, "mean")


class MaxAggregation(Aggregation):
    """out_i = max_{k: index[k] = i} x_k, feature by feature."""

    def reduce(self, x, index, dim_size, graph):
        return scatter(index, x, dim_size, "max")


class MinAggregation(Aggregation):
    """out_i = min_{k: index[k] = i} x_k, feature by feature."""

    def reduce(self, x, index, dim_size, graph):
        return scatter(index, x, dim_size, "min")


class MedianAggregation(Aggregation):
    """out_i = lower median of {x_k : index[k] = i}, feature by feature.

    For an even count d the lower median (the ``(d - 1) // 2``-th smallest) is taken, as
    ``torch.median`` does. The gradient of each output entry goes to the selected message.
    The median has no matrix form: it is a selection inside each node's messages, done per
    distinct in-degree with a comparator network (``kthvalue`` above 64 messages), see
    :func:`gnnkit.ops.segment_median_index`.
    """

    def reduce(self, x, index, dim_size, graph):
        if x.dim() != 2:
            raise ValueError(f"MedianAggregation needs x of shape [E, F], got {tuple(x.shape)}.")
        if x.size(0) == 0:
            return x.new_zeros(dim_size, x.size(1))
        if graph is not None:  # messages in the graph's edge order: its CSR groups them
            rowptr, _, order = graph.csr
            if order is None:
                order = torch.arange(x.size(0), device=x.device)
            rows = _median_rows(rowptr, order, x.detach(), graph.nodes_by_in_degree)
            return gather_per_feature(rows, x)
        order = torch.argsort(index, stable=True)
        counts = torch.bincount(index, minlength=dim_size)
        rowptr = torch.zeros(dim_size + 1, dtype=torch.long, device=x.device)
        torch.cumsum(counts, 0, out=rowptr[1:])
        return gather_per_feature(segment_median_index(rowptr, order, x.detach()), x)


AGGREGATIONS = {
    "sum": SumAggregation,
    "add": SumAggregation,
    "mean": MeanAggregation,
    "max": MaxAggregation,
    "min": MinAggregation,
    "median": MedianAggregation,
}


#: The built-in aggregations that :class:`MessagePassing` can fuse, by reduction name.
FUSED_REDUCTIONS = {
    SumAggregation: "sum",
    MeanAggregation: "mean",
    MaxAggregation: "max",
    MinAggregation: "min",
    MedianAggregation: "median",
}


def resolve_aggregation(aggr) -> Aggregation:
    """``"sum" | "mean" | "max" | "min" | "median"`` or an :class:`Aggregation` -> a module."""
    if isinstance(aggr, nn.Module):
        return aggr
    if isinstance(aggr, str) and aggr in AGGREGATIONS:
        return AGGREGATIONS[aggr]()
    raise ValueError(
        f"aggr must be one of {sorted(AGGREGATIONS)} or an aggregation module, got {aggr!r}."
    )
