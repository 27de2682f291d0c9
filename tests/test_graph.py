"""Tests for the Graph container and as_graph: converters, cached sparse layouts, bad input."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from gnnkit import Graph, as_graph


@st.composite
def edge_lists(draw, max_nodes=8, max_edges=20):
    """(num_nodes, [(u, v), ...]) with possible duplicates, self-loops and isolated nodes."""
    n = draw(st.integers(1, max_nodes))
    node = st.integers(0, n - 1)
    pairs = draw(st.lists(st.tuples(node, node), max_size=max_edges))
    return n, pairs


def edge_set(graph: Graph) -> set[tuple[int, int]]:
    return set(graph.to_edge_list())


def canonical(graph: Graph) -> tuple[int, list[tuple[int, int]]]:
    """Number of nodes and the sorted edge set: equal for equal simple graphs."""
    return graph.num_nodes, sorted(edge_set(graph))


# ---------------------------------------------------------------------- construction
def test_edge_index_convention_and_defaults():
    graph = Graph(torch.tensor([[0, 2], [1, 1]]))  # edges 0 -> 1 and 2 -> 1
    assert graph.num_nodes == 3 and graph.num_edges == 2
    assert graph.source.tolist() == [0, 2] and graph.target.tolist() == [1, 1]
    A = graph.to_dense()
    assert A.tolist() == [[0, 0, 0], [1, 0, 1], [0, 0, 0]]  # row 1 = receiver
    assert graph.in_degree.tolist() == [0, 2, 0]
    assert graph.out_degree.tolist() == [1, 0, 1]
    assert graph.device == torch.device("cpu")
    assert repr(graph) == "Graph(num_nodes=3, num_edges=2)"


def test_empty_graph():
    graph = Graph(torch.zeros(2, 0, dtype=torch.long))
    assert graph.num_nodes == 0 and graph.num_edges == 0
    assert graph.to_dense().shape == (0, 0)
    rowptr, col, perm = graph.csr
    assert rowptr.tolist() == [0] and col.numel() == 0 and perm.numel() == 0


def test_trailing_isolated_nodes_are_kept():
    graph = Graph.from_edge_list([(0, 1)], num_nodes=4)
    assert graph.num_nodes == 4
    assert graph.to_dense().shape == (4, 4)
    assert graph.to_scipy().shape == (4, 4)
    assert graph.to_sparse().shape == (4, 4)
    assert sorted(graph.to_networkx().nodes) == [0, 1, 2, 3]
    assert graph.to_pyg().num_nodes == 4
    assert graph.in_degree.tolist() == [0, 1, 0, 0]
    assert graph.csr[0].tolist() == [0, 0, 1, 1, 1]
    assert Graph(torch.zeros(2, 0, dtype=torch.long), 3).to_dense().shape == (3, 3)
    g = nx.Graph()
    g.add_nodes_from(range(5))
    g.add_edge(0, 1)
    assert Graph.from_networkx(g).num_nodes == 5


def test_one_indexed_and_undirected_edge_list():
    graph = Graph.from_edge_list([(1, 2), (2, 3)], one_indexed=True, undirected=True)
    assert graph.num_nodes == 3
    assert edge_set(graph) == {(0, 1), (1, 0), (1, 2), (2, 1)}
    assert graph.to_edge_list(one_indexed=True)[0][0] >= 1


# ---------------------------------------------------------------------- round trips
@settings(max_examples=50, deadline=None)
@given(edge_lists())
def test_converters_round_trip(data):
    n, pairs = data
    graph = Graph.from_edge_list(pairs, n).coalesce()
    assert canonical(Graph.from_edge_list(graph.to_edge_list(), n)) == canonical(graph)
    assert canonical(Graph.from_networkx(graph.to_networkx(directed=True))) == canonical(graph)
    assert canonical(Graph.from_matrix(graph.to_scipy())) == canonical(graph)
    assert canonical(Graph.from_matrix(graph.to_dense().float())) == canonical(graph)
    assert canonical(Graph.from_matrix(graph.to_dense().tolist())) == canonical(graph)
    assert canonical(Graph.from_matrix(graph.to_dense().numpy())) == canonical(graph)
    assert canonical(Graph.from_matrix(graph.to_sparse())) == canonical(graph)
    assert canonical(Graph.from_matrix(graph.to_dense().to_sparse())) == canonical(graph)
    assert canonical(Graph.from_pyg(graph.to_pyg())) == canonical(graph)


@settings(max_examples=50, deadline=None)
@given(edge_lists())
def test_all_forms_give_the_same_graph(data):
    n, pairs = data
    pairs = sorted(set(pairs))
    reference = (n, pairs)
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    digraph = nx.DiGraph()
    digraph.add_nodes_from(range(n))
    digraph.add_edges_from(pairs)
    dense = torch.zeros(n, n)
    for u, v in pairs:
        dense[v, u] = 1.0  # edge u -> v is A[v, u]
    scipy_matrix = sp.csr_matrix(dense.numpy())
    forms = [
        Graph.from_edge_list(pairs, n),
        as_graph(edge_index, n),
        as_graph(digraph),
        as_graph(scipy_matrix),
        as_graph(dense),
        as_graph(dense.bool()),
        as_graph(dense.to_sparse()),
        as_graph(dense.to_sparse_csr()),
        as_graph(Data(edge_index=edge_index, num_nodes=n)),
    ]
    for form in forms:
        assert canonical(form) == reference


@settings(max_examples=30, deadline=None)
@given(edge_lists())
def test_undirected_networkx_gives_both_directions(data):
    n, pairs = data
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(pairs)
    graph = Graph.from_networkx(g)
    assert graph.is_undirected()
    expected = {(u, v) for u, v in g.edges} | {(v, u) for u, v in g.edges}
    assert edge_set(graph) == expected
    assert np.array_equal(graph.to_dense().numpy(), nx.to_numpy_array(g, nodelist=range(n)))
    back = graph.to_networkx()
    assert not back.is_directed() and nx.utils.graphs_equal(back, g)


def test_directed_networkx_is_the_transpose():
    g = nx.DiGraph([(0, 1), (1, 2)])
    A = Graph.from_networkx(g).to_dense().numpy()
    assert np.array_equal(A, nx.to_numpy_array(g).T)


def test_networkx_integer_labels_sorted_and_other_labels_in_order():
    g = nx.Graph([(3, 1), (2, 3)])
    assert edge_set(Graph.from_networkx(g)) == {(2, 0), (0, 2), (1, 2), (2, 1)}
    h = nx.DiGraph([("b", "a")])
    assert edge_set(Graph.from_networkx(h)) == {(0, 1)}


def test_scipy_duplicates_and_weights_give_one_edge():
    matrix = sp.coo_matrix(([2.0, 5.0], ([0, 1], [1, 0])), shape=(3, 3))
    graph = Graph.from_matrix(matrix)
    assert graph.num_nodes == 3 and edge_set(graph) == {(1, 0), (0, 1)}


# ---------------------------------------------------------------------- cached sparse layouts
def python_csr(graph: Graph):
    """Reference CSR by target (sources ascending, stable) and CSC by source, by loops."""
    edges = graph.edge_index.t().tolist()
    n = graph.num_nodes
    order = sorted(range(len(edges)), key=lambda k: (edges[k][1], edges[k][0], k))
    rowptr = [0] * (n + 1)
    for _, target in edges:
        rowptr[target + 1] += 1
    for i in range(n):
        rowptr[i + 1] += rowptr[i]
    col = [edges[k][0] for k in order]
    return rowptr, col, order


@settings(max_examples=60, deadline=None)
@given(edge_lists())
def test_csr_and_csc_match_python_loop(data):
    n, pairs = data
    graph = Graph.from_edge_list(pairs, n)
    rowptr, col, perm = graph.csr
    ref_rowptr, ref_col, ref_perm = python_csr(graph)
    assert rowptr.tolist() == ref_rowptr
    assert col.tolist() == ref_col
    assert perm.tolist() == ref_perm
    targets = graph.csr_target.tolist()
    assert targets == [pairs[k][1] for k in ref_perm]

    colptr, row, csr_to_csc = graph.csc
    for j in range(n):
        reached = row[colptr[j]:colptr[j + 1]].tolist()
        assert reached == sorted(v for u, v in pairs if u == j)
    # values in CSR order, reordered, line up with the CSC (source, target) pairs
    csr_pairs = [(c, t) for c, t in zip(col.tolist(), targets)]
    csc_pairs = [csr_pairs[k] for k in csr_to_csc.tolist()]
    assert [p[1] for p in csc_pairs] == row.tolist()
    assert [p[0] for p in csc_pairs] == sorted(p[0] for p in csr_pairs)
    assert colptr.tolist()[-1] == len(pairs)
    assert graph.out_degree.tolist() == [sum(u == j for u, _ in pairs) for j in range(n)]


@settings(max_examples=40, deadline=None)
@given(edge_lists())
def test_dense_sparse_and_scipy_agree(data):
    n, pairs = data
    graph = Graph.from_edge_list(pairs, n)
    expected = np.zeros((n, n), dtype=np.int64)
    for u, v in pairs:
        expected[v, u] += 1  # duplicates counted
    assert np.array_equal(graph.to_dense().numpy(), expected)
    assert np.array_equal(graph.to_scipy().toarray(), expected)
    assert np.array_equal(graph.to_sparse().to_dense().numpy(), expected.astype(np.float32))


# ---------------------------------------------------------------------- derived graphs
@settings(max_examples=40, deadline=None)
@given(edge_lists())
def test_derived_graphs(data):
    n, pairs = data
    graph = Graph.from_edge_list(pairs, n)
    assert edge_set(graph.remove_self_loops()) == {(u, v) for u, v in pairs if u != v}
    loops = graph.add_self_loops()
    assert edge_set(loops) == {(u, v) for u, v in pairs if u != v} | {(i, i) for i in range(n)}
    assert sum(u == v for u, v in loops.to_edge_list()) == n
    coalesced = graph.coalesce()
    assert coalesced.to_edge_list() == sorted(set(pairs), key=lambda p: (p[1], p[0]))
    undirected = graph.to_undirected()
    assert edge_set(undirected) == set(pairs) | {(v, u) for u, v in pairs}
    assert undirected.is_undirected()
    assert graph.is_undirected() == (sorted(pairs) == sorted((v, u) for u, v in pairs))
    assert graph.to(torch.device("cpu")).to_edge_list() == graph.to_edge_list()


def test_is_undirected_counts_multiplicity():
    assert Graph(torch.tensor([[0, 1], [1, 0]])).is_undirected()
    assert not Graph(torch.tensor([[0, 0, 1], [1, 1, 0]])).is_undirected()
    assert not Graph(torch.tensor([[0], [1]])).is_undirected()


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: Graph(torch.tensor([[0.0, 1.0], [1.0, 0.0]])), TypeError, "integer"),
        (lambda: Graph(torch.tensor([0, 1, 2])), ValueError, "[2, E]"),
        (lambda: Graph(torch.tensor([[0, 1, 2], [1, 2, 0]]).t()), ValueError, "transpose"),
        (lambda: Graph([[0, 1], [1, 0]]), TypeError, "torch tensor"),
        (lambda: Graph(torch.tensor([[0, -1], [1, 0]])), ValueError, "negative"),
        (lambda: Graph(torch.tensor([[0, 5], [1, 0]]), 3), ValueError, "num_nodes=6"),
        (lambda: Graph(torch.tensor([[0], [1]]), 2.0), TypeError, "num_nodes"),
        (lambda: Graph(torch.tensor([[0], [1]]), -1), ValueError, "num_nodes"),
        (lambda: Graph.from_edge_list([(0, 1), (1,)]), ValueError, "pair"),
        (lambda: Graph.from_edge_list([(0, 1.5)]), TypeError, "integers"),
        (lambda: Graph.from_edge_list([(0, 1)], one_indexed=True), ValueError, "one_indexed"),
        (lambda: Graph.from_edge_list([(0, -2)]), ValueError, "negative"),
        (lambda: Graph.from_edge_list([(0, 4)], 3), ValueError, "num_nodes=5"),
        (lambda: Graph.from_matrix([[0, 1], [1]]), ValueError, "ragged"),
        (lambda: Graph.from_matrix([[0, 1, 0], [1, 0, 0]]), ValueError, "square"),
        (lambda: Graph.from_matrix([[0, float("nan")], [1, 0]]), ValueError, "NaN"),
        (lambda: Graph.from_matrix([[0, "x"], [1, 0]]), TypeError, "not a number"),
        (lambda: Graph.from_matrix(sp.csr_matrix(np.ones((2, 3)))), ValueError, "square"),
        (lambda: Graph.from_matrix(torch.ones(2, 3).to_sparse()), ValueError, "square"),
        (lambda: Graph.from_networkx("not a graph"), TypeError, "networkx"),
        (lambda: as_graph(torch.ones(2, 3)), TypeError, "integer"),
        (lambda: as_graph("edges"), TypeError, "edge_index"),
        (lambda: as_graph(torch.tensor([[0, 3], [1, 0]]), 3), ValueError, "node id 3"),
        (lambda: as_graph(Graph.from_edge_list([(0, 1)]), 5), ValueError, "5 were expected"),
    ],
)
def test_bad_input_raises_a_clear_error(make, error, words):
    with pytest.raises(error, match=None) as info:
        make()
    assert words in str(info.value)


def test_as_graph_passes_graph_through():
    graph = Graph.from_edge_list([(0, 1)])
    assert as_graph(graph) is graph
    assert as_graph(graph, 2) is graph


# ---------------------------------------------------------------------- reading files
def write(tmp_path, text, name="graph.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_graph_format(tmp_path):
    from gnnkit import load_graph

    path = write(tmp_path, "# header\n\n1 2\n  2 3   # trailing comment\n3 1 {}\n6\n")
    graph = load_graph(path, one_indexed=True)
    assert graph.num_nodes == 6  # the single id 6 adds an isolated node
    assert edge_set(graph) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)}
    directed = load_graph(str(path), one_indexed=True, directed=True)
    assert edge_set(directed) == {(0, 1), (1, 2), (2, 0)}
    assert load_graph(write(tmp_path, "", "empty.txt")).num_nodes == 0


def test_load_graph_reads_networkx_edgelists(tmp_path):
    from gnnkit import load_graph

    g = nx.cycle_graph(8)
    g.add_edges_from([(0, 4), (2, 6)])
    path = tmp_path / "nx.txt"
    nx.write_edgelist(g, path)  # writes "u v {}" lines
    assert canonical(load_graph(path)) == canonical(Graph.from_networkx(g))
    nx.write_edgelist(g, path, data=False)
    assert edge_set(load_graph(path)) == edge_set(Graph.from_networkx(g))


@pytest.mark.parametrize(
    "text, one_indexed, words",
    [
        ("1 2\n2 x\n", False, "graph.txt:2: node id 'x' is not an integer"),
        ("1 2\n1.5 2\n", False, "graph.txt:2: node id '1.5'"),
        ("# c\n1 2 3\n", False, "graph.txt:2: expected 'u v'"),
        ("1 2\n0 1\n", True, "graph.txt:2: node id 0 in a one-indexed file"),
        ("1 -2\n", False, "graph.txt:1: negative node id -2"),
    ],
)
def test_load_graph_errors_name_file_and_line(tmp_path, text, one_indexed, words):
    from gnnkit import load_graph

    with pytest.raises(ValueError) as info:
        load_graph(write(tmp_path, text), one_indexed=one_indexed)
    assert words in str(info.value)


def test_load_graph_missing_file(tmp_path):
    from gnnkit import load_graph

    with pytest.raises(FileNotFoundError):
        load_graph(tmp_path / "nope.txt")


def test_homework_graphs_and_data_files_agree():
    from pathlib import Path

    from gnnkit import homework_graph, load_graph

    data = Path(__file__).resolve().parents[1] / "data"
    figure_edges = {
        1: (5, [(1, 2), (1, 3), (1, 5), (2, 3), (3, 4)]),
        2: (6, [(1, 2), (2, 3), (2, 5), (3, 4), (4, 5), (4, 6), (5, 6)]),
    }
    for number, (n, edges) in figure_edges.items():
        expected = {(u - 1, v - 1) for u, v in edges} | {(v - 1, u - 1) for u, v in edges}
        built_in = homework_graph(number)
        from_file = load_graph(data / f"homework_graph{number}.txt", one_indexed=True)
        for graph in (built_in, from_file):
            assert graph.num_nodes == n and edge_set(graph) == expected
            assert graph.num_edges == 2 * len(edges)
        text = (data / f"homework_graph{number}.txt").read_text()
        assert text.startswith("#") and "1-indexed" in text
    for bad in (0, 3, True, "1"):
        with pytest.raises(ValueError, match="1 or 2"):
            homework_graph(bad)


# ---------------------------------------------------------------------- R9: ids beyond 3e9
def python_coalesce(edges):
    """Distinct (source, target) pairs sorted by (target, source)."""
    return sorted(set(edges), key=lambda edge: (edge[1], edge[0]))


@pytest.mark.parametrize("num_nodes", [3_037_000_499, 3_037_000_500, 2**32 + 1, 2**40, 2**62])
def test_pair_sorts_do_not_overflow_for_huge_node_ids(num_nodes):
    # The key target * N + source overflows int64 above about 3.04e9 nodes; these graphs are
    # never made dense or CSR (that would allocate N entries), only sorted.
    last = num_nodes - 1
    edges = [(0, last), (last, 0), (1, last - 1), (last - 1, 1), (5, 5), (0, last), (last, last),
             (2**31, 7), (7, 2**31)]
    edges = [(s, t) for s, t in edges if max(s, t) < num_nodes]
    graph = Graph(torch.tensor(edges).t(), num_nodes)
    assert graph.coalesce().to_edge_list() == python_coalesce(edges)
    assert graph.sorted().to_edge_list() == sorted(edges, key=lambda e: (e[1], e[0]))
    both = edges + [(t, s) for s, t in edges]
    assert graph.to_undirected().to_edge_list() == python_coalesce(both)
    assert graph.to_undirected().is_undirected()
    assert not Graph(torch.tensor([[0], [last]]), num_nodes).is_undirected()
    assert Graph(torch.tensor([[0, last], [last, 0]]), num_nodes).is_undirected()
    # Multiplicity counts: two edges one way, one the other.
    assert not Graph(torch.tensor([[0, 0, last], [last, last, 0]]), num_nodes).is_undirected()


def test_the_single_edge_repro_of_r9():
    n = 2**32 + 1
    graph = Graph(torch.tensor([[0], [n - 1]]), n)
    assert graph.to_undirected().edge_index.tolist() == [[n - 1, 0], [0, n - 1]]
    assert not graph.is_undirected()
    assert Graph(torch.tensor([[0], [2**40 - 1]]), 2**40).to_undirected().num_edges == 2


# ---------------------------------------------------------------------- R12: scipy duplicates
def test_scipy_duplicates_that_sum_to_zero_are_no_edge():
    rows, cols = np.array([0, 0, 1, 2, 2]), np.array([1, 1, 0, 2, 0])
    data = np.array([1.0, -1.0, 3.0, 0.0, 2.0])  # (0, 1) sums to 0, (2, 2) stored as 0
    expected = {(0, 1), (0, 2)}  # A[1, 0] and A[2, 0]: edges 0 -> 1 and 0 -> 2
    for matrix in (sp.coo_matrix((data, (rows, cols)), shape=(3, 3)),
                   sp.coo_array((data, (rows, cols)), shape=(3, 3)),
                   sp.csr_matrix((data, (rows, cols)), shape=(3, 3)),
                   sp.csc_matrix((data, (rows, cols)), shape=(3, 3))):
        graph = Graph.from_matrix(matrix)
        assert graph.num_nodes == 3 and edge_set(graph) == expected, type(matrix)
        assert graph.num_edges == 2
        assert as_graph(matrix, 3).num_edges == 2
    dup = sp.coo_matrix((np.array([1.0, -1.0]), (np.array([0, 0]), np.array([1, 1]))),
                        shape=(2, 2))
    assert Graph.from_matrix(dup).num_edges == 0
    from gnnkit import adjacency

    assert adjacency(dup).tolist() == [[0, 0], [0, 0]]
    assert dup.toarray().tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_scipy_input_is_not_modified():
    matrix = sp.coo_matrix((np.array([1.0, -1.0, 2.0]), (np.array([0, 0, 1]),
                                                         np.array([1, 1, 0]))), shape=(2, 2))
    Graph.from_matrix(matrix)
    assert matrix.nnz == 3 and matrix.data.tolist() == [1.0, -1.0, 2.0]


def test_torch_sparse_duplicates_that_sum_to_zero_are_no_edge():
    indices = torch.tensor([[0, 0, 1], [1, 1, 0]])
    matrix = torch.sparse_coo_tensor(indices, torch.tensor([1.0, -1.0, 2.0]), (2, 2),
                                     check_invariants=True)
    assert not matrix.is_coalesced()
    assert edge_set(Graph.from_matrix(matrix)) == {(0, 1)}


def test_a_layer_on_scipy_with_cancelling_duplicates_equals_the_dense_matrix():
    from gnnkit.nn import MeanGCNConv

    rows, cols = np.array([0, 0, 1, 2, 3]), np.array([1, 1, 0, 1, 2])
    matrix = sp.coo_matrix((np.array([2.0, -2.0, 1.0, 1.0, 4.0]), (rows, cols)), shape=(4, 4))
    layer = MeanGCNConv(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    dense = torch.from_numpy(matrix.toarray())
    torch.testing.assert_close(layer(x, matrix), layer(x, dense))


# ---------------------------------------------------------------------- R13: networkx multigraphs
@pytest.mark.parametrize("kind", [nx.Graph, nx.DiGraph, nx.MultiGraph, nx.MultiDiGraph])
def test_networkx_graphs_match_to_numpy_array(kind):
    edges = [(0, 1), (0, 1), (1, 2), (2, 2), (2, 2), (3, 1), (1, 3), (1, 3)]
    source = kind(edges)
    source.add_node(4)
    graph = Graph.from_networkx(source)
    counts = nx.to_numpy_array(source, nodelist=sorted(source.nodes), dtype=np.int64)
    # networkx: counts[u, v] edges u -> v; gnnkit: A[i, j] edges j -> i.
    assert graph.to_dense().tolist() == counts.T.tolist(), kind.__name__
    assert graph.num_nodes == 5


def test_multigraph_and_multidigraph_keep_parallel_edges_their_own_way():
    undirected = Graph.from_networkx(nx.MultiGraph([(0, 1), (0, 1), (1, 2)]))
    directed = Graph.from_networkx(nx.MultiDiGraph([(0, 1), (0, 1), (1, 2)]))
    assert sorted(undirected.to_edge_list()) == [(0, 1), (0, 1), (1, 0), (1, 0), (1, 2), (2, 1)]
    assert sorted(directed.to_edge_list()) == [(0, 1), (0, 1), (1, 2)]
    assert undirected.is_undirected() and not directed.is_undirected()


def test_parallel_edges_of_a_multigraph_count_in_a_mean():
    from gnnkit.nn import MeanGCNConv

    layer = MeanGCNConv(1, 1).double()
    with torch.no_grad():
        layer.W.fill_(1.0)
        layer.B.zero_()
    x = torch.tensor([[0.0], [3.0], [9.0]], dtype=torch.float64)
    multi = nx.MultiDiGraph([(1, 0), (1, 0), (2, 0)])
    assert layer(x, multi)[0].item() == pytest.approx(5.0)  # (3 + 3 + 9) / 3
    assert layer(x, nx.DiGraph(multi))[0].item() == pytest.approx(6.0)  # (3 + 9) / 2


# ---------------------------------------------------------------------- R21: converters
@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: Graph.from_edge_list(None), TypeError, "list of (u, v) pairs"),
        (lambda: Graph.from_edge_list(5), TypeError, "list of (u, v) pairs"),
        (lambda: Graph.from_edge_list("01"), TypeError, "list of (u, v) pairs"),
        (lambda: Graph.from_edge_list([None]), ValueError, "not a pair"),
        (lambda: Graph.from_edge_list([(0, 2**70)]), ValueError, "exceeds int64"),
        (lambda: Graph.from_edge_list([(True, 1)]), TypeError, "integers"),
        (lambda: Graph.from_pyg([(0, 1)]), TypeError, "torch_geometric Data"),
        (lambda: Graph.from_pyg(None), TypeError, "torch_geometric Data"),
        (lambda: Graph.from_pyg(torch.tensor([[0], [1]])), TypeError, "torch_geometric Data"),
        (lambda: Graph.from_pyg(Data(edge_index=torch.tensor([[0], [5]]), num_nodes=3)),
         ValueError, "node id 5"),
    ],
)
def test_converters_refuse_bad_input_with_a_clear_error(make, error, words):
    with pytest.raises(error) as info:
        make()
    assert words in str(info.value)


def test_a_huge_dense_adjacency_is_refused_before_allocating():
    import resource
    import time

    from gnnkit import adjacency

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"dense 1000001 x 1000001 .*sparse"):
        adjacency([(0, 10**6)])
    with pytest.raises(ValueError, match=r"dense 1000001 x 1000001 .*sparse"):
        Graph.from_edge_list([(0, 10**6)]).to_dense()
    assert time.perf_counter() - start < 10
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 1_000_000  # far below the 8 TB of a 10^6 x 10^6 int64 matrix
    assert adjacency([(0, 10**6)], sparse=True).shape == (10**6 + 1, 10**6 + 1)


# ---------------------------------------------------------------------- Graph.from_csr
def csr_of(edge_index, num_nodes):
    graph = Graph(edge_index, num_nodes)
    rowptr, col, _ = graph.csr
    return graph, rowptr.clone(), col.clone()


def test_from_csr_uses_the_tensors_without_copying():
    _, rowptr, col = csr_of(torch.tensor([[1, 2, 0, 3, 3], [0, 0, 1, 1, 3]]), 5)
    graph = Graph.from_csr(rowptr, col)
    assert graph.num_nodes == 5 and graph.num_edges == 5
    new_rowptr, new_col, perm = graph.csr
    assert new_rowptr is rowptr and new_col is col and perm is None
    assert graph.edge_index.tolist() == [[1, 2, 0, 3, 3], [0, 0, 1, 1, 3]]


def test_from_csr_over_a_memory_mapped_array(tmp_path):
    path = tmp_path / "col.npy"
    np.save(path, np.array([1, 2, 0, 3], dtype=np.int64))
    mapped = np.load(path, mmap_mode="r+")
    col = torch.from_numpy(mapped)
    graph = Graph.from_csr(torch.tensor([0, 2, 3, 4, 4]), col, 4)
    assert graph.csr[1].data_ptr() == col.data_ptr()
    assert graph.in_degree.tolist() == [2, 1, 1, 0]


@settings(max_examples=40, deadline=None)
@given(edge_lists())
def test_from_csr_equals_graph_of_the_same_edges(data):
    n, pairs = data
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    graph, rowptr, col = csr_of(edge_index, n)
    other = Graph.from_csr(rowptr, col, n)
    assert other.num_nodes == graph.num_nodes and other.num_edges == graph.num_edges
    assert torch.equal(other.edge_index, graph.edge_index[:, graph.csr[2]])
    for name in ("in_degree", "out_degree", "csr_target"):
        assert torch.equal(getattr(other, name), getattr(graph, name)), name
    assert torch.equal(other.csc[0], graph.csc[0]) and torch.equal(other.csc[1], graph.csc[1])
    assert torch.equal(other.to_dense(), graph.to_dense())
    assert torch.equal(other.reverse.to_dense(), graph.reverse.to_dense())
    assert canonical(other.coalesce()) == canonical(graph.coalesce())
    assert torch.equal(other.add_self_loops().to_dense(), graph.add_self_loops().to_dense())
    assert other.is_undirected() == graph.is_undirected()


def all_layers():
    from gnnkit.nn import GATConv, MeanGCNConv, MedianGCNConv, MessagePassing

    torch.manual_seed(0)
    return {
        "mean": MeanGCNConv(3, 2, bias=True).double(),
        "median": MedianGCNConv(3, 2, bias=True).double(),
        "gat": GATConv(3, 2, heads=2).double(),
        "gat_no_loops": GATConv(3, 2, heads=2, concat=False, add_self_loops=False).double(),
        "max": MessagePassing(aggr="max"),
    }


def run(layer, x, graph_like):
    """A layer's forward, or propagate for the bare MessagePassing (fused max)."""
    if layer.__class__.__name__ == "MessagePassing":
        return layer.propagate(graph_like, x=x)
    return layer(x, graph_like)


