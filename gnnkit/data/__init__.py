"""Data for graph-level tasks: batches of small graphs, their loader, TU-format datasets."""

from .batch import GraphBatch
from .graph_loader import GraphLoader
from .tu import TUDataset, one_hot_degree, read_tu

__all__ = ["GraphBatch", "GraphLoader", "TUDataset", "one_hot_degree", "read_tu"]
