"""Mini-batch neighbour sampling on a graph's cached CSR, and a loader built on it.

Convention (as everywhere in gnnkit): an edge j -> i is ``edge_index[:, k] = (j, i)``; the
"incoming edges" of i are those whose target is i, and ``graph.csr`` lists their sources as
``col[rowptr[i]:rowptr[i+1]]``. A GNN layer updates i from its incoming edges, so sampling walks
edges backwards: hop 1 draws incoming edges of the seeds, hop 2 incoming edges of the nodes
first reached at hop 1, and so on.

:func:`sample_neighbors` is pure torch with no Python loop over nodes (only over hops and, for
the draw without replacement, over the fanout's ``k`` positions). Its result orders nodes and
edges by hop, so the part of the sample that layer l of an L-layer model needs is a prefix of
both (:meth:`SampledSubgraph.trim`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._threads import cpu_threads, resolve_threads
from ._validate import check_int
from .data.epoch_order import EpochOrder, mix_seeds
from .graph import Graph
from .ops.features import feature_rows

#: The largest fanout (int64).
MAX_FANOUT = 2**63 - 1

_UNSEEN = torch.iinfo(torch.int32).max  # marker for "no local id yet"; local ids fit in int32
_INT64_MAX = 2**63 - 1
_RANDOM_HIGH = 2**62  # random integers below this, reduced modulo a degree (bias < 2**-40)


@dataclass
class SampledSubgraph:
    """The result of :func:`sample_neighbors` with L = ``len(fanouts)`` hops.

    Attributes:
        n_id: [n] long, global id of each local node: the seeds first (in the order given),
            then the nodes first reached at hop 1 (in order of first appearance among the hop-1
            edges), then those first reached at hop 2, ...; no duplicates.
        graph: a :class:`Graph` on local ids 0..n-1 (``num_nodes = n``). Its local edge j -> i
            stands for the input edge ``n_id[j] -> n_id[i]``. Edges are sorted by target: the
            hop-1 edges first (targets: the seeds), then hop 2 (targets: the nodes first
            reached at hop 1), ...
        batch_size: number of seeds B; the seeds are local nodes 0..B-1.
        num_sampled_nodes: L + 1 ints: ``[B, new nodes at hop 1, ..., new nodes at hop L]``;
            they sum to n.
        num_sampled_edges: L ints: edges drawn at hop 1, ..., hop L; they sum to E.
        e_id: [E] long, position of each sampled edge in the input graph's CSR order
            (``input.csr[1][e_id] == n_id[graph.source]``): the edge's id for an input made by
            ``Graph.from_csr``, else ``input.csr[2][e_id]`` is its column in ``edge_index``.

    ``graph`` is made with ``Graph.from_csr`` from the sample as drawn (no sort): within one
    target its sources are in draw order, not ascending.
    """

    n_id: Tensor
    graph: Graph
    batch_size: int
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]
    e_id: Tensor

    @property
    def num_hops(self) -> int:
        """Number of hops L drawn (the length of ``num_sampled_edges``)."""
        return len(self.num_sampled_edges)

    def num_nodes_within(self, hops: int) -> int:
        """Number of local nodes at most ``hops`` hops from the seeds (a prefix of ``n_id``)."""
        hops = check_int(hops, "hops", low=0, high=self.num_hops)
        return sum(self.num_sampled_nodes[: hops + 1])

    def trim(self, layer: int, num_layers: int) -> Graph:
        """The part of the sample that layer ``layer`` (0-based) of a ``num_layers``-layer model
        needs, as a :class:`Graph` on a prefix of the local nodes.

        With h = num_layers - layer: the nodes within h hops (``num_nodes_within(h)`` of them,
        the input rows the layer reads) and the edges of hops 1..h (exactly the incoming edges
        of the nodes within h - 1 hops, the rows whose output the next layer reads). Nodes
        first reached at hop h keep no incoming edge. Typical use, x = batch features::

            for layer, conv in enumerate(convs):
                g = sample.trim(layer, len(convs))
                x = conv(x[: g.num_nodes], g)
            out = x[: sample.batch_size]

        ``num_layers`` may be below the number of hops (the deeper hops are then unused).
        """
        num_layers = check_int(num_layers, "num_layers", low=1, high=self.num_hops)
        layer = check_int(layer, "layer", low=0, high=num_layers - 1)
        hops = num_layers - layer
        num_nodes = self.num_nodes_within(hops)
        num_edges = sum(self.num_sampled_edges[:hops])
        if num_nodes == self.graph.num_nodes and num_edges == self.graph.num_edges:
            return self.graph
        rowptr, col, _ = self.graph.csr
        return Graph.from_csr(rowptr[: num_nodes + 1].clamp(max=num_edges), col[:num_edges],
                              num_nodes)


def sample_neighbors(
    graph: Graph, seeds, fanouts, *, generator: torch.Generator | None = None
) -> SampledSubgraph:
    """Sample a multi-hop neighbourhood of ``seeds``, hop by hop, without replacement.

    Hop h (1..L, L = ``len(fanouts)``) takes every node first reached at hop h - 1 (the seeds
    for h = 1) and draws, uniformly without replacement, ``min(in_degree, fanouts[h-1])`` of
    its incoming edges; all of them when the in-degree is at most the fanout or the fanout is
    -1. The sources of the drawn edges that are not yet in the sample become the nodes of hop h.
    A node reached at several hops is sampled from once only, at the first.

    Cost: O(B + sampled edges) per hop plus one O(N) int32 fill, where N = graph.num_nodes;
    the draw for a node with in-degree d > k costs O(k^2) (Floyd's algorithm, vectorised over
    the nodes), independent of d.

    Args:
        graph: the input :class:`Graph` (its cached ``csr`` is used, and built on first use).
        seeds: 1-D integer tensor, array or list of B distinct node ids (B >= 1).
        fanouts: list (or tuple) of L >= 1 ints, each >= 0 or -1 (= all incoming edges).
        generator: the ``torch.Generator`` to draw from (on the graph's device); the same
            generator state gives the same sample. ``None`` uses torch's global generator.

    Returns:
        A :class:`SampledSubgraph`.

    Raises:
        TypeError: graph not a Graph, seeds not integers, fanouts not a list of ints,
            generator not a torch.Generator.
        ValueError: empty or non-1-D seeds, ids out of range, repeated seeds, empty fanouts or
            a fanout below -1.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a gnnkit.Graph, got {type(graph).__name__}; "
                        "wrap an edge_index with gnnkit.Graph(edge_index, num_nodes).")
    fanouts = check_fanouts(fanouts)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got "
                        f"{type(generator).__name__}.")
    rowptr, col, _ = graph.csr
    device = rowptr.device
    seeds = _check_seeds(seeds, graph.num_nodes, device)

    local = torch.full((graph.num_nodes,), _UNSEEN, dtype=torch.int32, device=device)
    seed_ids = torch.arange(seeds.numel(), dtype=torch.int32, device=device)
    local[seeds] = seed_ids
    if not torch.equal(local.index_select(0, seeds), seed_ids):
        repeated = seeds[local.index_select(0, seeds) != seed_ids]
        raise ValueError(f"seeds must be distinct; node {int(repeated[0])} appears more than "
                         "once (use torch.unique(seeds) if repeats are expected).")

    nodes, sources, counts, positions = [seeds], [], [], []
    num_nodes = seeds.numel()
    for hop, fanout in enumerate(fanouts):
        src, count, pos = _sample_hop(rowptr, col, nodes[-1], fanout, generator)
        ids, new = _relabel(local, src, num_nodes, remember=hop + 1 < len(fanouts))
        sources.append(ids)
        counts.append(count)
        positions.append(pos)
        nodes.append(new)
        num_nodes += new.numel()

    # Edges come grouped by target, targets in local order: the CSR of the sample as drawn.
    local_rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
    counts = torch.cat(counts)
    torch.cumsum(counts, 0, out=local_rowptr[1: counts.numel() + 1])
    local_rowptr[counts.numel() + 1:] = local_rowptr[counts.numel()]
    return SampledSubgraph(
        n_id=torch.cat(nodes),
        graph=Graph.from_csr(local_rowptr, torch.cat(sources).long(), num_nodes),
        batch_size=seeds.numel(),
        num_sampled_nodes=[part.numel() for part in nodes],
        num_sampled_edges=[part.numel() for part in positions],
        e_id=torch.cat(positions),
    )


