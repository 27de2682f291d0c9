"""The sparse primitives against dense / loop references, and gradcheck of each custom
autograd function in float64."""

import pytest
import torch
from conftest import random_graph

from gnnkit import Graph
from gnnkit.nn import SumAggregation
from gnnkit.ops import (
    aggregate,
    edge_dots,
    edge_softmax,
    gather_per_feature,
    multi_head_spmm,
    scatter,
    segment_median,
    segment_median_index,
    spmm,
)


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


# ---------------------------------------------------------------------- regression tests
# A small graph with a duplicate edge (0 -> 1 twice), a self-loop (2 -> 2) and an isolated
# node (5), for gradcheck / gradgradcheck in float64.
SMALL_EDGES = torch.tensor([[0, 0, 1, 2, 3, 1, 2, 4, 0],
                            [1, 1, 0, 0, 0, 3, 2, 1, 4]])


def small_graph() -> Graph:
    return Graph(SMALL_EDGES, 6)


def distinct(*shape) -> torch.Tensor:
    """float64 values that are all different (no ties for max, min and median)."""
    count = 1
    for size in shape:
        count *= size
    values = torch.randperm(count, dtype=torch.float64) / count - 0.5
    return values.view(*shape).requires_grad_()


def multi_head_loop(graph: Graph, weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    rowptr, col, _ = graph.csr
    out = torch.zeros(x.shape, dtype=torch.float64)
    for i in range(graph.num_nodes):
        for k in range(int(rowptr[i]), int(rowptr[i + 1])):
            for h in range(x.shape[1]):
                out[i, h] += weights[k, h].double() * x[col[k], h].double()
    return out


def edge_dots_loop(graph: Graph, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    _, col, _ = graph.csr
    target = graph.csr_target
    rows = [(left[target[k]].double() * right[col[k]].double()).sum(-1)
            for k in range(graph.num_edges)]
    return torch.stack(rows) if rows else torch.zeros(0, dtype=torch.float64)


def reduce_loop(graph: Graph, x: torch.Tensor, reduce: str) -> torch.Tensor:
    rowptr, col, _ = graph.csr
    rows = []
    for i in range(graph.num_nodes):
        neighbours = x[col[rowptr[i]:rowptr[i + 1]]].double()
        if len(neighbours) == 0:
            rows.append(torch.zeros(x.shape[1], dtype=torch.float64))
            continue
        rows.append({
            "sum": lambda n: n.sum(0), "mean": lambda n: n.mean(0),
            "max": lambda n: n.max(0).values, "min": lambda n: n.min(0).values,
            "median": lambda n: torch.median(n, dim=0).values,
        }[reduce](neighbours))
    return torch.stack(rows)


def test_multi_head_spmm_and_edge_dots_match_loops():
    graph = small_graph()
    weights = torch.rand(graph.num_edges, 3, dtype=torch.float64)
    x = torch.randn(6, 3, 2, dtype=torch.float64)
    torch.testing.assert_close(multi_head_spmm(graph, weights, x),
                               multi_head_loop(graph, weights, x))
    left, right = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    torch.testing.assert_close(edge_dots(graph, left, right), edge_dots_loop(graph, left, right))
    left3, right3 = left.view(6, 2, 2), right.view(6, 2, 2)
    torch.testing.assert_close(edge_dots(graph, left3, right3),
                               edge_dots_loop(graph, left3, right3))
    with torch.no_grad():  # the form used inside backward passes
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            a, b = left.to(dtype), right.to(dtype)
            tolerance = 1e-5 if dtype != torch.bfloat16 else 5e-2
            torch.testing.assert_close(edge_dots(graph, a, b).double(), edge_dots_loop(graph, a, b),
                                       rtol=tolerance, atol=tolerance)
            a3, b3 = a.view(6, 2, 2), b.view(6, 2, 2)
            torch.testing.assert_close(edge_dots(graph, a3, b3).double(),
                                       edge_dots_loop(graph, a3, b3), rtol=tolerance,
                                       atol=tolerance)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "median"])
def test_aggregate_matches_a_loop(reduce):
    graph = small_graph()
    x = distinct(6, 3).detach()
    torch.testing.assert_close(aggregate(graph, None, x, reduce), reduce_loop(graph, x, reduce))
    assert (aggregate(graph, None, x, reduce)[5] == 0).all()  # the isolated node


