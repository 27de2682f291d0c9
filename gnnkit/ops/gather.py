"""Taking one entry per (row, feature) from a matrix, with the gradient routed back."""

from __future__ import annotations

import torch
from torch import Tensor


class GatherPerFeature(torch.autograd.Function):
    """out[i, f] = x[rows[i, f], f], and 0 where ``rows[i, f] == M`` (the padding row).

    Forward: one flat ``take`` at positions ``rows * F + f`` of x with a zero row appended.
    Backward: grad_x[r, f] = sum of grad_out[i, f] over the (i, f) with rows[i, f] = r: one
    flat ``index_add`` (fixed output size, differentiable for second derivatives). Saves
    only the [N, F] positions.
    """

    @staticmethod
    def forward(ctx, x: Tensor, rows: Tensor) -> Tensor:
        num_rows, num_features = x.shape
        positions = torch.arange(num_features, device=x.device).add(rows, alpha=num_features)
        padded = torch.cat([x, x.new_zeros(1, num_features)])
        ctx.save_for_backward(positions)
        ctx.num_rows = num_rows
        return padded.view(-1).take(positions)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (positions,) = ctx.saved_tensors
        num_features = grad_out.size(1)
        size = ctx.num_rows * num_features
        flat = grad_out.reshape(-1)
        sums = flat.new_zeros(size + num_features).index_add(0, positions.view(-1), flat)
        return sums[:size].view(ctx.num_rows, num_features), None


def gather_per_feature(rows: Tensor, x: Tensor) -> Tensor:
    """out[i, f] = x[rows[i, f], f] for x [M, F] and rows [N, F] in 0..M, where ``rows == M``
    (an empty segment of :func:`segment_median_index`) gives 0. The gradient of each output
    entry goes to the element it was taken from."""
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise TypeError(f"x must be a [M, F] tensor, got {_describe(x)}.")
    if not isinstance(rows, Tensor) or rows.dim() != 2 or rows.is_floating_point():
        raise TypeError(f"rows must be a [N, F] integer tensor, got {_describe(rows)}.")
    if rows.shape[1] != x.shape[1]:
        raise ValueError(f"rows has {rows.shape[1]} columns but x has {x.shape[1]} features.")
    if rows.numel() == 0:
        return x.new_zeros(rows.shape)
    low, high = int(rows.min()), int(rows.max())
    if low < 0 or high > x.shape[0]:
        raise ValueError(f"rows must lie in 0..{x.shape[0]} (M = the padding row); got "
                         f"{low}..{high}.")
    return GatherPerFeature.apply(x.contiguous(), rows.long())


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)}"
    return type(value).__name__


def take_rows(values: Tensor, index: Tensor) -> Tensor:
    """``values.index_select(0, index)``: rows ``index`` [K] of ``values`` [M] or [M, F] ->
    [K] or [K, F]. A single column ([M, 1]) is gathered as a flat vector: torch copies
    one-element rows one by one, about 7x slower (Cora-sized, one attention head)."""
    if values.dim() == 2 and values.shape[1] == 1:
        return values.reshape(-1).index_select(0, index).unsqueeze(1)
    return values.index_select(0, index)
