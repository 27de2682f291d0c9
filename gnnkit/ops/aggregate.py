"""Neighbourhood reductions on a Graph's CSR without per-edge message tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph import Graph
from ._checks import check_edge_values, check_graph, check_node_tensor
from .median import segment_median
from .spmm import spmm

REDUCTIONS = ("sum", "mean", "max", "min", "median")


def aggregate(graph: Graph, values: Tensor | None, x: Tensor, reduce: str = "sum") -> Tensor:
    """Reduce the (weighted) features of each node's in-neighbours: [N, F].

    ``out[i] = reduce_{j -> i} values[k] * x[j]`` over the edges into i (CSR order of
    ``values``); a node with no incoming edge gets 0. ``sum`` and ``mean`` are one CSR product
    (:func:`spmm`, mean with weights ``values / d_i``); ``median`` is :func:`segment_median`;
    ``max`` and ``min`` gather and reduce per target in one ``embedding_bag`` on CPU (a
    per-edge gather elsewhere). ``values`` (None for ones) is only supported with sum and
    mean.

    Args:
        graph: the sparsity pattern.
        values: [E] edge weights in CSR order, or None.
        x: [N, F] node features.
        reduce: ``"sum" | "mean" | "max" | "min" | "median"``.
    """
    check_graph(graph)
    check_node_tensor(x, graph, "x", dims=2)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}.")
    if reduce in ("sum", "mean"):
        values = check_edge_values(values, graph, x, "values")
        if reduce == "mean":
            inverse_degree = 1.0 / graph.in_degree.clamp(min=1).to(x.dtype)
            values = values * inverse_degree.index_select(0, graph.csr_target)
        return spmm(graph, values, x)
    if values is not None:
        raise ValueError(f"values (edge weights) are only supported with sum and mean, not "
                         f"{reduce!r}; multiply the messages instead.")
    if reduce == "median":
        return segment_median(graph, x)
    if reduce == "min":
        return -_segment_max(graph, -x)
    return _segment_max(graph, x)


def _segment_max(graph: Graph, x: Tensor) -> Tensor:
    """out[i] = max over the in-neighbours j of x[j], feature by feature (0 with none)."""
    rowptr, col, _ = graph.csr
    if graph.num_edges == 0 or x.shape[1] == 0:
        return x * 0
    if x.device.type == "cpu":
        return F.embedding_bag(col, x, rowptr, mode="max", include_last_offset=True)
    gathered = x.index_select(0, col)
    out = torch.segment_reduce(gathered, "max", offsets=rowptr, axis=0, unsafe=True)
    empty = (graph.in_degree == 0).unsqueeze(1)
    return out.masked_fill(empty, 0)