def test_spmm_and_multi_head_spmm_gradcheck_and_gradgradcheck():
    graph = small_graph()
    values = torch.rand(graph.num_edges, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, h: spmm(graph, v, h), (values, x))
    assert torch.autograd.gradgradcheck(lambda v, h: spmm(graph, v, h), (values, x), fast_mode=True)
    weights = torch.rand(graph.num_edges, 2, dtype=torch.float64, requires_grad=True)
    x3 = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, h: multi_head_spmm(graph, w, h), (weights, x3))
    assert torch.autograd.gradgradcheck(lambda w, h: multi_head_spmm(graph, w, h), (weights, x3),
                                        fast_mode=True)


@pytest.mark.parametrize("shape", [(6, 4), (6, 2, 3)])
def test_edge_dots_gradcheck_and_gradgradcheck(shape):
    graph = small_graph()
    left = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    right = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: edge_dots(graph, a, b), (left, right))
    assert torch.autograd.gradgradcheck(
        lambda a, b: edge_dots(graph, a, b), (left, right),
        fast_mode=True)


def test_edge_softmax_and_segment_median_gradgradcheck():
    graph = small_graph()
    scores = torch.randn(graph.num_edges, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(graph, s), (scores,))
    assert torch.autograd.gradgradcheck(lambda s: edge_softmax(graph, s), (scores,), fast_mode=True)
    x = distinct(6, 3)
    assert torch.autograd.gradcheck(lambda h: segment_median(graph, h), (x,))
    assert torch.autograd.gradgradcheck(lambda h: segment_median(graph, h), (x,), fast_mode=True)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_aggregate_sum_mean_gradcheck_and_gradgradcheck(reduce):
    graph = small_graph()
    values = torch.rand(graph.num_edges, dtype=torch.float64, requires_grad=True)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, h: aggregate(graph, v, h, reduce), (values, x))
    assert torch.autograd.gradgradcheck(
        lambda v, h: aggregate(graph, v, h, reduce), (values, x),
        fast_mode=True)
    assert torch.autograd.gradgradcheck(
        lambda h: aggregate(graph, None, h, reduce), (x,),
        fast_mode=True)


@pytest.mark.parametrize("reduce", ["max", "min", "median"])
def test_aggregate_selections_gradcheck(reduce):
    graph = small_graph()
    x = distinct(6, 3)
    assert torch.autograd.gradcheck(lambda h: aggregate(graph, None, h, reduce), (x,))


def test_aggregate_median_gradgradcheck():
    graph = small_graph()
    assert torch.autograd.gradgradcheck(lambda h: aggregate(graph, None, h, "median"),
                                        (distinct(6, 3),), fast_mode=True)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_aggregate_max_min_gradgradcheck(reduce):
    # Second derivatives are right (0: a selection is piecewise linear), not an error.
    graph = small_graph()
    assert torch.autograd.gradgradcheck(lambda h: aggregate(graph, None, h, reduce),
                                        (distinct(6, 3),), fast_mode=True)


