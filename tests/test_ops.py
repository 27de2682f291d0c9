"""The sparse primitives against dense / loop references, and gradcheck of each custom
autograd function in float64."""

import pytest
import torch
from conftest import random_graph

from gnnkit import Graph
from gnnkit.ops import edge_softmax, gather_per_feature, scatter, segment_median_index, spmm


def dense_weighted_adjacency(graph: Graph, values: torch.Tensor) -> torch.Tensor:
    """A[i, j] = sum of the CSR values of the edges j -> i, built with a Python loop."""
    rowptr, col, _ = graph.csr
    A = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=values.dtype)
    for i in range(graph.num_nodes):
        for k in range(int(rowptr[i]), int(rowptr[i + 1])):
            A[i, col[k]] += values[k]
    return A


def test_csr_lists_the_sources_of_each_target():
    edge_index = random_graph(12, 40, seed=1, unique=False)
    graph = Graph(edge_index, 12)
    rowptr, col, perm = graph.csr
    for i in range(12):
        assert sorted(col[rowptr[i]:rowptr[i + 1]].tolist()) == sorted(
            j for j, t in edge_index.t().tolist() if t == i
        )
    assert torch.equal(edge_index[:, perm], torch.stack([col, graph.csr_target]))
    colptr, row, csr_to_csc = graph.csc
    for j in range(12):
        assert sorted(row[colptr[j]:colptr[j + 1]].tolist()) == sorted(
            t for s, t in edge_index.t().tolist() if s == j
        )
    assert torch.equal(col[csr_to_csc], torch.repeat_interleave(torch.arange(12), graph.out_degree))


def test_spmm_matches_dense_product_with_duplicates_and_isolated_nodes():
    edge_index = random_graph(15, 50, seed=2, unique=False)  # duplicates and isolated nodes
    graph = Graph(edge_index, 17)
    values = torch.rand(graph.num_edges, dtype=torch.float64)
    x = torch.randn(17, 5, dtype=torch.float64)
    expected = dense_weighted_adjacency(graph, values) @ x
    torch.testing.assert_close(spmm(graph, values, x), expected)
    torch.testing.assert_close(spmm(graph, None, x), graph.to_dense(torch.float64) @ x)


def test_spmm_ignores_what_its_output_buffer_held(monkeypatch):
    # The sparse-product path (float64 here; also CUDA) writes into an uninitialised buffer;
    # hand it NaN-filled ones to show that rows of isolated nodes still come out 0 and nothing
    # of the old contents leaks, forward and backward.
    def nan_filled(tensor, *size, **kwargs):
        shape = size[0] if len(size) == 1 and not isinstance(size[0], int) else size
        return torch.full(shape, float("nan"), dtype=tensor.dtype, device=tensor.device)

    monkeypatch.setattr(torch.Tensor, "new_empty", nan_filled)
    graph = Graph(random_graph(30, 90, seed=4, unique=False), 40)  # nodes 30.. isolated
    adjacency = graph.to_dense(torch.float64)
    x = torch.randn(40, 8, dtype=torch.float64, requires_grad=True)
    out = spmm(graph, None, x)
    torch.testing.assert_close(out, adjacency @ x.detach())
    (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
    torch.testing.assert_close(grad, adjacency.t() @ torch.ones(40, 8, dtype=torch.float64))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float16, 2e-2),
                                              (torch.bfloat16, 1e-1)])
def test_spmm_gather_sum_path_matches_float64_reference(dtype, tolerance):
    # float32/16 on CPU take the embedding_bag path; compare it, forward and backward, with
    # the float64 dense product (duplicate edges, isolated first/middle/last nodes).
    edge_index = random_graph(60, 400, seed=5, unique=False) + 1  # nodes 0 and 61.. isolated
    edge_index[edge_index == 30] = 31  # node 30 isolated too
    graph = Graph(edge_index, 64)
    values = torch.rand(graph.num_edges, dtype=torch.float64)
    x = torch.randn(64, 24, dtype=torch.float64)
    adjacency = dense_weighted_adjacency(graph, values)
    scale = 1 + (adjacency @ x).abs().max().item()
    out = spmm(graph, values.to(dtype), x.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), adjacency @ x, rtol=0, atol=tolerance * scale)
    assert torch.equal(out[[0, 30, 61, 62, 63]], torch.zeros(5, 24, dtype=dtype))
    if dtype == torch.float32:
        values32 = values.float().requires_grad_()
        x32 = x.float().requires_grad_()
        grad_out = torch.randn(64, 24)
        spmm(graph, values32, x32).backward(grad_out)
        torch.testing.assert_close(x32.grad.double(), adjacency.t() @ grad_out.double(),
                                   rtol=1e-5, atol=1e-5)
        rowptr, col, _ = graph.csr
        target = torch.repeat_interleave(torch.arange(64), rowptr.diff())
        expected = (grad_out.double()[target] * x[col]).sum(1)
        torch.testing.assert_close(values32.grad.double(), expected, rtol=1e-5, atol=1e-5)


