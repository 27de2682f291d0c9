"""Argument checks shared by the ops: a clear ValueError/TypeError naming the argument."""

from __future__ import annotations

import torch
from torch import Tensor

from ..graph import Graph


def check_graph(graph, name: str = "graph") -> Graph:
    """``graph`` must be a :class:`gnnkit.Graph` (the ops read its cached CSR)."""
    if not isinstance(graph, Graph):
        raise TypeError(
            f"{name} must be a gnnkit.Graph, got {type(graph).__name__}; build one with "
            "gnnkit.Graph(edge_index, num_nodes) (or gnnkit.as_graph(...))."
        )
    return graph


def check_node_tensor(x, graph: Graph, name: str = "x", *, dims: int = 2) -> Tensor:
    """A floating tensor with ``dims`` dimensions and one row per node of ``graph``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}; use {name}.float().")
    if x.dim() != dims or x.shape[0] != graph.num_nodes:
        wanted = "num_nodes, F" if dims == 2 else "num_nodes, H, C"
        raise ValueError(
            f"{name} must have shape [{wanted}] with num_nodes = {graph.num_nodes}; got "
            f"{list(x.shape)}."
        )
    return x


def check_edge_values(values, graph: Graph, x: Tensor, name: str = "values", *,
                      shape: tuple | None = None) -> Tensor:
    """Per-edge values in CSR order: ``shape`` (default [E]) and x's dtype; None gives ones.
    Under ``torch.autocast`` they are cast to x's dtype (autocast mixes dtypes on purpose)."""
    shape = (graph.num_edges,) if shape is None else shape
    if values is None:
        return torch.ones(shape, dtype=x.dtype, device=x.device)
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a torch tensor of shape {list(shape)}, got "
                        f"{type(values).__name__}.")
    if tuple(values.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)} (one entry per edge), got "
                         f"{list(values.shape)}.")
    if not values.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {values.dtype}.")
    if values.dtype != x.dtype:
        if torch.is_autocast_enabled(x.device.type):
            return values.to(x.dtype)
        raise TypeError(f"{name} is {values.dtype} but x is {x.dtype}; give both the same dtype.")
    if values.device != x.device:
        raise ValueError(f"{name} is on {values.device} but x is on {x.device}.")
    return values