def full_neighborhood(graph: Graph, nodes) -> SampledSubgraph:
    """All incoming edges of ``nodes`` (one hop, nothing sampled), for exact layer-wise
    inference: with ``sub = full_neighborhood(graph, chunk)``, ``conv(h[sub.n_id],
    sub.graph)[: len(chunk)]`` equals ``conv(h, graph)[chunk]`` for a layer that reads only
    incoming edges. Same as ``sample_neighbors(graph, nodes, [-1])``; draws no random numbers.
    """
    return sample_neighbors(graph, nodes, [-1])


def _sample_hop(rowptr: Tensor, col: Tensor, frontier: Tensor, fanout: int, generator):
    """Draw incoming edges of every node in ``frontier`` [M] (global ids).

    Returns (global source [S], number of edges drawn per frontier node [M], CSR position
    [S]), grouped by target in frontier order.
    """
    start = rowptr.index_select(0, frontier)
    degree = rowptr.index_select(0, frontier + 1) - start
    count = degree if fanout < 0 else degree.clamp(max=fanout)
    end = torch.cumsum(count, 0)  # the node's edges are output[end - count : end]
    total = int(end[-1]) if count.numel() else 0
    # Output edge e of node t takes the CSR position start[t] + (e - (end[t] - count[t])):
    # all its edges in order, unless its row is longer than the fanout (crowded), in which
    # case its slots are overwritten with a random draw.
    position = torch.repeat_interleave(start - end + count, count, output_size=total)
    position += torch.arange(total, device=frontier.device)
    if fanout >= 0:
        crowded = torch.nonzero(degree > fanout).view(-1)
        if crowded.numel():
            first = (end - count).index_select(0, crowded)
            slots = torch.arange(fanout, device=frontier.device).unsqueeze(1) + first
            drawn = _draw_without_replacement(degree.index_select(0, crowded), fanout, generator)
            position[slots.view(-1)] = (drawn + start.index_select(0, crowded)).view(-1)
    return col.index_select(0, position), count, position


