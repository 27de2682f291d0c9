"""Shared test helpers: random graphs, the built-in layers, the shared datasets' folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from gnnkit.nn import GATConv, GINConv, MeanGCNConv, MedianGCNConv

#: The shared datasets (Planetoid, SNAP, TU): the folder in $GNNKIT_DATA, else
#: ../shared/datasets beside the repository. Never copied into the repository.
DATASETS = Path(os.environ.get("GNNKIT_DATA") or
                Path(__file__).resolve().parents[2] / "shared" / "datasets")


def needs_data(relative: str):
    """Skip unless ``DATASETS / relative`` exists, saying where it was looked for."""
    path = DATASETS / relative
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"{path} not found (set GNNKIT_DATA to the shared datasets folder; the default "
        "is ../shared/datasets beside the repository)",
    )


def built_in_layers(in_features: int, out_features: int) -> dict:
    """Every built-in layer in each distinct configuration, as factories: the one list the
    layer tests share (a test file adds its own extra layers to it)."""
    return {
        "mean": lambda: MeanGCNConv(in_features, out_features, bias=True),
        "median": lambda: MedianGCNConv(in_features, out_features, bias=True),
        "gat": lambda: GATConv(in_features, out_features, heads=2),
        "gat_mean_no_loops": lambda: GATConv(in_features, out_features, heads=2, concat=False,
                                             add_self_loops=False),
        "gin": lambda: GINConv(nn.Linear(in_features, out_features), train_eps=True),
    }


def random_graph(num_nodes: int, num_edges: int, seed: int = 0, *, unique: bool = True):
    """A random directed edge_index [2, E] without duplicate edges (when ``unique``)."""
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    if unique:
        key = torch.unique(edge_index[1] * num_nodes + edge_index[0])
        edge_index = torch.stack([key % num_nodes, key // num_nodes])
        order = torch.randperm(edge_index.size(1), generator=generator)
        edge_index = edge_index[:, order]
    return edge_index


def neighbours_of(edge_index: torch.Tensor, node: int) -> list[int]:
    """Sources j of the edges j -> node, in edge order (a plain Python reference)."""
    return [int(j) for j, i in edge_index.t().tolist() if i == node]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
