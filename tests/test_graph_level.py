"""Graph-level tasks: batches of graphs, pooling, GINConv, the graph classifier, TU files."""

from __future__ import annotations

import pytest
import torch
from conftest import DATASETS
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit import Graph
from gnnkit.data import GraphBatch, GraphLoader
from gnnkit.graph_models import GraphClassifier
from gnnkit.nn import GINConv, global_add_pool, global_max_pool, global_mean_pool
from gnnkit.ops import segment


def _item(num_nodes: int, num_edges: int, seed: int, features: int = 3, *, cached=False):
    generator = torch.Generator().manual_seed(seed)
    if num_nodes == 0:
        edges = torch.zeros(2, 0, dtype=torch.long)
    else:
        edges = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    graph = Graph(edges, num_nodes)
    if cached:
        graph.csr  # noqa: B018 - fills the cache
    x = torch.randn(num_nodes, features, generator=generator, dtype=torch.float64)
    return graph, x, torch.randint(0, 3, (), generator=generator)


graph_sizes = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 12), st.booleans()), min_size=1, max_size=6)


# ---------------------------------------------------------------------------------- batches
@settings(max_examples=40, deadline=None)
@given(sizes=graph_sizes, seed=st.integers(0, 1000))
def test_batch_matches_a_per_graph_loop(sizes, seed):
    items = [_item(n, e if n else 0, seed + k, cached=c) for k, (n, e, c) in enumerate(sizes)]
    batch = GraphBatch.from_list(items)
    offset, edges, nodes = 0, [], []
    for b, (graph, _, _) in enumerate(items):
        edges.append(graph.edge_index + offset)
        nodes += [b] * graph.num_nodes
        offset += graph.num_nodes
    expected = Graph(torch.cat(edges, dim=1), offset)
    assert batch.num_graphs == len(items) and batch.num_nodes == offset
    assert torch.equal(batch.batch, torch.tensor(nodes, dtype=torch.long))
    assert batch.ptr.tolist() == [0] + torch.tensor(
        [g.num_nodes for g, _, _ in items]).cumsum(0).tolist()
    for got, want in zip(batch.graph.csr[:2], expected.csr[:2]):
        assert torch.equal(got, want)
    assert torch.equal(batch.x, torch.cat([x for _, x, _ in items]))
    assert torch.equal(batch.y, torch.stack([y for _, _, y in items]))
    for (graph, x, y), (g2, x2, y2) in zip(items, batch.unbatch()):
        assert g2.num_nodes == graph.num_nodes
        assert torch.equal(g2.csr[0], graph.csr[0]) and torch.equal(g2.csr[1], graph.csr[1])
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_batch_takes_any_graph_form_and_repr():
    items = [(torch.tensor([[0, 1], [1, 0]]), torch.randn(2, 4), 1.0),
             (torch.tensor([[0.0, 1.0, 0.0], [0, 0, 1], [1, 0, 0]]), torch.randn(3, 4), 0.0)]
    batch = GraphBatch.from_list(items)
    assert batch.y.tolist() == [1.0, 0.0]
    assert repr(batch) == "GraphBatch(num_graphs=2, num_nodes=5, num_edges=5, x=[5, 4], y=[2])"
    assert "tensor" not in repr(batch)


def test_batch_errors_name_the_item():
    good = (Graph(torch.tensor([[0], [1]]), 2), torch.randn(2, 3), 0)
    with pytest.raises(ValueError, match="empty"):
        GraphBatch.from_list([])
    with pytest.raises(ValueError, match=r"items\[1\]: x has 4 features"):
        GraphBatch.from_list([good, (good[0], torch.randn(2, 4), 1)])
    with pytest.raises(ValueError, match=r"items\[1\] graph has 2 nodes"):
        GraphBatch.from_list([good, (good[0], torch.randn(5, 3), 1)])
    with pytest.raises(ValueError, match=r"items\[1\]: y has shape \[2\]"):
        GraphBatch.from_list([good, (good[0], good[1], torch.zeros(2))])
    with pytest.raises(TypeError, match=r"items\[0\] must be a \(graph, x, y\) triple"):
        GraphBatch.from_list([(good[0], good[1])])
    with pytest.raises(TypeError, match=r"items\[0\]: y must be a number"):
        GraphBatch.from_list([(good[0], good[1], "a")])


