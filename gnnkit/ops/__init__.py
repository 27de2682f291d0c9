"""The hot code of gnnkit: sparse products, segment reductions, edge softmax, median selection,
sparse node features, dropout.

Every layer is built from these few primitives. One argument order throughout: the structure
first (a :class:`gnnkit.Graph`, or an index / row pointer), then per-edge values, then node
features, then options. Edge-indexed tensors are in the CSR order of
:attr:`gnnkit.Graph.csr` (edges grouped by target) unless a function says otherwise. Every
function checks its arguments and raises a ValueError/TypeError naming the bad one.
"""

from .aggregate import aggregate
from .dropout import dropout
from .features import dense_features, feature_dropout, feature_linear, feature_rows
from .gather import gather_per_feature
from .median import (
    message_median,
    segment_median,
    segment_median_index,
    sparse_segment_median,
)
from .scatter import scatter
from .segment import segment, segment_max, segment_mean, segment_sum
from .softmax import edge_softmax
from .spmm import edge_dots, multi_head_spmm, spmm

__all__ = [
    "aggregate",
    "dense_features",
    "dropout",
    "edge_dots",
    "edge_softmax",
    "feature_dropout",
    "feature_linear",
    "feature_rows",
    "gather_per_feature",
    "message_median",
    "multi_head_spmm",
    "scatter",
    "segment",
    "segment_max",
    "segment_mean",
    "segment_median",
    "segment_median_index",
    "segment_sum",
    "sparse_segment_median",
    "spmm",
]
