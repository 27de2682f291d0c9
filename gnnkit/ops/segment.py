"""Reductions over contiguous segments of rows (one segment per graph of a batch).

A batch of B graphs stores the nodes of graph b in rows ``ptr[b]:ptr[b+1]`` of x, so a
readout is a reduction over each segment::

    out[b] = reduce_{ptr[b] <= n < ptr[b+1]} x[n]          x [N, F] -> out [B, F]

No atomics: the results are deterministic on every device. An empty segment gives 0.
On CPU, sums of float32/float16/bfloat16 rows are one ``embedding_bag`` pass (one bag per
segment, about 3x faster than ``index_add`` and 5x faster than ``segment_reduce`` on a
200k x 64 batch of 5000 graphs, one thread); the maximum finds each selected row with
``embedding_bag`` in max mode, then takes those entries so that the gradient goes to them.
Gradients of every reduction are themselves differentiable (second derivatives work).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .gather import GatherPerFeature

REDUCTIONS = ("sum", "mean", "max")
_GATHER_SUM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def segment(ptr: Tensor, x: Tensor, reduce: str = "sum", *,
            index: Tensor | None = None) -> Tensor:
    """Reduce each segment of rows of ``x``: [B, ...].

    ``out[b] = reduce(x[ptr[b]:ptr[b+1]])`` with ``reduce`` one of ``"sum"``, ``"mean"``
    (the sum divided by the segment's length) and ``"max"`` (feature by feature; the gradient
    of each output entry goes to the entry it was taken from). An empty segment gives 0.

    Args:
        ptr: [B + 1] integer segment boundaries: starts at 0, non-decreasing, ends at N.
        x: [N, ...] floating rows.
        reduce: ``"sum" | "mean" | "max"``.
        index: optional [N] segment id of each row (``batch``), when the caller has it
            already; it is then not recomputed from ``ptr`` (it is not checked).

    Returns:
        [B, ...] in x's dtype.
    """
    ptr = check_ptr(ptr, x)
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}.")
    shape = x.shape
    flat = x.reshape(shape[0], -1)
    counts = ptr[1:] - ptr[:-1]
    if index is None:
        index = segment_ids(ptr)
    if reduce == "max":
        out = _segment_max(ptr, index, flat)
    else:
        out = _SegmentSum.apply(flat, ptr, index)
        if reduce == "mean":
            out = out / counts.clamp(min=1).to(x.dtype).unsqueeze(1)
    return out.reshape((ptr.numel() - 1,) + tuple(shape[1:]))


def segment_sum(ptr: Tensor, x: Tensor) -> Tensor:
    """``out[b] = sum_{ptr[b] <= n < ptr[b+1]} x[n]``; see :func:`segment`."""
    return segment(ptr, x, "sum")


def segment_mean(ptr: Tensor, x: Tensor) -> Tensor:
    """``out[b] = mean_{ptr[b] <= n < ptr[b+1]} x[n]`` (0 for an empty segment)."""
    return segment(ptr, x, "mean")


def segment_max(ptr: Tensor, x: Tensor) -> Tensor:
    """``out[b, f] = max_{ptr[b] <= n < ptr[b+1]} x[n, f]`` (0 for an empty segment)."""
    return segment(ptr, x, "max")


def segment_ids(ptr: Tensor) -> Tensor:
    """[N] long: the segment of each row (``batch``), from the boundaries ``ptr`` [B + 1]."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts,
                                   output_size=int(ptr[-1]))


def ptr_from_index(index: Tensor, num_segments: int) -> Tensor:
    """[B + 1] boundaries from a sorted [N] segment id per row (checked by the caller)."""
    counts = torch.zeros(num_segments, dtype=torch.long, device=index.device)
    counts.index_add_(0, index, torch.ones_like(index))
    ptr = torch.zeros(num_segments + 1, dtype=torch.long, device=index.device)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


def check_ptr(ptr, x) -> Tensor:
    """``x`` a floating tensor [N, ...] and ``ptr`` [B + 1] integer boundaries 0..N; returns
    ``ptr`` as long."""
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise TypeError(f"x must be a tensor [N, ...] with one row per node, got "
                        f"{list(x.shape) if isinstance(x, Tensor) else type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}; use x.float().")
    if not isinstance(ptr, Tensor) or ptr.dim() != 1 or ptr.is_floating_point() or (
        ptr.dtype == torch.bool
    ):
        raise TypeError("ptr must be a 1-D integer tensor [B + 1] of segment boundaries, got "
                        f"{list(ptr.shape) if isinstance(ptr, Tensor) else type(ptr).__name__}.")
    if ptr.numel() == 0:
        raise ValueError("ptr must have B + 1 >= 1 entries (ptr[0] = 0).")
    ptr = ptr.long()
    if int(ptr[0]) != 0 or int(ptr[-1]) != x.shape[0]:
        raise ValueError(f"ptr must start at 0 and end at N = x.shape[0] = {x.shape[0]}; got "
                         f"{int(ptr[0])} and {int(ptr[-1])}.")
    if bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("ptr must be non-decreasing (segment boundaries).")
    if ptr.device != x.device:
        raise ValueError(f"ptr is on {ptr.device} but x is on {x.device}.")
    return ptr


class _SegmentSum(torch.autograd.Function):
    """out[b] = sum of x[ptr[b]:ptr[b+1]] for x [N, F]; backward: ``grad[index]`` (a gather,
    differentiable, so second derivatives work)."""

    @staticmethod
    def forward(ctx, x: Tensor, ptr: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        if x.device.type == "cpu" and x.dtype in _GATHER_SUM_DTYPES:
            rows = torch.arange(x.shape[0], device=x.device)
            return F.embedding_bag(rows, x, ptr, mode="sum", include_last_offset=True)
        if x.device.type == "cpu":  # index_add_ is sequential, hence deterministic, on CPU
            return x.new_zeros(ptr.numel() - 1, x.shape[1]).index_add_(0, index, x)
        return torch.segment_reduce(x, "sum", offsets=ptr, axis=0, unsafe=True)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (index,) = ctx.saved_tensors
        return grad_out.index_select(0, index), None, None


def _segment_max(ptr: Tensor, index: Tensor, x: Tensor) -> Tensor:
    """Feature-wise maximum per segment with exact gradients (0 for an empty segment).

    The row of each maximum is found without autograd (``embedding_bag`` in max mode on CPU,
    else the first row equal to ``segment_reduce``'s maximum) and the entries are taken with
    :class:`GatherPerFeature`, whose backward is a differentiable ``index_add``.
    """
    num_rows, num_features = x.shape
    empty = (ptr[1:] == ptr[:-1]).unsqueeze(1)
    if num_rows == 0 or num_features == 0:
        return x.new_zeros(ptr.numel() - 1, num_features)
    values = x.detach()
    if x.device.type == "cpu":
        rows_in = torch.arange(num_rows, device=x.device)
        *_, rows = torch.embedding_bag(values, rows_in, ptr, False, 2, False, None, True)
    else:
        best = torch.segment_reduce(values, "max", offsets=ptr, axis=0, unsafe=True)
        hit = values == best.index_select(0, index)
        position = torch.arange(num_rows, device=x.device).unsqueeze(1).expand_as(values)
        position = torch.where(hit, position, num_rows)
        rows = torch.full_like(best, num_rows, dtype=torch.long)
        rows = rows.scatter_reduce(0, index.unsqueeze(1).expand_as(values), position, "amin")
    rows = rows.masked_fill(empty, num_rows)
    return GatherPerFeature.apply(x.contiguous(), rows)