def test_loader_shards_pad_and_replay():
    items = [_item(3, 4, k) for k in range(10)]
    loaders = [GraphLoader(items, 2, seed=3, rank=r, world_size=3) for r in range(3)]
    seen = [torch.cat([b.y for b in loader]) for loader in loaders]
    assert [len(loader) for loader in loaders] == [2, 2, 2]
    assert [len(list(loader)) for loader in loaders] == [2, 2, 2]
    shards = torch.cat([loader.shard() for loader in loaders])
    assert sorted(set(shards.tolist())) == list(range(10)) and shards.numel() == 12
    again = torch.cat([b.y for b in loaders[0]])
    assert torch.equal(seen[0], again)
    loaders[0].set_epoch(1)
    assert not torch.equal(loaders[0].shard(), GraphLoader(items, 2, seed=3, rank=0,
                                                           world_size=3).shard())
    fixed = GraphLoader(items, 4, shuffle=False, drop_last=True)
    assert len(fixed) == 2 and fixed.shard().tolist() == list(range(8))
    with pytest.raises(ValueError, match="batch_size"):
        GraphLoader(items, 0)


# ---------------------------------------------------------------------------------- pooling
def _loop_pool(x, sizes, reduce):
    rows, start = [], 0
    for n in sizes:
        part = x[start:start + n]
        start += n
        if n == 0:
            rows.append(torch.zeros(x.shape[1], dtype=x.dtype))
        elif reduce == "sum":
            rows.append(part.sum(0))
        elif reduce == "mean":
            rows.append(part.mean(0))
        else:
            rows.append(part.max(0).values)
    return torch.stack(rows)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pool, reduce", [(global_add_pool, "sum"),
                                          (global_mean_pool, "mean"),
                                          (global_max_pool, "max")])
def test_pooling_matches_a_loop(pool, reduce, dtype):
    sizes = [3, 0, 5, 1, 0]
    x = torch.randn(sum(sizes), 6, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    expected = _loop_pool(x, sizes, reduce)
    torch.testing.assert_close(pool(x, batch, len(sizes)), expected)
    items = [(Graph(torch.zeros(2, 0, dtype=torch.long), n), x[:n], 0) for n in sizes]
    start = 0
    for k, n in enumerate(sizes):
        items[k] = (items[k][0], x[start:start + n], 0)
        start += n
    torch.testing.assert_close(pool(x, GraphBatch.from_list(items)), expected)
    torch.testing.assert_close(pool(x, batch), expected[:4])  # trailing empty graph dropped


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_segment_gradients(reduce):
    ptr = torch.tensor([0, 2, 2, 6, 7])
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: segment(ptr, v, reduce), (x,))
    assert torch.autograd.gradgradcheck(lambda v: segment(ptr, v, reduce), (x,))


def test_pooling_checks_batch():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="sorted"):
        global_add_pool(x, torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"shape \[N\] = \[4\]"):
        global_add_pool(x, torch.tensor([0, 0, 1]))
    with pytest.raises(TypeError, match="integer"):
        global_add_pool(x, torch.tensor([0.0, 0, 1, 1]))
    with pytest.raises(ValueError, match="num_graphs .*must be >= 2, got 1"):
        global_add_pool(x, torch.tensor([0, 0, 1, 1]), 1)
    torch.testing.assert_close(global_mean_pool(x), x.mean(0, keepdim=True))


# ---------------------------------------------------------------------------------- GIN
def test_gin_matches_pyg():
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(1)
    edge_index = torch.randint(0, 12, (2, 40))
    x = torch.randn(12, 5)
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    ours = GINConv(mlp, eps=0.3, train_eps=True)
    theirs = pyg.GINConv(mlp, eps=0.3, train_eps=True)
    torch.testing.assert_close(ours(x, Graph(edge_index, 12)), theirs(x, edge_index))
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index))
    ours(x, edge_index).sum().backward()
    assert ours.eps.grad is not None
    assert repr(ours).startswith("GINConv(nn=Sequential(")


def test_gin_formula_on_a_dense_matrix_and_reset():
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    x = torch.randn(4, 3, dtype=torch.float64)
    conv = GINConv(torch.nn.Identity(), eps=0.5)
    A = Graph(edge_index, 4).to_dense(torch.float64)
    torch.testing.assert_close(conv(x, edge_index), 1.5 * x + A @ x)
    assert "eps" in dict(conv.named_buffers())
    conv.eps.fill_(2.0)
    conv.reset_parameters()
    assert float(conv.eps) == 0.5


