"""MeanGCNConv, MedianGCNConv and MessagePassing against independent references."""

import networkx as nx
import pytest
import torch
from conftest import built_in_layers, neighbours_of, random_graph
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gnnkit import Graph
from gnnkit.nn import MeanGCNConv, MedianGCNConv, MessagePassing


class MeanGCNByMessages(MessagePassing):
    """The homework's eq. 6 written as eq. 7: message x_j, mean, update W a + B h."""

    def __init__(self, in_features, out_features):
        super().__init__(aggr="mean")
        self.W = nn.Linear(in_features, out_features, bias=False)
        self.B = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_j):
        return x_j

    def update(self, aggr_out, x):
        return self.W(aggr_out) + self.B(x)


def literal_formula(x, edge_index, W, B):
    """D^-1 A H W^T + H B^T with a dense float64 A built entry by entry."""
    n = x.size(0)
    A = torch.zeros(n, n, dtype=torch.float64)
    for j, i in edge_index.t().tolist():
        A[i, j] = 1.0
    degree = A.sum(1)
    D_inv = torch.diag(torch.tensor([1.0 / d if d > 0 else 0.0 for d in degree.tolist()],
                                    dtype=torch.float64))
    return D_inv @ A @ x @ W.t() + x @ B.t()


def loop_reference(x, edge_index, W, B, reduce):
    rows = []
    for i in range(x.size(0)):
        sources = neighbours_of(edge_index, i)
        if sources:
            neigh = x[sources]
            agg = neigh.mean(0) if reduce == "mean" else torch.median(neigh, dim=0).values
        else:
            agg = torch.zeros(x.size(1), dtype=x.dtype)
        rows.append(W @ agg + B @ x[i])
    return torch.stack(rows)


@pytest.mark.parametrize("in_features,out_features", [(6, 3), (3, 6)])
def test_mean_gcn_equals_formula_loop_and_message_passing(in_features, out_features):
    edge_index = random_graph(13, 40, seed=7)
    x = torch.randn(14, in_features, dtype=torch.float64)  # node 13 is isolated
    layer = MeanGCNConv(in_features, out_features).double()
    expected = literal_formula(x, edge_index, layer.W.detach(), layer.B.detach())
    torch.testing.assert_close(layer(x, edge_index), expected)
    torch.testing.assert_close(
        expected, loop_reference(x, edge_index, layer.W.detach(), layer.B.detach(), "mean")
    )
    dense = Graph(edge_index, 14).to_dense(torch.float64)
    torch.testing.assert_close(layer(x, dense), expected)
    by_messages = MeanGCNByMessages(in_features, out_features).double()
    by_messages.W.weight.data.copy_(layer.W)
    by_messages.B.weight.data.copy_(layer.B)
    torch.testing.assert_close(by_messages(x, edge_index), expected)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 12), st.integers(0, 40), st.integers(1, 6), st.integers(1, 6),
    st.integers(0, 10_000),
)
def test_dense_sparse_and_message_passing_forms_agree(num_nodes, num_edges, f_in, f_out, seed):
    edge_index = random_graph(num_nodes, num_edges, seed=seed)
    x = torch.randn(num_nodes, f_in, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed))
    layer = MeanGCNConv(f_in, f_out).double()
    by_messages = MeanGCNByMessages(f_in, f_out).double()
    by_messages.W.weight.data.copy_(layer.W)
    by_messages.B.weight.data.copy_(layer.B)
    graph = Graph(edge_index, num_nodes)
    sparse = layer(x, edge_index)
    dense = graph.to_dense(torch.float64)  # a float [2, 2] is ambiguous (refused): bool there
    torch.testing.assert_close(layer(x, dense.bool() if num_nodes == 2 else dense), sparse)
    torch.testing.assert_close(layer(x, graph.to_sparse(torch.float64)), sparse)
    torch.testing.assert_close(by_messages(x, edge_index), sparse)


