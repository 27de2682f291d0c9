"""Neighbourhood reductions on a Graph's CSR without per-edge message tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from ..graph import Graph
from ._checks import check_edge_values, check_graph, check_node_tensor
from .gather import GatherPerFeature
from .median import segment_median
from .scatter import REDUCTIONS
from .spmm import spmm


def aggregate(graph: Graph, values: Tensor | None, x: Tensor, reduce: str = "sum") -> Tensor:
    """Reduce the (weighted) features of each node's in-neighbours: [N, F].

    ``out[i] = reduce_{j -> i} values[k] * x[j]`` over the edges into i (CSR order of
    ``values``); a node with no incoming edge gets 0. ``sum`` and ``mean`` are one CSR product
    (:func:`spmm`, mean with weights ``values / d_i``); ``median`` is :func:`segment_median`;
    ``max`` and ``min`` find each selected row in one ``embedding_bag`` pass on CPU (a
    per-edge gather elsewhere). ``values`` (None for ones) is only supported with sum and
    mean.

    Args:
        graph: the sparsity pattern.
        values: [E] edge weights in CSR order, or None.
        x: [N, F] node features.
        reduce: one of :data:`gnnkit.ops.scatter.REDUCTIONS`.
    """
    check_graph(graph)
    check_node_tensor(x, graph, "x", dims=2)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}.")
    if reduce == "sum":
        return spmm(graph, values, x)
    if reduce == "mean":
        inverse_degree = 1.0 / graph.in_degree.clamp(min=1).to(x.dtype)
        weights = inverse_degree.index_select(0, graph.csr_target)
        if values is not None:
            weights = check_edge_values(values, graph, x, "values") * weights
        return spmm(graph, weights, x)
    if values is not None:
        raise ValueError(f"values (edge weights) are only supported with sum and mean, not "
                         f"{reduce!r}; multiply the messages instead.")
    if reduce == "median":
        return segment_median(graph, x)
    if reduce == "min":
        return -_segment_max(graph, -x)
    return _segment_max(graph, x)


def _segment_max(graph: Graph, x: Tensor) -> Tensor:
    """out[i] = max over the in-neighbours j of x[j], feature by feature (0 with none).

    On CPU, ``embedding_bag`` in max mode finds the row of each maximum in one pass and
    :func:`gather_per_feature` takes those entries, so the gradient goes to the selected
    entries and second derivatives are right; elsewhere a per-edge gather and
    ``segment_reduce``.
    """
    rowptr, col, _ = graph.csr
    if graph.num_edges == 0 or x.shape[1] == 0:
        return x * 0
    if x.device.type == "cpu":
        *_, rows = torch.embedding_bag(x.detach(), col, rowptr, False, 2, False, None, True)
        rows = rows.masked_fill((graph.in_degree == 0).unsqueeze(1), x.shape[0])
        return GatherPerFeature.apply(x.contiguous(), rows)
    gathered = x.index_select(0, col)
    out = torch.segment_reduce(gathered, "max", offsets=rowptr, axis=0, unsafe=True)
    empty = (graph.in_degree == 0).unsqueeze(1)
    return out.masked_fill(empty, 0)
