"""Sparse matrix times dense matrix, with a cached transpose for the backward pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph import Graph, sparse_csr


# Dtypes for which torch's CPU embedding_bag has a fused gather-and-sum kernel; float64 has
# none (there it is about 3x slower than the MKL sparse product).
_GATHER_SUM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _csr_matmul(rowptr: Tensor, col: Tensor, values: Tensor, num_nodes: int,
                dense: Tensor) -> Tensor:
    """[N, N] CSR (rowptr, col, values) @ dense [N, F] -> [N, F].

    Row i is ``sum_k values[k] * dense[col[k]]`` over ``rowptr[i] <= k < rowptr[i + 1]``: on CPU
    for float32, float16 and bfloat16 that is exactly ``embedding_bag`` in sum mode with one bag
    per row, a fused gather-and-sum kernel built for embedding lookups and faster than the
    sparse product (see the bandwidth rows of bench/results/cpu.md). Otherwise (float64, CUDA)
    a sparse ``addmm`` with ``beta=0`` writes straight into a new output: it ignores the
    uninitialised input, so there is no zero fill or output copy.
    """
    if dense.device.type == "cpu" and dense.dtype in _GATHER_SUM_DTYPES:
        return F.embedding_bag(col, dense, rowptr, mode="sum", per_sample_weights=values,
                               include_last_offset=True)
    out = dense.new_empty(num_nodes, dense.shape[1])
    return torch.addmm(out, sparse_csr(rowptr, col, values, num_nodes), dense, beta=0, out=out)


class _SparseDenseMatMul(torch.autograd.Function):
    """out = A @ x for A [N, N] with ``A[i, j] = values[k]`` for the k-th CSR edge j -> i.

    Backward: grad_x = A^T @ grad_out (a second CSR product over the cached transpose) and
    grad_values[k] = <grad_out[i], x[j]> (a sampled dense-dense product, never an [E, F]
    tensor). Only ``values`` ([E]) and, when ``values`` needs a gradient, ``x`` are saved.
    """

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, graph: Graph) -> Tensor:
        rowptr, col, _ = graph.csr
        ctx.graph = graph
        ctx.save_for_backward(values, x if ctx.needs_input_grad[0] else None)
        return _csr_matmul(rowptr, col, values.contiguous(), graph.num_nodes, x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, x = ctx.saved_tensors
        graph: Graph = ctx.graph
        grad_out = grad_out.contiguous()
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:
            rowptr, col, _ = graph.csr
            pattern = sparse_csr(rowptr, col, values.contiguous(), graph.num_nodes)
            grad_values = torch.sparse.sampled_addmm(pattern, grad_out, x.t(), beta=0.0).values()
        if ctx.needs_input_grad[1]:
            colptr, row, csr_to_csc = graph.csc
            grad_x = _csr_matmul(colptr, row, values[csr_to_csc], graph.num_nodes, grad_out)
        return grad_values, grad_x, None


def spmm(graph: Graph, values: Tensor | None, x: Tensor) -> Tensor:
    """``A @ x`` where ``A[i, j] = values[k]`` for the k-th edge j -> i in CSR order.

    Args:
        graph: the sparsity pattern (its cached CSR and transpose are reused).
        values: [E] edge weights in CSR order, or None for all ones.
        x: [N, F] node features.

    Returns:
        [N, F]: row i is ``sum_k values[k] * x[j_k]`` over the edges j_k -> i; 0 for a node
        with no incoming edge.
    """
    if x.dim() != 2 or x.shape[0] != graph.num_nodes:
        raise ValueError(f"x must have shape [num_nodes, F] = [{graph.num_nodes}, F]; "
                         f"got {list(x.shape)}.")
    if values is None:
        values = torch.ones(graph.num_edges, dtype=x.dtype, device=x.device)
    elif values.shape != (graph.num_edges,) or values.dtype != x.dtype:
        raise ValueError(f"values must be a [num_edges] = [{graph.num_edges}] tensor of x's dtype "
                         f"{x.dtype}; got shape {list(values.shape)}, dtype {values.dtype}.")
    if graph.num_edges == 0 or x.shape[1] == 0:
        return x * 0  # every row is an empty sum (or has no columns); keeps x in autograd
    return _SparseDenseMatMul.apply(values, x.contiguous(), graph)
