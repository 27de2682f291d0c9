"""Turning a layer's ``(x, graph)`` arguments into checked tensors and a cached Graph."""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from ..graph import Graph, as_graph

_RECENT_GRAPHS: deque = deque(maxlen=4)


def check_features(x, in_features: int | None = None, name: str = "x") -> Tensor:
    """Check node features: a floating tensor [N, F] (with F = ``in_features`` if given)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch tensor [N, F], got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}; use {name}.float().")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [N, F], got {tuple(x.shape)}.")
    if in_features is not None and x.size(1) != in_features:
        raise ValueError(
            f"{name} has {x.size(1)} features per node but the layer expects {in_features}; "
            "check the layer's in_features."
        )
    return x


def is_dense_adjacency(graph_like) -> bool:
    """True for a dense (strided) floating or boolean square matrix."""
    return (
        isinstance(graph_like, Tensor)
        and graph_like.layout == torch.strided
        and (graph_like.is_floating_point() or graph_like.dtype == torch.bool)
        and graph_like.dim() == 2
        and graph_like.size(0) == graph_like.size(1)
    )


def graph_for(graph_like, x: Tensor) -> Graph:
    """The :class:`Graph` for ``graph_like``, with node ids checked against ``x.size(0)``.

    An ``edge_index`` tensor (given directly or inside a PyG ``Data``) seen in one of the last
    few calls, unchanged since, reuses the Graph built then, so its CSR form is sorted once per
    graph and not once per layer call.
    """
    edge_index = getattr(graph_like, "edge_index", graph_like)
    if isinstance(graph_like, Graph) or not _is_plain_edge_index(edge_index):
        return as_graph(graph_like, x.size(0))
    key = (edge_index._version, x.size(0), edge_index.device)
    for tensor, seen_key, graph in _RECENT_GRAPHS:
        if tensor is edge_index and seen_key == key:
            return graph
    graph = as_graph(graph_like, x.size(0))
    _RECENT_GRAPHS.append((edge_index, key, graph))
    return graph


def _is_plain_edge_index(value) -> bool:
    return (
        isinstance(value, Tensor)
        and value.layout == torch.strided
        and not value.is_floating_point()
        and value.dtype != torch.bool
    )
