"""Median-aggregation graph convolution (the homework's 3.3(b)): no matrix form exists."""

from __future__ import annotations

import torch
from torch import Tensor

from ..ops import dense_features, feature_linear
from ..ops.features import is_sparse
from ..ops.median import sparse_median_applies, sparse_segment_median
from ._inputs import check_features, graph_for
from ._root_weight import RootWeightConv


class MedianGCNConv(RootWeightConv):
    r"""h'_i = W median_{j -> i} h_j + B h_i (+ bias), the median taken feature by feature.

    The lower median is used for an even number of neighbours (as ``torch.median``); a node
    with no in-neighbour aggregates to 0. Unlike the mean, the median cannot be written as a
    matrix product ``M H``: it selects, per node and feature, one neighbour's value, which makes
    it robust to a few outlying neighbours. The gradient of each aggregated entry flows to the
    selected neighbour. It is the message-passing layer ``message = h_j``, ``aggregate =
    median``, whose fused path selects on the graph's cached CSR
    (:func:`gnnkit.ops.segment_median`).

    Args:
        in_features: F_in.
        out_features: F_out.
        bias: add a learnable bias [F_out].

    Shapes:
        x [N, F_in] (for a sparse CSR/COO x the medians are found among the stored values
        (:func:`gnnkit.ops.sparse_segment_median`, while the neighbours' stored values
        are few: at most about 3% of x stored; else x is made dense for the median) and
        ``W median`` and ``B x`` read only stored values), graph with N nodes (any form
        :func:`gnnkit.as_graph` accepts) -> [N, F_out]; ``W`` and ``B`` are [F_out, F_in].
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__(in_features, out_features, bias, aggr="median")

    def forward(self, x: Tensor, graph) -> Tensor:
        """``W median_{j -> i} x_j + B x_i (+ bias)``: x [N, F_in], graph with N nodes
        -> [N, F_out]."""
        check_features(x, self.in_features, dtype=self.W.dtype)
        if is_sparse(x):  # the declared fast path: the medians of the stored values only
            graph = graph_for(graph, x)
            if sparse_median_applies(graph, x):
                median = sparse_segment_median(graph, x)
                return self.add_bias(feature_linear(median, self.W) + feature_linear(x, self.B))
        median = self.propagate(graph, x=dense_features(x))
        return self.add_bias(torch.addmm(feature_linear(x, self.B), median, self.W.t()))