# ---------------------------------------------------------------------------------- model
@pytest.mark.parametrize("conv", ["gin", "mean-gcn"])
@pytest.mark.parametrize("pool", ["add", "mean", "max"])
def test_graph_classifier_shapes_and_backward(conv, pool):
    items = [_item(n, 2 * n, k, features=5) for k, n in enumerate([4, 6, 3, 5])]
    items = [(g, x.float(), y) for g, x, y in items]
    batch = GraphBatch.from_list(items)
    model = GraphClassifier(5, 16, 3, num_layers=2, conv=conv, pool=pool)
    logits = model(batch.x, batch)
    assert logits.shape == (4, 3)
    torch.nn.functional.cross_entropy(logits, batch.y).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    torch.testing.assert_close(model(batch.x, batch.graph, batch.batch),
                               model(batch.x, batch.graph, batch))
    with pytest.raises(ValueError, match="conv must be one of"):
        GraphClassifier(5, 16, 3, conv="gat")


# ---------------------------------------------------------------------------------- TU files
TU = {
    "A": "1, 2\n2, 1\n2, 3\n3, 2\n4, 5\n5, 4\n",
    "graph_indicator": "1\n1\n1\n2\n2\n",
    "graph_labels": "-1\n1\n",
    "node_labels": "0\n1\n0\n2\n1\n",
    "node_attributes": "0.5, 1.0\n1.5, -2\n0, 0\n3e-1, 1\n7, 8\n",
    "edge_labels": "0\n0\n1\n1\n2\n2\n",
}


def _write_tu(folder, name="TOY", **changes):
    files = {**TU, **changes}
    for part, text in files.items():
        if text is not None:
            (folder / f"{name}_{part}.txt").write_text(text)
    return folder