def _draw_without_replacement(size: Tensor, k: int, generator) -> Tensor:
    """For each row r, k distinct integers drawn uniformly from 0..size[r]-1 (size >= k).

    Floyd's algorithm, vectorised over rows: for j = size-k, ..., size-1 draw t uniform in
    0..j and keep t, or j when t was already kept. Returns [k, len(size)]: column r holds
    row r's draw.
    """
    draws = torch.randint(_RANDOM_HIGH, (k, size.numel()), generator=generator,
                          device=size.device)
    kept = torch.empty(k, size.numel(), dtype=torch.long, device=size.device)
    for step in range(k):
        top = size - (k - step)  # j: the largest value this step can draw
        candidate = draws[step].remainder_(top + 1)
        taken = (kept[:step] == candidate).any(0)
        torch.where(taken, top, candidate, out=kept[step])
    return kept


def _relabel(local: Tensor, sources: Tensor, num_nodes: int, *, remember: bool):
    """Local ids of ``sources`` [S] (global ids): the id in ``local`` [N] int32 when there is
    one, else num_nodes + k for the k-th distinct new source in order of first appearance.

    Returns (local ids [S] int32, global ids of the new nodes). ``local`` is scratch space:
    with ``remember`` it ends up holding the new ids too (for the next hop); without, the
    entries of the new nodes are left undefined.
    """
    ids = local.index_select(0, sources)
    unseen = ids == _UNSEEN
    candidates = sources.masked_select(unseen)
    position = torch.arange(candidates.numel(), dtype=torch.int32, device=sources.device)
    local.scatter_reduce_(0, candidates, position, "amin")  # the first position of each node
    first = local.index_select(0, candidates)
    is_first = first == position
    rank = torch.cumsum(is_first, 0, dtype=torch.int32) + (num_nodes - 1)
    ids.masked_scatter_(unseen, rank.index_select(0, first))
    new = candidates.masked_select(is_first)
    if remember:
        local[new] = rank.masked_select(is_first)
    return ids, new


# ---------------------------------------------------------------------------------- loader
@dataclass
class MiniBatch(SampledSubgraph):
    """A :class:`SampledSubgraph` with the rows of the data it needs.

    Attributes (besides those of :class:`SampledSubgraph`):
        x: [n, F] rows ``x[n_id]`` (None when the loader has no x).
        y: [B] labels of the seeds ``y[n_id[:batch_size]]`` (None when the loader has no y).
    """

    x: Tensor | None
    y: Tensor | None


