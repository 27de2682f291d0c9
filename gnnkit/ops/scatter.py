"""Reductions of per-edge rows into per-node rows, for messages in any edge order."""

from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("sum", "mean", "max", "min")


def scatter(x: Tensor, index: Tensor, dim_size: int, reduce: str = "sum") -> Tensor:
    """out[i] = reduce over {x[k] : index[k] = i}; a node that receives nothing gets 0.

    Args:
        x: [E, F] one row per message.
        index: [E] long, the receiving node of each message, in ``0..dim_size-1``.
        dim_size: N, the number of output rows.
        reduce: ``"sum" | "mean" | "max" | "min"``.

    Returns:
        [N, F]. Gradients: sum/mean spread evenly; max/min go to the selected entries (split
        evenly between ties).
    """
    out = x.new_zeros((dim_size,) + x.shape[1:])
    if reduce == "sum":
        return out.index_add_(0, index, x)
    if reduce == "mean":
        count = torch.bincount(index, minlength=dim_size).clamp_(min=1)
        return out.index_add_(0, index, x) / count.view((-1,) + (1,) * (x.dim() - 1)).to(x.dtype)
    if reduce in ("max", "min"):
        expanded = index.view((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
        return out.scatter_reduce(0, expanded, x, "a" + reduce, include_self=False)
    raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}.")
