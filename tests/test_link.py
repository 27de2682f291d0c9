"""Link prediction: edge splits, negative pairs, scores, metrics and mini-batch seeds."""

from __future__ import annotations

import pytest
import torch
from conftest import random_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit import Graph
from gnnkit.link import (
    MLPScore,
    dot_score,
    hits_at_k,
    link_seeds,
    negative_edges,
    roc_auc,
    split_edges,
)
from gnnkit.sampling import sample_neighbors


def _pairs(edge_index) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


# ---------------------------------------------------------------------------------- negatives
@pytest.mark.parametrize("num_nodes, num_edges, num", [(30, 200, 300), (6, 20, 10),
                                                       (3000, 20000, 5000)])
def test_negative_edges_are_never_edges_nor_loops(num_nodes, num_edges, num):
    edge_index = random_graph(num_nodes, num_edges, seed=num)
    negatives = negative_edges(Graph(edge_index, num_nodes), num,
                               generator=torch.Generator().manual_seed(1))
    assert negatives.shape == (2, num)
    found = _pairs(negatives)
    assert len(found) == num  # distinct
    assert not found & _pairs(edge_index)
    assert all(j != i for j, i in found)
    assert int(negatives.min()) >= 0 and int(negatives.max()) < num_nodes


@pytest.mark.parametrize("form", ["cached", "from_csr"])
def test_negative_edges_with_a_cached_csr(form):
    edge_index = random_graph(3000, 20000, seed=5)
    graph = Graph(edge_index, 3000)
    rowptr, col, _ = graph.csr
    if form == "from_csr":  # sources of each target in descending order
        graph = Graph.from_csr(rowptr, torch.cat([part.flip(0) for part in torch.split(
            col, graph.in_degree.tolist())]), 3000)
    negatives = negative_edges(graph, 4000, generator=torch.Generator().manual_seed(2))
    found = _pairs(negatives)
    assert len(found) == 4000 and not found & _pairs(edge_index)
    assert all(j != i for j, i in found)


def test_negative_edges_take_every_non_edge_and_refuse_more():
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 2]])  # a self-loop counts for nothing
    graph = Graph(edge_index, 3)
    everything = negative_edges(graph, 3 * 2 - 3)
    assert _pairs(everything) == {(0, 2), (2, 0), (2, 1)}
    with pytest.raises(ValueError, match="only 3 non-edges"):
        negative_edges(graph, 4)
    assert negative_edges(graph, 0).shape == (2, 0)


def test_negative_edges_are_roughly_uniform():
    graph = Graph(torch.tensor([[0], [1]]), 4)  # 11 non-edges
    counts = torch.zeros(16)
    generator = torch.Generator().manual_seed(0)
    for _ in range(400):
        pair = negative_edges(graph, 1, generator=generator)
        counts[int(pair[0, 0]) * 4 + int(pair[1, 0])] += 1
    free = counts[counts > 0]
    assert free.numel() == 11 and float(free.min()) > 15 and float(free.max()) < 60