def test_read_tu_reads_every_file(tmp_path):
    from gnnkit.data import read_tu

    data = read_tu(_write_tu(tmp_path), "TOY")
    assert len(data) == 2 and data.num_classes == 2 and data.num_node_features == 2 + 3
    assert data.y.tolist() == [0, 1] and data.label_values.tolist() == [-1, 1]
    graph, x, y = data[0]
    assert graph.num_nodes == 3 and int(y) == 0
    assert sorted(map(tuple, graph.edge_index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    torch.testing.assert_close(x, torch.tensor([[0.5, 1.0, 1, 0, 0], [1.5, -2, 0, 1, 0],
                                                [0, 0, 1, 0, 0]]))
    graph1, x1, _ = data[-1]
    assert graph1.edge_index.tolist() == [[1, 0], [0, 1]] and x1.shape == (2, 5)
    # edge labels follow each graph's CSR order
    label = {(1, 2): 0, (2, 1): 0, (2, 3): 1, (3, 2): 1, (4, 5): 2, (5, 4): 2}
    for g in range(len(data)):
        graph = data.graphs[g]
        for k, (j, i) in enumerate(graph.edge_index.t().tolist()):
            offset = int(data.ptr[g]) + 1
            assert int(data.edge_labels[int(data.edge_ptr[g]) + k]) == label[(j + offset,
                                                                               i + offset)]
    batch = GraphBatch.from_list([data[0], data[1]])
    assert batch.num_edges == 6 and repr(data).startswith("TUDataset('TOY', graphs=2")


def test_read_tu_degree_features_and_constant_feature(tmp_path):
    from gnnkit.data import one_hot_degree, read_tu

    folder = _write_tu(tmp_path, node_labels=None, node_attributes=None, edge_labels=None)
    plain = read_tu(folder, "TOY")
    assert torch.equal(plain.x, torch.ones(5, 1)) and plain.edge_labels is None
    degree = read_tu(folder, "TOY", degree_features=1)
    assert degree.x.tolist() == [[0, 1], [0, 1], [0, 1], [0, 1], [0, 1]]
    graph = Graph(torch.tensor([[1, 2, 3, 0], [0, 0, 0, 1]]), 5)
    assert one_hot_degree(graph, 2).tolist() == [[0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 0, 0],
                                                 [1, 0, 0]]


@pytest.mark.parametrize("part, text, message", [
    ("A", "1, 2\n2\n", r"TOY_A\.txt: line 2 has 1 values"),
    ("A", "1, 2\n2, x\n", r"TOY_A\.txt: line 2: 'x' is not"),
    ("A", "1, 2\n2, 1.5\n", r"TOY_A\.txt: line 2: '1.5' is not"),
    ("A", "1, 2\n2, 9\n", r"TOY_A\.txt: line 2: node id \[2, 9\] outside 1..5"),
    ("A", "1, 2\n0, 1\n", r"TOY_A\.txt: line 2: node id \[0, 1\] outside"),
    ("A", "1, 2\n3, 4\n", r"TOY_A\.txt: line 2: the edge 3, 4 joins graph 1 and graph 2"),
    ("graph_indicator", "1\n2\n1\n2\n2\n", r"TOY_graph_indicator\.txt: line 3: graph 1 after"),
    ("graph_indicator", "0\n1\n1\n2\n2\n", r"TOY_graph_indicator\.txt: line 1: graph id 0"),
    ("graph_labels", "1\n", (r"TOY_graph_labels\.txt has 1 labels but .*TOY_graph_indicator"
                           r"\.txt line 4 puts a node in graph 2")),
    ("node_labels", "0\n1\n0\n2\n", r"TOY_node_labels\.txt: line 5 is missing"),
    ("node_attributes", "1, 2\n1, 2\n1\n1, 2\n1, 2\n", r"TOY_node_attributes\.txt: line 3"),
    ("edge_labels", "0\n0\n1\n1\n2\n2\n3\n", r"TOY_edge_labels\.txt: line 7 is one too many"),
])
def test_read_tu_bad_input_names_file_and_line(tmp_path, part, text, message):
    from gnnkit.data import read_tu

    with pytest.raises(ValueError, match=message):
        read_tu(_write_tu(tmp_path, **{part: text}), "TOY")


def test_read_tu_missing_file(tmp_path):
    from gnnkit.data import read_tu

    with pytest.raises(FileNotFoundError, match="TOY_graph_labels.txt"):
        read_tu(_write_tu(tmp_path, graph_labels=None), "TOY")


def _tu_root():
    return DATASETS / "tu"


@pytest.mark.slow
def test_read_tu_real_mutag_trains_a_step():
    root = _tu_root()
    if not (root / "MUTAG" / "MUTAG_A.txt").exists():
        pytest.skip(f"MUTAG not found under {root} (set GNNKIT_DATA to the datasets folder)")
    from gnnkit.data import read_tu

    data = read_tu(root, "MUTAG", degree_features=4)
    assert (len(data), data.num_classes, data.x.shape[0]) == (188, 2, 3371)
    assert all(g.is_undirected() for g in data.graphs)
    batch = next(iter(GraphLoader(data, 32)))
    model = GraphClassifier(data.num_node_features, 16, data.num_classes)
    loss = torch.nn.functional.cross_entropy(model(batch.x, batch), batch.y)
    loss.backward()
    assert torch.isfinite(loss)


# ---------------------------------------------------------------------------------- fast paths
def test_batch_of_raw_edge_lists_matches_graph_items_and_names_bad_ids():
    items = [_item(n, 2 * n, k, cached=k % 2 == 0) for k, n in enumerate([4, 1, 6, 3])]
    raw = [(g.edge_index.int() if k == 1 else g.edge_index, x, int(y))
           for k, (g, x, y) in enumerate(items)]
    a, b = GraphBatch.from_list(items), GraphBatch.from_list(raw)
    for got, want in zip(a.graph.csr[:2], b.graph.csr[:2]):
        assert torch.equal(got, want)
    assert torch.equal(a.y, b.y) and torch.equal(a.edge_ptr, b.edge_ptr)
    bad = list(raw)
    bad[2] = (torch.tensor([[0, 6], [1, 0]]), raw[2][1], 0)  # node 6 of a 6-node graph
    with pytest.raises(ValueError, match=r"items\[2\] graph contains node id 6"):
        GraphBatch.from_list(bad)
    bad[2] = (torch.tensor([[0, -1], [1, 0]]), raw[2][1], 0)
    with pytest.raises(ValueError, match=r"items\[2\] graph contains the negative node id"):
        GraphBatch.from_list(bad)


def test_batch_checks_every_item_vectorised():
    good = (Graph(torch.tensor([[0], [1]]), 2), torch.randn(2, 3), 0)
    with pytest.raises(ValueError, match=r"items\[2\]: x is torch.float64"):
        GraphBatch.from_list([good, good, (good[0], good[1].double(), 1)])
    with pytest.raises(TypeError, match=r"items\[1\]: x must be a floating tensor"):
        GraphBatch.from_list([good, (good[0], torch.ones(2, 3, dtype=torch.long), 1)])
    with pytest.raises(TypeError, match=r"items\[1\]: x must be a floating tensor"):
        GraphBatch.from_list([good, (good[0], torch.ones(2), 1)])
    with pytest.raises(ValueError, match=r"items\[1\] graph has 2 nodes but 3"):
        GraphBatch.from_list([good, (good[0], torch.randn(3, 3), 1)])
    with pytest.raises(TypeError, match=r"items\[1\] must be a \(graph, x, y\) triple"):
        GraphBatch.from_list([good, [good[0], good[1]]])
    mixed = GraphBatch.from_list([good, (good[0], good[1], 2.5), (good[0], good[1],
                                                                   torch.tensor(1))])
    assert mixed.y.tolist() == [0.0, 2.5, 1.0]


def test_dataset_batch_equals_from_list_and_loader_uses_it(tmp_path):
    from gnnkit.data import read_tu

    text = {  # three graphs of 3, 2 and 2 nodes
        "A": "1, 2\n2, 1\n2, 3\n3, 2\n3, 1\n4, 5\n5, 4\n6, 7\n7, 6\n7, 7\n",
        "graph_indicator": "1\n1\n1\n2\n2\n3\n3\n",
        "graph_labels": "-1\n1\n1\n",
        "node_labels": "0\n1\n0\n2\n1\n0\n0\n",
        "node_attributes": None, "edge_labels": None,
    }
    data = read_tu(_write_tu(tmp_path, **text), "TOY")
    for indices in ([0, 1, 2], [2, 0], torch.tensor([1, 1, -1]), (0,)):
        got = data.batch(indices)
        want = GraphBatch.from_list([data[int(k)] for k in indices])
        for field in ("x", "y", "batch", "ptr", "edge_ptr"):
            assert torch.equal(getattr(got, field), getattr(want, field)), field
        for a, b in zip(got.graph.csr[:2], want.graph.csr[:2]):
            assert torch.equal(a, b)
        for a, b in zip(got.graph.csc, want.graph.csc):  # the gathered transpose is right
            assert torch.equal(a, b)
        for (g1, x1, y1), (g2, x2, y2) in zip(got.unbatch(), want.unbatch()):
            assert torch.equal(g1.edge_index, g2.edge_index)
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
    loader_batches = list(GraphLoader(data, 2, seed=1))
    list_batches = list(GraphLoader(list(data), 2, seed=1))
    for a, b in zip(loader_batches, list_batches, strict=True):
        assert torch.equal(a.x, b.x) and torch.equal(a.graph.csr[1], b.graph.csr[1])
    with pytest.raises(ValueError, match=r"indices\[1\] = 3 is outside -3..2"):
        data.batch([0, 3])
    with pytest.raises(ValueError, match="indices is empty"):
        data.batch([])
    with pytest.raises(TypeError, match="indices must be a 1-D integer tensor"):
        data.batch(torch.tensor([0.0, 1.0]))


def test_tu_dataset_iterates_and_raises_index_error(tmp_path):
    from gnnkit.data import read_tu

    data = read_tu(_write_tu(tmp_path), "TOY")
    items = list(data)
    assert len(items) == 2
    for k, (graph, x, y) in enumerate(data):
        g2, x2, y2 = data[k]
        assert graph is g2 and torch.equal(x, x2) and torch.equal(y, y2)
    assert data[-2][0] is data.graphs[0]
    with pytest.raises(IndexError, match="index 2 is out of range"):
        data[2]
    with pytest.raises(IndexError, match="index -3 is out of range"):
        data[-3]
    with pytest.raises(TypeError, match="index must be an int"):
        data[0.5]
    assert [int(y) for _, _, y in (data[k] for k in range(len(data)))] == [0, 1]


def test_gin_fast_sum_gradients_and_matches_general_path():
    from gnnkit.nn.gin import neighbour_sum

    edge_index = torch.tensor([[0, 1, 2, 2, 3, 3], [1, 2, 0, 1, 1, 1]])
    graph = Graph(edge_index, 5)  # node 4 isolated; a parallel edge 3 -> 1
    x = torch.randn(5, 3, requires_grad=True)
    dense = graph.to_dense(torch.float32)
    torch.testing.assert_close(neighbour_sum(graph, x), dense @ x)
    grad = torch.randn(5, 3)
    (g1,) = torch.autograd.grad(neighbour_sum(graph, x), x, grad, create_graph=True)
    torch.testing.assert_close(g1, dense.t() @ grad)
    conv = GINConv(torch.nn.Linear(3, 2), eps=0.25, train_eps=True)
    fast = conv(x, graph)
    general = conv.nn(conv.propagate(graph, x=x) + (1 + conv.eps) * x)
    torch.testing.assert_close(fast, general, rtol=0, atol=0)
    x64 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    conv64 = GINConv(torch.nn.Linear(3, 2).double(), eps=0.25)
    assert torch.autograd.gradcheck(lambda v: conv64(v, graph), (x64,))
