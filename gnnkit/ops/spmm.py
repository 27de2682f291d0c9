"""Sparse matrix times dense matrix over a Graph's CSR, one head or several at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..convert import sparse_csr
from ..graph import Graph
from ._checks import check_edge_values, check_graph, check_node_tensor
from .gather import take_rows

# Dtypes for which torch's CPU embedding_bag has a fused gather-and-sum kernel; float64 has
# none (there it is about 3x slower than the MKL sparse product).
_GATHER_SUM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: Most edges x heads for which a multi-head product runs as one product over the graph's
#: cached head copies (:meth:`Graph.heads_copies`) rather than one product per head. Forward
#: and backward, 8 heads x 8 channels, 1 thread: Cora 3.8 against 7.2 ms, 100k nodes / 500k
#: edges 151 against 211 ms, but 1M edges 473 against 400 ms, where the copies would also
#: cache about 280 MB.
HEADS_COPIES_MAX_EDGES = 1 << 22
#: Edges per block in :func:`edge_dots`, so its [block, D] gathers stay near 16 MB.
_DOT_BLOCK_VALUES = 1 << 22


def csr_matmul(rowptr: Tensor, col: Tensor, values: Tensor, num_nodes: int,
               dense: Tensor) -> Tensor:
    """[N, N] CSR (rowptr, col, values) @ dense [N, F] -> [N, F], differentiable.

    Row i is ``sum_k values[k] * dense[col[k]]`` over ``rowptr[i] <= k < rowptr[i + 1]``: on CPU
    for float32, float16 and bfloat16 that is exactly ``embedding_bag`` in sum mode with one bag
    per row, a fused gather-and-sum kernel built for embedding lookups and faster than the
    sparse product (see the bandwidth rows of bench/results/cpu.md). Otherwise (float64, CUDA)
    the sparse CSR product (under ``torch.compile``, which cannot trace sparse tensors, the
    gather-and-sum on CPU in every dtype). Called inside the autograd functions below.
    """
    if dense.device.type == "cpu" and (
        dense.dtype in _GATHER_SUM_DTYPES or torch.compiler.is_compiling()
    ):
        return F.embedding_bag(col, dense, rowptr, mode="sum", per_sample_weights=values,
                               include_last_offset=True)
    # A sparse addmm with beta=0 writes straight into a new output (no zero fill, no copy).
    out = dense.new_empty(num_nodes, dense.shape[1])
    return torch.addmm(out, sparse_csr(rowptr, col, values, num_nodes), dense, beta=0, out=out)


def edge_dots(graph: Graph, left: Tensor, right: Tensor) -> Tensor:
    """``out[k] = <left[i_k], right[j_k]>`` for every edge j_k -> i_k in CSR order.

    The sampled product ``left @ right^T`` at the edges: for [N, D] inputs a [E] result; for
    [N, H, C] inputs one dot per head, [E, H]. No [E, D] tensor is made: float32/float64 use
    torch's sampled sparse product (one per head); other dtypes, graphs with more edges than
    N^2 entries (parallel edges on a tiny graph, which that product refuses), second
    derivatives and ``torch.compile`` (no sparse tensors) gather [block, D] rows of both in
    blocks of edges, with differentiable operations.
    """
    check_graph(graph)
    dims = left.dim() if isinstance(left, Tensor) and left.dim() in (2, 3) else 2
    check_node_tensor(left, graph, "left", dims=dims)
    check_node_tensor(right, graph, "right", dims=dims)
    if left.shape != right.shape or left.dtype != right.dtype:
        raise ValueError(f"left and right must have the same shape and dtype; got "
                         f"{list(left.shape)} {left.dtype} and {list(right.shape)} "
                         f"{right.dtype}.")
    if _sampled_product_applies(graph, left):
        if left.dim() == 2:
            return _sampled_product(graph, left, right)
        return torch.stack([_sampled_product(graph, left[:, h], right[:, h])
                            for h in range(left.shape[1])], dim=1)
    _, col, _ = graph.csr
    target = graph.csr_target
    heads = left.shape[1] if left.dim() == 3 else None
    left, right = left.reshape(left.shape[0], -1), right.reshape(right.shape[0], -1)
    block = max(1, _DOT_BLOCK_VALUES // max(left.shape[1], 1))
    parts = []
    for start in range(0, graph.num_edges, block):
        product = (left.index_select(0, target[start:start + block])
                   * right.index_select(0, col[start:start + block]))
        per_head = product.view(product.shape[0], heads or 1, -1).sum(2)
        parts.append(per_head if heads else per_head.view(-1))
    if not parts:
        return left.new_zeros((0,) if heads is None else (0, heads))
    return torch.cat(parts)


def _sampled_product_applies(graph: Graph, left: Tensor) -> bool:
    return (not torch.is_grad_enabled() and not torch.compiler.is_compiling()
            and left.dtype in (torch.float32, torch.float64)
            and graph.num_edges <= graph.num_nodes ** 2 and left.shape[-1] > 0)


def _sampled_product(graph: Graph, left: Tensor, right: Tensor) -> Tensor:
    rowptr, col, _ = graph.csr
    pattern = sparse_csr(rowptr, col, left.new_zeros(graph.num_edges), graph.num_nodes)
    return torch.sparse.sampled_addmm(pattern, left.contiguous(), right.contiguous().t(),
                                      beta=0.0).values()


class _HeadwiseSpMM(torch.autograd.Function):
    """out[:, h] = A_h @ x[:, h] for every head h, ``A_h[i, j] = weights[k, h]`` for the k-th
    CSR edge j -> i; x [N, H, C], weights [E, H] (one head: :func:`spmm`).

    One CSR product per head over a contiguous copy of the head slice ``x[:, h]`` ([N, C], one
    at a time: no transposed copy of the whole of x; on Cora this measured faster than one
    head-major copy of x and a stack of the heads' outputs). Backward: grad_x[:, h] = A_h^T @
    grad_out[:, h], the same product over the cached transpose (:attr:`Graph.reverse`), and
    grad_weights[k, h] = <grad_out[i, h], x[j, h]> (:func:`edge_dots`). Saves ``weights`` and,
    when they need a gradient, ``x`` (which the caller keeps alive anyway): nothing of size
    E x H x C. The backward is built from differentiable operations, so second derivatives
    are right.
    """

    @staticmethod
    def forward(ctx, weights: Tensor, x: Tensor, graph: Graph) -> Tensor:
        rowptr, col, _ = graph.csr
        ctx.graph = graph
        ctx.save_for_backward(weights, x if ctx.needs_input_grad[0] else None)
        if x.shape[1] == 1:
            return csr_matmul(rowptr, col, weights[:, 0], graph.num_nodes, x[:, 0]).unsqueeze(1)
        out = x.new_empty(x.shape)
        for head in range(x.shape[1]):  # contiguous [N, C] and [E] slices: the fast kernels
            out[:, head] = csr_matmul(rowptr, col, weights[:, head].contiguous(),
                                      graph.num_nodes, x[:, head].contiguous())
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        weights, x = ctx.saved_tensors
        graph: Graph = ctx.graph
        grad_out = grad_out.contiguous()
        grad_weights = grad_x = None
        if ctx.needs_input_grad[0] and x.shape[1] == 1:  # the [N, C] product, no stack of one
            grad_weights = edge_dots(graph, grad_out[:, 0], x[:, 0]).unsqueeze(1)
        elif ctx.needs_input_grad[0]:
            grad_weights = edge_dots(graph, grad_out, x)
        if ctx.needs_input_grad[1]:
            _, _, csr_to_csc = graph.csc
            grad_x = _headwise_spmm(graph.reverse, take_rows(weights, csr_to_csc), grad_out)
        return grad_weights, grad_x, None


def _headwise_spmm(graph: Graph, weights: Tensor, x: Tensor) -> Tensor:
    """:class:`_HeadwiseSpMM` on checked arguments, with the transpose cached first (filled
    here rather than inside the backward, where ``torch.compile`` cannot record a cache
    write). Several heads with at most :data:`HEADS_COPIES_MAX_EDGES` edges x heads run as one
    head over :meth:`Graph.heads_copies`: the weights reordered by its ``order``, x viewed as
    [N * H, 1, C], the same sums."""
    if graph.num_edges == 0 or x.numel() == 0:
        return x * 0  # every row is an empty sum (or has no columns); keeps x in autograd
    num_nodes, heads, channels = x.shape
    if heads > 1 and graph.num_edges * heads <= HEADS_COPIES_MAX_EDGES:
        copies, order = graph.heads_copies(heads)
        weights = weights.reshape(-1).index_select(0, order).unsqueeze(1)
        out = _headwise_spmm(copies, weights, x.reshape(num_nodes * heads, 1, channels))
        return out.view(num_nodes, heads, channels)
    if torch.is_grad_enabled() and x.requires_grad:
        graph.reverse  # noqa: B018 - computed and cached
    return _HeadwiseSpMM.apply(weights.contiguous(), x.contiguous(), graph)


def spmm(graph: Graph, values: Tensor | None, x: Tensor) -> Tensor:
    """``A @ x`` where ``A[i, j] = values[k]`` for the k-th edge j -> i in CSR order.

    Args:
        graph: the sparsity pattern (its cached CSR and transpose are reused).
        values: [E] edge weights in CSR order, or None for all ones. Under ``torch.autocast``
            they are cast to x's dtype.
        x: [N, F] node features.

    Returns:
        [N, F]: row i is ``sum_k values[k] * x[j_k]`` over the edges j_k -> i; 0 for a node
        with no incoming edge.
    """
    check_graph(graph)
    check_node_tensor(x, graph, "x", dims=2)
    values = check_edge_values(values, graph, x, "values")
    return _headwise_spmm(graph, values.unsqueeze(1), x.unsqueeze(1)).squeeze(1)


def multi_head_spmm(graph: Graph, weights: Tensor, x: Tensor) -> Tensor:
    """Per-head weighted aggregation: ``out[i, h] = sum_k weights[k, h] * x[j_k, h]`` over the
    edges j_k -> i (CSR order), as in multi-head attention.

    Args:
        graph: the sparsity pattern.
        weights: [E, H] edge weights in CSR order (cast to x's dtype under autocast).
        x: [N, H, C] node features per head.

    Returns:
        [N, H, C]; 0 for a node with no incoming edge. Memory: [E, H] and [N, H, C] tensors
        only; while E x H <= :data:`HEADS_COPIES_MAX_EDGES` every head is done in one product
        over :meth:`Graph.heads_copies` (cached in the graph: two to four index tensors of
        E x H entries), else one product per head.
    """
    check_graph(graph)
    check_node_tensor(x, graph, "x", dims=3)
    if not isinstance(weights, Tensor) or weights.shape != (graph.num_edges, x.shape[1]):
        raise ValueError(
            f"weights must be a [num_edges, heads] = [{graph.num_edges}, {x.shape[1]}] tensor; "
            f"got {_shape(weights)}."
        )
    weights = check_edge_values(weights, graph, x, "weights", shape=tuple(weights.shape))
    return _headwise_spmm(graph, weights, x)


def _shape(value) -> str:
    return f"shape {list(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
