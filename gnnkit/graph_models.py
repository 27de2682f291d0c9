"""A graph classifier: graph layers, a readout per graph, then an MLP.

    h^(0) = x
    h^(l) = conv_l(h^(l-1), graph)                      l = 1..L, node rows [N, hidden]
    r_b   = pool_{n in graph b} h^(L)_n                 [B, hidden]
    logits = W_2 dropout(relu(W_1 r_b + c_1)) + c_2     [B, num_classes]

``conv="gin"`` uses :class:`gnnkit.nn.GINConv` whose ``nn`` is the two-layer MLP of Xu et al.
(2019): Linear, BatchNorm, ReLU, Linear, BatchNorm, ReLU. ``conv="mean-gcn"`` uses
:class:`gnnkit.nn.MeanGCNConv` (with a bias) followed by ReLU.
"""

from __future__ import annotations

import itertools

import torch.nn.functional as F
from torch import Tensor, nn

from ._validate import check_int, check_real
from .data.batch import GraphBatch
from .nn import GINConv, MeanGCNConv, global_add_pool, global_max_pool, global_mean_pool
from .ops.dropout import dropout

CONVS = ("gin", "mean-gcn")
POOLS = {"add": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


class GraphClassifier(nn.Module):
    """Class logits for each graph of a batch.

    Args:
        in_features: F, node feature width.
        hidden: width of every layer and of the readout.
        num_classes: C.
        num_layers: L >= 1 graph layers.
        conv: ``"gin"`` or ``"mean-gcn"``.
        pool: ``"add"``, ``"mean"`` or ``"max"`` readout.
        dropout: dropout probability before the last linear layer.

    Shapes:
        ``forward(x, graph, batch)``: x [N, F]; graph the block-diagonal graph on N nodes (or
        a :class:`gnnkit.data.GraphBatch`, then ``batch`` may be left out); batch the [N]
        sorted graph id of each node or the GraphBatch -> logits [B, C].
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int, num_layers: int = 3,
                 conv: str = "gin", pool: str = "add", dropout: float = 0.5):
        super().__init__()
        in_features = check_int(in_features, "in_features", low=1)
        hidden = check_int(hidden, "hidden", low=1)
        num_classes = check_int(num_classes, "num_classes", low=1)
        num_layers = check_int(num_layers, "num_layers", low=1)
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {CONVS}, got {conv!r}.")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {tuple(POOLS)}, got {pool!r}.")
        self.dropout = check_real(dropout, "dropout", low=0.0, high=1.0, open_high=True)
        self.conv_name, self.pool_name = conv, pool
        widths = [in_features] + [hidden] * num_layers
        self.convs = nn.ModuleList(
            _gin(a, b) if conv == "gin" else MeanGCNConv(a, b, bias=True)
            for a, b in itertools.pairwise(widths)
        )
        self.lin1 = nn.Linear(hidden, hidden)
        self.lin2 = nn.Linear(hidden, num_classes)

    def reset_parameters(self) -> None:
        for module in (*self.convs, self.lin1, self.lin2):
            module.reset_parameters()

    def forward(self, x: Tensor, graph, batch=None) -> Tensor:
        if isinstance(graph, GraphBatch):
            batch = graph if batch is None else batch
            graph = graph.graph
        elif isinstance(batch, GraphBatch):
            pass
        elif batch is None:
            raise TypeError("batch is missing: give the [N] graph id of each node or the "
                            "GraphBatch (or pass the GraphBatch as graph).")
        h = x
        for conv in self.convs:
            h = conv(h, graph)
            if self.conv_name == "mean-gcn":
                h = F.relu(h)
        r = POOLS[self.pool_name](h, batch)
        r = dropout(F.relu(self.lin1(r)), self.dropout, self.training)
        return self.lin2(r)

    def extra_repr(self) -> str:
        return f"pool={self.pool_name!r}, dropout={self.dropout}"


def _gin(in_features: int, out_features: int) -> GINConv:
    mlp = nn.Sequential(
        nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU(),
        nn.Linear(out_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU(),
    )
    return GINConv(mlp, train_eps=False)
