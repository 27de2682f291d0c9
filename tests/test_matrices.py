"""Tests for gnnkit.matrices: exact homework matrices, agreement with networkx/numpy, walks,
and clear errors on bad input."""

from itertools import pairwise
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from homework_answers import A1, D1, HOMEWORK, L1
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit import (
    Graph,
    adjacency,
    degree_matrix,
    homework_graph,
    inverse_degree_matrix,
    laplacian,
    load_graph,
    matrix_power,
    walks,
)
from gnnkit.matrices import exact_matrix_power

DATA = Path(__file__).resolve().parents[1] / "data"



@pytest.mark.parametrize("number", [1, 2])
def test_homework_matrices_exact(number):
    A, A_squared, D, L, edges = HOMEWORK[number]
    sources = {
        "pairs": adjacency(edges, one_indexed=True),
        "file": adjacency(load_graph(DATA / f"homework_graph{number}.txt", one_indexed=True)),
        "built in": adjacency(homework_graph(number)),
    }
    for name, got in sources.items():
        assert got.dtype == torch.long, name
        assert got.tolist() == A, name
    A_t = sources["pairs"]
    for result, expected in ((matrix_power(A_t, 2), A_squared), (degree_matrix(A_t), D),
                             (laplacian(A_t), L)):
        assert result.dtype == torch.long
        assert result.tolist() == expected


def test_homework_normalised_laplacians_by_hand():
    # graph 1: degrees 3, 2, 3, 1, 1; an edge i-j gives -1/sqrt(d_i d_j) and -1/d_i.
    sym = laplacian(A1, "sym")
    rw = laplacian(A1, "rw")
    assert sym[0, 1].item() == pytest.approx(-1 / 6**0.5)
    assert sym[0, 2].item() == pytest.approx(-1 / 3)
    assert sym[2, 3].item() == pytest.approx(-1 / 3**0.5)
    assert torch.allclose(torch.diag(sym), torch.ones(5))
    assert rw[1].tolist() == pytest.approx([-0.5, 1, -0.5, 0, 0])
    assert rw[3].tolist() == pytest.approx([0, 0, -1, 1, 0])
    assert torch.allclose(rw.sum(dim=1), torch.zeros(5), atol=1e-6)


# ---------------------------------------------------------------------- adjacency
def test_adjacency_directed_follows_the_convention():
    A = adjacency([(0, 1), (1, 2)], directed=True)
    assert A.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0]]  # edge u -> v at A[v, u]
    g = nx.DiGraph([(0, 1), (1, 2)])
    assert np.array_equal(adjacency(g).numpy(), nx.to_numpy_array(g).T)
    assert adjacency(torch.tensor([[0, 1], [1, 2]]), directed=True).tolist() == A.tolist()


