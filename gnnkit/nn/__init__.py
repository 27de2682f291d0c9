"""Layers: aggregations, the message-passing base class and the graph convolutions."""

from . import aggr
from .aggr import (
    Aggregation,
    MaxAggregation,
    MeanAggregation,
    MedianAggregation,
    MinAggregation,
    SumAggregation,
)
from .gat import GATConv
from .mean_gcn import MeanGCNConv
from .median_gcn import MedianGCNConv
from .message_passing import MessagePassing

__all__ = [
    "Aggregation",
    "GATConv",
    "MaxAggregation",
    "MeanAggregation",
    "MeanGCNConv",
    "MedianAggregation",
    "MedianGCNConv",
    "MessagePassing",
    "MinAggregation",
    "SumAggregation",
    "aggr",
]
