"""Graph.heads_copies (one graph holding a copy per attention head) and the multi-head product
that runs over it, against loops and against the per-head products it replaces."""

import importlib

import pytest
import torch
from conftest import random_graph

from gnnkit import Graph
from gnnkit.ops import multi_head_spmm

# the module (gnnkit.ops.spmm is also the name of its function)
spmm_module = importlib.import_module("gnnkit.ops.spmm")

# a duplicate edge (0 -> 1 twice), a self-loop (2 -> 2) and an isolated node (5)
EDGES = torch.tensor([[0, 0, 1, 2, 3, 1, 2, 4, 0],
                      [1, 1, 0, 0, 0, 3, 2, 1, 4]])


def dense(rowptr: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """A[i, j] = sum of the values stored at (i, j), by a loop over the CSR."""
    matrix = torch.zeros(n, n, dtype=values.dtype)
    for i in range(n):
        for k in range(int(rowptr[i]), int(rowptr[i + 1])):
            matrix[i, col[k]] += values[k]
    return matrix


def loop(graph: Graph, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    rowptr, col, _ = graph.csr
    out = torch.zeros(x.shape, dtype=torch.float64)
    for i in range(graph.num_nodes):
        for k in range(int(rowptr[i]), int(rowptr[i + 1])):
            out[i] += weights[k].double().unsqueeze(1) * x[col[k]].double()
    return out


@pytest.mark.parametrize("heads", [1, 2, 3])
def test_copies_hold_each_edge_once_per_head_and_order_maps_the_values(heads):
    graph = Graph(EDGES, 6)
    n = graph.num_nodes
    copies, order = graph.heads_copies(heads)
    assert copies.num_nodes == n * heads and copies.num_edges == graph.num_edges * heads
    values = torch.randn(graph.num_edges, heads, dtype=torch.float64)
    rowptr, col, _ = graph.csr
    copy_rowptr, copy_col, _ = copies.csr
    got = dense(copy_rowptr, copy_col, values.reshape(-1)[order], n * heads)
    expected = torch.zeros(n * heads, n * heads, dtype=torch.float64)
    for h in range(heads):
        expected[h::heads, h::heads] = dense(rowptr, col, values[:, h], n)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert sorted(order.tolist()) == list(range(graph.num_edges * heads))  # a permutation


@pytest.mark.parametrize("heads", [1, 3])
def test_the_transpose_made_alongside_is_the_transpose(heads):
    graph = Graph(random_graph(40, 150, seed=3), 40)
    copies, _ = graph.heads_copies(heads)
    values = torch.randn(copies.num_edges, dtype=torch.float64)
    rowptr, col, _ = copies.csr
    colptr, row, csr_to_csc = copies.csc
    n = copies.num_nodes
    torch.testing.assert_close(dense(colptr, row, values[csr_to_csc], n),
                               dense(rowptr, col, values, n).t(), rtol=0, atol=0)
    reverse_rowptr, reverse_col, _ = copies.reverse.csr
    assert torch.equal(reverse_rowptr, colptr) and torch.equal(reverse_col, row)


def test_copies_are_cached_per_head_count_and_checked():
    graph = Graph(EDGES, 6)
    assert graph.heads_copies(2) is graph.heads_copies(2)
    assert graph.heads_copies(3)[0].num_nodes == 18
    with pytest.raises(ValueError, match="heads"):
        graph.heads_copies(0)
    with pytest.raises(TypeError, match="heads"):
        graph.heads_copies(2.0)
    with torch.inference_mode():  # filled under inference mode, usable by training later
        copies, order = Graph(EDGES, 6).heads_copies(4)
    assert not order.is_inference() and not copies.csr[1].is_inference()


@pytest.fixture(params=["copies", "per head"])
def path(request, monkeypatch):
    """Run a test over the head copies and over one product per head."""
    if request.param == "per head":
        monkeypatch.setattr(spmm_module, "HEADS_COPIES_MAX_EDGES", 0)
    return request.param


def test_multi_head_spmm_matches_a_loop_on_both_paths(path):
    for graph in (Graph(EDGES, 6), Graph(random_graph(30, 120, seed=1), 30)):
        weights = torch.rand(graph.num_edges, 3, dtype=torch.float64)
        x = torch.randn(graph.num_nodes, 3, 4, dtype=torch.float64)
        torch.testing.assert_close(multi_head_spmm(graph, weights, x), loop(graph, weights, x))
        for dtype in (torch.float32, torch.bfloat16):
            tolerance = 1e-5 if dtype == torch.float32 else 5e-2
            torch.testing.assert_close(
                multi_head_spmm(graph, weights.to(dtype), x.to(dtype)).double(),
                loop(graph, weights, x.to(dtype)), rtol=tolerance, atol=tolerance)


def test_multi_head_spmm_gradcheck_and_gradgradcheck_on_both_paths(path):
    graph = Graph(EDGES, 6)
    weights = torch.rand(graph.num_edges, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, h: multi_head_spmm(graph, w, h), (weights, x))
    assert torch.autograd.gradgradcheck(lambda w, h: multi_head_spmm(graph, w, h),
                                        (weights, x), fast_mode=True)


def test_both_paths_give_the_same_float32_gradients():
    graph = Graph(random_graph(50, 300, seed=2), 50)
    weights = torch.rand(graph.num_edges, 4, requires_grad=True)
    x = torch.randn(50, 4, 8, requires_grad=True)
    grad = torch.randn(50, 4, 8)
    results = []
    for limit in (spmm_module.HEADS_COPIES_MAX_EDGES, 0):
        spmm_module.HEADS_COPIES_MAX_EDGES, saved = limit, spmm_module.HEADS_COPIES_MAX_EDGES
        try:
            out = multi_head_spmm(graph, weights, x)
            results.append((out, *torch.autograd.grad(out, (weights, x), grad)))
        finally:
            spmm_module.HEADS_COPIES_MAX_EDGES = saved
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_transpose_is_made_only_for_a_backward_pass_and_copies_pickle():
    import copy
    import pickle

    graph = Graph(EDGES, 6)
    weights = torch.rand(graph.num_edges, 2, requires_grad=True)
    x = torch.randn(6, 2, 3, requires_grad=True)
    with torch.no_grad():
        expected = multi_head_spmm(graph, weights, x)
    copies, _ = graph.heads_copies(2)
    assert "csc" not in copies.__dict__ and "csc" not in graph.__dict__  # no sort for eval
    multi_head_spmm(graph, weights, x).sum().backward()
    assert "csc" in copies.__dict__
    for clone in (pickle.loads(pickle.dumps(graph)), copy.deepcopy(graph)):
        torch.testing.assert_close(multi_head_spmm(clone, weights, x), expected)
        clone_copies, _ = clone.heads_copies(2)
        assert clone_copies._copies_of[0] is clone
