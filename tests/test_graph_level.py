"""Graph-level tasks: batches of graphs, pooling, GINConv, the graph classifier, TU files."""

from __future__ import annotations

import pytest
import torch
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
    with pytest.raises(ValueError, match="num_graphs=1"):
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
