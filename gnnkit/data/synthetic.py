"""A seeded synthetic node-classification graph of any size, for scale tests and benchmarks.

Model (every random draw from numpy generators derived from ``seed``):

* **Classes**: each node gets a class drawn uniformly from 0..C-1.
* **Degrees**: every node i has an in-weight a_i and an out-weight b_i drawn independently
  from a Pareto law with ``P(weight > t) = t^-(exponent - 1)`` (t >= 1), so in- and
  out-degrees follow a power law ``P(d) ~ d^-exponent``. Node i receives exactly
  ``rowptr[i+1] - rowptr[i]`` edges with ``rowptr[i] = floor(E * (a_0 + ... + a_{i-1}) /
  sum(a))``, so the in-degrees sum to E exactly.
* **Edges**: the source of each edge into a node of class c is, with probability
  ``homophily``, a node of class c, else any node; in both cases chosen with probability
  proportional to its out-weight. So a fraction of about ``homophily + (1 - homophily) / C``
  of the edges join nodes of the same class. Self-loops and repeated edges can occur (rarely
  on large graphs) and are kept.
* **Features**: ``x_i = m_{y_i} + noise``: class centres ``m_c ~ N(0, signal^2 I_F)`` and
  noise ``N(0, I_F)``, float32. With the default signal a classifier on the features alone
  is far from perfect, and averaging over same-class neighbours helps.
* **Split**: a random ``train_fraction`` of the nodes for training, ``val_fraction`` for
  validation, the rest for testing.

The edges are produced a block of targets at a time (about 2^22 edges per block), written
straight into the CSR column array, so memory stays at one copy of the edge list plus one
block.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from .._validate import check_int, check_memory, check_real
from .node_data import NodeData

BLOCK_EDGES = 1 << 22


def synthetic_graph(
    num_nodes: int,
    num_edges: int,
    *,
    num_classes: int = 10,
    num_features: int = 32,
    homophily: float = 0.7,
    exponent: float = 2.5,
    signal: float = 0.25,
    train_fraction: float = 0.1,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> NodeData:
    """Generate the graph described in the module docstring.

    Args:
        num_nodes: N >= num_classes.
        num_edges: E >= 0 (directed edges; in-degrees sum to E).
        num_classes: C >= 1.
        num_features: F >= 1.
        homophily: in [0, 1], the probability that an edge's source is drawn from the
            target's class.
        exponent: > 2, the power-law exponent of the degrees.
        signal: >= 0, the standard deviation of the class centres (noise has 1).
        train_fraction: >= 0; with ``val_fraction``, at most 1.
        val_fraction: >= 0; with ``train_fraction``, at most 1.
        seed: the same arguments and seed give the same graph.

    Returns:
        A :class:`gnnkit.data.NodeData` (CSR ``rowptr`` [N+1], ``col`` [E], ``x`` [N, F],
        ``y`` [N], masks), named ``synthetic-<N>-<E>``.

    Raises:
        TypeError: a count or seed that is not an int, a setting that is not a number.
        ValueError: a setting out of its range, NaN or infinite, or a graph larger than the
            machine's memory.
    """
    num_nodes = check_int(num_nodes, "num_nodes", low=1)
    num_edges = check_int(num_edges, "num_edges", low=0)
    num_classes = check_int(num_classes, "num_classes", low=1)
    num_features = check_int(num_features, "num_features", low=1)
    seed = check_int(seed, "seed", low=0)
    if num_nodes < num_classes:
        raise ValueError(f"num_nodes ({num_nodes}) must be at least num_classes "
                         f"({num_classes}).")
    homophily = check_real(homophily, "homophily", low=0.0, high=1.0)
    exponent = check_real(exponent, "exponent", low=2.0, open_low=True)
    signal = check_real(signal, "signal", low=0.0)
    train_fraction = check_real(train_fraction, "train_fraction", low=0.0, high=1.0)
    val_fraction = check_real(val_fraction, "val_fraction", low=0.0, high=1.0)
    if train_fraction + val_fraction > 1:
        raise ValueError(f"train_fraction + val_fraction = {train_fraction + val_fraction} "
                         "exceeds 1.")
    size = _bytes_needed(num_nodes, num_edges, num_features)
    what = f"synthetic_graph({num_nodes}, {num_edges}, num_features={num_features})"
    fix = "choose fewer nodes, edges or features."
    check_memory(size, what, fix)
    try:
        return _generate(num_nodes, num_edges, num_classes, num_features, homophily, exponent,
                         signal, train_fraction, val_fraction, seed)
    except MemoryError:
        raise ValueError(f"{what} needs about {size / 2**30:,.1f} GiB, more than could be "
                         f"allocated; {fix}") from None


def _bytes_needed(num_nodes: int, num_edges: int, num_features: int) -> int:
    """A generous estimate of the peak memory of :func:`synthetic_graph`: about ten int64 or
    float64 arrays of N entries (the result's and the temporaries), x [N, F] float32, col [E]
    int64 and one block of edges."""
    return num_nodes * (80 + 4 * num_features) + 8 * num_edges + 64 * min(num_edges, BLOCK_EDGES)


def _generate(num_nodes, num_edges, num_classes, num_features, homophily, exponent, signal,
              train_fraction, val_fraction, seed) -> NodeData:
    """The graph of :func:`synthetic_graph` for checked arguments."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    labels_rng, weights_rng, edges_rng, features_rng, split_rng = streams
    y = labels_rng.integers(0, num_classes, num_nodes)
    rowptr = _in_degree_pointer(_pareto(weights_rng, num_nodes, exponent), num_edges)
    col = _sources(rowptr, y, _pareto(weights_rng, num_nodes, exponent), homophily, edges_rng)
    x = _features(y, num_classes, num_features, signal, features_rng)
    masks = _split(num_nodes, train_fraction, val_fraction, split_rng)
    return NodeData(
        rowptr=torch.from_numpy(rowptr), col=torch.from_numpy(col), x=torch.from_numpy(x),
        y=torch.from_numpy(y), **masks, name=f"synthetic-{num_nodes}-{num_edges}",
    )


def _pareto(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Weights >= 1 with P(weight > t) = t^-(exponent - 1)."""
    return (1.0 - rng.random(size)) ** (-1.0 / (exponent - 1.0))


def _in_degree_pointer(weights: np.ndarray, num_edges: int) -> np.ndarray:
    """rowptr [N+1] with in-degrees proportional to ``weights``, summing to ``num_edges``."""
    cumulative = np.cumsum(weights)
    rowptr = np.zeros(weights.size + 1, dtype=np.int64)
    rowptr[1:] = np.floor(num_edges * (cumulative / cumulative[-1]))
    rowptr[-1] = num_edges
    return rowptr


def _sources(rowptr, y, out_weight, homophily, rng) -> np.ndarray:
    """col [E]: for each edge in CSR order, a source drawn as in the module docstring; the
    sources of each target sorted ascending."""
    num_nodes, num_edges = y.size, int(rowptr[-1])
    by_class = np.argsort(y, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(out_weight[by_class])])
    class_end = np.cumsum(np.bincount(y))
    ends = cumulative[class_end]  # class c's weight is in [starts[c], ends[c])
    starts = cumulative[class_end - np.bincount(y)]
    col = np.empty(num_edges, dtype=np.int64)
    block_rows = np.searchsorted(rowptr, np.arange(0, num_edges, BLOCK_EDGES), side="right") - 1
    bounds = np.unique(np.concatenate([block_rows, [num_nodes]]))
    for first, last in itertools.pairwise(bounds):
        lo, hi = rowptr[first], rowptr[last]
        rows = np.repeat(np.arange(last - first), np.diff(rowptr[first:last + 1]))
        target_class = y[first + rows]
        in_class = rng.random(hi - lo) < homophily
        low = np.where(in_class, starts[target_class], 0.0)
        high = np.where(in_class, ends[target_class], cumulative[-1])
        point = low + rng.random(hi - lo) * (high - low)
        # node k (in class order) owns [cumulative[k], cumulative[k + 1])
        picked = np.minimum(np.searchsorted(cumulative, point, side="right") - 1, num_nodes - 1)
        keys = np.sort(rows * num_nodes + by_class[picked])
        col[lo:hi] = keys % num_nodes
    return col


def _features(y, num_classes, num_features, signal, rng) -> np.ndarray:
    centres = rng.normal(0.0, signal, (num_classes, num_features)).astype(np.float32)
    x = rng.standard_normal((y.size, num_features), dtype=np.float32)
    rows = max(1, BLOCK_EDGES // num_features)  # add the centres a block of rows at a time
    for start in range(0, y.size, rows):
        x[start:start + rows] += centres[y[start:start + rows]]
    return x


def _split(num_nodes, train_fraction, val_fraction, rng) -> dict:
    order = rng.permutation(num_nodes)
    num_train = round(train_fraction * num_nodes)
    num_val = round(val_fraction * num_nodes)
    masks = {}
    for name, part in (("train_mask", order[:num_train]),
                       ("val_mask", order[num_train:num_train + num_val]),
                       ("test_mask", order[num_train + num_val:])):
        mask = np.zeros(num_nodes, dtype=bool)
        mask[part] = True
        masks[name] = torch.from_numpy(mask)
    return masks
