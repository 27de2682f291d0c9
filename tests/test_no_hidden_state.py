"""No hidden state: a layer's result depends only on its arguments at the time of the call.

Regression tests for tensors made under ``torch.inference_mode`` (R1), ``torch.compile`` and
in-place edits (R2), threads (R7), a Graph that shares memory with the caller's tensor (R10),
edits made through a numpy array (R11), and validation that depended on earlier calls (R15).
"""

import copy
import threading

import numpy as np
import pytest
import torch
from conftest import built_in_layers, neighbours_of, random_graph
from torch import nn
from torch_geometric.data import Data

from gnnkit import Graph
from gnnkit.nn import GATConv, MeanGCNConv, MedianGCNConv, MessagePassing


class SumOfSources(MessagePassing):
    """Fused path: message x_j, sum."""

    def __init__(self):
        super().__init__(aggr="sum")

    def forward(self, x, graph):
        return self.propagate(graph, x=x)


class GatedSum(MessagePassing):
    """General path: the message also reads the target's features."""

    def __init__(self):
        super().__init__(aggr="max")

    def forward(self, x, graph):
        return self.propagate(graph, x=x)

    def message(self, x_i, x_j):
        return x_j * torch.sigmoid(x_i)


LAYERS = {**built_in_layers(3, 2), "fused": SumOfSources, "general": GatedSum}


def make_layer(name):
    torch.manual_seed(0)
    return LAYERS[name]().eval()


def mean_reference(x, edge_index, num_nodes):
    """Row i: the float64 mean of x over the in-neighbours of i (0 with none)."""
    rows = []
    for i in range(num_nodes):
        sources = neighbours_of(edge_index, i)
        rows.append(x[sources].double().mean(0) if sources else torch.zeros(x.size(1)).double())
    return torch.stack(rows)


# ---------------------------------------------------------------------- R1: inference mode
@pytest.mark.parametrize("name", LAYERS)
def test_inference_mode_tensors_work_in_every_layer(name):
    layer = make_layer(name)
    edge_index = random_graph(6, 14, seed=1, unique=False)
    x = torch.randn(6, 3)
    with torch.no_grad():
        expected = layer(x, edge_index)
    with torch.inference_mode():
        inference_edges = edge_index.clone()
        inference_x = x.clone()
        assert inference_edges.is_inference() and inference_x.is_inference()
        from_tensor = layer(inference_x, inference_edges)
        from_data = layer(inference_x, Data(edge_index=inference_edges, num_nodes=6))
        from_graph = layer(inference_x, Graph(inference_edges, 6))
    for out in (from_tensor, from_data, from_graph):
        torch.testing.assert_close(out, expected)
    # An edge_index made under inference mode also works outside it, in a training step.
    x_train = x.clone().requires_grad_()
    layer(x_train, inference_edges).sum().backward()
    assert x_train.grad is not None and torch.isfinite(x_train.grad).all()


def cached_tensors(graph):
    """Every tensor a Graph holds in its cache, also in derived Graphs (self-loops, reverse,
    head copies, which refer back to the graph they copy)."""
    found, seen = [], set()

    def visit(value):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, Graph) and id(value) not in seen:
            seen.add(id(value))
            for item in value.__dict__.values():
                visit(item)
        elif isinstance(value, tuple):
            for item in value:
                visit(item)

    visit(graph)
    return found


@pytest.mark.parametrize("name", ["mean", "median", "gat", "fused"])
def test_a_graph_cached_under_inference_mode_trains_afterwards(name):
    layer = make_layer(name).train()
    edge_index = random_graph(7, 18, seed=2, unique=False)
    x = torch.randn(7, 3, requires_grad=True)
    fresh = torch.autograd.grad(layer(x, Graph(edge_index, 7)).pow(2).sum(), x)[0]

    graph = Graph(edge_index, 7)
    with torch.inference_mode():
        layer(x.detach(), graph)  # fills the CSR, transpose and degree caches here
    tensors = cached_tensors(graph)
    assert len(tensors) > 2  # edge_index and at least the CSR were filled
    assert not any(tensor.is_inference() for tensor in tensors)
    reused = torch.autograd.grad(layer(x, graph).pow(2).sum(), x)[0]
    torch.testing.assert_close(reused, fresh)