def test_mean_gcn_gradients_match_the_dense_formula():
    edge_index = random_graph(10, 30, seed=8)
    x = torch.randn(10, 5, dtype=torch.float64, requires_grad=True)
    layer = MeanGCNConv(5, 3, bias=True).double()
    grads = torch.autograd.grad(layer(x, edge_index).pow(2).sum(), [x, layer.W, layer.B])
    dense = Graph(edge_index, 10).to_dense(torch.float64)
    reference = torch.autograd.grad(layer(x, dense).pow(2).sum(), [x, layer.W, layer.B])
    for got, want in zip(grads, reference):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda h: layer(h, edge_index), (x,))


@pytest.mark.parametrize("bias", [False, True])
def test_mean_gcn_equals_pyg_sage_mean(bias):
    from torch_geometric.nn import SAGEConv

    edge_index = random_graph(30, 120, seed=9, unique=False)
    x = torch.randn(30, 8, dtype=torch.float64)
    ours = MeanGCNConv(8, 4, bias=bias).double()
    theirs = SAGEConv(8, 4, aggr="mean", bias=bias).double()
    with torch.no_grad():
        theirs.lin_l.weight.copy_(ours.W)
        theirs.lin_r.weight.copy_(ours.B)
        if bias:
            theirs.lin_l.bias.copy_(torch.randn(4))
            ours.bias.copy_(theirs.lin_l.bias)
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index))


def test_median_gcn_equals_a_loop_and_pyg():
    from torch_geometric.nn import SAGEConv

    edge_index = random_graph(25, 90, seed=10)
    x = torch.randint(-3, 4, (26, 6)).double()  # ties, an isolated node 25
    layer = MedianGCNConv(6, 4).double()
    expected = loop_reference(x, edge_index, layer.W.detach(), layer.B.detach(), "median")
    torch.testing.assert_close(layer(x, edge_index), expected)
    edge_index = torch.cat([edge_index, torch.tensor([[1], [0]])], 1)  # PyG needs node 0 fed
    theirs = SAGEConv(6, 4, aggr="median", bias=False).double()
    with torch.no_grad():
        theirs.lin_l.weight.copy_(layer.W)
        theirs.lin_r.weight.copy_(layer.B)
    torch.testing.assert_close(layer(x, edge_index), theirs(x, edge_index))


def test_median_gcn_is_robust_to_one_outlier_neighbour():
    edge_index = torch.tensor([[1, 2, 3], [0, 0, 0]])
    x = torch.tensor([[0.0], [1.0], [2.0], [1000.0]], dtype=torch.float64)
    median, mean = MedianGCNConv(1, 1).double(), MeanGCNConv(1, 1).double()
    for layer in (median, mean):
        layer.W.data.fill_(1.0)
        layer.B.data.fill_(0.0)
    assert median(x, edge_index)[0].item() == 2.0
    assert mean(x, edge_index)[0].item() == pytest.approx(1003 / 3)


def test_median_gcn_gradcheck():
    edge_index = random_graph(9, 25, seed=11)
    x = torch.randperm(27).double().view(9, 3).requires_grad_()
    layer = MedianGCNConv(3, 2).double()
    assert torch.autograd.gradcheck(lambda h: layer(h, edge_index), (x,))


def all_graph_forms(edge_index, num_nodes):
    from torch_geometric.data import Data

    graph = Graph(edge_index, num_nodes)
    dense = graph.to_dense(torch.float32)
    return {
        "edge_index": edge_index,
        "Graph": graph,
        "sparse_coo": dense.to_sparse_coo(),
        "sparse_csr": dense.to_sparse_csr(),
        "dense": dense,
        "dense_bool": dense.bool(),
        "scipy": graph.to_scipy(),
        "networkx": nx.relabel_nodes(graph.to_networkx(directed=True), {}),
        "pyg": Data(edge_index=edge_index, num_nodes=num_nodes),
    }


LAYERS = built_in_layers(5, 3)


