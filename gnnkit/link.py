"""Link prediction: held-out edges, negative pairs, pair scores and ranking metrics.

A pair is a column ``(j, i)`` of a [2, P] integer tensor, read like ``edge_index``: the
candidate edge j -> i. A model embeds the nodes (z [N, D], from a graph without the held-out
edges), scores pairs, and is judged on how well positives (held-out edges) rank above
negatives (pairs that are no edge).

Typical use::

    split = split_edges(graph, val=0.05, test=0.1, generator=torch.Generator().manual_seed(0))
    z = encoder(x, split.train_graph)                 # [N, D]
    loss = bce(dot_score(z, split.train_pos), 1) + bce(dot_score(z, negative_edges(...)), 0)
    auc = roc_auc(dot_score(z, split.test_pos), dot_score(z, split.test_neg))

For mini-batches, :func:`link_seeds` turns a batch of pairs into seed nodes for
:func:`gnnkit.sampling.sample_neighbors` and the pairs re-indexed into those seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ._validate import check_int, check_real
from .graph import Graph, as_graph

#: Largest N for which the pair key ``j * N + i`` fits in int64.
_MAX_NODES = 3_037_000_499
#: Graphs with at most this many ordered pairs N^2 list their non-edges exactly.
_EXACT_PAIRS = 1 << 22
#: Most candidate pairs drawn in one round of rejection sampling.
_MAX_DRAW = 1 << 24


@dataclass(frozen=True)
class EdgeSplit:
    """The result of :func:`split_edges`; all pairs are [2, P] long (row 0 j, row 1 i).

    Attributes:
        train_graph: the input graph without the validation and test edges (same N).
        train_pos: one pair per training edge group (an undirected edge once).
        val_pos, test_pos: one pair per held-out edge group.
        val_neg, test_neg: as many pairs that are no edge of the input graph (and no
            self-loop), all distinct.
    """

    train_graph: Graph
    train_pos: Tensor
    val_pos: Tensor
    val_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor


def split_edges(graph, val: float = 0.05, test: float = 0.1, *,
                generator: torch.Generator | None = None) -> EdgeSplit:
    """Hold out a random ``val`` and ``test`` fraction of the edges, with negatives.

    Edges are split in groups: the edges j -> i and i -> j (and any parallel copies) form
    one group, so both directions of an undirected edge go to the same split and the
    training graph keeps neither direction of a held-out edge; a self-loop or a directed
    edge without its reverse is a group alone. Of U groups, ``floor(test * U)`` go to the
    test split, ``floor(val * U)`` to validation, the rest to training; each group is
    represented by one of its edges (its first in ``edge_index`` order) in the ``*_pos``
    pairs. The negatives of both splits are :func:`negative_edges` of the whole graph, so a
    negative is never an edge of any split.

    Args:
        graph: a :class:`gnnkit.Graph` or any form :func:`gnnkit.as_graph` takes.
        val: the fraction of edges held out for validation, in [0, 1).
        test: the fraction held out for testing, in [0, 1), with ``val + test < 1``.
        generator: the ``torch.Generator`` (on the graph's device) to draw from; None uses
            torch's global generator.

    Raises:
        ValueError: fractions out of range; too few non-edges for the negatives.
    """
    graph = as_graph(graph)
    val = check_real(val, "val", low=0.0, high=1.0, open_high=True)
    test = check_real(test, "test", low=0.0, high=1.0, open_high=True)
    if val + test >= 1.0:
        raise ValueError(f"val + test must be below 1 to leave training edges, got "
                         f"{val} + {test}.")
    _check_generator(generator)
    num_nodes, edge_index = graph.num_nodes, graph.edge_index
    source, target = edge_index
    key = torch.minimum(source, target) * num_nodes + torch.maximum(source, target)
    groups, group_of = torch.unique(key, return_inverse=True)
    num_groups = groups.numel()
    positions = torch.arange(edge_index.shape[1], device=key.device)
    first = torch.full((num_groups,), edge_index.shape[1], dtype=torch.long, device=key.device)
    first = first.scatter_reduce(0, group_of, positions, "amin")
    order = torch.randperm(num_groups, generator=generator, device=key.device)
    num_test, num_val = int(test * num_groups), int(val * num_groups)
    test_groups = order[:num_test].sort().values
    val_groups = order[num_test:num_test + num_val].sort().values
    train_groups = order[num_test + num_val:].sort().values
    held_out = torch.zeros(num_groups, dtype=torch.bool, device=key.device)
    held_out[order[:num_test + num_val]] = True
    negatives = negative_edges(graph, num_val + num_test, generator=generator)
    return EdgeSplit(
        train_graph=Graph(edge_index[:, ~held_out[group_of]], num_nodes),
        train_pos=edge_index[:, first[train_groups]],
        val_pos=edge_index[:, first[val_groups]],
        val_neg=negatives[:, :num_val],
        test_pos=edge_index[:, first[test_groups]],
        test_neg=negatives[:, num_val:],
    )


def negative_edges(graph, num: int, *, generator: torch.Generator | None = None) -> Tensor:
    """``num`` distinct pairs (j, i), j != i, such that j -> i is no edge: [2, num].

    Drawn uniformly among all such pairs (a uniformly random subset of size ``num``, in
    random order). Pairs are drawn in rounds: candidates ``i * N + j`` are tested for
    membership among the sorted keys of the edges with ``searchsorted`` and the survivors
    merged, until ``num`` distinct ones are found. The edge keys come without a sort from a
    graph whose CSR is cached (one used by a layer or the sampler before), else from one
    sort of the E keys. Memory: O(E + num), no N x N structure,
    except for tiny graphs (N^2 <= 4M pairs), whose non-edges are listed exactly.

    Args:
        graph: a :class:`gnnkit.Graph` or any form :func:`gnnkit.as_graph` takes.
        num: the number of pairs (>= 0).
        generator: the ``torch.Generator`` (on the graph's device); None uses the global one.

    Raises:
        ValueError: ``num`` exceeds the number of non-edges ``N (N - 1) - (distinct non-loop
            edges)``.
    """
    graph = as_graph(graph)
    num = check_int(num, "num", low=0)
    _check_generator(generator)
    num_nodes, device = graph.num_nodes, graph.device
    if num_nodes > _MAX_NODES:
        raise ValueError(f"negative_edges supports at most {_MAX_NODES:,} nodes (pair keys "
                         f"j * N + i in int64), got {num_nodes:,}.")
    keys = _edge_keys(graph)
    loops = int((keys // max(num_nodes, 1) == keys % max(num_nodes, 1)).sum())
    available = num_nodes * (num_nodes - 1) - (keys.numel() - loops)
    if num > available:
        raise ValueError(f"num={num} but the graph has only {available} non-edges (pairs "
                         f"j != i without an edge j -> i); ask for at most {available}.")
    if num == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=device)
    if num_nodes * num_nodes <= _EXACT_PAIRS:
        every = torch.arange(num_nodes * num_nodes, device=device)
        free = ~_contains(keys, every) & (every // num_nodes != every % num_nodes)
        found = every[free]
    else:
        found = torch.zeros(0, dtype=torch.long, device=device)
        accept = available / (num_nodes * num_nodes)
        while found.numel() < num:
            wanted = num - found.numel()
            draws = min(int(1.25 * wanted / accept) + 64, _MAX_DRAW)
            pair = torch.randint(num_nodes, (2, draws), generator=generator, device=device)
            candidates = torch.unique((pair[1] * num_nodes + pair[0])[pair[0] != pair[1]])
            candidates = candidates[~_contains(keys, candidates)]  # sorted queries: cache hits
            found = torch.unique(torch.cat([found, candidates]))
    chosen = found[torch.randperm(found.numel(), generator=generator, device=device)[:num]]
    return torch.stack([chosen % num_nodes, chosen // num_nodes])


def _edge_keys(graph: Graph) -> Tensor:
    """[K] sorted distinct keys ``i * N + j`` of the edges j -> i. From the cached CSR (grouped
    by target) when the graph has one: already sorted when the sources of each target are
    ascending (checked in O(E)), so no sort is needed; else one sort."""
    num_nodes = graph.num_nodes
    if "csr" in graph.__dict__:
        _, col, _ = graph.csr
        keys = graph.csr_target * num_nodes + col
        if keys.numel() < 2 or bool((keys[1:] >= keys[:-1]).all()):
            return torch.unique_consecutive(keys)
        return torch.unique(keys)
    source, target = graph.edge_index
    return torch.unique(target * num_nodes + source)


def _contains(sorted_keys: Tensor, values: Tensor) -> Tensor:
    """[V] bool: ``values[k]`` is in ``sorted_keys`` (ascending)."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(values, dtype=torch.bool)
    position = torch.searchsorted(sorted_keys, values).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[position] == values


# ---------------------------------------------------------------------------------- scores
def dot_score(z: Tensor, pairs: Tensor) -> Tensor:
    """``s_k = <z_j, z_i>`` for every pair (j, i): [P] (logits for a sigmoid).

    Args:
        z: [N, D] node embeddings.
        pairs: [2, P] integer node ids in ``0..N-1``.
    """
    z = _check_embeddings(z)
    pairs = check_pairs(pairs, z.shape[0])
    return (z.index_select(0, pairs[0]) * z.index_select(0, pairs[1])).sum(-1)


class MLPScore(nn.Module):
    """``s_k = w_2^T relu(W_1 (z_j * z_i) + b_1) + b_2`` for every pair (j, i): [P] logits.

    The product ``z_j * z_i`` (element-wise) is symmetric in j and i, so an undirected edge
    gets one score whichever way it is written.

    Args:
        in_features: D, the embedding width.
        hidden: width of the hidden layer.

    Shapes:
        ``forward(z, pairs)``: z [N, D], pairs [2, P] -> [P].
    """

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=1)
        self.hidden = check_int(hidden, "hidden", low=1)
        self.lin1 = nn.Linear(self.in_features, self.hidden)
        self.lin2 = nn.Linear(self.hidden, 1)

    def reset_parameters(self) -> None:
        """Re-initialise both linear layers."""
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, z: Tensor, pairs: Tensor) -> Tensor:
        """Scores [P] of the pairs [2, P] (rows: j, i) from node embeddings z [N, F]."""
        z = _check_embeddings(z, self.in_features)
        pairs = check_pairs(pairs, z.shape[0])
        h = z.index_select(0, pairs[0]) * z.index_select(0, pairs[1])
        return self.lin2(torch.relu(self.lin1(h))).squeeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_features}, hidden={self.hidden})"