def test_from_csr_gives_the_same_layer_outputs_and_gradients():
    edge_index = torch.tensor([[0, 0, 1, 2, 3, 1, 2, 4, 0], [1, 1, 0, 0, 0, 3, 2, 1, 4]])
    _, rowptr, col = csr_of(edge_index, 6)
    x = torch.randn(6, 3, dtype=torch.float64)
    for name, layer in all_layers().items():
        reference = run(layer, x, edge_index)
        h = x.clone().requires_grad_()
        out = run(layer, h, Graph.from_csr(rowptr, col, 6))
        torch.testing.assert_close(out, reference, msg=name)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), h)
        h2 = x.clone().requires_grad_()
        (want,) = torch.autograd.grad(run(layer, h2, edge_index).pow(2).sum(), h2)
        torch.testing.assert_close(grad, want, msg=name)


@pytest.mark.parametrize(
    "rowptr, col, num_nodes, error, words",
    [
        ([1, 2, 3], [0, 1], None, ValueError, "start at 0"),
        ([0, 2, 3], [0, 1], None, ValueError, "end at E"),
        ([0, 2, 1, 2], [0, 1], None, ValueError, "non-decreasing"),
        ([0, 1, 2], [0, 2], None, ValueError, "node id 2"),
        ([0, 1, 2], [0, -1], None, ValueError, "negative"),
        ([0, 1, 2], [0, 1], 3, ValueError, "needs 4"),
        ([], [], None, ValueError, "N + 1 >= 1"),
        ([0.0, 1.0], [0], None, TypeError, "rowptr must be a 1-D integer"),
        ([0, 1], [0.0], None, TypeError, "col must be a 1-D integer"),
        ([[0, 1]], [0], None, TypeError, "rowptr must be a 1-D integer"),
        ([0, 1], [0], 1.0, TypeError, "num_nodes must be an int"),
        ([0, 1], [0], -1, ValueError, "num_nodes must be >= 0"),
    ],
)
def test_from_csr_checks_its_arguments(rowptr, col, num_nodes, error, words):
    def tensor(values):
        return torch.tensor(values) if values else torch.zeros(0, dtype=torch.long)

    with pytest.raises(error) as info:
        Graph.from_csr(tensor(rowptr), tensor(col), num_nodes)
    assert words in str(info.value)


