"""Lower median per segment, by selection inside each segment (no global sort of values)."""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor

from ..graph import Graph
from ._checks import check_graph, check_node_tensor

#: Segments of up to this many entries use a selection network, longer ones ``kthvalue``.
NETWORK_MAX_DEGREE = 64
#: Values handled per block (about 4 MB of float32), so a block's rows stay in cache.
BLOCK_VALUES = 1 << 20


def segment_median(graph: Graph, x: Tensor) -> Tensor:
    """The lower median of the in-neighbours' features, feature by feature: [N, F].

    ``out[i, f]`` is the ``(d - 1) // 2``-th smallest of ``x[j, f]`` over the d edges j -> i
    (as ``torch.median``), 0 for a node with no incoming edge. The gradient of each entry goes
    to the neighbour it was taken from; second derivatives are right (the selection is
    piecewise constant).

    Raises:
        ValueError: ``x`` contains NaN.
    """
    check_graph(graph)
    check_node_tensor(x, graph, "x", dims=2)
    if x.numel() == 0:
        return x * 0
    rowptr, col, _ = graph.csr
    rows = _median_rows(rowptr, col, x.detach(), graph.nodes_by_in_degree)
    return _GatherPerFeature.apply(x.contiguous(), rows)


def segment_median_index(rowptr: Tensor, source: Tensor, x: Tensor) -> Tensor:
    """Which row of ``x`` holds the lower median of each segment, feature by feature.

    Segment i consists of the rows ``source[rowptr[i]:rowptr[i+1]]`` of ``x`` (for a Graph's
    CSR: the in-neighbours of node i). For each
    segment and feature f, the result names the row r whose ``x[r, f]`` is the lower median of
    that segment (the ``(d - 1) // 2``-th smallest of d values, as ``torch.median``). An empty
    segment gets ``x.size(0)``, a padding row that the caller fills with 0.

    Segments are grouped by their length d and each group is processed in blocks of a
    [d, nodes, F] tensor: for d <= 64 a comparator network selects the median with
    elementwise min/max over whole [nodes, F] slices, for longer segments a batched
    ``kthvalue``. The work is proportional to E x F (times a log factor); nothing sorts all
    entries at once.

    Args:
        rowptr: [N + 1] segment boundaries.
        source: [E] row of ``x`` for each segment entry.
        x: [M, F] values (node features, or messages).

    Returns:
        [N, F] long indices into ``x`` (or ``x.size(0)`` for empty segments).
        :func:`gather_per_feature` with them gives the medians and sends each gradient to the
        selected element.

    Raises:
        ValueError: ``x`` contains NaN.
    """
    _check_segments(rowptr, source, x)
    counts = rowptr[1:] - rowptr[:-1]
    groups = tuple(
        (degree, torch.nonzero(counts == degree).view(-1))
        for degree in torch.unique(counts).tolist() if degree > 0
    )
    return _median_rows(rowptr.long(), source.long(), x, groups)


