"""What the layers accept and refuse, in which dtypes they train, and the two paths of
MessagePassing.

Regression tests for float16/bfloat16 backward (R4), ``torch.autocast`` (R5), second
derivatives (R6), GAT with parallel edges where E > N^2 (R3), ambiguous [2, 2] tensors (R16),
NaN in a dense adjacency (R17), constructor arguments (R18), node tensors with the wrong
number of rows (R19) and x in another dtype than the layer (R21); the MessagePassing fused
path against the general path and a float64 loop.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import built_in_layers, neighbours_of, random_graph
from torch import nn

import gnnkit.ops
from gnnkit import Graph
from gnnkit.nn import GATConv, MeanGCNConv, MedianGCNConv, MessagePassing

# Duplicate edge 0 -> 1, a self-loop 2 -> 2, node 5 isolated.
EDGES = torch.tensor([[0, 0, 1, 2, 3, 1, 2, 4, 0],
                      [1, 1, 0, 0, 0, 3, 2, 1, 4]])
NUM_NODES = 6


class ProjectedSources(MessagePassing):
    """Fused path: the default message x_j of projected features."""

    def __init__(self, in_features=4, out_features=3, aggr="max"):
        super().__init__(aggr=aggr)
        self.lin = nn.Linear(in_features, out_features)

    def forward(self, x, graph):
        return self.propagate(graph, x=self.lin(x))


LAYERS = {
    **built_in_layers(4, 3),
    "mean_widening": lambda: MeanGCNConv(4, 6, bias=True),
    "message_passing_max": ProjectedSources,
}


def make(name, dtype=torch.float32):
    torch.manual_seed(0)
    return LAYERS[name]().to(dtype)


def distinct_features(rows, columns, dtype=torch.float64):
    """All different and none exactly 0 (see test_max_message_of_exactly_zero_gets_its_gradient)."""
    values = (torch.randperm(rows * columns, dtype=torch.float64) + 0.5) / (rows * columns) - 0.5
    return values.view(rows, columns).to(dtype)


# ---------------------------------------------------------------------- R4: half precision
@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 3e-2), (torch.bfloat16, 1e-1)])
@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_trains_in_half_precision_on_cpu(name, dtype, tolerance):
    x64 = distinct_features(NUM_NODES, 4) * 4
    results = {}
    for kind in (dtype, torch.float64):
        layer = make(name, kind)
        x = x64.to(kind).requires_grad_()
        out = layer(x, EDGES)
        assert out.dtype == kind
        loss = (out.double() * torch.linspace(-1, 1, out.numel(), dtype=torch.float64)
                .view(out.shape)).sum()
        loss.backward()
        grads = [x.grad] + [p.grad for p in layer.parameters()]
        assert all(g is not None and g.dtype == kind and torch.isfinite(g).all() for g in grads)
        results[kind] = (out.double(), [g.double() for g in grads])
    (out, grads), (ref_out, ref_grads) = results[dtype], results[torch.float64]
    scale = 1 + ref_out.abs().max().item()
    torch.testing.assert_close(out, ref_out, rtol=0, atol=tolerance * scale)
    for got, want in zip(grads, ref_grads):
        atol = tolerance * (1 + want.abs().max().item())
        torch.testing.assert_close(got, want, rtol=0, atol=atol)


# ---------------------------------------------------------------------- R5: autocast
@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_works_under_cpu_autocast(name):
    layer = make(name)
    x = distinct_features(NUM_NODES, 4, torch.float32).requires_grad_()
    reference = layer(x, EDGES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x, EDGES)
    assert out.dtype in (torch.float32, torch.bfloat16)
    scale = 1 + reference.abs().max().item()
    torch.testing.assert_close(out.float(), reference, rtol=0, atol=0.1 * scale)
    out.float().sum().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
    for parameter in layer.parameters():
        assert parameter.grad.dtype == torch.float32 and torch.isfinite(parameter.grad).all()


def test_autocast_output_dtype_of_a_wide_mean_gcn():
    # The repro: MeanGCNConv(16, 8) under bfloat16 autocast used to raise.
    layer = MeanGCNConv(16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.randn(5, 16), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert out.shape == (5, 8) and torch.isfinite(out.float()).all()


# ---------------------------------------------------------------------- R21: dtype of x
@pytest.mark.parametrize("name", [name for name in LAYERS if name != "message_passing_max"])
def test_x_of_another_dtype_than_the_layer_is_refused(name):
    layer = make(name, torch.float64)
    with pytest.raises(TypeError, match="float32 but the layer's parameters are torch.float64"):
        layer(torch.randn(NUM_NODES, 4), EDGES)


# ---------------------------------------------------------------------- R6: second derivatives
@pytest.mark.parametrize("name", ["mean", "mean_widening", "median", "gat",
                                  "gat_mean_no_loops"])
def test_layer_gradcheck_and_gradgradcheck(name):
    layer = make(name, torch.float64)
    x = distinct_features(NUM_NODES, 4).requires_grad_()
    assert torch.autograd.gradcheck(lambda h: layer(h, EDGES), (x,))
    assert torch.autograd.gradgradcheck(lambda h: layer(h, EDGES), (x,), fast_mode=True)


def test_gat_attention_parameters_gradgradcheck():
    layer = make("gat", torch.float64)
    x = distinct_features(NUM_NODES, 4)

    def with_attention(att_src, att_dst):
        params = {"att_src": att_src, "att_dst": att_dst}
        return torch.func.functional_call(layer, params, (x, EDGES))

    inputs = (layer.att_src.detach().clone().requires_grad_(),
              layer.att_dst.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(with_attention, inputs)
    assert torch.autograd.gradgradcheck(with_attention, inputs, fast_mode=True)


def test_median_gcn_hessian_vector_product_equals_a_finite_difference():
    # The repro of R6: the product used to be silently wrong.
    torch.manual_seed(0)
    layer = MedianGCNConv(3, 2).double()
    edge_index = torch.randint(0, 12, (2, 30))
    x = torch.randn(12, 3, dtype=torch.float64)
    v = torch.randn(12, 3, dtype=torch.float64)

    def gradient(z, create_graph=False):
        z = z.clone().requires_grad_(True)
        out = layer(z, edge_index).tanh().sum()
        return z, torch.autograd.grad(out, z, create_graph=create_graph)[0]

    z, grad = gradient(x, True)
    hvp = torch.autograd.grad((grad * v).sum(), z)[0]
    finite = (gradient(x + 1e-6 * v)[1] - gradient(x - 1e-6 * v)[1]) / 2e-6
    torch.testing.assert_close(hvp, finite, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------- R3: GAT with E > N^2
def gat_loop(layer: GATConv, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """GAT in float64, node by node, from the edge list (self-loops replaced by one per node)."""
    n, heads, channels = x.size(0), layer.heads, layer.out_features
    edges = [(j, i) for j, i in edge_index.t().tolist()]
    if layer.add_self_loops:
        edges = [(j, i) for j, i in edges if j != i] + [(i, i) for i in range(n)]
    z = (x.double() @ layer.W.double().t()).view(n, heads, channels)
    att_src, att_dst = layer.att_src.double(), layer.att_dst.double()
    rows = []
    for i in range(n):
        sources = [j for j, t in edges if t == i]
        if not sources:
            rows.append(torch.zeros(heads, channels, dtype=torch.float64))
            continue
        scores = torch.stack([(z[j] * att_src).sum(-1) + (z[i] * att_dst).sum(-1)
                              for j in sources])  # [d, H]
        alpha = torch.softmax(F.leaky_relu(scores, layer.negative_slope), dim=0)
        rows.append((alpha.unsqueeze(-1) * z[sources]).sum(0))
    out = torch.stack(rows)
    out = out.flatten(1) if layer.concat else out.mean(1)
    return out if layer.bias is None else out + layer.bias.double()


@pytest.mark.parametrize("self_loops", [True, False])
def test_gat_backward_with_parallel_edges_beyond_n_squared(self_loops):
    # 2 nodes, 0 -> 1 three times, 1 -> 0 twice, and a self-loop: E > N^2 = 4.
    edge_index = torch.tensor([[0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 1]])
    layer = GATConv(4, 2, heads=2, add_self_loops=self_loops).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    out = layer(x, edge_index)
    expected = gat_loop(layer, x, edge_index)
    torch.testing.assert_close(out, expected)
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, [x, layer.W, layer.att_src, layer.att_dst], grad_out)
    want = torch.autograd.grad(expected, [x, layer.W, layer.att_src, layer.att_dst], grad_out)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    layer32 = GATConv(4, 2, heads=2, add_self_loops=self_loops)
    x32 = torch.randn(2, 4, requires_grad=True)
    layer32(x32, edge_index).sum().backward()
    assert torch.isfinite(x32.grad).all()


def test_gat_matches_the_loop_with_duplicates_and_an_isolated_node():
    layer = GATConv(4, 3, heads=2, concat=False, add_self_loops=False).double()
    x = torch.randn(NUM_NODES, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x, EDGES), gat_loop(layer, x, EDGES))


# ---------------------------------------------------------------------- R16: [2, 2] tensors
@pytest.mark.parametrize("name", LAYERS)
def test_a_floating_two_by_two_tensor_for_two_nodes_is_refused_as_ambiguous(name):
    layer = make(name)
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="floating \\[2, 2\\] tensor for 2 nodes") as info:
        layer(x, torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    assert "A.bool()" in str(info.value) and "edge_index.long()" in str(info.value)
    with pytest.raises(ValueError, match="ambiguous|adjacency matrix or an edge_index"):
        layer(x, torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64))


@pytest.mark.parametrize("name", LAYERS)
def test_integer_two_by_two_is_an_edge_index_and_bool_an_adjacency(name):
    layer = make(name).eval()
    x = torch.randn(2, 4)
    as_edges = layer(x, torch.tensor([[0, 1], [1, 1]]))  # edges 0 -> 1 and 1 -> 1
    torch.testing.assert_close(as_edges, layer(x, Graph(torch.tensor([[0, 1], [1, 1]]), 2)))
    # The same two edges as a boolean adjacency: A[1, 0] = A[1, 1] = True.
    as_bool = layer(x, torch.tensor([[False, False], [True, True]]))
    torch.testing.assert_close(as_bool, as_edges)
    # An integer [[1, 1], [0, 0]] is the edge_index 1 -> 0 and 1 -> 0, not an adjacency.
    twice = layer(x, torch.tensor([[1, 1], [0, 0]]))
    torch.testing.assert_close(twice, layer(x, Graph(torch.tensor([[1, 1], [0, 0]]), 2)))


# ---------------------------------------------------------------------- R17: NaN in an adjacency
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinity_in_a_dense_adjacency_is_refused(name, bad):
    layer = make(name)
    adjacency = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, bad], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer(torch.randn(3, 4), adjacency)


def test_mean_gcn_dense_adjacency_reads_the_pattern_like_the_sparse_path():
    layer = MeanGCNConv(4, 3).double()
    adjacency = torch.tensor([[0.0, 2.5, 0.0], [-1.0, 0.0, 1.0], [0.0, 1e-9, 0.0]],
                             dtype=torch.float64)
    x = torch.randn(3, 4, dtype=torch.float64)
    edges = torch.tensor([[1, 0, 2, 1], [0, 1, 1, 2]])  # the non-zero pattern, j -> i
    torch.testing.assert_close(layer(x, adjacency), layer(x, edges))


# ---------------------------------------------------------------------- R18: constructors
@pytest.mark.parametrize(
    "make_layer, error, words",
    [
        (lambda: MeanGCNConv(4, -2), ValueError, "out_features must be >= 0"),
        (lambda: MeanGCNConv(-1, 2), ValueError, "in_features must be >= 0"),
        (lambda: MedianGCNConv(-3, 2), ValueError, "in_features must be >= 0"),
        (lambda: GATConv(4, -1), ValueError, "out_features must be >= 0"),
        (lambda: MeanGCNConv(4.0, 2), TypeError, "in_features must be an int"),
        (lambda: MedianGCNConv(4, 2.5), TypeError, "out_features must be an int"),
        (lambda: GATConv(4.0, 2), TypeError, "in_features must be an int"),
        (lambda: MeanGCNConv(True, 2), TypeError, "in_features must be an int"),
        (lambda: MeanGCNConv("4", 2), TypeError, "in_features must be an int"),
        (lambda: GATConv(4, 3, heads=0), ValueError, "heads must be >= 1"),
        (lambda: GATConv(4, 3, heads=-2), ValueError, "heads must be >= 1"),
        (lambda: GATConv(4, 3, heads=2.0), TypeError, "heads must be an int"),
        (lambda: GATConv(4, 3, dropout=-0.1), ValueError, "dropout must be in [0.0, 1.0)"),
        (lambda: GATConv(4, 3, dropout=1.0), ValueError, "dropout must be in [0.0, 1.0)"),
        (lambda: GATConv(4, 3, dropout=1.5), ValueError, "dropout must be in [0.0, 1.0)"),
        (lambda: GATConv(4, 3, negative_slope=float("inf")), ValueError,
         "negative_slope must be a finite"),
        (lambda: GATConv(4, 3, dropout=float("nan")), ValueError, "dropout must be a finite"),
        (lambda: GATConv(4, 3, dropout="0.5"), TypeError, "dropout must be a number"),
        (lambda: GATConv(4, 3, dropout=True), TypeError, "dropout must be a number"),
        (lambda: GATConv(4, 3, negative_slope="0.2"), TypeError, "negative_slope must be a number"),
        (lambda: GATConv(4, 3, negative_slope=None), TypeError, "negative_slope must be a number"),
    ],
)
def test_bad_constructor_arguments_are_refused(make_layer, error, words):
    with pytest.raises(error, match=None) as info:
        make_layer()
    assert words in str(info.value)


def test_numpy_integer_sizes_and_float_probabilities_are_accepted():
    layer = GATConv(np.int64(4), np.int32(3), heads=np.int64(2), dropout=np.float64(0.5),
                    negative_slope=np.float32(0.1))
    assert (layer.in_features, layer.out_features, layer.heads) == (4, 3, 2)
    assert type(layer.in_features) is int and layer.dropout == 0.5
    assert MeanGCNConv(np.int64(4), 2).W.shape == (2, 4)
    GATConv(4, 3, dropout=0)  # an int 0 is a probability


@pytest.mark.parametrize("make_layer, out_width", [
    (lambda: MeanGCNConv(0, 3, bias=True), 3),
    (lambda: MedianGCNConv(0, 3, bias=True), 3),
    (lambda: GATConv(0, 3, heads=2), 6),
    (lambda: MeanGCNConv(4, 0), 0),
    (lambda: MedianGCNConv(4, 0), 0),
    (lambda: GATConv(4, 0, heads=2), 0),
    (lambda: GATConv(4, 0, heads=2, concat=False), 0),
])
def test_zero_sizes_give_well_formed_outputs_and_gradients(make_layer, out_width):
    layer = make_layer()
    in_width = layer.in_features
    x = torch.randn(NUM_NODES, in_width, requires_grad=True)
    out = layer(x, EDGES)
    assert out.shape == (NUM_NODES, out_width) and torch.isfinite(out).all()
    if in_width == 0 and getattr(layer, "bias", None) is not None:
        expected = layer.bias.detach().expand(NUM_NODES, out_width)
        torch.testing.assert_close(out.detach(), expected)
    (out.sum() + sum(p.sum() for p in layer.parameters())).backward()
    assert x.grad.shape == x.shape


# ---------------------------------------------------------------------- R19: node tensor rows
class SourcePlusTarget(MessagePassing):
    def forward(self, x, graph, y):
        return self.propagate(graph, x=x, y=y)

    def message(self, x_j, y_i):
        return x_j + y_i


class TargetTimesSource(MessagePassing):
    def forward(self, x, graph, y):
        return self.propagate(graph, x=x, y=y)

    def message(self, y_i, x_j):
        return y_i * x_j


@pytest.mark.parametrize("layer_type", [SourcePlusTarget, TargetTimesSource])
@pytest.mark.parametrize("rows", [2, 4, 9])
@pytest.mark.parametrize("as_graph", [False, True])
def test_node_tensors_with_the_wrong_number_of_rows_are_refused(layer_type, rows, as_graph):
    edge_index = torch.tensor([[0, 1], [3, 4]])
    graph = Graph(edge_index, 5) if as_graph else edge_index
    with pytest.raises(ValueError, match="one row per node|were expected|node id 4"):
        layer_type()(torch.randn(5, 3), graph, torch.randn(rows, 3))
    with pytest.raises(ValueError, match="one row per node|were expected|node id 4"):
        layer_type()(torch.randn(rows, 3), graph, torch.randn(5, 3))


def test_node_tensors_with_the_right_rows_give_the_loop_result():
    edge_index = random_graph(5, 9, seed=3)
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    expected = torch.zeros(5, 3, dtype=torch.float64)
    for j, i in edge_index.t().tolist():
        expected[i] += x[j] + y[i]
    torch.testing.assert_close(SourcePlusTarget()(x, edge_index, y), expected)


def test_fused_path_refuses_x_with_the_wrong_rows_for_a_graph():
    graph = Graph(torch.tensor([[0, 1], [3, 4]]), 5)
    for rows in (4, 6):
        with pytest.raises(ValueError, match="5 nodes but"):
            MessagePassing(aggr="sum").propagate(graph, x=torch.randn(rows, 3))


# ---------------------------------------------------------------------- fused vs general path
class Fused(MessagePassing):
    """message x_j, declared: the fused path."""

    fused_message = "x_j"

    def __init__(self, aggr):
        super().__init__(aggr=aggr)

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_j):
        return x_j


class General(Fused):
    """The same layer with ``aggregate`` overridden, which forces the general path."""

    def aggregate(self, messages, index, dim_size):
        return self.aggr_module(messages, index, dim_size)


class FusedWeighted(MessagePassing):
    """message x_j times a per-edge weight [E, 1], declared: the fused path for sum and mean."""

    fused_message = "x_j * w"

    def __init__(self, aggr, weight_shape):
        super().__init__(aggr=aggr)
        self.weight_shape = weight_shape

    def forward(self, x, graph, edge_weight):
        return self.propagate(graph, x=x, edge_weight=edge_weight)

    def message(self, x_j, edge_weight):
        if self.weight_shape == "left":
            return edge_weight.view(-1, 1) * x_j
        return x_j * edge_weight.view(self.weight_shape)


class GeneralWeighted(FusedWeighted):
    def aggregate(self, messages, index, dim_size):
        return self.aggr_module(messages, index, dim_size)


@pytest.fixture
def aggregate_calls(monkeypatch):
    """Counts the calls of the fused kernel gnnkit.ops.aggregate."""
    calls = []
    original = gnnkit.ops.aggregate

    def spy(*args, **kwargs):
        calls.append(args[-1] if len(args) == 4 else kwargs.get("reduce", "sum"))
        return original(*args, **kwargs)

    monkeypatch.setattr(gnnkit.ops, "aggregate", spy)
    return calls


def message_loop(x, edge_index, num_nodes, reduce, message):
    """float64: reduce over the edges j -> i of message(k, j, i), 0 with no edge."""
    rows = []
    for i in range(num_nodes):
        messages = [message(k, j, i).double() for k, (j, t) in
                    enumerate(edge_index.t().tolist()) if t == i]
        if not messages:
            rows.append(torch.zeros(x.size(1), dtype=torch.float64))
            continue
        stacked = torch.stack(messages)
        rows.append({
            "sum": lambda m: m.sum(0), "mean": lambda m: m.mean(0),
            "max": lambda m: m.max(0).values, "min": lambda m: m.min(0).values,
            "median": lambda m: torch.median(m, dim=0).values,
        }[reduce](stacked))
    return torch.stack(rows)


def graph_forms(edge_index, num_nodes):
    """The same edges as a plain (unsorted) edge_index, a Graph and a Graph from its CSR
    (whose edges are numbered in CSR order: the per-edge weights follow them)."""
    graph = Graph(edge_index, num_nodes)
    rowptr, col, perm = graph.csr
    return {
        "edge_index": (edge_index, torch.arange(edge_index.size(1))),
        "Graph": (graph, torch.arange(edge_index.size(1))),
        "from_csr": (Graph.from_csr(rowptr, col, num_nodes), perm),
    }


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "median"])
def test_fused_path_equals_general_path_and_a_loop(reduce, aggregate_calls):
    edge_index = random_graph(9, 30, seed=5, unique=False)  # duplicates, isolated nodes
    x = distinct_features(11, 4).requires_grad_()
    expected = message_loop(x.detach(), edge_index, 11, reduce, lambda k, j, i: x.detach()[j])
    for form, (graph, _) in graph_forms(edge_index, 11).items():
        aggregate_calls.clear()
        fused = Fused(reduce)(x, graph)
        assert aggregate_calls == [reduce], form
        aggregate_calls.clear()
        general = General(reduce)(x, graph)
        assert aggregate_calls == [], form
        torch.testing.assert_close(fused, expected, msg=form)
        torch.testing.assert_close(general, expected, msg=form)
        grad_out = torch.randn_like(fused)
        fused_grad = torch.autograd.grad(fused, x, grad_out)[0]
        general_grad = torch.autograd.grad(general, x, grad_out)[0]
        torch.testing.assert_close(fused_grad, general_grad, msg=form)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("weight_shape", [(-1, 1), "left"])
def test_fused_per_edge_weight_equals_general_path_and_a_loop(reduce, weight_shape,
                                                             aggregate_calls):
    edge_index = random_graph(9, 30, seed=6, unique=False)
    x = torch.randn(11, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(edge_index.size(1), dtype=torch.float64)
    expected = message_loop(x.detach(), edge_index, 11, reduce,
                            lambda k, j, i: weight[k] * x.detach()[j])
    for form, (graph, order) in graph_forms(edge_index, 11).items():
        w = weight[order].clone().requires_grad_()  # in the graph's edge order
        aggregate_calls.clear()
        fused = FusedWeighted(reduce, weight_shape)(x, graph, w)
        assert aggregate_calls == [reduce], form
        aggregate_calls.clear()
        general = GeneralWeighted(reduce, weight_shape)(x, graph, w)
        assert aggregate_calls == [], form
        torch.testing.assert_close(fused, expected, msg=form)
        torch.testing.assert_close(general, expected, msg=form)
        grad_out = torch.randn_like(fused)
        fused_grads = torch.autograd.grad(fused, [x, w], grad_out)
        general_grads = torch.autograd.grad(general, [x, w], grad_out)
        for a, b in zip(fused_grads, general_grads):
            torch.testing.assert_close(a, b, msg=form)


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_max_message_of_exactly_zero_gets_its_gradient(reduce):
    # ReLU messages are often exactly 0; the fused path (embedding_bag) is right here.
    edge_index = torch.tensor([[0, 1], [2, 2]])
    x = torch.tensor([[0.0, 1.0], [-1.0, 2.0], [5.0, 5.0]], dtype=torch.float64)
    if reduce == "min":
        x = -x
    x.requires_grad_()
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    fused = torch.autograd.grad(Fused(reduce)(x, edge_index).sum(), x)[0]
    torch.testing.assert_close(fused, expected)
    general = torch.autograd.grad(General(reduce)(x, edge_index).sum(), x)[0]
    torch.testing.assert_close(general, expected)


class WeightedByEdge(MessagePassing):
    """message = x_j * edge_weight with edge_weight [E], taken literally (it broadcasts along
    the features, so it is no row scaling: not declared)."""

    def __init__(self, aggr="sum"):
        super().__init__(aggr=aggr)

    def forward(self, x, graph, edge_weight):
        return self.propagate(graph, x=x, edge_weight=edge_weight)

    def message(self, x_j, edge_weight):
        return x_j * edge_weight


class WeightedByEdgeGeneral(WeightedByEdge):
    def aggregate(self, messages, index, dim_size):
        return self.aggr_module(messages, index, dim_size)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_fused_weight_of_shape_e_means_what_the_message_computes(reduce):
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 1]])  # E = 3 edges
    x = torch.randn(3, 3, dtype=torch.float64)  # F = 3 features
    weight = torch.rand(3, dtype=torch.float64)
    literal = message_loop(x, edge_index, 3, reduce, lambda k, j, i: x[j] * weight)
    torch.testing.assert_close(WeightedByEdgeGeneral(reduce)(x, edge_index, weight), literal)
    torch.testing.assert_close(WeightedByEdge(reduce)(x, edge_index, weight), literal)


class ScaledByScalar(MessagePassing):
    """message = x_j times a learnable scalar (a 0-dim parameter)."""

    def __init__(self):
        super().__init__(aggr="sum")
        self.scale = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_j):
        return x_j * self.scale


def test_a_scalar_weight_works_on_a_graph_with_one_edge():
    x = torch.randn(2, 3, dtype=torch.float64)
    out = ScaledByScalar()(x, torch.tensor([[0], [1]]))
    torch.testing.assert_close(out, torch.stack([torch.zeros(3, dtype=torch.float64), 2 * x[0]]))


def test_a_scalar_weight_takes_the_general_path_on_larger_graphs(aggregate_calls):
    edge_index = random_graph(6, 12, seed=8)
    x = torch.randn(6, 3, dtype=torch.float64)
    expected = message_loop(x, edge_index, 6, "sum", lambda k, j, i: 2 * x[j])
    torch.testing.assert_close(ScaledByScalar()(x, edge_index), expected)


class Affine(MessagePassing):
    def __init__(self, aggr):
        super().__init__(aggr=aggr)

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_j):
        return x_j * 2 + 1


class UsesTarget(MessagePassing):
    def __init__(self, aggr):
        super().__init__(aggr=aggr)

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_i, x_j):
        return x_j - x_i


class WeightTwice(MessagePassing):
    def __init__(self, aggr):
        super().__init__(aggr=aggr)

    def forward(self, x, graph, edge_weight):
        return self.propagate(graph, x=x, edge_weight=edge_weight)

    def message(self, x_j, edge_weight):
        return x_j * edge_weight.view(-1, 1) * edge_weight.view(-1, 1)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "median"])
def test_other_messages_take_the_general_path_and_are_right(reduce, aggregate_calls):
    edge_index = random_graph(8, 24, seed=7, unique=False)
    x = distinct_features(10, 3)
    weight = torch.rand(edge_index.size(1), dtype=torch.float64)
    cases = [
        (Affine(reduce), (), lambda k, j, i: x[j] * 2 + 1),
        (UsesTarget(reduce), (), lambda k, j, i: x[j] - x[i]),
        (WeightTwice(reduce), (weight,), lambda k, j, i: x[j] * weight[k] ** 2),
    ]
    if reduce in ("max", "min", "median"):  # a weighted selection is no fused form
        cases.append((FusedWeighted(reduce, (-1, 1)), (weight,),
                      lambda k, j, i: x[j] * weight[k]))
    for layer, extra, message in cases:
        aggregate_calls.clear()
        out = layer(x, edge_index, *extra)
        assert aggregate_calls == [], type(layer).__name__
        expected = message_loop(x, edge_index, 10, reduce, message)
        torch.testing.assert_close(out, expected, msg=type(layer).__name__)


def test_fused_path_ignores_what_an_overridden_update_reads():
    edge_index = random_graph(6, 14, seed=9)
    layer = ProjectedSources(4, 3, aggr="mean").double()
    x = torch.randn(6, 4, dtype=torch.float64)
    z = layer.lin(x).detach()
    expected = torch.stack([z[neighbours_of(edge_index, i)].mean(0)
                            if neighbours_of(edge_index, i) else torch.zeros(3).double()
                            for i in range(6)])
    torch.testing.assert_close(layer(x, edge_index), expected)


class WeightedOrNot(MessagePassing):
    """message(x_j, edge_weight=None): the weight may be left out of propagate()."""

    fused_message = "x_j * w"

    def __init__(self):
        super().__init__(aggr="sum")

    def forward(self, x, graph, edge_weight=None):
        if edge_weight is None:
            return self.propagate(graph, x=x)
        return self.propagate(graph, x=x, edge_weight=edge_weight)

    def message(self, x_j, edge_weight=None):
        return x_j if edge_weight is None else x_j * edge_weight


def test_a_message_argument_with_a_default_may_be_left_out():
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    x = torch.randn(3, 2, dtype=torch.float64)
    weight = torch.tensor([[2.0], [3.0], [4.0]], dtype=torch.float64)
    torch.testing.assert_close(WeightedOrNot()(x, edge_index), x.roll(1, 0))
    torch.testing.assert_close(WeightedOrNot()(x, edge_index, weight), (x * weight).roll(1, 0))


# ---------------------------------------------------------------- declared fusion (issue 15, 3)
class DroppedSources(MessagePassing):
    """A general message with randomness: it must be drawn once per propagate."""

    def __init__(self):
        super().__init__(aggr="sum")
        self.calls = 0

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_j):
        self.calls += 1
        return torch.nn.functional.dropout(x_j, 0.5)


def test_message_runs_once_per_propagate_and_draws_once(aggregate_calls):
    edge_index = random_graph(6, 15, seed=4)
    x = torch.randn(6, 3)
    layer = DroppedSources()
    torch.manual_seed(0)
    layer(x, edge_index)
    after_one_call = torch.rand(1)
    torch.manual_seed(0)
    torch.nn.functional.dropout(torch.ones(edge_index.size(1), 3), 0.5)  # exactly one draw
    assert layer.calls == 1 and aggregate_calls == []
    assert torch.equal(after_one_call, torch.rand(1))  # one dropout draw, not two


def test_the_fused_path_never_calls_message(monkeypatch, aggregate_calls):
    layer = Fused("mean")
    monkeypatch.setattr(layer, "message", lambda x_j: pytest.fail("message() was called"))
    layer(torch.randn(4, 2), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert aggregate_calls == ["mean"]


def test_an_undeclared_message_override_takes_the_general_path(aggregate_calls):
    class Undeclared(MessagePassing):
        def message(self, x_j):
            return x_j

    out = Undeclared(aggr="sum").propagate(torch.tensor([[0, 1], [1, 0]]), x=torch.eye(2))
    assert Undeclared.fused_message is None and aggregate_calls == []
    torch.testing.assert_close(out, torch.eye(2).flip(0))


@pytest.mark.parametrize("form, message", [
    ("x_j", lambda self, x_i, x_j: x_j),
    ("x_j", lambda self, x_j, w: x_j),
    ("x_j * w", lambda self, x_j: x_j),
    ("x_j * w", lambda self, x_j, h_j: x_j),
    ("x_j + w", lambda self, x_j, w: x_j + w),
])
def test_a_declaration_the_message_cannot_mean_is_refused_at_class_creation(form, message):
    with pytest.raises(TypeError, match="fused_message"):
        type("Bad", (MessagePassing,), {"fused_message": form, "message": message})
