"""gnnkit: graph neural networks on PyTorch.

Convention: ``edge_index[:, k] = (j, i)`` for an edge j -> i, and ``A[i, j] = 1``
(rows are receivers), so row i of ``D^-1 A H`` averages i's in-neighbours.
"""

from . import data, link, nn, ops, sampling
from ._moved import MOVED_MODULES, moved_module
from .check import (
    CheckReport,
    check_adjacency,
    check_answers,
    check_laplacian,
    check_laplacian_step,
    check_layer,
    check_matrix,
)
from .graph import Graph, as_graph
from .io import homework_graph, load_graph
from .laplacian_step import LaplacianStep, laplacian_step
from .matrices import (
    adjacency,
    degree_matrix,
    inverse_degree_matrix,
    laplacian,
    matrix_power,
    walks,
)

__version__ = "0.1.0"

__all__ = [
    "CheckReport",
    "Graph",
    "LaplacianStep",
    "adjacency",
    "as_graph",
    "check_adjacency",
    "check_answers",
    "check_laplacian",
    "check_laplacian_step",
    "check_layer",
    "check_matrix",
    "data",
    "degree_matrix",
    "homework_graph",
    "inverse_degree_matrix",
    "laplacian",
    "laplacian_step",
    "link",
    "load_graph",
    "matrix_power",
    "nn",
    "ops",
    "sampling",
    "walks",
]


def __getattr__(name: str):
    """``gnnkit.datasets`` / ``snap`` / ``store`` / ``synthetic``: moved into gnnkit.data."""
    if name in MOVED_MODULES:
        return moved_module(name)
    raise AttributeError(f"module 'gnnkit' has no attribute {name!r}")
