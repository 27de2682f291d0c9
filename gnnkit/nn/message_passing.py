"""The generic message / aggregate / update scheme (the homework's eq. 7).

    m_{j->i} = message(h_i, h_j, e_{j->i})          one row per edge
    a_i      = aggregate({m_{j->i} : j -> i})        sum, mean, max, min, median, ...
    h'_i     = update(a_i, h_i)

The mean GCN of eq. 6 is the special case ``message = W h_j``, ``aggregate = mean`` and
``update = a_i + h_i B^T`` (the mean of ``W h_j`` is W times the mean of ``h_j``)::

    class MeanGCN(MessagePassing):
        def __init__(self, in_features, out_features):
            super().__init__(aggr="mean")
            self.W = nn.Linear(in_features, out_features, bias=False)
            self.B = nn.Linear(in_features, out_features, bias=False)

        fused_message = "x_j"  # message() returns h_j unchanged: fuse it with the mean

        def forward(self, x, graph):
            return self.propagate(graph, x=x, h=self.W(x))

        def message(self, h_j):
            return h_j

        def update(self, aggr_out, x):
            return aggr_out + self.B(x)

With ``fused_message`` declared it runs the fused path: the mean is one CSR product, as fast
as :class:`MeanGCNConv`. Without the declaration it gives the same numbers on the general path
(``message`` on [E, F] rows, then the aggregation).
"""

from __future__ import annotations

import inspect
from typing import ClassVar

from torch import Tensor, nn

from .. import ops
from ..graph import Graph
from ..ops.features import dense_features
from ._inputs import graph_for
from .aggr import Aggregation, resolve_aggregation

#: The forms of ``message`` that :class:`MessagePassing` can fuse with a built-in aggregation.
FUSED_MESSAGES = ("x_j", "x_j * w")


class MessagePassing(nn.Module):
    """Base class for layers written as message / aggregate / update.

    Subclasses override :meth:`message` and optionally :meth:`aggregate` and :meth:`update`,
    and call ``self.propagate(graph, **kwargs)`` from ``forward``. Arguments of ``message``
    named ``<name>_j`` receive ``kwargs[<name>]`` gathered at each edge's source j, arguments
    named ``<name>_i`` the same gathered at each edge's target i; other arguments (e.g.
    ``edge_attr`` [E, ...], aligned with the graph's edge order) are passed unchanged, as are
    ``index`` (the targets [E]) and ``edge_index`` [2, E]; an argument with a default value
    may be left out. ``update`` receives ``aggr_out`` and any keyword argument it names.

    **Fused path, declared.** A layer says what its ``message`` computes in the class
    attribute ``fused_message``, read once per class:

    - ``"x_j"``: ``message`` returns its one ``<name>_j`` argument unchanged (the base class's
      own ``message``);
    - ``"x_j * w"``: ``message(x_j, w)`` returns each edge's row scaled by its weight,
      ``x_j * w.view(-1, 1)``, for a weight ``w`` [E] or [E, 1] passed to ``propagate`` (left
      out: no weight);
    - ``None`` (what a subclass that overrides ``message`` gets unless it declares): anything
      else.

    With a declared form, a built-in aggregation (``Aggregation.fuses``) and ``aggregate`` not
    overridden, ``propagate`` reduces on the graph's CSR with :func:`gnnkit.ops.aggregate`
    (a weight only with sum and mean) and never creates the [E, F]
    message tensor; ``message`` is not called. Otherwise the general path calls ``message``
    once on [E, ...] rows, then the aggregation. Both paths give the same result.

    Args:
        aggr: ``"sum" | "mean" | "max" | "min" | "median"`` or an aggregation module called as
            ``aggr(x, index, dim_size)``.
    """

    fused_message: ClassVar[str | None] = "x_j"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "message" in cls.__dict__ and "fused_message" not in cls.__dict__:
            cls.fused_message = None  # a new message() is general unless declared
        _check_declaration(cls)

    def __init__(self, aggr="sum"):
        super().__init__()
        self.aggr_module = resolve_aggregation(aggr)
        self._message_args = _argument_names(self.message)
        self._message_defaults = _names_with_defaults(self.message)
        self._update_args = _argument_names(self.update)[1:]

    def propagate(self, graph, **kwargs) -> Tensor:
        """Run message -> aggregate -> update over ``graph`` (any form accepted by
        :func:`gnnkit.as_graph`); node tensors in ``kwargs`` are [N, ...] (a sparse CSR/COO
        one is made dense: messages are rows of dense tensors)."""
        kwargs = {name: dense_features(value) for name, value in kwargs.items()}
        reference = _first_node_tensor(kwargs, self._message_args)
        graph = graph_for(graph, reference)
        _check_node_tensors(kwargs, self._message_args, graph.num_nodes)
        fused = self._fused_form(graph, kwargs)
        if fused is not None:
            aggr_out = ops.aggregate(graph, *fused)
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
            elif name not in self._message_defaults:
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
        """``(values in CSR order or None, x, reduce)`` for :func:`gnnkit.ops.aggregate` when
        the declared fused path applies to these arguments, else None."""
        form, aggr = self.fused_message, self.aggr_module
        if form is None or type(self).aggregate is not MessagePassing.aggregate or not (
            isinstance(aggr, Aggregation) and aggr.fuses
        ):
            return None
        source = next(name for name in self._message_args if name.endswith("_j"))
        features = kwargs.get(source[:-2])
        if not isinstance(features, Tensor) or features.dim() != 2:
            return None
        weight_name = next((name for name in self._message_args if name != source), None)
        weight = kwargs.get(weight_name) if form == "x_j * w" else None
        if weight is None:
            return None, features, aggr.name
        if aggr.name not in ("sum", "mean") or not isinstance(weight, Tensor) or (
            weight.numel() != graph.num_edges or weight.dtype != features.dtype
            or weight.dim() > 2 or weight.shape[0] != graph.num_edges
        ):
            return None  # a weighted selection, or a weight that is no column per edge
        _, _, perm = graph.csr
        weight = weight.reshape(-1)
        return (weight if perm is None else weight[perm]), features, aggr.name


def _check_declaration(cls) -> None:
    """Refuse a ``fused_message`` that the signature of ``cls.message`` cannot mean."""
    form = cls.fused_message
    if form is None:
        return
    if form not in FUSED_MESSAGES:
        raise TypeError(f"{cls.__name__}.fused_message must be one of {FUSED_MESSAGES} or None, "
                        f"got {form!r}.")
    names = _argument_names(cls.message)[1:]  # without self
    sources = [name for name in names if name.endswith("_j")]
    others = [name for name in names if name not in sources]
    optional = _names_with_defaults(cls.message)
    fits = len(sources) == 1 and not any(
        name.endswith("_i") or name in ("index", "edge_index") for name in others
    )
    if form == "x_j":
        fits = fits and all(name in optional for name in others)
    else:
        fits = fits and len(others) == 1
    if not fits:
        raise TypeError(
            f"{cls.__name__}.fused_message = {form!r} needs message(self, <name>_j"
            f"{'' if form == 'x_j' else ', w'}), got message({', '.join(['self', *names])}); "
            "set fused_message = None for the general path."
        )


def _argument_names(method) -> list[str]:
    return [
        p.name for p in inspect.signature(method).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _names_with_defaults(method) -> set[str]:
    return {p.name for p in inspect.signature(method).parameters.values()
            if p.default is not p.empty}


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