class NeighborLoader:
    """Mini-batches of seed nodes with their sampled neighbourhoods, for one process of a
    (possibly distributed) training run.

    Each epoch (see :meth:`set_epoch`) the input nodes are put in a random order (or kept in
    the given order with ``shuffle=False``) that depends only on ``seed`` and the epoch, so
    every rank computes the same order. The ordered list is then shared out among the
    ``world_size`` ranks so that **every rank gets the same number of batches** (DDP would wait
    forever for a rank that has stopped):

    * ``drop_last=False`` (default): the list is padded by wrapping around to its start until
      its length is a multiple of ``world_size`` (at most ``world_size - 1`` nodes are seen
      twice per epoch); rank r takes every ``world_size``-th node from position r, and cuts
      its share into batches of ``batch_size`` (the last one may be smaller, equally on every
      rank).
    * ``drop_last=True``: every rank takes ``len(input_nodes) // world_size`` nodes and only
      full batches of ``batch_size``; the rest of the epoch's order is not used.

    Neighbours are drawn by :func:`sample_neighbors` with a generator seeded from
    ``(seed, epoch, rank)``, so an epoch can be replayed exactly.

    Each batch is sampled and its rows gathered on ``threads`` CPU threads; the caller's own
    ``torch.get_num_threads()`` is back before the batch is handed over, so the model's steps
    run as the caller set them. The thread count never changes which nodes are drawn.

    Args:
        graph: the :class:`Graph` to sample from.
        x: [N, F] node features or None; only the rows of each batch are read, so it may be a
            memory-mapped tensor (see :mod:`gnnkit.store`).
        y: [N] labels or None; only the seeds' entries are read.
        input_nodes: the seed candidates: a 1-D tensor of distinct node ids, a bool mask [N],
            or None for all nodes.
        fanouts: per-hop fanouts, as for :func:`sample_neighbors`.
        batch_size: seeds per batch (>= 1).
        shuffle: shuffle the input nodes each epoch.
        seed: the run's seed (an int).
        rank: this process's rank (0 alone).
        world_size: the number of processes (1 alone).
        drop_last: see above.
        threads: CPU threads while a batch is sampled. ``None`` (default) follows
            :func:`gnnkit.train.threads_for` of the graph's edges: one thread below 1M edges
            (small parallel regions cost far more than they save when the cores are busy),
            else the caller's setting; an int >= 1 is used as given.

    Yields:
        :class:`MiniBatch` objects; ``len(loader)`` of them per epoch.
    """

    def __init__(self, graph: Graph, x: Tensor | None, y: Tensor | None, input_nodes,
                 fanouts, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 threads: int | None = None):
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be a gnnkit.Graph, got {type(graph).__name__}.")
        for name, rows in (("x", x), ("y", y)):
            if rows is not None and (not isinstance(rows, Tensor) or rows.dim() == 0
                                     or rows.size(0) != graph.num_nodes):
                raise ValueError(f"{name} must be None or a tensor with one row per node "
                                 f"({graph.num_nodes}).")
        self.graph, self.x, self.y = graph, x, y
        self.fanouts = check_fanouts(fanouts)
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.world_size = check_int(world_size, "world_size", low=1)
        self.rank = check_int(rank, "rank", low=0, high=self.world_size - 1)
        self.seed = check_int(seed, "seed", low=0)
        self.input_nodes = _check_input_nodes(input_nodes, graph.num_nodes)
        self.order = EpochOrder(self.input_nodes.numel(), self.batch_size, bool(shuffle),
                                self.seed, self.rank, self.world_size, bool(drop_last))
        self.order.check("input nodes")
        self.threads = resolve_threads(threads, graph.num_edges)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and samples the next iteration produces."""
        self.epoch = check_int(epoch, "epoch", low=0)

    def shard(self) -> Tensor:
        """This rank's seed nodes for the current epoch, in batch order."""
        return self.input_nodes[self.order.positions(self.epoch)]

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[MiniBatch]:
        generator = torch.Generator(device=self.graph.device)
        generator.manual_seed(mix_seeds(self.seed, self.epoch, self.rank))
        for seeds in torch.split(self.shard(), self.batch_size):
            with cpu_threads(self.threads):  # restored before the batch is yielded
                sample = sample_neighbors(self.graph, seeds, self.fanouts, generator=generator)
                batch = MiniBatch(
                    n_id=sample.n_id, graph=sample.graph, batch_size=sample.batch_size,
                    num_sampled_nodes=sample.num_sampled_nodes,
                    num_sampled_edges=sample.num_sampled_edges, e_id=sample.e_id,
                    x=None if self.x is None else _gather_rows(self.x, sample.n_id),
                    y=None if self.y is None else _gather_rows(self.y, seeds),
                )
            yield batch


def _gather_rows(rows: Tensor, index: Tensor) -> Tensor:
    """``rows[index]`` for a dense or a sparse CSR/COO ``rows`` (features stay sparse)."""
    return feature_rows(rows, index.to(rows.device))