def test_aggregate_max_min_hessian_vector_product_equals_a_finite_difference():
    graph = small_graph()
    vector = torch.randn(6, 3, dtype=torch.float64)

    def gradient(h, create_graph=False):
        h = h if h.requires_grad else h.detach().requires_grad_()
        out = aggregate(graph, None, h, reduce).pow(2).sum()
        return torch.autograd.grad(out, h, create_graph=create_graph)[0]

    for reduce in ("max", "min"):
        x = distinct(6, 3)
        grad = gradient(x, create_graph=True)
        (hvp,) = torch.autograd.grad((grad * vector).sum(), x)
        eps = 1e-6
        finite = (gradient(x.detach() + eps * vector) - gradient(x.detach() - eps * vector)) / (
            2 * eps)
        torch.testing.assert_close(hvp, finite, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_scatter_max_min_gradient_of_a_zero_value(reduce):
    x = torch.tensor([[0.0], [-1.0 if reduce == "max" else 1.0]], dtype=torch.float64,
                     requires_grad=True)
    out = scatter(torch.tensor([0, 0]), x, 1, reduce)
    assert out.item() == 0.0
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.view(-1).tolist() == [1.0, 0.0]


def test_scatter_max_min_gradcheck_away_from_zero():
    index = torch.tensor([2, 0, 2, 2, 4])
    x = distinct(5, 3).detach().add(1.0).requires_grad_()  # no value is 0
    for reduce in ("max", "min"):
        assert torch.autograd.gradcheck(lambda h, r=reduce: scatter(index, h, 6, r), (x,))


# ---------------------------------------------------------------------- R3: E > N^2
def test_spmm_backward_with_more_edges_than_node_pairs():
    # One node with two self-loops: E = 2 > N^2 = 1.
    graph = Graph(torch.tensor([[0, 0], [0, 0]]), 1)
    values = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    x = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    out = spmm(graph, values, x)
    torch.testing.assert_close(out, 2.5 * x.detach())
    grad_out = torch.randn(1, 3, dtype=torch.float64)
    out.backward(grad_out)
    dot = (grad_out * x.detach()).sum()
    torch.testing.assert_close(values.grad, torch.stack([dot, dot]))
    torch.testing.assert_close(x.grad, 2.5 * grad_out)
    # Two nodes, five parallel edges (E = 5 > 4), float32 (gather-sum path) and float64.
    edge_index = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 0, 0, 1]])
    graph = Graph(edge_index, 2)
    for dtype in (torch.float32, torch.float64):
        values = torch.rand(5, dtype=dtype, requires_grad=True)
        x = torch.randn(2, 4, dtype=dtype, requires_grad=True)
        grad_out = torch.randn(2, 4, dtype=dtype)
        spmm(graph, values, x).backward(grad_out)
        A = dense_weighted_adjacency(graph, values.detach().double())
        torch.testing.assert_close(x.grad.double(), A.t() @ grad_out.double())
        expected = edge_dots_loop(graph, grad_out, x.detach())
        torch.testing.assert_close(values.grad.double(), expected)
    assert torch.autograd.gradgradcheck(
        lambda v, h: spmm(graph, v, h),
        (torch.rand(5, dtype=torch.float64, requires_grad=True),
         torch.randn(2, 3, dtype=torch.float64, requires_grad=True)), fast_mode=True)


def test_multi_head_spmm_and_edge_softmax_backward_with_more_edges_than_node_pairs():
    graph = Graph(torch.tensor([[0, 0, 1, 1, 1, 0], [1, 1, 0, 0, 1, 0]]), 2)
    weights = torch.rand(6, 2, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, h: multi_head_spmm(graph, w, h), (weights, x))
    scores = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(graph, s), (scores,))
    torch.testing.assert_close(edge_softmax(graph, scores), edge_softmax_loop(scores, graph))


# ---------------------------------------------------------------------- float16 / bfloat16 backward
HALF = [(torch.float16, 2e-2), (torch.bfloat16, 8e-2)]


def half_and_double_grads(fn, inputs, dtype):
    """Outputs and input gradients of fn in ``dtype`` and in float64 (same values)."""
    results = []
    for kind in (dtype, torch.float64):
        leaves = [t.detach().to(kind).requires_grad_() for t in inputs]
        out = fn(*leaves)
        assert out.dtype == kind
        grad_out = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view(out.shape)
        grads = torch.autograd.grad(out, leaves, grad_out.to(kind))
        results.append((out.double(), [g.double() for g in grads]))
    return results


def assert_close_scaled(got, want, tolerance):
    scale = 1 + want.abs().max().item()
    torch.testing.assert_close(got, want, rtol=0, atol=tolerance * scale)


@pytest.mark.parametrize("dtype, tolerance", HALF)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "median"])
def test_aggregate_half_backward(dtype, tolerance, reduce):
    graph = small_graph()
    x = distinct(6, 5).detach() * 4  # distinct also after rounding to 8 mantissa bits
    (out, grads), (ref_out, ref_grads) = half_and_double_grads(
        lambda h: aggregate(graph, None, h, reduce), [x], dtype)
    assert_close_scaled(out, ref_out, tolerance)
    assert_close_scaled(grads[0], ref_grads[0], tolerance)


