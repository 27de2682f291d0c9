"""Turning a layer's ``(x, graph)`` arguments into checked tensors and a Graph."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validate import tensor_graph_form
from ..graph import Graph, as_graph
from ..ops.features import is_sparse


def check_features(x, in_features: int | None = None, name: str = "x", *,
                   dtype: torch.dtype | None = None) -> Tensor:
    """Check node features: a floating tensor [N, F] (with F = ``in_features`` if given),
    dense or in a sparse CSR/COO layout (:mod:`gnnkit.ops.features`).

    With ``dtype`` (the layer's parameter dtype) a mismatch is refused, except under
    ``torch.autocast``, which mixes dtypes on purpose.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch tensor [N, F], got {type(x).__name__}.")
    if x.layout != torch.strided and not is_sparse(x):
        raise TypeError(f"{name} must be a dense tensor or a sparse CSR/COO one, got layout "
                        f"{x.layout}; use {name}.to_sparse_csr() or {name}.to_dense().")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}; use {name}.float().")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [N, F], got {tuple(x.shape)}.")
    if in_features is not None and x.size(1) != in_features:
        raise ValueError(
            f"{name} has {x.size(1)} features per node but the layer expects {in_features}; "
            "check the layer's in_features."
        )
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(
            f"{name} is {x.dtype} but the layer's parameters are {dtype}; convert one of them "
            f"({name}.to({dtype}) or layer.to({x.dtype}))."
        )
    return x


def is_dense_adjacency(graph_like, num_nodes: int) -> bool:
    """True for a dense (strided) adjacency matrix [N, N], by the one rule
    :func:`gnnkit._validate.tensor_graph_form` (which refuses the ambiguous cases)."""
    return (
        isinstance(graph_like, Tensor)
        and graph_like.layout == torch.strided
        and tensor_graph_form(graph_like, num_nodes) == "adjacency"
    )


def graph_for(graph_like, x: Tensor) -> Graph:
    """The :class:`Graph` for ``graph_like``, with node ids checked against ``x.size(0)``.

    A ``Graph`` is used as it is (its cached CSR form is reused); any other form is converted
    on this call, so the result never depends on earlier calls.
    """
    return as_graph(graph_like, x.size(0))
