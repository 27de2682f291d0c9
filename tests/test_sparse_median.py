"""The median of sparse features over the stored values only (``sparse_segment_median``):
the dense median's numbers (ties, negatives, stored zeros, repeated edges, nodes without
in-neighbours), gradients to the stored values, and MedianGCNConv's use of it."""

import pytest
import torch
from conftest import random_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit.graph import Graph
from gnnkit.nn import MedianGCNConv
from gnnkit.ops import median as median_ops
from gnnkit.ops.median import segment_median, sparse_median_applies, sparse_segment_median


def _sparse(dense: torch.Tensor, zero_every: int = 0) -> torch.Tensor:
    """``dense`` as CSR; with ``zero_every`` k, every k-th stored value set to 0 (stored
    zeros, as input dropout leaves them)."""
    csr = dense.to_sparse_csr()
    values = csr.values().clone()
    if zero_every:
        values[::zero_every] = 0
    return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, dense.shape,
                                   check_invariants=True)


@settings(max_examples=150, deadline=None)
@given(num_nodes=st.integers(1, 25), num_edges=st.integers(0, 100),
       num_features=st.integers(1, 6), density=st.floats(0.0, 1.0),
       zero_every=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_sparse_median_equals_the_dense_median(num_nodes, num_edges, num_features, density,
                                                zero_every, seed):
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)  # repeats
    graph = Graph(edge_index, num_nodes)
    values = torch.randint(-3, 4, (num_nodes, num_features), generator=generator).double()
    keep = torch.rand(num_nodes, num_features, generator=generator) < density
    x = _sparse(values * keep, zero_every)
    got = sparse_segment_median(graph, x)
    assert got.layout == torch.sparse_csr and got.shape == (num_nodes, num_features)
    assert bool((got.values() != 0).all())  # only the medians that are not 0 are stored
    assert torch.equal(got.to_dense(), segment_median(graph, x.to_dense()))


def test_coo_input_and_float32():
    graph = Graph(random_graph(30, 120, seed=3), 30)
    dense = torch.randn(30, 7) * (torch.rand(30, 7) < 0.3)
    got = sparse_segment_median(graph, dense.to_sparse())
    assert torch.equal(got.to_dense(), segment_median(graph, dense))


def test_gradients_reach_the_selected_stored_values():
    graph = Graph(random_graph(20, 80, seed=4), 20)
    generator = torch.Generator().manual_seed(4)
    dense = (torch.randn(20, 5, dtype=torch.float64, generator=generator)  # no ties
             * (torch.rand(20, 5, generator=generator) < 0.6))
    csr = dense.to_sparse_csr()
    values = csr.values().clone().requires_grad_()

    def medians(values):
        x = torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, csr.shape,
                                    check_invariants=False)
        return sparse_segment_median(graph, x).values()

    weights = torch.randn(medians(values).numel(), dtype=torch.float64)
    (medians(values) * weights).sum().backward()
    dense_x = dense.clone().requires_grad_()  # the same loss on the dense median
    (segment_median(graph, dense_x) * _scatter_dense(graph, csr, weights)).sum().backward()
    torch.testing.assert_close(values.grad, dense_x.grad[dense != 0])
    assert torch.autograd.gradcheck(medians, (values,))
    # No gradgradcheck here: torch's own CSR construction and values() fail it even for an
    # identity (the median adds only an index_select, whose second derivative is 0).


def _scatter_dense(graph, csr, weights):
    """The weights of the stored medians laid out as the dense [N, F] matrix."""
    median = sparse_segment_median(graph, csr)
    return torch.sparse_csr_tensor(median.crow_indices(), median.col_indices(), weights,
                                   median.shape, check_invariants=True).to_dense()


def test_nan_is_refused():
    graph = Graph(random_graph(5, 10, seed=0), 5)
    x = torch.zeros(5, 3)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        sparse_segment_median(graph, x.to_sparse_csr())


def test_the_bounds(monkeypatch):
    graph = Graph(random_graph(40, 160, seed=5), 40)
    x = torch.rand(40, 100) * (torch.rand(40, 100) < 0.01)
    assert sparse_median_applies(graph, x.to_sparse_csr())
    denser = torch.rand(40, 100) * (torch.rand(40, 100) < 0.2)
    assert not sparse_median_applies(graph, denser.to_sparse_csr())  # the dense median wins
    monkeypatch.setattr(median_ops, "SPARSE_MEDIAN_MAX_ENTRIES", 0)
    assert not sparse_median_applies(graph, x.to_sparse_csr())


@pytest.mark.parametrize("bound", [None, 0])  # the sparse path, then the dense fallback
def test_median_layer_with_sparse_x_gives_the_dense_numbers(bound, monkeypatch):
    if bound is not None:
        monkeypatch.setattr(median_ops, "SPARSE_MEDIAN_MAX_ENTRIES", bound)
    graph = Graph(random_graph(50, 200, seed=6), 50)
    dense = torch.rand(50, 100, dtype=torch.float64) * (torch.rand(50, 100) < 0.02)
    assert sparse_median_applies(graph, dense.to_sparse_csr()) == (bound is None)
    layer = MedianGCNConv(100, 4, bias=True).double()
    expected = layer(dense, graph)
    expected_grads = torch.autograd.grad(expected.square().sum(), list(layer.parameters()))
    got = layer(dense.to_sparse_csr(), graph.edge_index)  # any graph form
    grads = torch.autograd.grad(got.square().sum(), list(layer.parameters()))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("x", "error", "words"), [
    (torch.zeros(5, 3), TypeError, "sparse CSR or COO"),
    (torch.zeros(4, 3).to_sparse_csr(), ValueError, "num_nodes = 5"),
    (torch.zeros(5, 3, dtype=torch.long).to_sparse_csr(), TypeError, "floating"),
])
def test_unusable_x_is_refused_by_name(x, error, words):
    with pytest.raises(error, match=words):
        sparse_segment_median(Graph(random_graph(5, 10, seed=0), 5), x)
