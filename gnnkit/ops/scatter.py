"""Reductions of per-edge rows into per-node rows, for messages in any edge order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .median import message_median

if TYPE_CHECKING:
    from ..graph import Graph

#: The built-in reductions, the one list of them: :func:`scatter` reduces messages with
#: each, :func:`gnnkit.ops.aggregate` each on a graph's CSR, and the aggregation modules of
#: :mod:`gnnkit.nn.aggr` are named after them.
REDUCTIONS = ("sum", "mean", "max", "min", "median")


def scatter(index: Tensor, x: Tensor, dim_size: int, reduce: str = "sum", *,
            graph: Graph | None = None) -> Tensor:
    """out[i] = reduce over {x[k] : index[k] = i}; a node that receives nothing gets 0.

    Args:
        index: [E] integer, the receiving node of each message, in ``0..dim_size-1``.
        x: [E, ...] one row per message.
        dim_size: N, the number of output rows.
        reduce: one of :data:`REDUCTIONS`; ``"median"`` is the lower median, feature by
            feature, and needs x [E, F].
        graph: optional, the graph whose edges the messages follow (``index =
            graph.target``): the median then groups them with its cached CSR.

    Returns:
        [N, ...]. Gradients: sum/mean spread evenly; max/min go to the selected entries (split
        evenly between ties); the median's to the selected entry.
    """
    index = check_index(index, x, dim_size)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}.")
    if reduce == "median":
        return message_median(index, x, dim_size, graph)
    out = x.new_zeros((dim_size,) + x.shape[1:])
    if reduce == "sum":
        return out.index_add_(0, index, x)
    if reduce == "mean":
        count = torch.bincount(index, minlength=dim_size).clamp_(min=1)
        return out.index_add_(0, index, x) / count.view((-1,) + (1,) * (x.dim() - 1)).to(x.dtype)
    expanded = index.view((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
    if not x.is_floating_point():
        return out.scatter_reduce(0, expanded, x, "a" + reduce, include_self=False)
    # Start from NaN, not 0: torch's backward compares the output with the starting values as
    # well, so a selected message equal to a starting 0 would get only half its gradient.
    start = torch.full_like(out, float("nan"))
    reduced = start.scatter_reduce(0, expanded, x, "a" + reduce, include_self=False)
    received = torch.bincount(index, minlength=dim_size) > 0
    return torch.where(received.view((-1,) + (1,) * (x.dim() - 1)), reduced, out)


def check_index(index, x, dim_size) -> Tensor:
    """Check ``index`` [E] (integer ids below ``dim_size``, one per row of ``x``) and
    ``dim_size`` (an int >= 0); return ``index`` as long."""
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise TypeError(f"x must be a tensor [E, ...] with one row per message, got "
                        f"{type(x).__name__ if not isinstance(x, Tensor) else list(x.shape)}.")
    if isinstance(dim_size, bool) or not isinstance(dim_size, int) or dim_size < 0:
        raise TypeError(f"dim_size must be an int >= 0 (the number of nodes), got {dim_size!r}.")
    if not isinstance(index, Tensor):
        raise TypeError(f"index must be a torch tensor [E], got {type(index).__name__}.")
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise TypeError(f"index must hold integer node ids, got {index.dtype}.")
    if index.dim() != 1 or index.numel() != x.shape[0]:
        raise ValueError(
            f"index must be [E] with one entry per row of x; got index {list(index.shape)} for "
            f"x {list(x.shape)}."
        )
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= dim_size):
        raise ValueError(
            f"index holds ids in [{int(index.min())}, {int(index.max())}] but dim_size is "
            f"{dim_size}; ids must lie in 0..{dim_size - 1}."
        )
    return index.long()
