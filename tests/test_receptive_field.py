"""Full-batch training computes each split's logits on its receptive field: the same logits as
the whole graph (eval mode, dense and sparse features, every model), the whole graph when
the field is large, and the same training as on the whole graph when nothing is random."""

import pytest
import torch
from conftest import random_graph

from gnnkit.data import NodeData
from gnnkit.graph import Graph
from gnnkit.models import MODELS, build_model
from gnnkit.ops.features import sparse_features
from gnnkit.train import receptive_field, train_node_classifier
from gnnkit.train.receptive_field import labelled_nodes


def _graph(num_nodes=200, num_edges=400, seed=0) -> Graph:
    """A sparse random graph whose last 5 nodes have no incoming edge."""
    return Graph(random_graph(num_nodes - 5, num_edges, seed), num_nodes)


def _mask(num_nodes: int, nodes) -> torch.Tensor:
    mask = torch.zeros(num_nodes, dtype=torch.bool)
    mask[torch.as_tensor(nodes)] = True
    return mask


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("sparse", [False, True])
def test_the_field_gives_the_whole_graphs_logits(name, sparse):
    graph = _graph()
    x = torch.rand(graph.num_nodes, 30) * (torch.rand(graph.num_nodes, 30) < 0.1)
    x = sparse_features(x) if sparse else x
    y = torch.randint(0, 4, (graph.num_nodes,))
    mask = _mask(graph.num_nodes, [3, 0, 199, 57, 120])  # 199 has no incoming edge
    nodes = labelled_nodes(graph, x, y, mask, num_layers=2)
    assert isinstance(nodes.graph, list)  # the field was cut: 5 nodes of 200
    assert nodes.graph[0].num_nodes < graph.num_nodes
    assert torch.equal(nodes.y, y[mask])
    model = build_model(name, 30, 4, hidden=8).eval()
    with torch.no_grad():
        expected = model(x, graph)[mask]
        got = nodes.logits(model)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_large_field_keeps_the_whole_graph():
    graph = _graph(num_edges=2000)
    x, y = torch.randn(graph.num_nodes, 6), torch.zeros(graph.num_nodes, dtype=torch.long)
    mask = torch.ones(graph.num_nodes, dtype=torch.bool)
    nodes = labelled_nodes(graph, x, y, mask, num_layers=2)
    assert nodes.graph is graph and nodes.x is x and nodes.rows is mask
    assert torch.equal(nodes.y, y)


def test_the_threshold_compares_work_with_the_whole_graph(monkeypatch):
    graph = _graph()
    x, y = torch.randn(graph.num_nodes, 6), torch.zeros(graph.num_nodes, dtype=torch.long)
    mask = _mask(graph.num_nodes, [0, 1])
    monkeypatch.setattr(receptive_field, "FIELD_MAX_WORK", 0.0)
    assert labelled_nodes(graph, x, y, mask, 2).graph is graph
    monkeypatch.setattr(receptive_field, "FIELD_MAX_WORK", 1.0)
    assert isinstance(labelled_nodes(graph, x, y, mask, 2).graph, list)


def _few_labels(num_nodes=300, seed=0) -> NodeData:
    """A sparse random graph with 20 training and 30 validation nodes."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(num_nodes, generator=generator)
    return NodeData.from_edge_index(
        random_graph(num_nodes, 3 * num_nodes, seed),
        x=torch.rand(num_nodes, 16, generator=generator),
        y=torch.randint(0, 3, (num_nodes,), generator=generator),
        train_mask=_mask(num_nodes, order[:20]),
        val_mask=_mask(num_nodes, order[20:50]),
        test_mask=_mask(num_nodes, order[50:]),
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_training_on_the_field_is_training_on_the_whole_graph(name, monkeypatch):
    """Without dropout nothing is random: the same losses, scores and weights up to float
    rounding (tiny differences in the sums grow slowly over epochs)."""
    data = _few_labels()
    for mask in (data.train_mask, data.val_mask):  # both fields are cut at the default share
        assert isinstance(labelled_nodes(data.graph(), data.x, data.y, mask, 2).graph, list)
    runs = []
    for share in (receptive_field.FIELD_MAX_WORK, 0.0):  # the field, then the whole graph
        monkeypatch.setattr(receptive_field, "FIELD_MAX_WORK", share)
        runs.append(train_node_classifier(data, name, epochs=15, patience=0, dropout=0.0,
                                          progress=False))
    field, whole = runs
    torch.testing.assert_close(torch.tensor(field.history), torch.tensor(whole.history),
                               rtol=1e-4, atol=1e-5)
    for a, b in zip(field.model.parameters(), whole.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert field.test_accuracy == whole.test_accuracy

