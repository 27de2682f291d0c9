"""Lower median per segment, by selection inside each segment (no global sort of values)."""

from __future__ import annotations

import torch
from torch import Tensor


def segment_median_index(x: Tensor, rowptr: Tensor, source: Tensor) -> Tensor:
    """Which row of ``x`` holds the lower median of each segment, feature by feature.

    Segment i consists of the rows ``source[rowptr[i]:rowptr[i+1]]`` of ``x``. For each
    segment and feature f, the result names the row r whose ``x[r, f]`` is the lower median of
    that segment (the ``(d - 1) // 2``-th smallest of d values, as ``torch.median``). An empty
    segment gets ``x.size(0)``, a padding row that the caller fills with 0.

    Nodes are grouped by their number of entries d, and each group is one batched
    ``kthvalue`` over a [nodes, F, d] block: the work is proportional to E x F and no sort over
    all entries happens.

    Args:
        x: [M, F] values (node features, or messages).
        rowptr: [N + 1] segment boundaries.
        source: [E] row of ``x`` for each segment entry.

    Returns:
        [N, F] long indices into ``x`` (or ``x.size(0)`` for empty segments). Gathering with them
        (``torch.gather``) gives the medians and sends each gradient to the selected element.
    """
    num_segments = rowptr.numel() - 1
    counts = rowptr[1:] - rowptr[:-1]
    result = torch.full(
        (num_segments, x.size(1)), x.size(0), dtype=torch.long, device=x.device
    )
    for degree in torch.unique(counts).tolist():
        if degree == 0:
            continue
        nodes = torch.nonzero(counts == degree).view(-1)
        slots = rowptr[nodes].unsqueeze(1) + torch.arange(degree, device=x.device)
        rows = source[slots]  # [n, d]
        values = x.index_select(0, rows.view(-1)).view(len(nodes), degree, -1)
        position = torch.kthvalue(values.transpose(1, 2), (degree + 1) // 2, dim=2).indices
        result[nodes] = rows.gather(1, position)  # [n, F]
    return result
