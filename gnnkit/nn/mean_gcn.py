"""Mean-aggregation graph convolution in matrix form (the homework's eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops.features import dense_features, feature_linear, is_sparse
from ._inputs import check_features, is_dense_adjacency
from ._root_weight import RootWeightConv


class MeanGCNConv(RootWeightConv):
    r"""H' = D^{-1} A H W^T + H B^T (+ bias).

    Row by row: ``h'_i = W mean_{j -> i} h_j + B h_i``, the mean over i's in-neighbours
    (``A[i, j] != 0``), 0 for a node with none (``D^{-1}`` has 0 there).

    It is the message-passing layer ``message = h_j``, ``aggregate = mean``, ``update = W a_i
    + B h_i``, whose fused path (:class:`MessagePassing`) computes the mean as one CSR product
    with weights ``1 / d_i``, never an [E, F] message tensor. When ``out_features <
    in_features`` it multiplies by ``W`` first and averages the narrower ``H W^T`` (the mean is
    linear, so the order does not change the result). A dense adjacency [N, N] (floating or
    boolean) takes the literal matrix formula ``diag(1/d) @ A @ H @ W.T + H @ B.T`` instead,
    with A read as its 0/1 pattern; both give the same numbers. A sparse (CSR/COO) ``x``, such
    as bag-of-words features, is multiplied by ``[W; B]`` first in one product over its stored
    values (:func:`gnnkit.ops.feature_linear`), then the narrow ``x W^T`` is averaged.

    Args:
        in_features: F_in.
        out_features: F_out.
        bias: add a learnable bias [F_out].

    Shapes:
        x [N, F_in] (dense or sparse), graph with N nodes -> [N, F_out]. Parameters ``W`` and ``B`` are
        [F_out, F_in] (as in the homework), ``bias`` [F_out] or None.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__(in_features, out_features, bias, aggr="mean")

    def forward(self, x: Tensor, graph) -> Tensor:
        """``D^-1 A x W^T + x B^T (+ bias)``: x [N, F_in], graph with N nodes (any form
        :func:`gnnkit.as_graph` takes, or a dense adjacency) -> [N, F_out]."""
        check_features(x, self.in_features, dtype=self.W.dtype)
        if is_dense_adjacency(graph, x.size(0)):
            return self.add_bias(self._dense_formula(dense_features(x), graph))
        if is_sparse(x):
            neighbours, root = feature_linear(x, torch.cat([self.W, self.B])).split(
                self.out_features, dim=1)
            return self.add_bias(self.propagate(graph, x=neighbours) + root)
        narrow_first = self.out_features < self.in_features
        mean = self.propagate(graph, x=x @ self.W.t() if narrow_first else x)
        neighbours = mean if narrow_first else mean @ self.W.t()
        return self.add_bias(torch.addmm(neighbours, x, self.B.t()))

    def _dense_formula(self, x: Tensor, adjacency: Tensor) -> Tensor:
        if adjacency.size(0) != x.size(0):
            raise ValueError(
                f"graph has {adjacency.size(0)} nodes but {x.size(0)} were expected (x has "
                f"{x.size(0)} rows); give one feature row per node."
            )
        if adjacency.is_floating_point() and not bool(torch.isfinite(adjacency).all()):
            raise ValueError("graph (a dense adjacency) contains NaN or infinity; replace it "
                             "with 0 (no edge) or a non-zero number (an edge).")
        A = (adjacency != 0).to(x.dtype)
        degree = A.sum(dim=1)
        D_inv = torch.diag(torch.where(degree > 0, 1.0 / degree.clamp(min=1), 0.0))
        return D_inv @ A @ x @ self.W.t() + x @ self.B.t()