def test_a_graph_built_under_inference_mode_trains_afterwards():
    edge_index = random_graph(6, 15, seed=3)
    with torch.inference_mode():
        graph = Graph(edge_index.clone(), 6)
        graph.csr  # noqa: B018 - filled under inference mode
    assert not graph.edge_index.is_inference()
    layer = MeanGCNConv(3, 2)
    x = torch.randn(6, 3, requires_grad=True)
    layer(x, graph).sum().backward()
    expected = torch.autograd.grad(layer(x, edge_index).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("name", LAYERS)
def test_edge_index_and_csr_made_under_inference_mode_train_afterwards(name):
    from torch_geometric import EdgeIndex

    layer = make_layer(name).train()
    edge_index = random_graph(6, 14, seed=5, unique=False)
    reference_graph = Graph(edge_index, 6)
    rowptr, col, _ = reference_graph.csr
    with torch.inference_mode():
        by_target = EdgeIndex(edge_index.clone(), sparse_size=(6, 6)).sort_by("col")[0]
        inference_rowptr, inference_col = rowptr.clone(), col.clone()
    x = torch.randn(6, 3, requires_grad=True)
    expected = torch.autograd.grad(layer(x, reference_graph).pow(2).sum(), x)[0]
    for graph_like in (by_target, Graph.from_csr(inference_rowptr, inference_col, 6)):
        got = torch.autograd.grad(layer(x, graph_like).pow(2).sum(), x)[0]
        torch.testing.assert_close(got, expected)


# ---------------------------------------------------------------------- R10: Graph owns its tensors
def test_editing_the_callers_tensor_after_graph_changes_nothing():
    edge_index = torch.tensor([[1, 2, 3], [0, 0, 1]])
    graph = Graph(edge_index, 4)
    assert graph.edge_index is not edge_index
    assert graph.edge_index.data_ptr() != edge_index.data_ptr()
    x = torch.randn(4, 3)
    layer = MeanGCNConv(3, 2)
    before = layer(x, graph)
    edge_index[0, 0] = 3
    edge_index[1, 2] = 3
    assert graph.edge_index.tolist() == [[1, 2, 3], [0, 0, 1]]
    torch.testing.assert_close(layer(x, graph), before, rtol=0, atol=0)
    torch.testing.assert_close(layer(x, Graph(torch.tensor([[1, 2, 3], [0, 0, 1]]), 4)), before)


def test_graph_from_a_numpy_backed_tensor_owns_a_copy():
    array = np.array([[1, 2], [0, 0]])
    graph = Graph(torch.from_numpy(array), 3)
    array[0, 0] = 2
    array[1, 1] = 2
    assert graph.edge_index.tolist() == [[1, 2], [0, 0]]
    assert graph.in_degree.tolist() == [2, 0, 0]


def test_an_edge_index_that_is_a_view_is_copied():
    storage = torch.tensor([[5, 1, 2, 9], [5, 0, 0, 9]])
    view = storage[:, 1:3]
    graph = Graph(view, 3)
    storage[0, 1] = 0
    assert graph.edge_index.tolist() == [[1, 2], [0, 0]]
    assert graph.edge_index.is_contiguous()


# ---------------------------------------------------------------------- in-place edits (eager)
@pytest.mark.parametrize("name", LAYERS)
def test_in_place_edits_of_edge_index_are_seen_and_checked(name):
    layer = make_layer(name)
    x = torch.randn(5, 3)
    edge_index = torch.tensor([[1, 2, 3, 4], [0, 0, 1, 1]])
    layer(x, edge_index)
    edge_index[0, 0] = 4
    edge_index[1, 3] = 2
    torch.testing.assert_close(layer(x, edge_index), layer(x, edge_index.clone()))
    edge_index[0, 1] = 1000
    with pytest.raises(ValueError, match="node id 1000"):
        layer(x, edge_index)
    edge_index[0, 1] = -1
    with pytest.raises(ValueError, match="negative"):
        layer(x, edge_index)


# ---------------------------------------------------------------------- R11: numpy-side edits
@pytest.mark.parametrize("name", LAYERS)
def test_numpy_side_edits_are_seen_never_stale(name):
    layer = make_layer(name)
    x = torch.randn(4, 3)
    array = np.array([[1, 2, 3], [0, 0, 0]])
    edge_index = torch.from_numpy(array)
    first = layer(x, edge_index)
    torch.testing.assert_close(first, layer(x, torch.tensor([[1, 2, 3], [0, 0, 0]])))
    array[0, 0] = 0  # edit through numpy: torch's version counter does not see it
    array[1, 2] = 2
    torch.testing.assert_close(layer(x, edge_index), layer(x, torch.tensor([[0, 2, 3], [0, 0, 2]])))
    data = Data(edge_index=edge_index, num_nodes=4)
    torch.testing.assert_close(layer(x, data), layer(x, torch.tensor([[0, 2, 3], [0, 0, 2]])))
    array[0, 0] = 1000
    with pytest.raises(ValueError, match="node id 1000"):
        layer(x, edge_index)
    with pytest.raises(ValueError, match="node id 1000"):
        layer(x, data)
    array[0, 0] = -3
    with pytest.raises(ValueError, match="negative"):
        layer(x, edge_index)


def test_numpy_side_edits_give_the_float64_reference_mean():
    layer = MeanGCNConv(3, 3).double()
    with torch.no_grad():
        layer.W.copy_(torch.eye(3))
        layer.B.zero_()
    x = torch.randn(5, 3, dtype=torch.float64)
    array = np.array([[1, 2, 3, 4], [0, 0, 0, 1]])
    edge_index = torch.from_numpy(array)
    for step in range(6):
        array[0, step % 4] = (array[0, step % 4] + 1) % 5
        array[1, (step + 1) % 4] = step % 5
        expected = mean_reference(x, torch.from_numpy(array.copy()), 5)
        torch.testing.assert_close(layer(x, edge_index), expected)


# ---------------------------------------------------------------------- R15: order independence
def outcome(layer, x, graph_like):
    """The output tensor, or the type of the error raised."""
    try:
        return layer(x, graph_like).detach()
    except (ValueError, TypeError) as error:
        return type(error)


def same_outcome(got, want):
    if isinstance(want, type):
        return got is want
    return isinstance(got, torch.Tensor) and torch.allclose(got, want)


@pytest.mark.parametrize("name", LAYERS)
def test_validation_never_depends_on_earlier_calls(name):
    x = torch.randn(8, 3)
    edge_index = random_graph(8, 10, seed=4)
    calls = [
        edge_index,
        Data(edge_index=edge_index.clone(), num_nodes=11),  # 11 nodes, x has 8 rows
        Data(edge_index=edge_index, num_nodes=11),  # the same tensor object as the valid call
        Data(edge_index=edge_index, num_nodes=8),
        Graph(edge_index, 8),
        Graph(edge_index, 9),  # 9 nodes
        torch.cat([edge_index, torch.tensor([[8], [0]])], 1),  # id 8 is out of range
        edge_index[:, :5],
        edge_index.double(),  # floating edge_index
    ]
    layer = make_layer(name)
    alone = [outcome(copy.deepcopy(layer), x, graph_like) for graph_like in calls]
    assert alone[1] is ValueError and alone[2] is ValueError and alone[5] is ValueError
    assert alone[6] is ValueError and alone[8] is TypeError
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        order = torch.randint(0, len(calls), (25,), generator=generator).tolist()
        for k in order:
            got = outcome(layer, x, calls[k])
            assert same_outcome(got, alone[k]), f"call {k} after others gave {got}"


def test_data_with_more_nodes_than_x_rows_is_refused_before_and_after_a_valid_call():
    x = torch.randn(8, 4)
    edge_index = torch.randint(0, 8, (2, 10))
    layer = MeanGCNConv(4, 2)
    with pytest.raises(ValueError, match="11 nodes but 8 were expected"):
        layer(x, Data(edge_index=edge_index.clone(), num_nodes=11))
    layer(x, edge_index)
    with pytest.raises(ValueError, match="11 nodes but 8 were expected"):
        layer(x, Data(edge_index=edge_index, num_nodes=11))


# ---------------------------------------------------------------------- R7: threads
def test_threads_never_raise_and_agree_with_one_thread():
    num_threads, calls = 4, 300
    layers = {name: make_layer(name) for name in ("mean", "median", "gat")}
    x = torch.randn(6, 3)
    pools = [[random_graph(6, 8, seed=100 * t + k, unique=False) for k in range(8)]
             for t in range(num_threads)]
    shared_edges = random_graph(6, 12, seed=7, unique=False)
    with torch.no_grad():
        expected = {
            (name, t, k): layer(x, pools[t][k])
            for name, layer in layers.items() for t in range(num_threads) for k in range(8)
        }
        expected_shared = {name: layer(x, shared_edges) for name, layer in layers.items()}
    # Fresh Graphs shared by all threads, so their caches are filled concurrently.
    shared_graphs = [Graph(shared_edges, 6) for _ in range(calls // 3)]
    barrier = threading.Barrier(num_threads)
    errors, mismatches = [], []

    def work(t):
        barrier.wait()
        with torch.no_grad():
            for call in range(calls):
                name = ("mean", "median", "gat")[call % 3]
                try:
                    out = layers[name](x, pools[t][call % 8])
                    if not torch.allclose(out, expected[name, t, call % 8]):
                        mismatches.append((name, t, call))
                    out = layers[name](x, shared_graphs[call // 3])
                    if not torch.allclose(out, expected_shared[name]):
                        mismatches.append((name, "shared", call))
                except Exception as error:  # noqa: BLE001 - any error fails the test below
                    errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(num_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert mismatches == []


def test_threads_training_on_shared_fresh_graphs_agree_with_one_thread():
    # Backward passes fill the transpose cache (Graph.reverse) of Graphs shared by threads.
    num_threads, calls = 4, 40
    layers = {name: make_layer(name) for name in ("mean", "median", "gat_mean_no_loops")}
    x = torch.randn(6, 3)
    edge_index = random_graph(6, 12, seed=8, unique=False)

    def input_gradient(layer, graph):
        h = x.clone().requires_grad_()
        return torch.autograd.grad(layer(h, graph).pow(2).sum(), h)[0]

    expected = {name: input_gradient(layer, Graph(edge_index, 6)) for name, layer in layers.items()}
    graphs = [Graph(edge_index, 6) for _ in range(calls)]
    barrier = threading.Barrier(num_threads)
    problems = []

    def work(t):
        barrier.wait()
        for call in range(calls):
            name = ("mean", "median", "gat_mean_no_loops")[(call + t) % 3]
            try:
                if not torch.allclose(input_gradient(layers[name], graphs[call]), expected[name]):
                    problems.append((name, t, call))
            except Exception as error:  # noqa: BLE001 - any error fails the test below
                problems.append(repr(error))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(num_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []


# ---------------------------------------------------------------------- R2: torch.compile
class AllLayers(nn.Module):
    """Every layer in one module, so one compile per backend covers them all."""

    def __init__(self):
        super().__init__()
        self.mean = MeanGCNConv(3, 2)
        self.median = MedianGCNConv(3, 2)
        self.gat = GATConv(3, 2, heads=2)

    def forward(self, x, edge_index):
        return torch.cat([self.mean(x, edge_index), self.median(x, edge_index),
                          self.gat(x, edge_index)], dim=1)


def mean_gcn_3_4():
    return MeanGCNConv(3, 4)


@pytest.mark.slow
@pytest.mark.parametrize("backend, make", [("aot_eager", AllLayers), ("inductor", mean_gcn_3_4)])
def test_compiled_layers_see_in_place_edits_and_check_ids(backend, make):
    # Inductor compiles slowly (a minute for all three layers on a busy CPU): mean GCN only.
    torch._dynamo.reset()
    model = make().eval()
    compiled = torch.compile(model, backend=backend)
    x = torch.randn(4, 3)
    edge_index = torch.tensor([[1, 2, 3], [0, 0, 0]])
    old = compiled(x, edge_index)
    torch.testing.assert_close(old, model(x, edge_index.clone()))
    edge_index[0, 0] = 3
    edge_index[1, 1] = 2
    new = compiled(x, edge_index)
    torch.testing.assert_close(new, model(x, edge_index.clone()))
    assert not torch.allclose(new, old)
    edge_index[0, 2] = 7
    with pytest.raises(ValueError, match="node id 7"):
        compiled(x, edge_index)
    edge_index[0, 2] = -1
    with pytest.raises(ValueError, match="negative"):
        compiled(x, edge_index)
    edge_index[0, 2] = 1
    torch.testing.assert_close(compiled(x, edge_index), model(x, edge_index.clone()))