# ---------------------------------------------------------------------------------- metrics
def roc_auc(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Area under the ROC curve: the probability that a random positive scores above a
    random negative, a tie counting one half. 0-d float64 tensor.

    Rank form (Mann-Whitney): with the P + Q scores ranked 1..P+Q, tied scores sharing their
    average rank, ``AUC = (sum of the positives' ranks - P (P + 1) / 2) / (P Q)``. One sort.
    """
    pos = _check_scores(pos_scores, "pos_scores")
    neg = _check_scores(neg_scores, "neg_scores")
    scores = torch.cat([pos, neg]).double()
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average_rank = (2 * ends - counts.double() + 1) / 2  # (first + last) / 2, 1-based
    num_pos, num_neg = pos.numel(), neg.numel()
    rank_sum = average_rank[inverse[:num_pos]].sum()
    return (rank_sum - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)


def hits_at_k(pos_scores: Tensor, neg_scores: Tensor, k: int) -> Tensor:
    """Hits@K as in OGB's link tasks: the fraction of positives that score strictly above
    the K-th highest negative (1 when there are fewer than K negatives). 0-d float64."""
    pos = _check_scores(pos_scores, "pos_scores")
    neg = _check_scores(neg_scores, "neg_scores")
    k = check_int(k, "k", low=1)
    if neg.numel() < k:
        return torch.ones((), dtype=torch.float64, device=pos.device)
    threshold = torch.topk(neg, k).values[-1]
    return (pos > threshold).double().mean()


# ---------------------------------------------------------------------------------- batches
def link_seeds(pairs: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct endpoints of a batch of pairs, and the pairs re-indexed into them.

    Returns ``(nodes [U], local [2, P])`` with ``nodes[local] == pairs``; ``nodes`` is sorted.
    Pass ``nodes`` as the seeds of :func:`gnnkit.sampling.sample_neighbors`: the sample puts
    the seeds first, in this order, so rows ``0..U-1`` of the model's output are the
    endpoints and ``local`` indexes them directly::

        nodes, local = link_seeds(batch_pairs)
        sample = sample_neighbors(graph, nodes, [10, 5])
        z = model(x[sample.n_id], sample.graph)[: sample.batch_size]
        scores = dot_score(z, local)
    """
    pairs = check_pairs(pairs)
    nodes, local = torch.unique(pairs, return_inverse=True)
    return nodes, local


# ---------------------------------------------------------------------------------- checks
def check_pairs(pairs, num_nodes: int | None = None, name: str = "pairs") -> Tensor:
    """A [2, P] integer tensor of node ids (below ``num_nodes`` when given), as long."""
    if not isinstance(pairs, Tensor) or pairs.is_floating_point() or pairs.is_complex() or (
        pairs.dtype == torch.bool
    ):
        raise TypeError(f"{name} must be an integer tensor [2, P] of (j, i) node ids, got "
                        f"{pairs.dtype if isinstance(pairs, Tensor) else type(pairs).__name__}.")
    if pairs.dim() != 2 or pairs.shape[0] != 2:
        raise ValueError(f"{name} must have shape [2, P] (row 0 the j, row 1 the i), got "
                         f"{list(pairs.shape)}; a [P, 2] list of pairs needs .t().")
    if pairs.numel():
        low, high = int(pairs.min()), int(pairs.max())
        if low < 0 or (num_nodes is not None and high >= num_nodes):
            raise ValueError(f"{name} holds node ids in {low}..{high}, outside 0.."
                             f"{'' if num_nodes is None else num_nodes - 1}.")
    return pairs.long()


def _check_embeddings(z, width: int | None = None) -> Tensor:
    if not isinstance(z, Tensor) or z.dim() != 2 or not z.is_floating_point():
        raise TypeError(f"z must be a floating tensor [N, D] of node embeddings, got "
                        f"{list(z.shape) if isinstance(z, Tensor) else type(z).__name__}.")
    if width is not None and z.shape[1] != width:
        raise ValueError(f"z has {z.shape[1]} features per node but the scorer expects "
                         f"{width}; check its in_features.")
    return z


def _check_scores(scores, name: str) -> Tensor:
    if not isinstance(scores, Tensor) or not scores.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of scores, got "
                        f"{scores.dtype if isinstance(scores, Tensor) else type(scores).__name__}.")
    scores = scores.detach().reshape(-1)
    if scores.numel() == 0:
        raise ValueError(f"{name} is empty; a ranking metric needs at least one score.")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{name} holds NaN or infinity; scores must be finite.")
    return scores


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got "
                        f"{type(generator).__name__}.")
