"""Shared test helpers: random graphs and float64 references."""

from __future__ import annotations

import pytest
import torch


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
