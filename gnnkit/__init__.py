"""gnnkit: graph neural networks on PyTorch.

Convention: ``edge_index[:, k] = (j, i)`` for an edge j -> i, and ``A[i, j] = 1``
(rows are receivers), so row i of ``D^-1 A H`` averages i's in-neighbours.
"""

from .graph import Graph, as_graph

__version__ = "0.1.0"

__all__ = ["Graph", "as_graph"]
