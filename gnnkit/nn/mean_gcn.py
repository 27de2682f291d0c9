"""Mean-aggregation graph convolution in matrix form (the homework's eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops import spmm
from ._inputs import check_features, graph_for, is_dense_adjacency
from ._root_weight import RootWeightConv


class MeanGCNConv(RootWeightConv):
    r"""H' = D^{-1} A H W^T + H B^T (+ bias).

    Row by row: ``h'_i = W mean_{j -> i} h_j + B h_i``, the mean over i's in-neighbours
    (``A[i, j] != 0``), 0 for a node with none (``D^{-1}`` has 0 there).

    Two paths, same numbers:

    * sparse (edge_index, Graph, torch sparse, scipy, networkx, PyG Data): one CSR product
      with weights ``1 / d_i``; when ``out_features < in_features`` it multiplies by ``W``
      first and aggregates the narrower ``H W^T`` (the product is linear, so the order does not
      change the result). The backward pass uses the cached transpose of A.
    * dense adjacency [N, N] (floating or boolean): the literal matrix formula
      ``diag(1/d) @ A @ H @ W.T + H @ B.T``, with A taken as its 0/1 pattern.

    Args:
        in_features: F_in.
        out_features: F_out.
        bias: add a learnable bias [F_out].

    Shapes:
        x [N, F_in], graph with N nodes -> [N, F_out]. Parameters ``W`` and ``B`` are
        [F_out, F_in] (as in the homework), ``bias`` [F_out] or None.
    """

    def forward(self, x: Tensor, graph) -> Tensor:
        check_features(x, self.in_features)
        if is_dense_adjacency(graph):
            out = self._dense_formula(x, graph)
        else:
            out = self._sparse(x, graph_for(graph, x))
        return self.add_bias(out)

    def _sparse(self, x: Tensor, graph) -> Tensor:
        inverse_degree = 1.0 / graph.in_degree.clamp(min=1).to(x.dtype)
        weights = inverse_degree.index_select(0, graph.csr_target)
        if self.out_features < self.in_features:
            neighbours = spmm(graph, weights, x @ self.W.t())
        else:
            neighbours = spmm(graph, weights, x) @ self.W.t()
        return torch.addmm(neighbours, x, self.B.t())

    def _dense_formula(self, x: Tensor, adjacency: Tensor) -> Tensor:
        if adjacency.size(0) != x.size(0):
            raise ValueError(
                f"graph has {adjacency.size(0)} nodes but {x.size(0)} were expected (x has "
                f"{x.size(0)} rows); give one feature row per node."
            )
        A = (adjacency != 0).to(x.dtype)
        degree = A.sum(dim=1)
        D_inv = torch.diag(torch.where(degree > 0, 1.0 / degree.clamp(min=1), 0.0))
        return D_inv @ A @ x @ self.W.t() + x @ self.B.t()