@pytest.mark.parametrize("name", LAYERS)
def test_every_graph_form_gives_the_same_output(name):
    edge_index = random_graph(11, 35, seed=12)
    x = torch.randn(12, 5)
    layer = LAYERS[name]().eval()
    reference = layer(x, edge_index)
    for form, graph in all_graph_forms(edge_index, 12).items():
        torch.testing.assert_close(layer(x, graph), reference, msg=f"{name} with {form}")


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(sorted(LAYERS)), st.integers(0, 10_000))
def test_layers_are_permutation_equivariant(name, seed):
    generator = torch.Generator().manual_seed(seed)
    num_nodes = 9
    edge_index = random_graph(num_nodes, 25, seed=seed)
    x = torch.randn(num_nodes, 5, generator=generator, dtype=torch.float64)
    layer = LAYERS[name]().double().eval()
    perm = torch.randperm(num_nodes, generator=generator)
    inverse = torch.argsort(perm)  # node k is renamed inverse[k]
    out = layer(x, edge_index)
    permuted = layer(x[perm], inverse[edge_index])
    torch.testing.assert_close(permuted, out[perm])


@pytest.mark.parametrize("name", LAYERS)
def test_bad_graphs_are_explained(name):
    layer = LAYERS[name]()
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match="node id 7"):
        layer(x, torch.tensor([[0, 7], [1, 2]]))
    with pytest.raises(ValueError, match="negative"):
        layer(x, torch.tensor([[0, -1], [1, 2]]))
    with pytest.raises(TypeError, match="floating tensor of shape"):
        layer(x, torch.tensor([[0.0, 1.0], [1.0, 2.0]]).t().repeat(1, 2)[:, :3])
    with pytest.raises(TypeError, match="integer"):
        layer(x, Graph(torch.tensor([[0], [1]])).edge_index.double())
    with pytest.raises(ValueError, match="5 nodes but 4 were expected"):
        layer(x, Graph(torch.tensor([[0], [1]]), 5))
    with pytest.raises(ValueError, match="5 nodes but 4 were expected"):
        layer(x, torch.zeros(5, 5))
    with pytest.raises(ValueError, match="shape \\[2, E\\]"):
        layer(x, torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="expects 5"):
        layer(torch.randn(4, 6), torch.tensor([[0], [1]]))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(4, 5, dtype=torch.long), torch.tensor([[0], [1]]))


class EdgeWeighted(MessagePassing):
    """Messages scaled by an edge attribute and gated by the receiver's own features."""

    def __init__(self):
        super().__init__(aggr="sum")

    def forward(self, x, graph, edge_attr):
        return self.propagate(graph, x=x, edge_attr=edge_attr)

    def message(self, x_i, x_j, edge_attr):
        return edge_attr.unsqueeze(1) * x_j + 0.5 * x_i


def test_message_passing_gathers_sources_targets_and_edge_attributes():
    edge_index = random_graph(8, 20, seed=13)
    x = torch.randn(8, 3, dtype=torch.float64)
    weight = torch.rand(edge_index.size(1), dtype=torch.float64)
    out = EdgeWeighted()(x, edge_index, weight)
    expected = torch.zeros_like(x)
    for k, (j, i) in enumerate(edge_index.t().tolist()):
        expected[i] += weight[k] * x[j] + 0.5 * x[i]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "median"])
def test_message_passing_aggregations(reduce):
    edge_index = random_graph(10, 30, seed=14)
    x = torch.randn(10, 2, dtype=torch.float64)
    out = MessagePassing(aggr=reduce).propagate(edge_index, x=x)
    for i in range(10):
        sources = neighbours_of(edge_index, i)
        if not sources:
            assert (out[i] == 0).all()
            continue
        rows = x[sources]
        expected = {
            "sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values,
            "min": rows.min(0).values, "median": torch.median(rows, dim=0).values,
        }[reduce]
        torch.testing.assert_close(out[i], expected)


def test_message_passing_reports_missing_arguments():
    with pytest.raises(TypeError, match="needs 'edge_attr'"):
        EdgeWeighted().propagate(torch.tensor([[0], [1]]), x=torch.randn(2, 3))
    with pytest.raises(TypeError, match="node tensor"):
        MessagePassing().propagate(torch.tensor([[0], [1]]))
