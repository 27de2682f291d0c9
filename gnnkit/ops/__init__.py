"""The hot code of gnnkit: sparse products, segment reductions, edge softmax, median selection.

Every layer is built from these few primitives. Edge-indexed tensors here are in the CSR order
of :attr:`gnnkit.Graph.csr` (edges grouped by target) unless a function says otherwise.
"""

from .median import gather_per_feature, segment_median_index
from .scatter import scatter
from .softmax import edge_softmax
from .spmm import spmm

__all__ = ["edge_softmax", "gather_per_feature", "scatter", "segment_median_index", "spmm"]
