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