def _median_rows(rowptr: Tensor, source: Tensor, x: Tensor, groups) -> Tensor:
    """:func:`segment_median_index` on trusted arguments; ``groups`` as
    :attr:`gnnkit.Graph.nodes_by_in_degree` (the segments of each length d > 0)."""
    if x.is_floating_point() and torch.isnan(x).any():
        raise ValueError(
            "x contains NaN, which has no place in an order, so the median is undefined; "
            "replace or drop the NaN features first."
        )
    num_features = x.size(1)
    result = torch.full(
        (rowptr.numel() - 1, num_features), x.size(0), dtype=torch.long, device=x.device
    )
    for degree, nodes_of_degree in groups:
        block = max(1, BLOCK_VALUES // (degree * max(num_features, 1)))
        for nodes in nodes_of_degree.split(block):
            slots = rowptr[nodes].unsqueeze(0) + torch.arange(degree, device=x.device)[:, None]
            rows = source[slots]  # [d, n]
            values = x.index_select(0, rows.view(-1)).view(degree, len(nodes), num_features)
            position = _median_position(values)  # [n, F], in 0..d-1
            result[nodes] = rows.t().gather(1, position)
    return result


class _GatherPerFeature(torch.autograd.Function):
    """out[i, f] = x[rows[i, f], f], and 0 where ``rows[i, f] == M`` (the padding row).

    Forward: one flat ``take`` at positions ``rows * F + f`` of x with a zero row appended.
    Backward: grad_x[r, f] = sum of grad_out[i, f] over the (i, f) with rows[i, f] = r: one
    weighted ``bincount``, or a differentiable ``index_add`` when a second derivative is asked
    for. Saves only the [N, F] positions.
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
        if torch.is_grad_enabled():
            sums = flat.new_zeros(size + num_features).index_add(0, positions.view(-1), flat)
        else:
            weights = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()
            sums = torch.bincount(positions.view(-1), weights=weights,
                                  minlength=size + num_features).to(grad_out.dtype)
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
    return _GatherPerFeature.apply(x.contiguous(), rows.long())


def _check_segments(rowptr: Tensor, source: Tensor, x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"x must be a [M, F] tensor, got {_describe(x)}.")
    for name, value in (("rowptr", rowptr), ("source", source)):
        if not isinstance(value, Tensor) or value.dim() != 1 or value.is_floating_point():
            raise TypeError(f"{name} must be a 1-D integer tensor, got {_describe(value)}.")
    if rowptr.numel() == 0 or int(rowptr[0]) != 0 or int(rowptr[-1]) != source.numel() or bool(
        (rowptr[1:] < rowptr[:-1]).any()
    ):
        raise ValueError("rowptr must start at 0, never decrease and end at source.numel().")
    if source.numel() and (int(source.min()) < 0 or int(source.max()) >= x.shape[0]):
        raise ValueError(f"source must hold row ids of x in 0..{x.shape[0] - 1}.")


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {list(value.shape)}"
    return type(value).__name__


def _median_position(values: Tensor) -> Tensor:
    """For values [d, n, F]: the index along dim 0 of the lower median of each column."""
    degree = values.size(0)
    if degree > NETWORK_MAX_DEGREE:
        return torch.kthvalue(values.permute(1, 2, 0), (degree + 1) // 2, dim=2).indices
    wires = list(values.unbind(0))
    for low, high, keep_low, keep_high in median_network(degree):
        smaller, larger = wires[low], wires[high]
        if keep_low:
            wires[low] = torch.minimum(smaller, larger)
        if keep_high:
            wires[high] = torch.maximum(smaller, larger)
    median = wires[(degree - 1) // 2]
    # A slot that holds the median value (the last one, where values tie): slot numbers where
    # equal, 0 elsewhere, then the largest per column; degree <= 64 fits in uint8.
    slots = torch.arange(degree, dtype=torch.uint8, device=values.device).view(-1, 1, 1)
    holds_median = (values == median).view(torch.uint8).mul_(slots)
    return holds_median.amax(0).long()


@cache
def median_network(degree: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """Comparators ``(low, high, keep_low, keep_high)`` that move the lower median of
    ``degree`` values to wire ``(degree - 1) // 2``.

    Batcher's odd-even merge sort on the next power of two, restricted to the first ``degree``
    wires (the missing ones act as +inf and never move), then pruned backwards to the
    comparators whose outputs can reach the median wire; ``keep_low``/``keep_high`` say which of
    a comparator's two outputs is read later.
    """
    size = 1
    while size < degree:
        size *= 2
    comparators = []
    span = 1
    while span < size:
        step = span
        while step >= 1:
            for start in range(step % span, size - step, 2 * step):
                for offset in range(min(step, size - start - step)):
                    low, high = offset + start, offset + start + step
                    if low // (2 * span) == high // (2 * span) and high < degree:
                        comparators.append((low, high))
            step //= 2
        span *= 2
    needed = {(degree - 1) // 2}
    kept = []
    for low, high in reversed(comparators):
        keep_low, keep_high = low in needed, high in needed
        if keep_low or keep_high:
            kept.append((low, high, keep_low, keep_high))
            needed |= {low, high}
    return tuple(reversed(kept))