def test_from_csr_refuses_lists():
    with pytest.raises(TypeError, match="rowptr must be a 1-D integer tensor"):
        Graph.from_csr([0, 1], torch.tensor([0]))


# ---------------------------------------------------------------------- PyG EdgeIndex
def edge_index_forms(edge_index, num_nodes):
    from torch_geometric import EdgeIndex

    plain = EdgeIndex(edge_index, sparse_size=(num_nodes, num_nodes))
    by_col, _ = plain.sort_by("col")
    by_row, _ = plain.sort_by("row")
    return {
        "unsorted": plain,
        "by_col": by_col,
        "by_row": by_row,
        "no_size": EdgeIndex(edge_index),
        "data_by_col": Data(edge_index=by_col, num_nodes=num_nodes),
        "data_by_row": Data(edge_index=by_row, num_nodes=num_nodes),
    }


def test_edge_index_gives_the_same_outputs_as_a_plain_edge_index_in_every_layer():
    edge_index = torch.tensor([[0, 0, 1, 2, 3, 1, 2, 4, 0, 4], [1, 1, 0, 0, 0, 3, 2, 1, 4, 4]])
    x = torch.randn(6, 3, dtype=torch.float64)  # node 5 isolated, so sizes matter
    for form, graph_like in edge_index_forms(edge_index, 6).items():
        for name, layer in all_layers().items():
            reference = run(layer, x, edge_index)
            torch.testing.assert_close(run(layer, x, graph_like), reference, msg=f"{name} {form}")