def test_negative_edges_seeded_and_sampled_path():
    graph = Graph(random_graph(5000, 30000, seed=3), 5000)  # N^2 > exact-listing limit
    a = negative_edges(graph, 100, generator=torch.Generator().manual_seed(7))
    b = negative_edges(graph, 100, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------------- split
@settings(max_examples=25, deadline=None)
@given(num_nodes=st.integers(4, 30), num_edges=st.integers(1, 60), seed=st.integers(0, 99),
       undirected=st.booleans())
def test_split_edges_disjoint_and_pairs_together(num_nodes, num_edges, seed, undirected):
    graph = Graph(random_graph(num_nodes, num_edges, seed=seed, unique=False), num_nodes)
    if undirected:
        graph = graph.to_undirected()
    non_edges = num_nodes * (num_nodes - 1) - len({(j, i) for j, i in _pairs(graph.edge_index)
                                                   if j != i})
    groups = {(min(j, i), max(j, i)) for j, i in _pairs(graph.edge_index)}
    if int(0.4 * len(groups)) + int(0.2 * len(groups)) > non_edges:
        return
    split = split_edges(graph, val=0.2, test=0.4, generator=torch.Generator().manual_seed(seed))
    assert split.val_pos.shape[1] == int(0.2 * len(groups)) == split.val_neg.shape[1]
    assert split.test_pos.shape[1] == int(0.4 * len(groups)) == split.test_neg.shape[1]
    assert (split.train_pos.shape[1] + split.val_pos.shape[1] + split.test_pos.shape[1]
            == len(groups))

    def group(edges):
        return {(min(j, i), max(j, i)) for j, i in _pairs(edges)}

    train, val, test = group(split.train_pos), group(split.val_pos), group(split.test_pos)
    assert not (train & val or train & test or val & test)
    assert train | val | test == groups
    # the training graph keeps every edge of a training group and no direction of the others
    kept = group(split.train_graph.edge_index)
    assert kept == train and split.train_graph.num_nodes == num_nodes
    assert split.train_graph.num_edges == sum(
        1 for j, i in graph.edge_index.t().tolist() if (min(j, i), max(j, i)) in train)
    edges = _pairs(graph.edge_index)
    negatives = _pairs(torch.cat([split.val_neg, split.test_neg], dim=1))
    assert not negatives & edges and all(j != i for j, i in negatives)
    assert len(negatives) == split.val_neg.shape[1] + split.test_neg.shape[1]
    assert _pairs(split.val_pos) <= edges and _pairs(split.test_pos) <= edges


def test_split_edges_checks_fractions():
    graph = Graph(torch.tensor([[0, 1], [1, 2]]), 3)
    with pytest.raises(ValueError, match="val \\+ test"):
        split_edges(graph, val=0.5, test=0.5)
    with pytest.raises(ValueError, match="test must be"):
        split_edges(graph, test=-0.1)


# ---------------------------------------------------------------------------------- scores
def test_dot_and_mlp_scores():
    z = torch.randn(5, 3)
    pairs = torch.tensor([[0, 1, 4], [2, 2, 0]])
    torch.testing.assert_close(dot_score(z, pairs), torch.stack([z[0] @ z[2], z[1] @ z[2],
                                                                 z[4] @ z[0]]))
    score = MLPScore(3, 8)
    out = score(z, pairs)
    assert out.shape == (3,)
    torch.testing.assert_close(score(z, pairs.flip(0)), out)  # symmetric
    assert repr(score) == "MLPScore(3, hidden=8)"
    with pytest.raises(ValueError, match="outside 0..4"):
        dot_score(z, torch.tensor([[0], [5]]))
    with pytest.raises(ValueError, match=r"\[2, P\]"):
        dot_score(z, torch.tensor([[0, 1]]))


# ---------------------------------------------------------------------------------- metrics
def _auc_loop(pos, neg):
    total = 0.0
    for p in pos.tolist():
        for q in neg.tolist():
            total += 1.0 if p > q else 0.5 if p == q else 0.0
    return total / (len(pos) * len(neg))


@settings(max_examples=40, deadline=None)
@given(pos=st.lists(st.integers(0, 5), min_size=1, max_size=12),
       neg=st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_roc_auc_matches_a_double_loop(pos, neg):
    pos, neg = torch.tensor(pos, dtype=torch.float32), torch.tensor(neg, dtype=torch.float32)
    assert abs(float(roc_auc(pos, neg)) - _auc_loop(pos, neg)) < 1e-12


def _hits_loop(pos, neg, k):
    if len(neg) < k:
        return 1.0
    threshold = sorted(neg.tolist(), reverse=True)[k - 1]
    return sum(p > threshold for p in pos.tolist()) / len(pos)


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_hits_at_k_matches_a_loop(k):
    generator = torch.Generator().manual_seed(k)
    pos = torch.randint(0, 20, (30,), generator=generator).float()
    neg = torch.randint(0, 20, (40,), generator=generator).float()
    assert float(hits_at_k(pos, neg, k)) == pytest.approx(_hits_loop(pos, neg, k))


def test_metrics_check_their_input():
    with pytest.raises(ValueError, match="neg_scores is empty"):
        roc_auc(torch.ones(2), torch.ones(0))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(torch.tensor([float("nan")]), torch.ones(1))
    with pytest.raises(ValueError, match="k must be"):
        hits_at_k(torch.ones(2), torch.ones(2), 0)


# ---------------------------------------------------------------------------------- batches
def test_link_seeds_feed_the_sampler():
    graph = Graph(random_graph(50, 300, seed=2), 50)
    pairs = torch.tensor([[4, 9, 4, 30], [9, 17, 30, 4]])
    nodes, local = link_seeds(pairs)
    assert torch.equal(nodes[local], pairs) and nodes.tolist() == [4, 9, 17, 30]
    sample = sample_neighbors(graph, nodes, [3, 2])
    assert torch.equal(sample.n_id[: sample.batch_size], nodes)
    z = torch.randn(50, 4)
    torch.testing.assert_close(dot_score(z[sample.n_id][: sample.batch_size], local),
                               dot_score(z, pairs))
