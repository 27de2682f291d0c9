"""All of gnnkit's data, one module per source or form:

- :class:`NodeData` (``node_data``): one graph with features, labels and a node split, the
  container of node classification; ``load_dataset`` / ``karate_club`` / ``planetoid``
  (``datasets``), ``read_snap`` (``snap``: SNAP edge lists), ``synthetic_graph``
  (``synthetic``: planted classes at any size) and ``store.save`` / ``store.load``
  (memory-mapped on disk, shared by processes) all give or take one;
- graph-level data: ``read_tu`` (``tu``: TU-format datasets) gives ``(graph, x, y)`` items,
  :class:`GraphBatch` (``batch``) joins them into one block-diagonal graph, and
  :class:`GraphLoader` (``graph_loader``) yields shuffled, sharded batches.

A new data source is one module here that returns one of these forms.
"""

from . import store
from .batch import GraphBatch
from .datasets import karate_club, load_dataset, planetoid
from .graph_loader import GraphLoader
from .node_data import NodeData
from .snap import SnapGraph, read_snap
from .synthetic import synthetic_graph
from .tu import TUDataset, one_hot_degree, read_tu

__all__ = [
    "GraphBatch",
    "GraphLoader",
    "NodeData",
    "SnapGraph",
    "TUDataset",
    "karate_club",
    "load_dataset",
    "one_hot_degree",
    "planetoid",
    "read_snap",
    "read_tu",
    "store",
    "synthetic_graph",
]
