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
from .gin import GINConv
from .mean_gcn import MeanGCNConv
from .median_gcn import MedianGCNConv
from .message_passing import MessagePassing
from .pool import global_add_pool, global_max_pool, global_mean_pool

__all__ = [
    "Aggregation",
    "GATConv",
    "GINConv",
    "MaxAggregation",
    "MeanAggregation",
    "MeanGCNConv",
    "MedianAggregation",
    "MedianGCNConv",
    "MessagePassing",
    "MinAggregation",
    "SumAggregation",
    "aggr",
    "global_add_pool",
    "global_max_pool",
    "global_mean_pool",
]