def test_edge_index_sorted_by_target_is_used_without_sorting_again():
    from torch_geometric import EdgeIndex

    edge_index = EdgeIndex(torch.tensor([[2, 0, 1, 2], [0, 1, 1, 2]]), sparse_size=(3, 3),
                           sort_order="col")
    graph = as_graph(edge_index, 3)
    (colptr, row), _ = edge_index.get_csc()
    rowptr, col, perm = graph.csr
    assert perm is None and torch.equal(rowptr, colptr) and torch.equal(col, row)
    assert graph.edge_index.tolist() == [[2, 0, 1, 2], [0, 1, 1, 2]]
    by_row = Graph.from_pyg_edge_index(edge_index.sort_by("row")[0], 3)
    assert torch.equal(by_row.csr[0], colptr) and sorted(by_row.to_edge_list()) == sorted(
        graph.to_edge_list())


def test_edge_index_sizes_are_checked():
    from torch_geometric import EdgeIndex

    from gnnkit.nn import MeanGCNConv

    edge_index = EdgeIndex(torch.tensor([[0, 1], [1, 2]]), sparse_size=(3, 3))
    with pytest.raises(ValueError, match="num_nodes=4"):
        Graph.from_pyg_edge_index(edge_index, 4)
    with pytest.raises(ValueError, match="square"):
        Graph.from_pyg_edge_index(EdgeIndex(torch.tensor([[0, 1], [1, 2]]), sparse_size=(3, 4)))
    with pytest.raises(ValueError, match="num_nodes=4"):
        MeanGCNConv(2, 2)(torch.randn(4, 2), edge_index)
    assert Graph.from_pyg_edge_index(EdgeIndex(torch.tensor([[0, 1], [1, 2]]))).num_nodes == 3


