"""Neighbour sampler and loader, checked against plain Python references."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import random_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit import Graph
from gnnkit.nn import MeanGCNConv
from gnnkit.sampling import NeighborLoader, full_neighborhood, sample_neighbors

# ------------------------------------------------------------------ reference checks


def in_edges(edge_index: torch.Tensor, num_nodes: int) -> list[list[int]]:
    """For every node i, the sources j of its incoming edges (a multiset, as a list)."""
    result = [[] for _ in range(num_nodes)]
    for j, i in edge_index.t().tolist():
        result[i].append(j)
    return result


def check_sample(graph: Graph, seeds: list[int], fanouts: list[int], sample) -> None:
    """Every property the sampler promises, checked edge by edge in Python."""
    incoming = in_edges(graph.edge_index, graph.num_nodes)
    n_id = sample.n_id.tolist()
    local_edges = sample.graph.edge_index.t().tolist()
    col = graph.csr[1]
    csr_target = graph.csr_target

    assert sample.batch_size == len(seeds)
    assert n_id[: len(seeds)] == seeds
    assert len(set(n_id)) == len(n_id)
    assert sample.graph.num_nodes == len(n_id) == sum(sample.num_sampled_nodes)
    assert sample.num_sampled_nodes[0] == len(seeds)
    assert len(sample.num_sampled_nodes) == len(fanouts) + 1
    assert len(sample.num_sampled_edges) == len(fanouts)
    assert len(local_edges) == sum(sample.num_sampled_edges) == sample.e_id.numel()
    # e_id: distinct CSR positions holding exactly the sampled edges (drawn without replacement)
    e_id = sample.e_id.tolist()
    assert len(set(e_id)) == len(e_id)
    for (j, i), k in zip(local_edges, e_id):
        assert int(col[k]) == n_id[j] and int(csr_target[k]) == n_id[i]

    # Walk the hops: targets are the previous hop's new nodes, in order, each with the right
    # number of edges; new nodes are the unseen sources in order of first appearance.
    seen = list(seeds)
    frontier = list(range(len(seeds)))
    edge = 0
    for hop, fanout in enumerate(fanouts):
        hop_edges = local_edges[edge: edge + sample.num_sampled_edges[hop]]
        edge += len(hop_edges)
        counts = Counter(i for _, i in hop_edges)
        assert [i for _, i in hop_edges] == sorted(i for _, i in hop_edges)
        assert set(counts) <= set(frontier)
        for i in frontier:
            degree = len(incoming[n_id[i]])
            expected = degree if fanout == -1 else min(degree, fanout)
            assert counts.get(i, 0) == expected
            drawn = Counter(n_id[j] for j, t in hop_edges if t == i)
            assert not drawn - Counter(incoming[n_id[i]])  # a sub-multiset of the in-edges
        new = []
        for j, _ in hop_edges:
            if n_id[j] not in seen:
                seen.append(n_id[j])
                new.append(len(seen) - 1)
            assert j < len(seen) and seen[j] == n_id[j]
        assert len(new) == sample.num_sampled_nodes[hop + 1]
        frontier = new
    assert seen == n_id


@st.composite
def sampling_case(draw):
    num_nodes = draw(st.integers(1, 25))
    pairs = draw(st.lists(st.tuples(st.integers(0, num_nodes - 1), st.integers(0, num_nodes - 1)),
                          max_size=80))
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    seeds = draw(st.lists(st.integers(0, num_nodes - 1), min_size=1, max_size=num_nodes,
                          unique=True))
    fanouts = draw(st.lists(st.integers(-1, 4), min_size=1, max_size=3))
    return Graph(edge_index, num_nodes), seeds, fanouts, draw(st.integers(0, 2**32))


@settings(max_examples=150, deadline=None)
@given(sampling_case())
def test_sample_matches_reference(case):
    graph, seeds, fanouts, seed = case
    sample = sample_neighbors(graph, seeds, fanouts, generator=torch.Generator().manual_seed(seed))
    check_sample(graph, seeds, fanouts, sample)


@settings(max_examples=30, deadline=None)
@given(sampling_case())
def test_same_generator_state_same_sample(case):
    graph, seeds, fanouts, seed = case
    first = sample_neighbors(graph, seeds, fanouts, generator=torch.Generator().manual_seed(seed))
    again = sample_neighbors(graph, seeds, fanouts, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(first.n_id, again.n_id)
    assert torch.equal(first.graph.edge_index, again.graph.edge_index)
    assert torch.equal(first.e_id, again.e_id)


def test_larger_graph_and_seed_formats():
    edge_index = random_graph(300, 3000, seed=1)
    graph = Graph(edge_index, 300)
    seeds = [5, 99, 0, 250, 17]
    for given_seeds in (seeds, torch.tensor(seeds), np.array(seeds), torch.tensor(seeds).int()):
        sample = sample_neighbors(graph, given_seeds, [15, 10, 5],
                                  generator=torch.Generator().manual_seed(3))
        check_sample(graph, seeds, [15, 10, 5], sample)


def test_draw_is_uniform_without_replacement():
    """2000 targets, each with in-edges from sources 0..5, fanout 3: every 3-subset of the
    C(6, 3) = 20 should come up about 100 times (fixed seed, so not flaky)."""
    targets = torch.arange(6, 2006)
    edge_index = torch.stack([torch.arange(6).repeat(2000), targets.repeat_interleave(6)])
    graph = Graph(edge_index, 2006)
    sample = sample_neighbors(graph, targets, [3], generator=torch.Generator().manual_seed(0))
    sources = sample.n_id[sample.graph.source].view(2000, 3).sort(1).values
    subsets = Counter(tuple(row) for row in sources.tolist())
    assert len(subsets) == 20
    assert min(subsets.values()) > 60 and max(subsets.values()) < 140
    per_source = torch.bincount(sources.view(-1), minlength=6)
    assert ((per_source - 1000).abs() < 100).all()  # each source in half of the draws


def test_fanout_minus_one_and_zero():
    graph = Graph(random_graph(40, 400, seed=2), 40)
    everything = sample_neighbors(graph, [3, 4], [-1, -1])
    check_sample(graph, [3, 4], [-1, -1], everything)
    nothing = sample_neighbors(graph, [3, 4], [0, 5])
    assert nothing.n_id.tolist() == [3, 4] and nothing.graph.num_edges == 0
    assert nothing.num_sampled_nodes == [2, 0, 0] and nothing.num_sampled_edges == [0, 0]


def test_full_neighborhood_gives_exact_layer_output():
    graph = Graph(random_graph(60, 500, seed=4), 60)
    conv = MeanGCNConv(8, 4)
    h = torch.randn(60, 8)
    chunk = torch.arange(10, 25)
    sub = full_neighborhood(graph, chunk)
    torch.testing.assert_close(conv(h[sub.n_id], sub.graph)[: chunk.numel()], conv(h, graph)[chunk])


@pytest.mark.parametrize("num_layers", [2, 3])
def test_trim_keeps_the_seed_output(num_layers):
    graph = Graph(random_graph(500, 6000, seed=5), 500)
    fanouts = [4, 3, 2][:num_layers]
    sample = sample_neighbors(graph, torch.arange(0, 40, 2), fanouts,
                              generator=torch.Generator().manual_seed(1))
    convs = [MeanGCNConv(6, 6) for _ in range(num_layers)]
    x = torch.randn(sample.graph.num_nodes, 6)
    full, trimmed = x, x
    for layer, conv in enumerate(convs):
        full = conv(full, sample.graph)
        part = sample.trim(layer, num_layers)
        hops = num_layers - layer
        assert part.num_nodes == sum(sample.num_sampled_nodes[: hops + 1])
        assert torch.equal(part.edge_index,
                           sample.graph.edge_index[:, : sum(sample.num_sampled_edges[:hops])])
        # every edge into a node within hops - 1 hops is kept, none into the outer ring
        needed = sample.num_nodes_within(hops - 1)
        assert int((sample.graph.target < needed).sum()) == part.num_edges
        trimmed = conv(trimmed[: part.num_nodes], part)
    torch.testing.assert_close(trimmed[: sample.batch_size], full[: sample.batch_size])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "seeds, fanouts, error, match",
    [
        ([1, 2, 1], [2], ValueError, "distinct"),
        ([0, 10], [2], ValueError, "node id 10"),
        ([-1], [2], ValueError, "node id -1"),
        ([], [2], ValueError, "empty"),
        (torch.tensor([[0, 1]]), [2], ValueError, "1-D"),
        (torch.tensor([0.0, 1.0]), [2], TypeError, "integer"),
        (torch.tensor([True, False]), [2], TypeError, "mask"),
        ([0, 1.5], [2], TypeError, "seeds\\[1\\]"),
        ("01", [2], TypeError, "seeds"),
        ([0], 2, TypeError, "list of ints"),
        ([0], torch.tensor([2]), TypeError, "list of ints"),
        ([0], [2.0], TypeError, "fanouts\\[0\\]"),
        ([0], [True], TypeError, "fanouts\\[0\\]"),
        ([0], [3, -2], ValueError, "fanouts\\[1\\]"),
        ([0], [], ValueError, "empty"),
    ],
)
def test_bad_input(seeds, fanouts, error, match):
    graph = Graph(random_graph(10, 30), 10)
    with pytest.raises(error, match=match):
        sample_neighbors(graph, seeds, fanouts)


def test_bad_graph_and_generator():
    with pytest.raises(TypeError, match="gnnkit.Graph"):
        sample_neighbors(random_graph(10, 30), [0], [2])
    with pytest.raises(TypeError, match="generator"):
        sample_neighbors(Graph(random_graph(10, 30), 10), [0], [2], generator=0)


def test_trim_bad_layer():
    sample = sample_neighbors(Graph(random_graph(10, 30), 10), [0], [2, 2])
    with pytest.raises(ValueError, match="layer"):
        sample.trim(2, 2)
    with pytest.raises(ValueError, match="num_layers"):
        sample.trim(0, 3)


# ------------------------------------------------------------------ loader


def seeds_of(loader) -> list[list[int]]:
    return [batch.n_id[: batch.batch_size].tolist() for batch in loader]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 4), st.integers(1, 9), st.booleans(), st.booleans())
def test_loader_shards(count, world_size, batch_size, drop_last, shuffle):
    graph = Graph(random_graph(80, 300), 80)
    input_nodes = torch.randperm(80)[:count]
    if drop_last and count // world_size < batch_size:
        with pytest.raises(ValueError, match="drop_last"):
            NeighborLoader(graph, None, None, input_nodes, [2], batch_size, drop_last=True,
                           world_size=world_size)
        return
    per_rank = []
    for rank in range(world_size):
        loader = NeighborLoader(graph, None, None, input_nodes, [2], batch_size, rank=rank,
                                world_size=world_size, drop_last=drop_last, shuffle=shuffle,
                                seed=7)
        loader.set_epoch(3)
        batches = seeds_of(loader)
        assert len(batches) == len(loader)
        assert all(0 < len(b) <= batch_size for b in batches)
        if drop_last:
            assert all(len(b) == batch_size for b in batches)
        per_rank.append([node for b in batches for node in b])
    assert len({len(b) for b in per_rank}) == 1  # same number of seeds, hence of steps
    everything = Counter(node for nodes in per_rank for node in nodes)
    assert set(everything) <= set(input_nodes.tolist())
    if drop_last:
        assert max(everything.values()) == 1  # ranks disjoint
    else:
        assert set(everything) == set(input_nodes.tolist())  # union covers the input
        assert sum(everything.values()) - count == -count % world_size  # only the padding


def test_loader_epochs_and_rows():
    graph = Graph(random_graph(100, 800), 100)
    x = torch.randn(100, 5)
    y = torch.arange(100) % 3
    mask = torch.zeros(100, dtype=torch.bool)
    mask[::2] = True
    loader = NeighborLoader(graph, x, y, mask, [3, 2], 8, seed=1)
    first = list(loader)
    assert sorted(n for b in first for n in b.n_id[: b.batch_size].tolist()) == list(range(0, 100, 2))
    for batch in first:
        assert torch.equal(batch.x, x[batch.n_id])
        assert torch.equal(batch.y, y[batch.n_id[: batch.batch_size]])
        check_sample(graph, batch.n_id[: batch.batch_size].tolist(), [3, 2], batch)
    replay = list(loader)
    assert all(torch.equal(a.n_id, b.n_id) for a, b in zip(first, replay))
    loader.set_epoch(1)
    assert seeds_of(loader) != [b.n_id[: b.batch_size].tolist() for b in first]
    ordered = NeighborLoader(graph, None, None, torch.tensor([5, 3, 9]), [1], 2, shuffle=False)
    assert seeds_of(ordered) == [[5, 3], [9]]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"input_nodes": torch.tensor([1, 1])}, ValueError, "repeated"),
        ({"input_nodes": torch.tensor([100])}, ValueError, "node id 100"),
        ({"input_nodes": torch.zeros(5, dtype=torch.bool)}, ValueError, "mask"),
        ({"input_nodes": torch.zeros(10, dtype=torch.bool)}, ValueError, "empty"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"rank": 2, "world_size": 2}, ValueError, "rank"),
        ({"x": torch.zeros(9, 2)}, ValueError, "x must"),
        ({"fanouts": 3}, TypeError, "fanouts"),
    ],
)
def test_loader_bad_input(kwargs, error, match):
    arguments = {"x": None, "y": None, "input_nodes": None, "fanouts": [2], "batch_size": 4}
    arguments.update(kwargs)
    graph = Graph(random_graph(10, 30), 10)
    with pytest.raises(error, match=match):
        NeighborLoader(graph, arguments.pop("x"), arguments.pop("y"), arguments.pop("input_nodes"),
                       arguments.pop("fanouts"), arguments.pop("batch_size"), **arguments)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_sample_on_cuda():
    graph = Graph(random_graph(200, 2000, seed=6), 200).to("cuda")
    generator = torch.Generator(device="cuda").manual_seed(0)
    seeds = torch.tensor([1, 5, 9], device="cuda")
    sample = sample_neighbors(graph, seeds, [5, 3], generator=generator)
    assert sample.n_id.is_cuda and sample.graph.device.type == "cuda"
    check_sample(graph, [1, 5, 9], [5, 3], sample)
    x = torch.randn(200, 3, device="cuda")
    batch = next(iter(NeighborLoader(graph, x, None, None, [2], 16)))
    assert batch.x.is_cuda and torch.equal(batch.x, x[batch.n_id])
