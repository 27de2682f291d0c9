"""The labelled nodes of a split and the part of the graph their logits depend on.

An L-layer node classifier whose layers read incoming edges only gives node v a logit that
depends on the nodes within L hops of v (its receptive field) and nothing else. Full-batch
training needs the logits of the training nodes for its loss and those of the validation
nodes for its evaluation, every epoch: on Cora the 140 training nodes reach 1664 of the 2708
nodes and 644 of them in one hop, so computing the whole graph wastes most of each epoch.

:func:`labelled_nodes` cuts the receptive field out of the graph once per training run
(:func:`gnnkit.sampling.sample_neighbors` with every neighbour taken, trimmed per layer) when
it is at most :data:`FIELD_MAX_WORK` of the whole graph's work, and otherwise keeps the whole
graph. Either way :meth:`LabelledNodes.logits` gives the same logits (up to float rounding).
In training mode dropout then draws only for the entries inside the field: the other entries
never reach the loss, so the training is the same random process, with other draws. The
field holds a copy of its nodes' feature rows (at most the size of ``x``) and its graphs for
the length of the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..graph import Graph
from ..ops.features import feature_rows
from ..sampling import sample_neighbors

#: Largest share of the whole graph's work (nodes plus edges, summed over the layers) for
#: which the receptive field is cut out; above it the whole graph is used. Measured with
#: ``python -m bench full-batch`` (1 thread): on Cora the GAT training field (0.26 of the
#: work) made a training step 1.6x faster, the validation field (0.49) an evaluation 1.2x.
FIELD_MAX_WORK = 0.6


@dataclass(frozen=True)
class LabelledNodes:
    """The nodes of one split with their labels ``y`` [B] and what their logits need:
    features ``x`` and ``graph`` (one graph, or one trimmed graph per layer) such that
    ``model(x, graph)[rows]`` are their logits [B, C], in the order of the split's mask."""

    x: Tensor
    graph: Graph | list[Graph]
    rows: Tensor | slice
    y: Tensor

    def logits(self, model: nn.Module) -> Tensor:
        """The logits [B, C] of these nodes under ``model`` (in its current mode)."""
        return model(self.x, self.graph)[self.rows]


def labelled_nodes(graph: Graph, x: Tensor, y: Tensor, mask: Tensor,
                   num_layers: int) -> LabelledNodes:
    """The nodes of ``mask`` [N] bool with the receptive field of a ``num_layers``-layer model
    when it is small (see the module docstring), else with the whole graph ``graph`` and
    features ``x`` [N, F] (dense or sparse)."""
    nodes = mask.nonzero().view(-1)
    field = sample_neighbors(graph, nodes, [-1] * num_layers)
    graphs = [field.trim(layer, num_layers) for layer in range(num_layers)]
    work = sum(g.num_nodes + g.num_edges for g in graphs)
    if work > FIELD_MAX_WORK * num_layers * (graph.num_nodes + graph.num_edges):
        return LabelledNodes(x, graph, mask, y[mask])
    return LabelledNodes(feature_rows(x, field.n_id), graphs, slice(0, nodes.numel()),
                         y.index_select(0, nodes))
