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

Written this way it runs the fused path: the mean is one CSR product, as fast as
:class:`MeanGCNConv`.
"""

from __future__ import annotations

import inspect

from torch import Tensor, nn

from .. import ops
from ..graph import Graph
from ._inputs import graph_for
from .aggr import FUSED_REDUCTIONS, Aggregation, resolve_aggregation


class MessagePassing(nn.Module):
    """Base class for layers written as message / aggregate / update.

    Subclasses override :meth:`message` and optionally :meth:`aggregate` and :meth:`update`,
    and call ``self.propagate(graph, **kwargs)`` from ``forward``. Arguments of ``message``
    named ``<name>_j`` receive ``kwargs[<name>]`` gathered at each edge's source j, arguments
    named ``<name>_i`` the same gathered at each edge's target i; other arguments (e.g.
    ``edge_attr`` [E, ...], aligned with the graph's edge order) are passed unchanged, as are
    ``index`` (the targets [E]) and ``edge_index`` [2, E]. ``update`` receives ``aggr_out``
    and any keyword argument it names.

    **Fused path.** When ``message`` returns the source's features ``x_j``, or ``x_j`` times a
    per-edge weight ([E] or [E, 1]) for sum and mean, and the aggregation is one of the
    built-in sum, mean, max, min or median (and :meth:`aggregate` is not overridden),
    ``propagate`` reduces on the graph's CSR with :func:`gnnkit.ops.aggregate` and never
    creates the [E, F] message tensor. To find out, an overridden ``message`` is called once
    per ``propagate`` with a stand-in for ``x_j`` that only supports multiplication; anything
    else it does to ``x_j`` selects the general path (``message`` is then called again with
    real tensors). Both paths give the same result.

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
        _check_node_tensors(kwargs, self._message_args, graph.num_nodes)
        fused = self._fused_form(graph, kwargs)
        if fused is not None:
            reduce, values, features = fused
            aggr_out = ops.aggregate(graph, values, features, reduce)
        else:
            aggr_out = self._materialised(graph, kwargs)
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

    # ------------------------------------------------------------------ the two paths
    def _materialised(self, graph: Graph, kwargs: dict) -> Tensor:
        """One message row per edge (in the graph's edge order), then the aggregation."""
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
        if not isinstance(messages, Tensor) or messages.dim() < 1 or (
            messages.shape[0] != graph.num_edges
        ):
            raise ValueError(
                f"message() must return one row per edge ([{graph.num_edges}, ...]), got "
                f"{list(messages.shape) if isinstance(messages, Tensor) else type(messages)}."
            )
        if type(self).aggregate is MessagePassing.aggregate and isinstance(
            self.aggr_module, Aggregation
        ):
            return self.aggr_module(messages, target, graph.num_nodes, graph=graph)
        return self.aggregate(messages, target, graph.num_nodes)

    def _fused_form(self, graph: Graph, kwargs: dict):
        """``(reduce, values in CSR order or None, x)`` when the fused path applies, else None."""
        reduce = FUSED_REDUCTIONS.get(type(self.aggr_module))
        if reduce is None or type(self).aggregate is not MessagePassing.aggregate:
            return None
        sources = [name for name in self._message_args if name.endswith("_j")]
        others = [name for name in self._message_args if name not in sources]
        if len(sources) != 1 or any(name not in kwargs or name.endswith("_i")
                                    or name in ("index", "edge_index") for name in others):
            return None
        features = kwargs[sources[0][:-2]]
        if not isinstance(features, Tensor) or features.dim() != 2:
            return None
        if type(self).message is MessagePassing.message:
            return reduce, None, features
        try:
            probe = self.message(**{sources[0]: _SourceRows()},
                                 **{name: kwargs[name] for name in others})
        except Exception:  # noqa: BLE001 - message() does more than scale x_j: general path
            return None
        if not isinstance(probe, _SourceRows):
            return None
        if probe.weight is None:
            return reduce, None, features
        weight = probe.weight
        if reduce not in ("sum", "mean") or weight.numel() != graph.num_edges or (
            weight.dtype != features.dtype or weight.dim() > 2 or weight.shape[0] != graph.num_edges
        ):
            return None
        _, _, perm = graph.csr
        weight = weight.reshape(-1)
        return reduce, weight if perm is None else weight[perm], features


class _SourceRows:
    """A stand-in for ``x_j`` while :meth:`MessagePassing._fused_form` probes ``message``: it
    records a multiplication by one per-edge weight tensor and supports nothing else."""

    __slots__ = ("weight",)

    def __init__(self, weight: Tensor | None = None):
        self.weight = weight

    def __mul__(self, other):
        if self.weight is None and isinstance(other, Tensor):
            return _SourceRows(other)
        return NotImplemented

    __rmul__ = __mul__


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


def _check_node_tensors(kwargs: dict, message_args: list[str], num_nodes: int) -> None:
    """Every node tensor read as ``<name>_i`` / ``<name>_j`` has one row per node."""
    for name in message_args:
        base = name[:-2]
        if not name.endswith(("_i", "_j")) or base not in kwargs:
            continue
        value = kwargs[base]
        if not isinstance(value, Tensor):
            raise TypeError(f"{base} (read by message() as {name}) must be a torch tensor "
                            f"[N, ...], got {type(value).__name__}.")
        if value.dim() < 1 or value.shape[0] != num_nodes:
            raise ValueError(
                f"{base} has shape {list(value.shape)} but the graph has {num_nodes} nodes; "
                f"a node tensor needs one row per node ([{num_nodes}, ...])."
            )
