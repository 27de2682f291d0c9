"""The small graphs, sizes and random numbers ``check_layer`` runs a layer on.

The graphs are directed (so a layer that reads the edges backwards differs), have a node with
no incoming edge (where a mean divides by 0 and a softmax runs over nothing), and in-degrees
from 0 to 3 that differ from the out-degrees (so dividing by the wrong degree shows). Graph 2
has the same number of nodes as graph 1 and other edges, so a layer that keeps a matrix until
the number of nodes changes gives graph 1's answer on it; it also has two edges given twice
(each column of edge_index is one message, so a repeated edge counts twice). No self-loops:
the reference adds them itself where the layer must. Everything is drawn from a generator
seeded per case, so a check is repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["CLASS_SIZES", "GRAPHS", "Case", "cases", "history_cases", "parameter_shapes",
           "shuffled"]

#: (in_features, out_features) a layer class is built with: equal, shrinking, growing.
CLASS_SIZES = ((3, 3), (4, 2), (2, 5))

#: name -> (number of nodes, edges j -> i as (j, i)), listed in no particular order. Graph 2
#: follows graph 1 (same size, other edges) so that a cache keyed by the size is stale on it.
GRAPHS = {
    "graph 1 (5 nodes; node 0 has no incoming edge)": (
        5, ((0, 2), (3, 2), (0, 1), (2, 3), (1, 2), (4, 3), (1, 4), (0, 4), (3, 1)),
    ),
    "graph 2 (5 nodes, other edges than graph 1; node 4 has no incoming edge; the edges "
    "0 -> 1 and 4 -> 2 are given twice)": (
        5, ((0, 1), (2, 1), (3, 0), (0, 1), (1, 0), (4, 2), (1, 3), (4, 3), (0, 2), (4, 2)),
    ),
    "graph 3 (7 nodes; nodes 3 and 6 have no incoming edge)": (
        7, ((1, 0), (6, 0), (4, 2), (3, 0), (0, 1), (4, 1), (5, 2), (3, 4), (2, 5), (6, 5),
            (1, 4), (0, 5)),
    ),
}


@dataclass(frozen=True)
class Case:
    """One run: a graph, the layer's sizes, the input x [N, in] and the parameters to set."""

    graph: str
    edge_index: Tensor  # [2, E]: row 0 sources j, row 1 targets i
    x: Tensor  # [N, in], float64
    params: dict[str, Tensor]  # name -> float64 value of the template's shape
    seed: int

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    @property
    def in_degree(self) -> Tensor:
        return torch.bincount(self.edge_index[1], minlength=self.num_nodes)

    def describe(self) -> str:
        return f"{self.graph}, in={self.x.size(1)}, out={next(iter(self.params.values())).size(0)}"


def parameter_shapes(kind: str, in_features: int, out_features: int) -> dict[str, tuple]:
    """The template's parameter shapes: W, B [out, in] (mean-gcn, median-gcn); W [out, in],
    a [2 * out] (gat)."""
    if kind in ("mean-gcn", "median-gcn"):
        return {"W": (out_features, in_features), "B": (out_features, in_features)}
    return {"W": (out_features, in_features), "a": (2 * out_features,)}


def cases(kind: str, sizes) -> list[Case]:
    """One case per graph and size, with random x and parameters (normal, scale 1)."""
    found = []
    for seed, ((in_features, out_features), (name, (num_nodes, edges))) in enumerate(
        (size, graph) for size in sizes for graph in GRAPHS.items()
    ):
        generator = torch.Generator().manual_seed(1000 + seed)
        edge_index = torch.tensor(edges, dtype=torch.long).t().contiguous()
        x = torch.randn(num_nodes, in_features, generator=generator, dtype=torch.float64)
        params = {
            name_: torch.randn(shape, generator=generator, dtype=torch.float64)
            for name_, shape in parameter_shapes(kind, in_features, out_features).items()
        }
        found.append(Case(name, edge_index, x, params, seed))
    return found


def shuffled(edge_index: Tensor, seed: int) -> Tensor:
    """The same edges in another order."""
    generator = torch.Generator().manual_seed(seed)
    return edge_index[:, torch.randperm(edge_index.size(1), generator=generator)]


def history_cases(runs: list[Case]) -> tuple[Case, Case, Case] | None:
    """(target, twin, other) among one size's cases: ``twin`` has as many nodes as ``target``
    and other edges, ``other`` another number of nodes (None if there are no such three). The
    target is the latest such case, so that it is not the first graph a layer ever saw."""
    for target in reversed(runs):
        twins = [c for c in runs if c.num_nodes == target.num_nodes and c.graph != target.graph]
        others = [c for c in runs if c.num_nodes != target.num_nodes]
        if twins and others:
            return target, twins[0], others[0]
    return None
