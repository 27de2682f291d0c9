"""Aggregations: modules that reduce the messages arriving at each node to one row.

Every aggregation is called as ``aggr(x, index, dim_size)`` with ``x`` [E, F] (one row per
message), ``index`` [E] (the receiving node of each message) and ``dim_size`` N, and returns
[N, F]. A node that receives no message gets 0, wherever it sits (node 0, the middle, the end).

The built-in ones are named after the reductions of :data:`gnnkit.ops.scatter.REDUCTIONS`
(the one list of them): each carries its ``name``, which is what makes it fuse with a declared
message in :class:`MessagePassing`. A custom aggregation subclasses :class:`Aggregation` and
overrides :meth:`Aggregation.reduce`.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from ..graph import Graph
from ..ops import scatter
from ..ops.scatter import REDUCTIONS, check_index


class Aggregation(nn.Module):
    """Base class: checks the arguments, then calls :meth:`reduce`.

    ``graph`` (given by :class:`MessagePassing`) is the graph whose edges the messages follow,
    in its edge order (``index = graph.target``); an aggregation may use its cached CSR.
    """

    #: The built-in reduction this aggregation performs (one of ``REDUCTIONS``), or None.
    name: ClassVar[str | None] = None

    def forward(self, x: Tensor, index: Tensor, dim_size: int, *,
                graph: Graph | None = None) -> Tensor:
        """[N, F]: the messages ``x`` [E, F] reduced by receiving node ``index`` [E] into
        ``dim_size`` rows (0 for a node that receives none), after checking the arguments."""
        index = check_index(index, x, dim_size)
        return self.reduce(x, index, dim_size, graph)

    def reduce(self, x: Tensor, index: Tensor, dim_size: int, graph: Graph | None) -> Tensor:
        """[N, F] from the checked messages; the built-ins call :func:`gnnkit.ops.scatter`."""
        if self.name is None:
            raise NotImplementedError(f"{type(self).__name__} must override reduce().")
        return scatter(index, x, dim_size, self.name, graph=graph)

    @property
    def fuses(self) -> bool:
        """True for a built-in reduction that :func:`gnnkit.ops.aggregate` runs on a graph's
        CSR (a subclass that overrides :meth:`reduce` does not fuse)."""
        return self.name in REDUCTIONS and type(self).reduce is Aggregation.reduce

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SumAggregation(Aggregation):
    """out_i = sum_{k: index[k] = i} x_k."""

    name = "sum"


class MeanAggregation(Aggregation):
    """out_i = (1 / d_i) sum_{k: index[k] = i} x_k, with d_i the number of messages (0 if none)."""

    name = "mean"


class MaxAggregation(Aggregation):
    """out_i = max_{k: index[k] = i} x_k, feature by feature."""

    name = "max"


class MinAggregation(Aggregation):
    """out_i = min_{k: index[k] = i} x_k, feature by feature."""

    name = "min"


class MedianAggregation(Aggregation):
    """out_i = lower median of {x_k : index[k] = i}, feature by feature.

    For an even count d the lower median (the ``(d - 1) // 2``-th smallest) is taken, as
    ``torch.median`` does. The gradient of each output entry goes to the selected message.
    The median has no matrix form: it is a selection inside each node's messages, done per
    distinct in-degree with a comparator network (``kthvalue`` above 64 messages), see
    :func:`gnnkit.ops.segment_median_index`.
    """

    name = "median"


#: The built-in aggregations by name (and PyG's alias "add" for "sum").
AGGREGATIONS = {
    **{cls.name: cls for cls in (SumAggregation, MeanAggregation, MaxAggregation,
                                 MinAggregation, MedianAggregation)},
    "add": SumAggregation,
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
