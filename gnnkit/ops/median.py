"""Lower median per segment, by selection inside each segment (no global sort of values)."""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor

from ..graph import Graph
from ._checks import check_graph, check_node_tensor
from .features import csr_parts, is_sparse
from .gather import GatherPerFeature

#: Segments of up to this many entries use a selection network, longer ones ``kthvalue``.
NETWORK_MAX_DEGREE = 64
#: Values handled per block (about 4 MB of float32), so a block's rows stay in cache.
BLOCK_VALUES = 1 << 20
#: :func:`sparse_segment_median` gathers one entry per stored value of every in-neighbour
#: (about 40 bytes each while it sorts); :func:`sparse_median_applies` allows up to this many.
SPARSE_MEDIAN_MAX_ENTRIES = 1 << 24
#: ... and at most this fraction of the E x F values the dense median reads. Measured (1
#: thread, forward, Cora's graph with 1433 features and a PubMed-sized one with 500, random x
#: of each density): at 1% sparse 35 against 156 ms and 116 against 439 ms, at 2% 68 against
#: 174 and 226 against 527, at 4% 140 against 118 and 625 against 458.
SPARSE_MEDIAN_MAX_SHARE = 0.03


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
    return GatherPerFeature.apply(x.contiguous(), rows)


def sparse_median_applies(graph: Graph, x: Tensor) -> bool:
    """Whether :func:`sparse_segment_median` pays for ``x`` [N, F] (sparse CSR/COO) on
    ``graph``: its gathered entries (over the edges j -> i, the stored values of row j) number
    at most :data:`SPARSE_MEDIAN_MAX_ENTRIES` and :data:`SPARSE_MEDIAN_MAX_SHARE` of the
    E x F values the dense median reads (for bag-of-words rows: x at most about 3% stored)."""
    rowptr, _, _ = csr_parts(x)
    _, col, _ = graph.csr
    entries = int(rowptr.diff().index_select(0, col).sum()) if graph.num_edges else 0
    return entries <= min(SPARSE_MEDIAN_MAX_ENTRIES,
                          SPARSE_MEDIAN_MAX_SHARE * graph.num_edges * x.shape[1])


def sparse_segment_median(graph: Graph, x: Tensor) -> Tensor:
    """:func:`segment_median` of a sparse ``x`` [N, F] (CSR or COO): the lower median of the
    in-neighbours' features, feature by feature, as a sparse CSR tensor [N, F] that stores the
    medians that are not 0 (its values stay in autograd with x's stored values).

    An entry that x does not store is 0. For node i with d in-neighbours and feature f, let
    n_< and n_= count the neighbours whose value is below and equal to 0; the median (the
    ``k = (d - 1) // 2``-th smallest) is 0 when ``n_< <= k < n_< + n_=``, else the k-th
    smallest stored value below 0 or the ``(k - n_< - n_=)``-th above it. So only the stored
    values of the neighbours are read: one entry per (edge j -> i, stored value of row j),
    sorted once by (i, f, value). Bag-of-words features are mostly 0, and so are their
    medians. The gradient of a stored median goes to the stored value it was taken from (of
    tied values, one of them); a median of 0 sends none (it was taken from an entry x does
    not store, or equals one that does).

    Raises:
        TypeError: ``x`` is not a floating sparse CSR/COO tensor (for a dense one use
            :func:`segment_median`).
        ValueError: ``x`` is not [N, F] for the graph's N nodes, or stores NaN.
    """
    check_graph(graph)
    if not is_sparse(x):
        raise TypeError(f"x must be a sparse CSR or COO tensor, got {_describe(x)}; for a "
                        "dense x use segment_median.")
    check_node_tensor(x, graph, "x")
    x_rowptr, x_col, x_values = csr_parts(x)
    if torch.isnan(x_values).any():
        raise ValueError(
            "x contains NaN, which has no place in an order, so the median is undefined; "
            "replace or drop the NaN features first."
        )
    num_nodes, num_features = graph.num_nodes, x.shape[1]
    _, source, _ = graph.csr
    # One entry per (edge, stored value of its source row), edges in CSR order.
    start = x_rowptr.index_select(0, source)
    count = x_rowptr.index_select(0, source + 1) - start
    end = torch.cumsum(count, 0)
    total = int(end[-1]) if count.numel() else 0
    entry = torch.repeat_interleave(start - end + count, count, output_size=total)
    entry += torch.arange(total, device=entry.device)  # positions in x's stored values
    target = torch.repeat_interleave(graph.csr_target, count, output_size=total)
    key = target * num_features + x_col.index_select(0, entry)
    value = x_values.detach().index_select(0, entry)
    by_value = torch.argsort(value, stable=True)
    order = by_value.index_select(0, torch.argsort(key.index_select(0, by_value), stable=True))
    key, value, entry = key[order], value[order], entry[order]
    # Groups of equal (i, f), each sorted by value: n_< and n_= from running counts.
    group_key, stored = torch.unique_consecutive(key, return_counts=True)
    group_end = torch.cumsum(stored, 0)
    group_start = group_end - stored
    below = _counts_in_groups(value < 0, group_start, group_end)
    zeros = _counts_in_groups(value == 0, group_start, group_end)
    node = torch.div(group_key, num_features, rounding_mode="floor")
    degree = graph.in_degree.index_select(0, node)
    rank = torch.div(degree - 1, 2, rounding_mode="floor")
    equal = degree - stored + zeros  # neighbours whose value is 0, stored or not
    position = torch.where(rank < below, group_start + rank, group_start + rank - degree + stored)
    nonzero = (rank < below) | (rank >= below + equal)
    position, group_key, node = position[nonzero], group_key[nonzero], node[nonzero]
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=x_col.device)
    torch.cumsum(torch.bincount(node, minlength=num_nodes), 0, out=rowptr[1:])
    return torch.sparse_csr_tensor(
        rowptr, group_key - node * num_features, x_values.index_select(0, entry[position]),
        (num_nodes, num_features), check_invariants=False)


def _counts_in_groups(flags: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """How many of ``flags[start[g]:end[g]]`` are True, for each group g."""
    running = torch.zeros(flags.numel() + 1, dtype=torch.long, device=flags.device)
    torch.cumsum(flags, 0, out=running[1:])
    return running.index_select(0, end) - running.index_select(0, start)


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


def message_median(index: Tensor, x: Tensor, dim_size: int, graph: Graph | None = None) -> Tensor:
    """out[i, f] = lower median of {x[k, f] : index[k] = i}: [dim_size, F]; 0 where nothing
    arrives. ``x`` [E, F] holds one row per message; when ``graph`` is given the messages follow
    its edge order (``index = graph.target``) and are grouped by its cached CSR, else by a
    stable sort of ``index``."""
    if x.dim() != 2:
        raise ValueError(f"the median needs messages of shape [E, F], got {tuple(x.shape)}.")
    if x.size(0) == 0:
        return x.new_zeros(dim_size, x.size(1))
    if graph is not None:
        rowptr, _, order = graph.csr
        if order is None:
            order = torch.arange(x.size(0), device=x.device)
        rows = _median_rows(rowptr, order, x.detach(), graph.nodes_by_in_degree)
        return GatherPerFeature.apply(x.contiguous(), rows)
    order = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=dim_size)
    rowptr = torch.zeros(dim_size + 1, dtype=torch.long, device=x.device)
    torch.cumsum(counts, 0, out=rowptr[1:])
    return GatherPerFeature.apply(x.contiguous(), segment_median_index(rowptr, order, x.detach()))


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
