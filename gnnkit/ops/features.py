"""Node features held as a torch sparse matrix (bag-of-words rows, one-hot ids).

Planetoid features are 98-99% zeros: as a dense [N, F] tensor their input dropout and the first
layer's weight product touch every zero. Given as a sparse CSR (or COO) tensor, the product
``x @ W^T`` reads only the stored values (one ``embedding_bag`` pass over the rows on CPU, a
sparse product elsewhere) and dropout draws one random number per stored value. Every function
here also takes a dense ``x`` and then does what the dense code always did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dropout import dropout

#: The sparse layouts node features may have.
SPARSE_LAYOUTS = (torch.sparse_csr, torch.sparse_coo)
# Dtypes with a fused CPU gather-and-sum kernel (embedding_bag); others use the sparse product.
_GATHER_SUM_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def is_sparse(x) -> bool:
    """True for a tensor in a sparse CSR or COO layout."""
    return isinstance(x, Tensor) and x.layout in SPARSE_LAYOUTS


def dense_features(x: Tensor) -> Tensor:
    """``x`` as a dense (strided) tensor: a sparse one is expanded, a dense one returned as is."""
    return x.to_dense() if is_sparse(x) else x


def sparse_features(x: Tensor) -> Tensor:
    """``x`` [N, F] as a sparse CSR tensor holding its non-zero entries."""
    if x.layout == torch.sparse_csr:
        return x
    return x.coalesce().to_sparse_csr() if x.layout == torch.sparse_coo else x.to_sparse_csr()


def csr_parts(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(rowptr [N + 1], col [nnz], values [nnz])`` of a sparse ``x`` [N, F]: row i stores
    ``values[rowptr[i]:rowptr[i + 1]]`` at the columns ``col[...]``. A COO ``x`` is coalesced
    first (duplicate entries summed, as its dense form does). ``values`` stays in autograd."""
    x = sparse_features(x)
    return x.crow_indices(), x.col_indices(), x.values()


def density(x: Tensor) -> float:
    """The fraction of entries of ``x`` that are stored (sparse) or non-zero (dense)."""
    if x.numel() == 0:
        return 0.0
    stored = x._nnz() if is_sparse(x) else int(torch.count_nonzero(x))
    return stored / x.numel()


def feature_linear(x: Tensor, weight: Tensor) -> Tensor:
    """``x @ weight^T``: x [N, F] dense or sparse, weight [F_out, F] -> dense [N, F_out].

    For a sparse ``x`` on CPU in float32/float16/bfloat16, row i is
    ``sum_k values[k] * weight[:, col[k]]`` over its stored entries, one ``embedding_bag``
    pass; the backward gives ``grad_weight = grad_out^T x`` as the same pass over the
    transposed pattern (a stable sort of the columns, per call) and, when ``x`` requires a
    gradient, the gradient of its stored values. Elsewhere torch's sparse product. Same
    numbers as the dense product up to float rounding.
    """
    if not is_sparse(x):
        return x @ weight.t()
    if x.device.type != "cpu" or x.dtype not in _GATHER_SUM_DTYPES or (
        torch.compiler.is_compiling()
    ):
        return x @ weight.t()
    rowptr, col, values = csr_parts(x)
    return _SparseLinear.apply(values, weight, rowptr, col)


class _SparseLinear(torch.autograd.Function):
    """out[i] = sum over the stored entries k of row i of values[k] * weight[:, col[k]].

    Saves values, weight and the pattern (nothing of size N x F). Backward:
    grad_weight[:, f] = sum over the entries k in column f of values[k] * grad_out[row_k];
    grad_values[k] = <grad_out[row_k], weight[:, col[k]]>. When a second derivative is asked
    for, both are computed with differentiable operations.
    """

    @staticmethod
    def forward(ctx, values: Tensor, weight: Tensor, rowptr: Tensor, col: Tensor) -> Tensor:
        ctx.save_for_backward(values, weight, rowptr, col)
        return F.embedding_bag(col, weight.t().contiguous(), rowptr, mode="sum",
                               per_sample_weights=values, include_last_offset=True)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        values, weight, rowptr, col = ctx.saved_tensors
        rows = torch.repeat_interleave(
            torch.arange(rowptr.numel() - 1, device=rowptr.device), rowptr.diff())
        grad_values = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_values = (grad_out.index_select(0, rows) * weight.t().index_select(0, col)).sum(1)
        if ctx.needs_input_grad[1]:
            num_features = weight.shape[1]
            if torch.is_grad_enabled():  # differentiable form, for second derivatives
                grad_t = grad_out.new_zeros(num_features, grad_out.shape[1]).index_add(
                    0, col, values.unsqueeze(1) * grad_out.index_select(0, rows))
            else:  # the same gather-and-sum over the transposed pattern
                narrow = col.to(torch.int32) if num_features < 2**31 else col  # sorts 2x faster
                order = torch.sort(narrow, stable=True).indices
                col_ptr = torch.zeros(num_features + 1, dtype=rowptr.dtype, device=col.device)
                torch.cumsum(torch.bincount(col, minlength=num_features), 0, out=col_ptr[1:])
                grad_t = F.embedding_bag(rows.index_select(0, order), grad_out.contiguous(),
                                         col_ptr, mode="sum",
                                         per_sample_weights=values.index_select(0, order),
                                         include_last_offset=True)
            grad_weight = grad_t.t()
        return grad_values, grad_weight, None, None


def feature_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Dropout on node features: :func:`dropout` for a dense ``x``; for a
    sparse ``x`` each stored value is zeroed with probability ``p`` and the kept ones scaled by
    ``1 / (1 - p)`` (one ``torch.rand`` draw per stored value, in row order), returned as a
    sparse CSR tensor with the same pattern. Zero entries stay zero either way, so both forms
    have the same distribution."""
    if not is_sparse(x):
        return dropout(x, p, training)
    if not training or p == 0.0:
        return x
    rowptr, col, values = csr_parts(x)
    keep = torch.rand(values.shape, dtype=values.dtype, device=values.device) >= p
    return torch.sparse_csr_tensor(rowptr, col, values * keep / (1.0 - p), x.shape,
                                   check_invariants=False)


def feature_rows(x: Tensor, rows: Tensor | int) -> Tensor:
    """The rows ``rows`` of ``x`` (a 1-D index tensor, or an int n for the first n rows), for a
    dense or a sparse ``x``; a sparse ``x`` gives a sparse CSR result."""
    if not is_sparse(x):
        return x[:rows] if isinstance(rows, int) else x.index_select(0, rows)
    rowptr, col, values = csr_parts(x)
    if isinstance(rows, int):
        end = int(rowptr[rows])
        return torch.sparse_csr_tensor(rowptr[: rows + 1], col[:end], values[:end],
                                       (rows, x.shape[1]), check_invariants=False)
    counts = rowptr.diff().index_select(0, rows)
    new_rowptr = torch.zeros(rows.numel() + 1, dtype=rowptr.dtype, device=rowptr.device)
    torch.cumsum(counts, 0, out=new_rowptr[1:])
    shift = torch.repeat_interleave(rowptr.index_select(0, rows) - new_rowptr[:-1], counts)
    positions = torch.arange(int(new_rowptr[-1]), device=col.device) + shift
    return torch.sparse_csr_tensor(new_rowptr, col.index_select(0, positions),
                                   values.index_select(0, positions), (rows.numel(), x.shape[1]),
                                   check_invariants=False)
