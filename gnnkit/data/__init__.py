"""Data for graph-level tasks: batches of small graphs, their loader, TU-format datasets."""

from .batch import GraphBatch
from .graph_loader import GraphLoader

__all__ = ["GraphBatch", "GraphLoader"]