# ---------------------------------------------------------------------------------- checks
def check_fanouts(fanouts, name: str = "fanouts", *, hops: int | None = None,
                  smallest: int = 0) -> list[int]:
    """The one rule for fanouts, the sampler's and training's: a list or tuple of ints, one per
    hop, each -1 (all incoming edges) or in ``smallest``..2**63-1; exactly ``hops`` of them
    when given. The sampler takes 0 (no neighbours at that hop); training asks for at least
    one neighbour per layer (``smallest=1``, ``hops`` = the model's layers).

    Raises:
        TypeError: not a list or tuple of ints.
        ValueError: empty, the wrong number, or a value out of range (named ``name[k]``).
    """
    many = f"{hops} ints (one per layer)" if hops is not None else "a list of ints, one per hop"
    if not isinstance(fanouts, (list, tuple)):
        raise TypeError(f"{name} must be {many}, each >= {smallest} or -1 for all neighbours, "
                        f"e.g. {(10, 5) if hops == 2 else [15, 10, 5]}; got {fanouts!r}.")
    if not fanouts or (hops is not None and len(fanouts) != hops):
        got = "it is empty" if not fanouts else f"got {len(fanouts)}: {fanouts!r}"
        raise ValueError(f"{name} must be {many}, each >= {smallest} or -1 for all neighbours; "
                         f"{got}.")
    checked = [check_int(f, f"{name}[{hop}]", low=-1, high=MAX_FANOUT)
               for hop, f in enumerate(fanouts)]
    for hop, fanout in enumerate(checked):
        if -1 < fanout < smallest:
            raise ValueError(f"{name}[{hop}] is {fanout}: every layer needs at least "
                             f"{smallest} neighbour per node; give a fanout >= {smallest}, or "
                             "-1 for all neighbours.")
    return checked


def _as_id_tensor(value, name: str) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value
    elif isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value)
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, numbers.Integral):
                raise TypeError(f"{name}[{k}] = {item!r} is not an int; {name} must hold "
                                "node ids.")
        _check_int64(value, name)
        tensor = torch.tensor(value, dtype=torch.long)
    else:
        raise TypeError(f"{name} must be a 1-D tensor, array or list of node ids, got "
                        f"{type(value).__name__}.")
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        hint = " (a mask: use mask.nonzero().view(-1))" if tensor.dtype == torch.bool else ""
        raise TypeError(f"{name} must hold integer node ids, got dtype {tensor.dtype}{hint}.")
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(tensor.shape)}.")
    if tensor.is_meta:
        raise ValueError(f"{name} is a tensor on the meta device, which holds no values; pass "
                         "the node ids on the CPU or the graph's device.")
    if tensor.dtype == torch.uint64:  # ids of 2**63 and above would wrap to negative in long
        _check_int64(tensor.cpu().numpy().tolist(), name)
    return tensor.long()


def _check_int64(ids, name: str) -> None:
    """Raise ``ValueError`` for a Python int id that does not fit in int64 (no node has it)."""
    if ids and (max(ids) > _INT64_MAX or min(ids) < -_INT64_MAX - 1):
        bad = max(ids) if max(ids) > _INT64_MAX else min(ids)
        raise ValueError(f"{name} contains node id {bad}, beyond int64; node ids are "
                         "0..num_nodes-1.")


def _check_range(ids: Tensor, num_nodes: int, name: str) -> None:
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_nodes):
        bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
        raise ValueError(f"{name} contains node id {bad}, outside the graph's ids "
                         f"0..{num_nodes - 1}.")


def _check_seeds(seeds, num_nodes: int, device) -> Tensor:
    seeds = _as_id_tensor(seeds, "seeds").to(device)
    if seeds.numel() == 0:
        raise ValueError("seeds is empty; give at least one node id.")
    _check_range(seeds, num_nodes, "seeds")
    return seeds


def _check_input_nodes(input_nodes, num_nodes: int) -> Tensor:
    if input_nodes is None:
        return torch.arange(num_nodes)
    if isinstance(input_nodes, Tensor) and input_nodes.dtype == torch.bool:
        if input_nodes.shape != (num_nodes,):
            raise ValueError(f"input_nodes as a mask must have shape [{num_nodes}], got "
                             f"{tuple(input_nodes.shape)}.")
        ids = torch.nonzero(input_nodes).view(-1)
    else:
        ids = _as_id_tensor(input_nodes, "input_nodes").cpu()
        _check_range(ids, num_nodes, "input_nodes")
        if torch.unique(ids).numel() != ids.numel():
            raise ValueError("input_nodes has repeated ids; pass each seed node once.")
    if ids.numel() == 0:
        raise ValueError("input_nodes is empty; give at least one node to train on.")
    return ids
