"""A raw edge_index already sorted (by target, or by source) skips sorting; the results must
be those of any other order of the same edges: identical outputs, gradients and layouts."""

from __future__ import annotations

import pytest
import torch
from conftest import built_in_layers, random_graph

from gnnkit import Graph

NUM_NODES = 7


def edges_with_duplicates_and_loops() -> torch.Tensor:
    edge_index = random_graph(NUM_NODES, 30, seed=3, unique=False)
    extra = torch.tensor([[2, 2, 4, 0], [2, 5, 1, 3]])  # a self-loop, a repeated edge
    return torch.cat([edge_index, extra, extra[:, 1:]], dim=1)


def orders(edge_index: torch.Tensor) -> dict[str, torch.Tensor]:
    source, target = edge_index
    by_target = torch.argsort(target * NUM_NODES + source, stable=True)
    by_source = torch.argsort(source * NUM_NODES + target, stable=True)
    return {"given": edge_index, "by_target": edge_index[:, by_target],
            "by_source": edge_index[:, by_source], "target_only": edge_index[:, torch.argsort(
                target, stable=True)]}


def reference_layouts(edge_index: torch.Tensor):
    """CSR and transpose by an explicit stable sort (the documented definitions)."""
    source, target = edge_index
    perm = torch.argsort(target * NUM_NODES + source, stable=True)
    col, row = source[perm], target[perm]
    csr_to_csc = torch.argsort(col * NUM_NODES + row, stable=True)
    rowptr = torch.cat([torch.zeros(1, dtype=torch.long),
                        torch.bincount(target, minlength=NUM_NODES).cumsum(0)])
    colptr = torch.cat([torch.zeros(1, dtype=torch.long),
                        torch.bincount(source, minlength=NUM_NODES).cumsum(0)])
    return (rowptr, col, perm), row, (colptr, row[csr_to_csc], csr_to_csc)


@pytest.mark.parametrize("order", ["given", "by_target", "by_source", "target_only"])
@pytest.mark.parametrize("loops", [False, True])
def test_layouts_equal_the_stable_sort_in_every_input_order(order, loops):
    graph = Graph(orders(edges_with_duplicates_and_loops())[order], NUM_NODES)
    if loops:
        graph = graph.add_self_loops()
    csr, csr_target, csc = reference_layouts(graph.edge_index)
    for got, want in zip((*graph.csr, graph.csr_target, *graph.csc), (*csr, csr_target, *csc)):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", list(built_in_layers(4, 3)))
def test_sorted_and_unsorted_edge_index_give_identical_outputs_and_gradients(name):
    edge_index = edges_with_duplicates_and_loops()
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    grad_out = None
    results = {}
    for order, edges in orders(edge_index).items():
        for form in ("raw", "graph"):
            torch.manual_seed(0)
            layer = built_in_layers(4, 3)[name]().double()
            inputs = x.clone().requires_grad_()
            out = layer(inputs, edges if form == "raw" else Graph(edges, NUM_NODES))
            if grad_out is None:
                grad_out = torch.randn_like(out)
            out.backward(grad_out)
            grads = [inputs.grad] + [p.grad for p in layer.parameters()]
            results[order, form] = (out.detach(), grads)
    (want_out, want_grads), *others = results.values()
    for out, grads in others:
        assert torch.equal(out, want_out)
        for got, want in zip(grads, want_grads):
            assert torch.equal(got, want)


def test_gat_attention_edges_do_not_depend_on_the_input_order():
    from gnnkit.nn import GATConv

    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    seen = []
    for edges in orders(edges_with_duplicates_and_loops()).values():
        torch.manual_seed(0)
        layer = GATConv(4, 3, heads=2).double()
        _, (used, alpha) = layer(x, edges, return_attention_weights=True)
        seen.append((used, alpha))
    for used, alpha in seen[1:]:
        assert torch.equal(used, seen[0][0]) and torch.equal(alpha, seen[0][1])
