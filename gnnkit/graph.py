"""The graph container every gnnkit function and layer works on.

Convention (fixed once for the whole package): an edge j -> i is stored as the column
``edge_index[:, k] = (j, i)``; row 0 holds sources, row 1 targets; messages flow from j to i,
and the adjacency matrix has ``A[i, j] = 1`` (rows are receivers). Row i of ``D^-1 A H`` is
therefore the mean of the features of i's in-neighbours.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import networkx as nx
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ._validate import as_edge_index, as_matrix, check_node_ids, is_torch_sparse


class Graph:
    """A directed graph: ``edge_index`` [2, E] (source j, target i) and ``num_nodes`` N.

    An undirected graph stores both directions of every edge. The object is treated as
    immutable; the compressed sparse row (CSR) form sorted by target, its transpose and the
    degrees are computed once on first use and cached.

    Args:
        edge_index: integer tensor [2, E]; ``edge_index[0]`` sources, ``edge_index[1]`` targets.
        num_nodes: N; defaults to ``max id + 1`` (0 for an empty edge list). Give it to keep
            isolated nodes at the end.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int | None = None):
        edge_index = as_edge_index(edge_index)
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)):
            raise TypeError(f"num_nodes must be an int, got {type(num_nodes).__name__}.")
        if num_nodes < 0:
            raise ValueError(f"num_nodes must be >= 0, got {num_nodes}.")
        check_node_ids(edge_index, int(num_nodes))
        self.edge_index = edge_index
        self.num_nodes = int(num_nodes)

    # ------------------------------------------------------------------ basic facts
    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    @property
    def source(self) -> Tensor:
        """[E] source node j of every edge."""
        return self.edge_index[0]

    @property
    def target(self) -> Tensor:
        """[E] target node i of every edge."""
        return self.edge_index[1]

    @cached_property
    def in_degree(self) -> Tensor:
        """[N] long: number of edges arriving at each node (row sums of A)."""
        return torch.bincount(self.target, minlength=self.num_nodes)

    @cached_property
    def out_degree(self) -> Tensor:
        """[N] long: number of edges leaving each node (column sums of A)."""
        return torch.bincount(self.source, minlength=self.num_nodes)

    # ------------------------------------------------------------------ sparse layouts
    @cached_property
    def csr(self) -> tuple[Tensor, Tensor, Tensor]:
        """Edges grouped by target: ``(rowptr [N+1], col [E], perm [E])``.

        The sources of the edges into node i are ``col[rowptr[i]:rowptr[i+1]]`` (ascending);
        ``perm[k]`` is the position in ``edge_index`` of the k-th edge in this order.
        """
        perm = _argsort_pairs(self.target, self.source, self.num_nodes)
        rowptr = _pointer(self.in_degree)
        return rowptr, self.source[perm], perm

    @cached_property
    def csr_target(self) -> Tensor:
        """[E] target of each edge in CSR order (the row of each stored entry)."""
        return torch.repeat_interleave(
            torch.arange(self.num_nodes, device=self.device), self.in_degree,
            output_size=self.num_edges,
        )

    @cached_property
    def csc(self) -> tuple[Tensor, Tensor, Tensor]:
        """The transpose of A in CSR form, i.e. edges grouped by source:
        ``(colptr [N+1], row [E], csr_to_csc [E])``.

        The targets reached from node j are ``row[colptr[j]:colptr[j+1]]``; ``csr_to_csc[k]``
        is the CSR position of the k-th edge in this order, so values stored in CSR order ``v``
        become ``v[csr_to_csc]`` in this order.
        """
        _, col, _ = self.csr
        csr_to_csc = _argsort_pairs(col, self.csr_target, self.num_nodes)
        return _pointer(self.out_degree), self.csr_target[csr_to_csc], csr_to_csc

    # ------------------------------------------------------------------ derived graphs
    def to(self, device) -> Graph:
        """The same graph with its tensors on ``device``."""
        return Graph(self.edge_index.to(device), self.num_nodes)

    def remove_self_loops(self) -> Graph:
        """The graph without edges i -> i."""
        keep = self.source != self.target
        return Graph(self.edge_index[:, keep], self.num_nodes)

    def add_self_loops(self) -> Graph:
        """The graph without its self-loops, plus exactly one edge i -> i for every node.

        Computed once and cached, so a layer that adds self-loops on every call reuses it."""
        return self._with_self_loops

    @cached_property
    def _with_self_loops(self) -> Graph:
        loops = torch.arange(self.num_nodes, device=self.device).repeat(2, 1)
        return Graph(torch.cat([self.remove_self_loops().edge_index, loops], dim=1), self.num_nodes)

    def coalesce(self) -> Graph:
        """The graph with duplicate edges merged, edges sorted by (target, source)."""
        key = self.target * max(self.num_nodes, 1) + self.source
        key = torch.unique(key)
        n = max(self.num_nodes, 1)
        return Graph(torch.stack([key % n, key // n]), self.num_nodes)

    def to_undirected(self) -> Graph:
        """The graph with the reverse of every edge added and duplicates merged."""
        both = torch.cat([self.edge_index, self.edge_index.flip(0)], dim=1)
        return Graph(both, self.num_nodes).coalesce()

    def is_undirected(self) -> bool:
        """True when every edge j -> i has its reverse i -> j (with the same multiplicity)."""
        n = max(self.num_nodes, 1)
        forward = torch.sort(self.target * n + self.source).values
        backward = torch.sort(self.source * n + self.target).values
        return bool(torch.equal(forward, backward))

    def __repr__(self) -> str:
        return f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges})"

    # ------------------------------------------------------------------ converters: in
    @classmethod
    def from_edge_list(
        cls, pairs, num_nodes: int | None = None, *, one_indexed: bool = False,
        undirected: bool = False,
    ) -> Graph:
        """From ``[(u, v), ...]`` meaning an edge u -> v (both ways when ``undirected``).

        With ``one_indexed=True`` the ids count from 1, as in most textbook figures, and are
        shifted to start at 0; ``num_nodes`` always counts nodes, not the largest id.
        """
        edge_index = _pairs_to_edge_index(pairs, one_indexed)
        graph = cls(edge_index, num_nodes if num_nodes is not None else _count(edge_index))
        return graph.to_undirected() if undirected else graph

    @classmethod
    def from_networkx(cls, graph: nx.Graph) -> Graph:
        """From a networkx graph. Nodes are numbered in sorted order when they are all
        integers (so a figure's 1..n becomes 0..n-1), else in ``graph.nodes`` order.
        An undirected graph gives both directions of every edge."""
        if not isinstance(graph, nx.Graph):
            raise TypeError(f"graph must be a networkx graph, got {type(graph).__name__}.")
        nodes = networkx_node_order(graph)
        index = {node: k for k, node in enumerate(nodes)}
        pairs = [(index[u], index[v]) for u, v in graph.edges()]
        edge_index = _pairs_to_edge_index(pairs, one_indexed=False)
        result = cls(edge_index, len(nodes))
        return result if graph.is_directed() else result.to_undirected()

    @classmethod
    def from_matrix(cls, matrix, name: str = "A") -> Graph:
        """From an adjacency matrix (nested lists, numpy, dense or sparse torch, scipy):
        every non-zero ``A[i, j]`` is an edge j -> i."""
        if sp.issparse(matrix):
            coo = sp.coo_matrix(matrix)
            if coo.shape[0] != coo.shape[1]:
                raise ValueError(f"{name} must be square (n x n), got shape {coo.shape}.")
            if not np.isfinite(coo.data).all():
                raise ValueError(f"{name} contains NaN or infinity; replace it with a number.")
            keep = coo.data != 0
            rows = torch.from_numpy(coo.row[keep].astype(np.int64))
            cols = torch.from_numpy(coo.col[keep].astype(np.int64))
            return cls(torch.stack([cols, rows]), coo.shape[0]).coalesce()
        if is_torch_sparse(matrix):
            if matrix.dim() != 2 or matrix.size(0) != matrix.size(1):
                raise ValueError(f"{name} must be a square n x n matrix, got {tuple(matrix.shape)}.")
            coo = matrix.to_sparse_coo().coalesce()
            if coo.values().is_floating_point() and not torch.isfinite(coo.values()).all():
                raise ValueError(f"{name} contains NaN or infinity; replace it with a number.")
            rows, cols = coo.indices()[:, coo.values() != 0]
            return cls(torch.stack([cols, rows]), matrix.size(0))
        dense = as_matrix(matrix, name)
        rows, cols = torch.nonzero(dense, as_tuple=True)
        return cls(torch.stack([cols, rows]), dense.size(0))

    @classmethod
    def from_pyg(cls, data) -> Graph:
        """From a ``torch_geometric.data.Data`` (its ``edge_index`` and ``num_nodes``)."""
        return cls(data.edge_index, data.num_nodes)

    # ------------------------------------------------------------------ converters: out
    def to_edge_list(self, *, one_indexed: bool = False) -> list[tuple[int, int]]:
        """``[(u, v), ...]`` for the edges u -> v, in stored order."""
        shift = 1 if one_indexed else 0
        return [(u + shift, v + shift) for u, v in self.edge_index.t().tolist()]

    def to_dense(self, dtype: torch.dtype = torch.long) -> Tensor:
        """A [N, N] with ``A[i, j]`` = number of edges j -> i."""
        dense = torch.zeros(self.num_nodes, self.num_nodes, dtype=dtype, device=self.device)
        ones = torch.ones(self.num_edges, dtype=dtype, device=self.device)
        return dense.index_put_((self.target, self.source), ones, accumulate=True)

    def to_sparse(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """A as a torch sparse CSR tensor [N, N] (duplicates kept as separate entries)."""
        rowptr, col, _ = self.csr
        values = torch.ones(self.num_edges, dtype=dtype, device=self.device)
        return sparse_csr(rowptr, col, values, self.num_nodes)

    def to_scipy(self) -> sp.csr_matrix:
        """A as a scipy CSR matrix (int64 entries, duplicates summed)."""
        target, source = self.target.cpu().numpy(), self.source.cpu().numpy()
        ones = np.ones(self.num_edges, dtype=np.int64)
        shape = (self.num_nodes, self.num_nodes)
        return sp.csr_matrix((ones, (target, source)), shape=shape)

    def to_networkx(self, *, directed: bool | None = None) -> nx.Graph:
        """A networkx ``DiGraph`` (or ``Graph`` when ``directed=False``; by default undirected
        exactly when every edge has its reverse) with nodes 0..N-1."""
        if directed is None:
            directed = not self.is_undirected()
        result = nx.DiGraph() if directed else nx.Graph()
        result.add_nodes_from(range(self.num_nodes))
        result.add_edges_from(self.to_edge_list())
        return result

    def to_pyg(self):
        """A ``torch_geometric.data.Data`` with this ``edge_index`` and ``num_nodes``."""
        from torch_geometric.data import Data

        return Data(edge_index=self.edge_index, num_nodes=self.num_nodes)


def as_graph(graph_like, num_nodes: int | None = None, *, name: str = "graph") -> Graph:
    """Turn any supported graph form into a :class:`Graph`.

    Accepted: a ``Graph``; an integer tensor [2, E] (source, target); a torch sparse COO/CSR
    or dense floating/boolean adjacency [N, N] with ``A[i, j] != 0`` for an edge j -> i; a
    scipy sparse matrix; a networkx graph; a ``torch_geometric.data.Data``.

    ``num_nodes`` (for layers: ``x.size(0)``) is checked against the graph: ids must be below it
    and a matrix or ``Graph`` must have exactly that many nodes.
    """
    if isinstance(graph_like, Graph):
        graph = graph_like
    elif _is_pyg_data(graph_like):
        graph = Graph.from_pyg(graph_like)
    elif isinstance(graph_like, nx.Graph):
        graph = Graph.from_networkx(graph_like)
    elif sp.issparse(graph_like) or is_torch_sparse(graph_like):
        graph = Graph.from_matrix(graph_like, name)
    elif isinstance(graph_like, Tensor):
        if graph_like.is_floating_point() or graph_like.dtype == torch.bool:
            if graph_like.dim() == 2 and graph_like.size(0) == graph_like.size(1):
                graph = Graph.from_matrix(graph_like, name)
            else:
                raise TypeError(
                    f"{name} is a floating tensor of shape {tuple(graph_like.shape)}: an "
                    "edge_index must be an integer tensor [2, E] (use .long()), and a dense "
                    "adjacency must be square [N, N]."
                )
        else:
            edge_index = as_edge_index(graph_like, name)
            if num_nodes is not None:
                check_node_ids(edge_index, num_nodes, name)
            graph = Graph(edge_index, num_nodes)
    else:
        raise TypeError(
            f"{name} must be an edge_index tensor [2, E], a gnnkit.Graph, a torch sparse or "
            f"dense adjacency, a scipy sparse matrix, a networkx graph or a PyG Data; got "
            f"{type(graph_like).__name__}."
        )
    if num_nodes is not None and graph.num_nodes != num_nodes:
        raise ValueError(
            f"{name} has {graph.num_nodes} nodes but {num_nodes} were expected (x has "
            f"{num_nodes} rows); give one feature row per node."
        )
    return graph


def networkx_node_order(graph: nx.Graph) -> list:
    """Nodes sorted when all are integers (1..n in a figure maps to 0..n-1), else as stored."""
    nodes = list(graph.nodes())
    if all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in nodes):
        return sorted(nodes)
    return nodes


def sparse_csr(rowptr: Tensor, col: Tensor, values: Tensor, num_nodes: int) -> Tensor:
    """A torch sparse CSR tensor [N, N] from trusted parts (no invariant re-check)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            rowptr, col, values, (num_nodes, num_nodes), check_invariants=False
        )


def _is_pyg_data(value) -> bool:
    return hasattr(value, "edge_index") and hasattr(value, "num_nodes") and not isinstance(
        value, Graph
    )


def _pairs_to_edge_index(pairs, one_indexed: bool) -> Tensor:
    """[E, 2]-like pairs of ints -> [2, E] long tensor, checked and shifted."""
    if isinstance(pairs, Tensor):
        tensor = pairs
    else:
        rows = list(pairs)
        for k, pair in enumerate(rows):
            if not hasattr(pair, "__len__") or len(pair) != 2:
                raise ValueError(f"edges[{k}] = {pair!r} is not a pair (u, v).")
            for value in pair:
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise TypeError(
                        f"edges[{k}] = {pair!r} holds {value!r}; node ids must be integers."
                    )
        tensor = torch.tensor(rows, dtype=torch.long).reshape(-1, 2)
    if tensor.is_floating_point():
        raise TypeError("edges must hold integer node ids; got floating values.")
    if tensor.dim() != 2 or tensor.size(1) != 2:
        raise ValueError(f"edges must be a list of (u, v) pairs, got shape {tuple(tensor.shape)}.")
    edge_index = tensor.t().long()
    if one_indexed:
        if edge_index.numel() and int(edge_index.min()) < 1:
            raise ValueError(
                f"edges contain node id {int(edge_index.min())} but one_indexed=True means ids "
                "start at 1; use one_indexed=False for 0-based ids."
            )
        edge_index = edge_index - 1
    elif edge_index.numel() and int(edge_index.min()) < 0:
        raise ValueError(
            f"edges contain the negative node id {int(edge_index.min())}; ids start at 0 "
            "(or at 1 with one_indexed=True)."
        )
    return edge_index.contiguous()


def _count(edge_index: Tensor) -> int:
    return int(edge_index.max()) + 1 if edge_index.numel() else 0


def _argsort_pairs(major: Tensor, minor: Tensor, num_nodes: int) -> Tensor:
    """Stable order of edges by (major, minor)."""
    return torch.argsort(major * max(num_nodes, 1) + minor, stable=True)


def _pointer(counts: Tensor) -> Tensor:
    pointer = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=pointer[1:])
    return pointer