# ---------------------------------------------------------------- immutability (issue 14, 8)
@pytest.mark.parametrize("edit", [
    lambda g: g.edge_index.__setitem__((1, 2), 0),
    lambda g: g.target.add_(0),                     # a view shares the version counter
    lambda g: g.csr[1].fill_(3),                    # a cached layout
    lambda g: g.in_degree.zero_(),
])
def test_an_in_place_edit_is_refused_instead_of_serving_a_stale_cache(edit):
    from gnnkit.nn import GATConv, MeanGCNConv

    graph = Graph(torch.tensor([[0, 1, 2, 3, 3], [1, 2, 3, 0, 1]]), 5)
    x = torch.randn(5, 3)
    for layer in (MeanGCNConv(3, 2), GATConv(3, 2, heads=2)):
        layer(x, graph)
    edit(graph)
    with pytest.raises(ValueError, match="modified in place.*new Graph"):
        MeanGCNConv(3, 2)(x, graph)


def test_a_csr_graph_sees_edits_of_the_arrays_it_wraps():
    rowptr, col = torch.tensor([0, 2, 2, 3]), torch.tensor([1, 2, 0])
    graph = Graph.from_csr(rowptr, col)
    assert graph.num_edges == 3
    col[0] = 0
    with pytest.raises(ValueError, match="graph.csr was modified"):
        _ = graph.edge_index


