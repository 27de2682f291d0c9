"""Graph-level readouts: one row per graph of a batch from the rows of its nodes.

For a batch of B graphs whose node n belongs to graph ``batch[n]`` (sorted, so graph b owns
the rows ``ptr[b]:ptr[b+1]``)::

    global_add_pool:   r_b = sum_{n in b} h_n
    global_mean_pool:  r_b = (1 / n_b) sum_{n in b} h_n
    global_max_pool:   r_b = max_{n in b} h_n            (feature by feature)

x [N, F] -> [B, F]; a graph without nodes gets 0. They are segment reductions on ``ptr``
(:func:`gnnkit.ops.segment`): no atomics, deterministic, exact first and second derivatives.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import ops
from .._validate import check_int
from ..ops.segment import ptr_from_index


def global_add_pool(x: Tensor, batch=None, num_graphs: int | None = None) -> Tensor:
    """Sum of each graph's node rows: [B, F].

    Args:
        x: [N, F] node features.
        batch: [N] sorted graph id of each node, a :class:`gnnkit.data.GraphBatch`, or None
            (all nodes form one graph).
        num_graphs: B; defaults to ``batch.max() + 1`` (give it to keep trailing empty
            graphs).
    """
    return _pool(x, batch, num_graphs, "sum")


def global_mean_pool(x: Tensor, batch=None, num_graphs: int | None = None) -> Tensor:
    """Mean of each graph's node rows: [B, F] (0 for a graph without nodes)."""
    return _pool(x, batch, num_graphs, "mean")


def global_max_pool(x: Tensor, batch=None, num_graphs: int | None = None) -> Tensor:
    """Feature-wise maximum of each graph's node rows: [B, F] (0 for a graph without
    nodes); the gradient of each entry goes to the node it was taken from."""
    return _pool(x, batch, num_graphs, "max")


def _pool(x, batch, num_graphs, reduce: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise TypeError(f"x must be a tensor [N, F], got "
                        f"{list(x.shape) if isinstance(x, Tensor) else type(x).__name__}.")
    ptr, index = segments_of(batch, x.shape[0], num_graphs, x.device)
    return ops.segment(ptr, x, reduce, index=index)


def segments_of(batch, num_nodes: int, num_graphs: int | None, device) -> tuple[Tensor, Tensor]:
    """``(ptr [B + 1], batch [N])`` for a batch vector, a GraphBatch or None (one graph),
    checked: 1-D integer, one entry per node, non-negative, sorted, below ``num_graphs``. A
    GraphBatch is recognised by its ``ptr`` and ``batch`` (nn does not import the data layer)."""
    if hasattr(batch, "ptr") and hasattr(batch, "batch"):
        if batch.num_nodes != num_nodes:
            raise ValueError(f"x has {num_nodes} rows but the GraphBatch has {batch.num_nodes} "
                             "nodes; pool the features of that batch.")
        if num_graphs is not None and num_graphs != batch.num_graphs:
            raise ValueError(f"num_graphs={num_graphs} but the GraphBatch has "
                             f"{batch.num_graphs} graphs; leave num_graphs out.")
        return batch.ptr, batch.batch
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
        if num_graphs is None:
            num_graphs = 1
    if not isinstance(batch, Tensor) or batch.is_floating_point() or batch.is_complex() or (
        batch.dtype == torch.bool
    ):
        raise TypeError(f"batch must be a 1-D integer tensor [N] (the graph of each node) or "
                        f"a GraphBatch, got {type(batch).__name__}"
                        f"{f' {batch.dtype}' if isinstance(batch, Tensor) else ''}.")
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must have shape [N] = [{num_nodes}] (one graph id per row of "
                         f"x), got {list(batch.shape)}.")
    batch = batch.long()
    if num_nodes and int(batch.min()) < 0:
        raise ValueError(f"batch holds the negative graph id {int(batch.min())}; ids start "
                         "at 0.")
    if bool((batch[1:] < batch[:-1]).any()):
        first = int(torch.nonzero(batch[1:] < batch[:-1])[0]) + 1
        raise ValueError(f"batch must be sorted (each graph's nodes together, graphs in "
                         f"order); batch[{first}] = {int(batch[first])} follows "
                         f"{int(batch[first - 1])}. Sort the nodes by graph first.")
    largest = int(batch[-1]) if num_nodes else -1
    num_graphs = largest + 1 if num_graphs is None else check_int(
        num_graphs, "num_graphs (the largest graph id in batch + 1 or more)", low=largest + 1)
    if batch.device != device:
        raise ValueError(f"batch is on {batch.device} but x is on {device}.")
    return ptr_from_index(batch, int(num_graphs)), batch
