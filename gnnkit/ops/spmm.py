"""Sparse matrix times dense matrix over a Graph's CSR, one head or several at once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph import Graph, sparse_csr
from ._checks import check_edge_values, check_graph, check_node_tensor

# Dtypes for which torch's CPU embedding_bag has a fused gather-and-sum kernel; float64 has
# none (there it is about 3x slower than the MKL sparse product).
_GATHER_SUM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
#: Edges per block in :func:`edge_dots`, so its [block, D] gathers stay near 16 MB.
_DOT_BLOCK_VALUES = 1 << 22


def csr_matmul(rowptr: Tensor, col: Tensor, values: Tensor, num_nodes: int,
               dense: Tensor) -> Tensor:
    """[N, N] CSR (rowptr, col, values) @ dense [N, F] -> [N, F], differentiable.

    Row i is ``sum_k values[k] * dense[col[k]]`` over ``rowptr[i] <= k < rowptr[i + 1]``: on CPU
    for float32, float16 and bfloat16 that is exactly ``embedding_bag`` in sum mode with one bag
    per row, a fused gather-and-sum kernel built for embedding lookups and faster than the
    sparse product (see the bandwidth rows of bench/results/cpu.md). Otherwise (float64, CUDA)
    the sparse CSR product. Called inside the autograd functions below (not recorded).
    """
    if dense.device.type == "cpu" and dense.dtype in _GATHER_SUM_DTYPES:
        return F.embedding_bag(col, dense, rowptr, mode="sum", per_sample_weights=values,
                               include_last_offset=True)
    # A sparse addmm with beta=0 writes straight into a new output (no zero fill, no copy).
    out = dense.new_empty(num_nodes, dense.shape[1])
    return torch.addmm(out, sparse_csr(rowptr, col, values, num_nodes), dense, beta=0, out=out)


def edge_dots(graph: Graph, left: Tensor, right: Tensor) -> Tensor:
    """``out[k] = <left[i_k], right[j_k]>`` for every edge j_k -> i_k in CSR order.

    The sampled product ``left @ right^T`` at the edges: for [N, D] inputs a [E] result; for
    [N, H, C] inputs one dot per head, [E, H]. Computed in blocks of edges, so no [E, D]
    tensor is ever made (each block gathers [block, D] rows of both). Any dtype, duplicate
    edges and self-loops alike, and differentiable (second derivatives of :func:`spmm` and
    :func:`multi_head_spmm` run through it).
    """
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


class _SpMM(torch.autograd.Function):
    """out = A @ x for A [N, N] with ``A[i, j] = values[k]`` for the k-th CSR edge j -> i.

    Backward: grad_x = A^T @ grad_out (the same product over the cached transpose,
    :attr:`Graph.reverse`) and grad_values[k] = <grad_out[i], x[j]> (:func:`edge_dots`, never
    an [E, F] tensor). Only ``values`` and, when ``values`` needs a gradient, ``x`` are saved.
    The backward is built from differentiable operations, so second derivatives are right.
    """

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, graph: Graph) -> Tensor:
        rowptr, col, _ = graph.csr
        ctx.graph = graph
        ctx.save_for_backward(values, x if ctx.needs_input_grad[0] else None)
        return csr_matmul(rowptr, col, values, graph.num_nodes, x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, x = ctx.saved_tensors
        graph: Graph = ctx.graph
        grad_out = grad_out.contiguous()
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_values = edge_dots(graph, grad_out, x)
        if ctx.needs_input_grad[1]:
            _, _, csr_to_csc = graph.csc
            grad_x = spmm(graph.reverse, values[csr_to_csc], grad_out)
        return grad_values, grad_x, None


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
    if graph.num_edges == 0 or x.shape[1] == 0:
        return x * 0  # every row is an empty sum (or has no columns); keeps x in autograd
    _prepare_backward(graph, x)
    return _SpMM.apply(values.contiguous(), x.contiguous(), graph)


def _prepare_backward(graph: Graph, x: Tensor) -> None:
    """Fill the Graph's transpose cache before the autograd function runs, not inside its
    backward (where ``torch.compile`` cannot record a cache write)."""
    if torch.is_grad_enabled() and x.requires_grad:
        graph.reverse  # noqa: B018 - computed and cached


class _MultiHeadSpMM(torch.autograd.Function):
    """out[:, h] = A_h @ x[:, h] for every head h, ``A_h[i, j] = weights[k, h]``.

    One CSR product per head over the strided head slice ``x[:, h]`` (no transposed copy of
    x). Backward: grad_x[:, h] = A_h^T @ grad_out[:, h] and grad_weights[k, h] =
    <grad_out[i, h], x[j, h]>, computed in edge blocks. Saves ``weights`` [E, H] and ``x``
    (the layer keeps it alive anyway): nothing of size E x H x C.
    """

    @staticmethod
    def forward(ctx, weights: Tensor, x: Tensor, graph: Graph) -> Tensor:
        rowptr, col, _ = graph.csr
        ctx.graph = graph
        ctx.save_for_backward(weights, x if ctx.needs_input_grad[0] else None)
        out = x.new_empty(x.shape)
        for head in range(x.shape[1]):
            out[:, head] = csr_matmul(rowptr, col, weights[:, head], graph.num_nodes, x[:, head])
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        weights, x = ctx.saved_tensors
        graph: Graph = ctx.graph
        grad_out = grad_out.contiguous()
        grad_weights = grad_x = None
        if ctx.needs_input_grad[0]:
            grad_weights = edge_dots(graph, grad_out, x)
        if ctx.needs_input_grad[1]:
            _, _, csr_to_csc = graph.csc
            grad_x = multi_head_spmm(graph.reverse, weights[csr_to_csc], grad_out)
        return grad_weights, grad_x, None


def multi_head_spmm(graph: Graph, weights: Tensor, x: Tensor) -> Tensor:
    """Per-head weighted aggregation: ``out[i, h] = sum_k weights[k, h] * x[j_k, h]`` over the
    edges j_k -> i (CSR order), as in multi-head attention.

    Args:
        graph: the sparsity pattern.
        weights: [E, H] edge weights in CSR order (cast to x's dtype under autocast).
        x: [N, H, C] node features per head.

    Returns:
        [N, H, C]; 0 for a node with no incoming edge. Memory: [E, H] and [N, H, C] tensors
        only.
    """
    check_graph(graph)
    check_node_tensor(x, graph, "x", dims=3)
    if not isinstance(weights, Tensor) or weights.shape != (graph.num_edges, x.shape[1]):
        raise ValueError(
            f"weights must be a [num_edges, heads] = [{graph.num_edges}, {x.shape[1]}] tensor; "
            f"got {_shape(weights)}."
        )
    weights = check_edge_values(weights, graph, x, "weights", shape=tuple(weights.shape))
    if graph.num_edges == 0 or x.numel() == 0:
        return x * 0
    _prepare_backward(graph, x)
    return _MultiHeadSpMM.apply(weights.contiguous(), x.contiguous(), graph)


def _shape(value) -> str:
    return f"shape {list(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