@pytest.mark.parametrize("dtype, tolerance", HALF)
def test_spmm_multi_head_edge_dots_softmax_half_backward(dtype, tolerance):
    graph = small_graph()
    E = graph.num_edges
    cases = {
        "spmm": (lambda v, h: spmm(graph, v, h), [torch.rand(E), torch.randn(6, 4)]),
        "multi_head_spmm": (lambda w, h: multi_head_spmm(graph, w, h),
                            [torch.rand(E, 2), torch.randn(6, 2, 3)]),
        "edge_dots": (lambda a, b: edge_dots(graph, a, b), [torch.randn(6, 4), torch.randn(6, 4)]),
        "edge_softmax": (lambda s: edge_softmax(graph, s), [torch.randn(E, 2)]),
        "segment_median": (lambda h: segment_median(graph, h), [distinct(6, 4).detach() * 4]),
    }
    for name, (fn, inputs) in cases.items():
        (out, grads), (ref_out, ref_grads) = half_and_double_grads(fn, inputs, dtype)
        assert_close_scaled(out, ref_out, tolerance)
        for got, want in zip(grads, ref_grads):
            assert torch.isfinite(got).all(), name
            assert_close_scaled(got, want, tolerance)


# ---------------------------------------------------------------------- R20: argument checks
GRAPH5 = Graph(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]), 5)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: spmm(torch.tensor([[0], [1]]), None, torch.randn(2, 3)), TypeError,
         "graph must be a gnnkit.Graph"),
        (lambda: spmm(GRAPH5, None, torch.ones(5, 3, dtype=torch.long)), TypeError, "floating"),
        (lambda: spmm(GRAPH5, None, torch.randn(5, 3, 2)), ValueError, "num_nodes, F"),
        (lambda: spmm(GRAPH5, torch.ones(4, dtype=torch.long), torch.randn(5, 3)), TypeError,
         "values must be a floating"),
        (lambda: spmm(GRAPH5, [1.0] * 4, torch.randn(5, 3)), TypeError, "values must be"),
        (lambda: multi_head_spmm(GRAPH5, torch.rand(4, 3), torch.randn(5, 2, 3)), ValueError,
         "weights must be a [num_edges, heads]"),
        (lambda: multi_head_spmm(GRAPH5, torch.rand(4, 2), torch.randn(5, 6)), ValueError,
         "num_nodes, H, C"),
        (lambda: multi_head_spmm(GRAPH5.edge_index, torch.rand(4, 2), torch.randn(5, 2, 3)),
         TypeError, "gnnkit.Graph"),
        (lambda: edge_softmax(GRAPH5, torch.randn(3, 2)), ValueError, "E = 4"),
        (lambda: edge_softmax(GRAPH5, torch.ones(4, 2, dtype=torch.long)), TypeError, "floating"),
        (lambda: edge_softmax(GRAPH5, [0.0] * 4), TypeError, "scores must be a torch tensor"),
        (lambda: edge_softmax(GRAPH5.edge_index, torch.randn(4, 1)), TypeError, "gnnkit.Graph"),
        (lambda: aggregate(GRAPH5, None, torch.randn(5, 3), "prod"), ValueError,
         "reduce must be one of"),
        (lambda: aggregate(GRAPH5, torch.rand(4), torch.randn(5, 3), "max"), ValueError,
         "only supported with sum and mean"),
        (lambda: aggregate(GRAPH5, None, torch.randn(4, 3)), ValueError, "num_nodes = 5"),
        (lambda: segment_median(GRAPH5, torch.randn(5, 2).index_fill(0, torch.tensor([1]),
                                                                     float("nan"))),
         ValueError, "NaN"),
        (lambda: segment_median(GRAPH5, torch.randn(6, 2)), ValueError, "num_nodes = 5"),
        (lambda: segment_median_index(torch.tensor([1, 2]), torch.tensor([0]), torch.randn(2, 2)),
         ValueError, "rowptr must start at 0"),
        (lambda: segment_median_index(torch.tensor([0, 2, 1]), torch.tensor([0]),
                                      torch.randn(2, 2)), ValueError, "rowptr"),
        (lambda: segment_median_index(torch.tensor([0, 1]), torch.tensor([5]), torch.randn(2, 2)),
         ValueError, "source must hold row ids"),
        (lambda: segment_median_index(torch.tensor([0.0, 1.0]), torch.tensor([0]),
                                      torch.randn(2, 2)), TypeError, "rowptr must be a 1-D"),
        (lambda: gather_per_feature(torch.ones(3, 2), torch.full((2, 2), -1)), TypeError,
         "rows must be a [N, F] integer tensor"),
        (lambda: gather_per_feature(torch.full((2, 2), -1), torch.ones(3, 2)), ValueError,
         "rows must lie in 0..3"),
        (lambda: gather_per_feature(torch.full((2, 2), 4), torch.ones(3, 2)), ValueError,
         "rows must lie in 0..3"),
        (lambda: gather_per_feature(torch.zeros(2, 3, dtype=torch.long), torch.ones(3, 2)),
         ValueError, "rows has 3 columns"),
        (lambda: scatter(torch.randn(3, 2), torch.tensor([0, 1, 7]), 3), TypeError,
         "index must hold integer node ids"),
        (lambda: scatter(torch.tensor([0, 1, 7]), torch.randn(3, 2), 3), ValueError,
         "ids must lie in 0..2"),
        (lambda: scatter(torch.tensor([0, -1, 1]), torch.randn(3, 2), 3), ValueError,
         "ids must lie in 0..2"),
        (lambda: scatter(torch.tensor([0, 1]), torch.randn(3, 2), 3), ValueError,
         "one entry per row of x"),
        (lambda: scatter(torch.tensor([0, 1, 1]), torch.randn(3, 2), 3, "prod"), ValueError,
         "reduce must be one of"),
        (lambda: scatter(torch.tensor([0, 1, 1]), torch.randn(3, 2), 3.0), TypeError, "dim_size"),
        (lambda: SumAggregation()(torch.ones(3, 2), torch.tensor([True, False, True]), 4),
         TypeError, "index must hold integer node ids"),
        (lambda: SumAggregation()(torch.ones(0, 2), torch.zeros(0, dtype=torch.long), -1),
         TypeError, "dim_size must be an int >= 0"),
    ],
)
def test_ops_refuse_bad_arguments_with_a_clear_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: edge_dots(GRAPH5.edge_index, torch.randn(5, 3), torch.randn(5, 3)), TypeError),
        (lambda: edge_dots(GRAPH5, torch.randn(4, 3), torch.randn(5, 3)), ValueError),
        (lambda: edge_dots(GRAPH5, torch.randn(5, 3), torch.randn(5, 2)), ValueError),
        (lambda: edge_dots(GRAPH5, torch.randn(5, 2, 3), torch.randn(5, 6)), ValueError),
        (lambda: edge_dots(GRAPH5, torch.randn(5, 3), torch.randn(5, 3, dtype=torch.float64)),
         (TypeError, ValueError)),
    ],
)
def test_edge_dots_refuses_bad_arguments_with_a_clear_error(call, error):
    with pytest.raises(error):
        call()


def test_scatter_median_matches_torch_median_per_node_with_or_without_the_graph():
    from gnnkit import Graph

    torch.manual_seed(3)
    edge_index = torch.randint(0, 7, (2, 30))
    graph = Graph(edge_index, 8)  # node 7 receives nothing
    messages = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    expected = torch.zeros(8, 4, dtype=torch.float64)
    for i in range(8):
        arriving = messages[edge_index[1] == i]
        if len(arriving):
            expected[i] = arriving.median(dim=0).values
    for out in (scatter(edge_index[1], messages, 8, "median"),
                scatter(edge_index[1], messages, 8, "median", graph=graph)):
        torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(
        lambda m: scatter(edge_index[1], m, 8, "median", graph=graph), (messages,))


def test_take_rows_is_index_select_for_any_width_and_passes_gradients():
    from gnnkit.ops.gather import take_rows

    index = torch.tensor([3, 0, 0, 2])
    for values in (torch.randn(4, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64),
                   torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 4)[:, 1:2]):
        assert torch.equal(take_rows(values, index), values.index_select(0, index))
    values = torch.randn(4, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: take_rows(v, index), (values,))