def test_spmm_rejects_mismatched_shapes():
    graph = Graph(random_graph(5, 8, seed=6), 5)
    with pytest.raises(ValueError, match=r"x must have shape \[num_nodes, F\] with num_nodes = 5"):
        spmm(graph, None, torch.randn(4, 3))
    with pytest.raises(ValueError, match="values must have shape"):
        spmm(graph, torch.rand(graph.num_edges + 1), torch.randn(5, 3))
    with pytest.raises(TypeError, match="float64 but x is torch.float32"):
        spmm(graph, torch.rand(graph.num_edges, dtype=torch.float64), torch.randn(5, 3))


def test_spmm_gradcheck():
    graph = Graph(random_graph(10, 30, seed=3, unique=False), 11)
    values = torch.rand(graph.num_edges, dtype=torch.float64, requires_grad=True)
    x = torch.randn(11, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, h: spmm(graph, v, h), (values, x))
    fixed = values.detach()
    assert torch.autograd.gradcheck(lambda h: spmm(graph, fixed, h), (x,))


def test_spmm_without_edges_gives_zeros_and_a_gradient():
    graph = Graph(torch.empty(2, 0, dtype=torch.long), 3)
    x = torch.randn(3, 2, requires_grad=True)
    out = spmm(graph, None, x)
    assert torch.equal(out, torch.zeros(3, 2))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros(3, 2))


def edge_softmax_loop(scores: torch.Tensor, graph: Graph) -> torch.Tensor:
    target = graph.csr_target
    out = torch.empty_like(scores)
    for i in range(graph.num_nodes):
        mask = target == i
        if mask.any():
            out[mask] = torch.softmax(scores[mask], dim=0)
    return out


def test_edge_softmax_matches_a_loop_and_sums_to_one():
    graph = Graph(random_graph(20, 70, seed=4), 22)
    scores = torch.randn(graph.num_edges, 3, dtype=torch.float64) * 5
    alpha = edge_softmax(graph, scores)
    torch.testing.assert_close(alpha, edge_softmax_loop(scores, graph))
    sums = torch.zeros(22, 3, dtype=torch.float64).index_add_(0, graph.csr_target, alpha)
    has_edges = graph.in_degree > 0
    torch.testing.assert_close(sums[has_edges], torch.ones_like(sums[has_edges]))


def test_edge_softmax_is_stable_for_large_scores():
    graph = Graph(torch.tensor([[0, 1, 2], [1, 1, 1]]), 3)
    alpha = edge_softmax(graph, torch.tensor([[1000.0], [1001.0], [-1000.0]]))
    assert torch.isfinite(alpha).all()
    torch.testing.assert_close(alpha.sum(), torch.tensor(1.0))


def test_edge_softmax_gradcheck():
    graph = Graph(random_graph(8, 25, seed=5), 9)
    scores = torch.randn(graph.num_edges, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(graph, s), (scores,))


def test_segment_median_index_selects_the_lower_median():
    edge_index = random_graph(30, 100, seed=6, unique=False)
    graph = Graph(edge_index, 32)
    x = torch.randint(0, 5, (32, 4)).double()  # many ties
    rowptr, col, _ = graph.csr
    rows = segment_median_index(rowptr, col, x)
    for i in range(32):
        sources = col[rowptr[i]:rowptr[i + 1]]
        if len(sources) == 0:
            assert (rows[i] == 32).all()
            continue
        expected = torch.median(x[sources], dim=0).values
        assert torch.equal(x.gather(0, rows[i:i + 1]).view(-1), expected)
        assert all(int(r) in sources.tolist() for r in rows[i])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gather_per_feature_matches_a_loop_and_routes_gradients(dtype):
    x = torch.randn(6, 3, dtype=dtype, requires_grad=True)
    rows = torch.tensor([[0, 5, 6], [6, 6, 6], [2, 2, 0], [5, 1, 2]])  # 6 = padding row
    out = gather_per_feature(rows, x)
    grad_out = torch.randn(4, 3, dtype=dtype)
    out.backward(grad_out)
    expected = torch.zeros(4, 3, dtype=dtype)
    expected_grad = torch.zeros(6, 3, dtype=dtype)
    for i in range(4):
        for f in range(3):
            if rows[i, f] < 6:
                expected[i, f] = x[rows[i, f], f]
                expected_grad[rows[i, f], f] += grad_out[i, f]
    assert torch.equal(out.detach(), expected)
    torch.testing.assert_close(x.grad, expected_grad)


def test_gather_per_feature_gradcheck():
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    rows = torch.randint(0, 8, (9, 4))  # repeats and padding
    assert torch.autograd.gradcheck(lambda h: gather_per_feature(rows, h), (x,))


def test_scatter_reductions_match_loops():
    index = torch.tensor([2, 0, 2, 2, 4])
    x = torch.tensor([[1.0], [5.0], [3.0], [-2.0], [7.0]], dtype=torch.float64)
    assert scatter(index, x, 6, "sum").view(-1).tolist() == [5, 0, 2, 0, 7, 0]
    assert scatter(index, x, 6, "mean").view(-1).tolist() == [5, 0, 2 / 3, 0, 7, 0]
    assert scatter(index, x, 6, "max").view(-1).tolist() == [5, 0, 3, 0, 7, 0]
    assert scatter(index, x, 6, "min").view(-1).tolist() == [5, 0, -2, 0, 7, 0]