@pytest.mark.parametrize("name", ["num_nodes", "edge_index", "csr", "anything"])
def test_attributes_cannot_be_set_or_deleted(name):
    graph = Graph(torch.tensor([[0], [1]]), 2)
    with pytest.raises(AttributeError, match="immutable"):
        setattr(graph, name, 7)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(graph, "num_nodes")
    assert graph.num_nodes == 2


def test_copies_and_pickles_of_a_used_graph_stay_usable():
    import copy
    import pickle

    from gnnkit.nn import MedianGCNConv

    graph = Graph(torch.tensor([[0, 2, 2, 1], [1, 0, 1, 2]]), 4)
    layer, x = MedianGCNConv(2, 3), torch.randn(4, 2)
    expected = layer(x, graph)  # fills the caches (some made by in-place ops)
    for other in (copy.deepcopy(graph), pickle.loads(pickle.dumps(graph))):
        torch.testing.assert_close(layer(x, other), expected)


def test_graphs_made_under_inference_mode_are_usable_outside():
    from gnnkit.nn import MeanGCNConv

    with torch.inference_mode():
        graph = Graph(torch.tensor([[0, 1, 1], [1, 2, 1]]), 3).remove_self_loops()
    out = MeanGCNConv(2, 2)(torch.randn(3, 2, requires_grad=True), graph)
    out.sum().backward()