def test_adjacency_inputs_and_options():
    undirected = [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    pairs = [(0, 1), (1, 2), (2, 1), (0, 1)]  # duplicates merged
    assert adjacency(pairs, 4).tolist() == undirected
    assert adjacency(np.array(pairs), 4).tolist() == undirected
    assert adjacency(torch.tensor(pairs).t(), 4).tolist() == undirected
    assert adjacency(torch.tensor([[1, 2], [2, 3]]), 4, one_indexed=True).tolist() == undirected
    g = nx.Graph([(0, 1), (1, 2)])
    g.add_node(3)
    assert adjacency(g).tolist() == undirected
    assert adjacency(sp.csr_matrix(np.array(undirected) * 3)).tolist() == undirected
    assert adjacency(Graph.from_edge_list(pairs, 4)).tolist() == [
        [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]
    ]  # a Graph keeps its own direction
    assert adjacency([(0, 0)]).tolist() == [[1]]  # a self-loop is kept
    assert adjacency([], 2).tolist() == [[0, 0], [0, 0]]
    sparse = adjacency(pairs, 4, sparse=True)
    assert sparse.layout == torch.sparse_coo and sparse.is_coalesced()
    assert sparse.dtype == torch.long
    assert sparse.to_dense().tolist() == undirected


# ---------------------------------------------------------------------- random graphs
@st.composite
def graphs(draw, directed=None, max_nodes=7, self_loops=True):
    """(A as a 0/1 long tensor [N, N], directed flag)."""
    n = draw(st.integers(1, max_nodes))
    directed = draw(st.booleans()) if directed is None else directed
    node = st.integers(0, n - 1)
    pairs = draw(st.lists(st.tuples(node, node), max_size=3 * n))
    if not self_loops:
        pairs = [(u, v) for u, v in pairs if u != v]
    return adjacency(pairs, n, directed=directed), directed


def networkx_graph(A: torch.Tensor) -> nx.Graph:
    """The undirected networkx graph of a symmetric A (nodes 0..n-1)."""
    g = nx.Graph()
    g.add_nodes_from(range(A.size(0)))
    g.add_edges_from(torch.nonzero(torch.triu(A)).tolist())
    return g


@settings(max_examples=60, deadline=None)
@given(graphs(), st.integers(0, 7))
def test_matrix_power_matches_numpy(graph, n):
    A, _ = graph
    expected = np.linalg.matrix_power(A.numpy().astype(np.int64), n)
    got = matrix_power(A, n)
    assert got.dtype == torch.long and np.array_equal(got.numpy(), expected)
    assert np.array_equal(matrix_power(A.to_sparse(), n).numpy(), expected)
    assert np.array_equal(matrix_power(sp.csr_matrix(A.numpy()), n).numpy(), expected)
    assert np.array_equal(matrix_power(A.tolist(), n).numpy(), expected)
    as_float = matrix_power(A.double(), n)
    assert as_float.dtype == torch.float64 and np.allclose(as_float.numpy(), expected)


@settings(max_examples=60, deadline=None)
@given(graphs(directed=False))
def test_laplacians_match_networkx(graph):
    A, _ = graph
    g = networkx_graph(A)
    nodes = range(A.size(0))
    assert np.array_equal(adjacency(g).numpy(), nx.to_numpy_array(g, nodelist=nodes))
    L = laplacian(A)
    assert L.dtype == torch.long
    assert np.array_equal(L.numpy(), nx.laplacian_matrix(g, nodelist=nodes).toarray())
    sym = laplacian(A, "sym").double().numpy()
    assert np.allclose(sym, nx.normalized_laplacian_matrix(g, nodelist=nodes).toarray(),
                       atol=1e-6)
    # random walk: D^-1 (D - A) with 1/0 taken as 0, written with numpy
    dense = A.numpy().astype(float)
    degrees = dense.sum(axis=1)
    inverse = np.divide(1.0, degrees, out=np.zeros_like(degrees), where=degrees != 0)
    expected_rw = inverse[:, None] * (np.diag(degrees) - dense)
    assert np.allclose(laplacian(A, "rw").double().numpy(), expected_rw, atol=1e-6)
    assert np.array_equal(degree_matrix(A).numpy(), np.diag(degrees).astype(np.int64))
    assert np.allclose(inverse_degree_matrix(A).double().numpy(), np.diag(inverse), atol=1e-6)


def test_isolated_nodes_in_normalised_laplacians_match_networkx():
    g = nx.Graph([(0, 1)])
    g.add_nodes_from([2, 3])
    A = adjacency(g)
    expected = nx.normalized_laplacian_matrix(g, nodelist=range(4)).toarray()
    assert np.allclose(laplacian(A, "sym").numpy(), expected)
    assert laplacian(A, "sym")[2].tolist() == [0, 0, 0, 0]
    assert laplacian(A, "rw")[3].tolist() == [0, 0, 0, 0]
    assert inverse_degree_matrix(A)[2, 2] == 0
    # the mean over no neighbours is 0
    features = torch.arange(8.0).reshape(4, 2)
    mean = inverse_degree_matrix(A) @ A.float() @ features
    assert mean.tolist() == [[2, 3], [0, 1], [0, 0], [0, 0]]


def test_float_and_sparse_inputs_to_laplacian_and_degrees():
    A = torch.tensor(A1, dtype=torch.float64)
    assert laplacian(A).dtype == torch.float64
    assert laplacian(A).tolist() == L1
    assert laplacian(A.to_sparse()).tolist() == L1
    assert laplacian(sp.csr_matrix(np.array(A1))).tolist() == L1
    assert degree_matrix(np.array(A1)).tolist() == D1
    assert laplacian(A1, "sym").dtype == torch.get_default_dtype()
    assert inverse_degree_matrix(A).dtype == torch.float64


# ---------------------------------------------------------------------- walks
@settings(max_examples=80, deadline=None)
@given(graphs(), st.integers(0, 4), st.data())
def test_walk_counts_equal_matrix_power(graph, n, data):
    A, _ = graph
    size = A.size(0)
    i = data.draw(st.integers(0, size - 1))
    j = data.draw(st.integers(0, size - 1))
    found = walks(A, i, j, n)
    assert len(found) == matrix_power(A, n)[i, j]
    assert found == sorted(found) and len({tuple(w) for w in found}) == len(found)
    for walk in found:
        assert len(walk) == n + 1 and walk[0] == i and walk[-1] == j
        assert all(A[walk[k], walk[k + 1]] == 1 for k in range(n))


@settings(max_examples=30, deadline=None)
@given(graphs(directed=True), st.integers(1, 4))
def test_walks_read_backwards_follow_directed_edges(graph, n):
    A, _ = graph
    g = nx.DiGraph()
    g.add_nodes_from(range(A.size(0)))
    g.add_edges_from((int(j), int(i)) for i, j in torch.nonzero(A).tolist())  # j -> i
    power = matrix_power(A, n)
    for i in range(A.size(0)):
        for j in range(A.size(0)):
            found = walks(A, i, j, n)
            assert len(found) == power[i, j]
            for walk in found:
                reversed_walk = walk[::-1]  # starts at j, ends at i
                assert all(g.has_edge(a, b) for a, b in pairwise(reversed_walk))


def test_walks_homework_examples():
    assert walks(A1, 0, 0, 2) == [[0, 1, 0], [0, 2, 0], [0, 4, 0]]
    assert walks(A1, 1, 3, 2) == [[1, 2, 3]]
    assert walks(A1, 0, 4, 2) == []
    assert walks(A1, 3, 3, 0) == [[3]]
    assert walks(A1, 3, 2, 0) == []
    directed = adjacency([(0, 1), (1, 2)], directed=True)  # 0 -> 1 -> 2
    assert matrix_power(directed, 2)[2, 0] == 1
    assert walks(directed, 2, 0, 2) == [[2, 1, 0]]
    assert walks(directed, 0, 2, 2) == []


def test_walks_limit():
    complete = torch.ones(5, 5, dtype=torch.long) - torch.eye(5, dtype=torch.long)
    count = int(matrix_power(complete, 8)[0, 1])
    with pytest.raises(ValueError, match="limit"):
        walks(complete, 0, 1, 8)
    assert len(walks(complete, 0, 1, 8, limit=count)) == count
    with pytest.raises(ValueError, match="limit=10"):
        walks(complete, 0, 1, 3, limit=10)
    cycle = [[0, 1], [1, 0]]
    assert len(walks(cycle, 0, 0, 3000)) == 1  # long walks do not hit recursion limits


# ---------------------------------------------------------------------- exact large powers
def test_matrix_power_is_exact_near_int64_limit():
    A = torch.tensor([[3, 1], [1, 3]])
    exact = [[(4**30 + 2**30) // 2, (4**30 - 2**30) // 2]]  # eigenvalues 4 and 2
    got = matrix_power(A, 30)
    assert got[0].tolist() == exact[0]
    as_python = [[1, 0], [0, 1]]
    for _ in range(30):
        as_python = [[sum(as_python[r][k] * [[3, 1], [1, 3]][k][c] for k in range(2))
                      for c in range(2)] for r in range(2)]
    assert got.tolist() == as_python
    signed = torch.tensor([[1, -1], [1, -1]])  # nilpotent: big row sums, zero result
    assert matrix_power(signed, 100).tolist() == [[0, 0], [0, 0]]


def test_matrix_power_overflow_raises():
    with pytest.raises(ValueError, match="int64"):
        matrix_power(torch.full((3, 3), 1000), 10)
    with pytest.raises(ValueError, match="int64"):
        matrix_power(torch.tensor([[2, 0], [0, 2]]), 64)
    assert matrix_power(torch.tensor([[2, 0], [0, 2]]), 62)[0, 0] == 2**62


def test_matrix_power_of_any_n():
    assert matrix_power([[0, 1], [1, 0]], 10**20 + 1).tolist() == [[0, 1], [1, 0]]
    assert matrix_power(torch.tensor([[0.0, 1], [1, 0]]), 10**20).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="more than 65536 bits"):
        matrix_power([[1, 1], [1, 1]], 10**20)


def test_exact_matrix_power_beyond_int64():
    assert exact_matrix_power([[1, 1], [1, 1]], 70) == [[2**69, 2**69], [2**69, 2**69]]
    with pytest.raises(ValueError, match="exact_matrix_power"):
        matrix_power([[1, 1], [1, 1]], 70)
    assert exact_matrix_power(A1, 0) == np.eye(5, dtype=int).tolist()
    with pytest.raises(TypeError, match="integer matrix"):
        exact_matrix_power(torch.ones(2, 2), 2)


def test_degrees_beyond_int64_are_refused_not_wrapped():
    with pytest.raises(ValueError, match="A\\[0, 1\\] = 18446744073709551615 does not fit"):
        degree_matrix(np.array([[0, 2**64 - 1], [1, 0]], dtype=np.uint64))
    assert degree_matrix(np.array([[0, 5], [1, 0]], dtype=np.uint64)).tolist() == [[5, 0], [0, 1]]
    with pytest.raises(ValueError, match="row 0 of A sums to 9223372036854775808"):
        degree_matrix([[0, 2**62, 2**62], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="does not fit in int64"):
        laplacian([[0, 2**62, 2**62], [0, 0, 0], [0, 0, 0]])
    assert degree_matrix([[0, 2**62, -(2**62)], [0, 0, 0], [0, 0, 0]])[0, 0] == 0
    assert degree_matrix([[2**62 - 1, 2**62], [0, 0]])[0, 0] == 2**63 - 1  # exact at the limit
    assert laplacian([[-(2**63), 0], [0, 0]]).tolist() == [[0, 0], [0, 0]]


def test_dense_adjacency_too_large_is_refused_before_allocating():
    with pytest.raises(ValueError, match="1000001 x 1000001 .*8 TB.*sparse=True"):
        adjacency([(0, 10**6)])
    sparse = adjacency([(0, 10**6)], sparse=True)
    assert sparse.shape == (10**6 + 1, 10**6 + 1) and sparse._nnz() == 2


def test_matrix_power_zero_is_identity():
    assert matrix_power(A1, 0).tolist() == np.eye(5, dtype=int).tolist()
    assert matrix_power(A1, 1).tolist() == A1


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: adjacency([(0, 5)], 3), ValueError, "num_nodes=6"),
        (lambda: adjacency(torch.tensor([[0], [5]]), 3), ValueError, "num_nodes=6"),
        (lambda: adjacency([(0, -1)]), ValueError, "negative"),
        (lambda: adjacency(torch.tensor([[0], [-1]])), ValueError, "negative"),
        (lambda: adjacency([(0, 1)], one_indexed=True), ValueError, "one_indexed"),
        (lambda: adjacency(torch.tensor([[0], [1]]), one_indexed=True), ValueError, "start at 1"),
        (lambda: adjacency([(0, 1.0)]), TypeError, "integers"),
        (lambda: adjacency(np.array([[0.0, 1.0]])), TypeError, "integers"),
        (lambda: adjacency(torch.tensor([[0.0, 1.0, 2.0], [1.0, 2.0, 0.0]])), TypeError,
         "integer"),
        (lambda: adjacency([(0, 1, 2)]), ValueError, "pair"),
        (lambda: adjacency("0 1"), TypeError, "graph_like"),
        (lambda: adjacency([(0, 1)], num_nodes=2.5), TypeError, "num_nodes"),
        (lambda: adjacency([(0, 1)], num_nodes=-1), ValueError, "num_nodes"),
        (lambda: adjacency(nx.path_graph(3), num_nodes=5), ValueError, "num_nodes"),
        (lambda: degree_matrix([[0, 1], [1]]), ValueError, "ragged"),
        (lambda: degree_matrix([[0, 1, 1], [1, 0, 0]]), ValueError, "square"),
        (lambda: laplacian([[0, "a"], [1, 0]]), TypeError, "not a number"),
        (lambda: laplacian([[0, float("nan")], [1, 0]]), ValueError, "NaN"),
        (lambda: laplacian(np.array([[0, np.inf], [1, 0]])), ValueError, "NaN"),
        (lambda: laplacian(torch.zeros(2, 2, 2)), ValueError, "2-D"),
        (lambda: laplacian(A1, "normalized"), ValueError, "'sym' or 'rw'"),
        (lambda: laplacian([[0, -1], [-1, 0]], "sym"), ValueError, "non-negative"),
        (lambda: inverse_degree_matrix("A"), TypeError, "matrix"),
        (lambda: matrix_power(A1, -1), ValueError, "n must be >= 0"),
        (lambda: matrix_power(A1, 1.5), TypeError, "n must be an int"),
        (lambda: matrix_power([[1, 2, 3]], 2), ValueError, "square"),
        (lambda: walks(A1, 5, 0, 2), ValueError, "i = 5"),
        (lambda: walks(A1, 0, -1, 2), ValueError, "j must be >= 0"),
        (lambda: walks(A1, 0, 1, -2), ValueError, "n must be >= 0"),
        (lambda: walks(A1, 0.0, 1, 2), TypeError, "i must be an int"),
        (lambda: walks(A1, 0, 1, 2, limit=-1), ValueError, "limit"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert not isinstance(info.value, IndexError)
    assert words in str(info.value)


def test_empty_graphs_are_explained():
    with pytest.raises(ValueError, match="no nodes"):
        adjacency([])
    for function in (degree_matrix, inverse_degree_matrix, laplacian):
        with pytest.raises(ValueError, match="empty"):
            function([])
    with pytest.raises(ValueError, match="empty"):
        matrix_power(torch.zeros(0, 0, dtype=torch.long), 2)
