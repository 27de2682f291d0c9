"""The generic message / aggregate / update scheme (the homework's eq. 7).

    m_{j->i} = message(h_i, h_j, e_{j->i})          one row per edge
    a_i      = aggregate({m_{j->i} : j -> i})        sum, mean, max, min, median, ...
    h'_i     = update(a_i, h_i)

The mean GCN of eq. 6 is the special case ``message = h_j``, ``aggregate = mean`` and
``update = a_i W^T + h_i B^T``::

    class MeanGCN(MessagePassing):
        def __init__(self, in_features, out_features):
            super().__init__(aggr="mean")
            self.W = nn.Linear(in_features, out_features, bias=False)
            self.B = nn.Linear(in_features, out_features, bias=False)

        def forward(self, x, graph):
            return self.propagate(graph, x=x)

        def message(self, x_j):
            return x_j

        def update(self, aggr_out, x):
            return self.W(aggr_out) + self.B(x)
"""

from __future__ import annotations

import inspect

from torch import Tensor, nn

from ._inputs import graph_for
from .aggr import resolve_aggregation


class MessagePassing(nn.Module):
    """Base class for layers written as message / aggregate / update.

    Subclasses override :meth:`message` and optionally :meth:`aggregate` and :meth:`update`,
    and call ``self.propagate(graph, **kwargs)`` from ``forward``. Arguments of ``message``
    named ``<name>_j`` receive ``kwargs[<name>]`` gathered at each edge's source j, arguments
    named ``<name>_i`` the same gathered at each edge's target i; other arguments (e.g.
    ``edge_attr`` [E, ...], aligned with the graph's edge order) are passed unchanged, as are
    ``index`` (the targets [E]) and ``edge_index`` [2, E]. ``update`` receives ``aggr_out``
    and any keyword argument it names.

    Args:
        aggr: ``"sum" | "mean" | "max" | "min" | "median"`` or an aggregation module called as
            ``aggr(x, index, dim_size)``.
    """

    def __init__(self, aggr="sum"):
        super().__init__()
        self.aggr_module = resolve_aggregation(aggr)
        self._message_args = _argument_names(self.message)
        self._update_args = _argument_names(self.update)[1:]

    def propagate(self, graph, **kwargs) -> Tensor:
        """Run message -> aggregate -> update over ``graph`` (any form accepted by
        :func:`gnnkit.as_graph`); node tensors in ``kwargs`` are [N, ...]."""
        reference = _first_node_tensor(kwargs, self._message_args)
        graph = graph_for(graph, reference)
        source, target = graph.source, graph.target
        message_kwargs = {}
        for name in self._message_args:
            if name == "index":
                message_kwargs[name] = target
            elif name == "edge_index":
                message_kwargs[name] = graph.edge_index
            elif name.endswith(("_i", "_j")) and name[:-2] in kwargs:
                ends = source if name.endswith("_j") else target
                message_kwargs[name] = kwargs[name[:-2]].index_select(0, ends)
            elif name in kwargs:
                message_kwargs[name] = kwargs[name]
            else:
                raise TypeError(f"message() needs {name!r}; pass it to propagate() as a keyword.")
        messages = self.message(**message_kwargs)
        aggr_out = self.aggregate(messages, target, graph.num_nodes)
        update_kwargs = {name: kwargs[name] for name in self._update_args if name in kwargs}
        return self.update(aggr_out, **update_kwargs)

    def message(self, x_j: Tensor) -> Tensor:
        """m_{j->i}; by default the source's features [E, F]."""
        return x_j

    def aggregate(self, messages: Tensor, index: Tensor, dim_size: int) -> Tensor:
        """Reduce [E, F] messages into [N, F] with the layer's aggregation."""
        return self.aggr_module(messages, index, dim_size)

    def update(self, aggr_out: Tensor) -> Tensor:
        """h'_i from the aggregated messages; by default unchanged."""
        return aggr_out


def _argument_names(method) -> list[str]:
    return [
        p.name for p in inspect.signature(method).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _first_node_tensor(kwargs: dict, message_args: list[str]) -> Tensor:
    for name in message_args:
        if name.endswith(("_i", "_j")) and isinstance(kwargs.get(name[:-2]), Tensor):
            return kwargs[name[:-2]]
    raise TypeError(
        "propagate() needs at least one node tensor used by message() as <name>_j or <name>_i "
        "(e.g. propagate(graph, x=x) with message(self, x_j))."
    )
