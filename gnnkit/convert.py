"""The converters of :class:`gnnkit.Graph`: from and to edge lists, networkx, matrices
(nested lists, numpy, torch dense or sparse, scipy) and PyTorch Geometric.

They are the methods ``Graph.from_*`` and ``graph.to_*``, written here as a mixin so that
``graph.py`` holds only the container and its cached layouts. Convention as everywhere: an
edge j -> i is the column ``(j, i)`` of ``edge_index`` and the entry ``A[i, j]``.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ._validate import as_matrix, is_torch_sparse


class GraphConversions:
    """``Graph.from_*`` constructors and ``graph.to_*`` views (mixed into :class:`Graph`)."""

    @classmethod
    def from_edge_list(
        cls, pairs, num_nodes: int | None = None, *, one_indexed: bool = False,
        undirected: bool = False,
    ) -> GraphConversions:
        """From ``[(u, v), ...]`` meaning an edge u -> v (both ways when ``undirected``).

        With ``one_indexed=True`` the ids count from 1, as in most textbook figures, and are
        shifted to start at 0; ``num_nodes`` always counts nodes, not the largest id.
        """
        graph = cls(_pairs_to_edge_index(pairs, one_indexed), num_nodes)
        return graph.to_undirected() if undirected else graph

    @classmethod
    def from_networkx(cls, graph: nx.Graph) -> GraphConversions:
        """From a networkx graph. Nodes are numbered in sorted order when they are all
        integers (so a figure's 1..n becomes 0..n-1), else in ``graph.nodes`` order.
        An undirected graph gives both directions of every edge (a self-loop once); the
        parallel edges of a ``MultiGraph`` / ``MultiDiGraph`` are all kept, as in
        ``to_numpy_array``, so each counts in a mean."""
        if not isinstance(graph, nx.Graph):
            raise TypeError(f"graph must be a networkx graph, got {type(graph).__name__}.")
        nodes = networkx_node_order(graph)
        index = {node: k for k, node in enumerate(nodes)}
        pairs = [(index[u], index[v]) for u, v in graph.edges()]  # multigraphs: one per edge
        edge_index = _pairs_to_edge_index(pairs, one_indexed=False)
        if not graph.is_directed():  # both directions of each edge, a self-loop once
            loops = edge_index[0] == edge_index[1]
            edge_index = torch.cat([edge_index, edge_index[:, ~loops].flip(0)], dim=1)
        result = cls._trusted(edge_index, len(nodes))
        return result if graph.is_directed() else result.sorted()

    @classmethod
    def from_matrix(cls, matrix, name: str = "A") -> GraphConversions:
        """From an adjacency matrix (nested lists, numpy, dense or sparse torch, scipy):
        every non-zero ``A[i, j]`` is an edge j -> i."""
        if (sp.issparse(matrix) and np.iscomplexobj(matrix.data)) or (
            is_torch_sparse(matrix) and matrix.is_complex()
        ):
            raise TypeError(f"{name} must hold real numbers, got complex entries.")
        if sp.issparse(matrix):
            coo = sp.coo_matrix(matrix, copy=True)
            coo.sum_duplicates()  # duplicates that sum to 0 are no edge
            if coo.shape[0] != coo.shape[1]:
                raise ValueError(f"{name} must be square (n x n), got shape {coo.shape}.")
            if not np.isfinite(coo.data).all():
                raise ValueError(f"{name} contains NaN or infinity; replace it with a number.")
            keep = coo.data != 0
            rows = torch.from_numpy(coo.row[keep].astype(np.int64))
            cols = torch.from_numpy(coo.col[keep].astype(np.int64))
            return cls(torch.stack([cols, rows]), coo.shape[0]).sorted()
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
    def from_pyg(cls, data) -> GraphConversions:
        """From a ``torch_geometric.data.Data`` (its ``edge_index`` and ``num_nodes``)."""
        if not is_pyg_data(data):
            raise TypeError(
                f"data must be a torch_geometric Data with edge_index and num_nodes, got "
                f"{type(data).__name__}."
            )
        if is_pyg_edge_index(data.edge_index):
            return cls.from_pyg_edge_index(data.edge_index, data.num_nodes)
        return cls(data.edge_index, data.num_nodes)

    @classmethod
    def from_pyg_edge_index(cls, edge_index, num_nodes: int | None = None) -> GraphConversions:
        """From a PyG ``EdgeIndex`` (a [2, E] tensor that carries its sort order and cached
        pointers). One sorted by target (``sort_order="col"``) is used without sorting again:
        its cached column pointers are this Graph's CSR. Other orders are sorted here."""
        rows, cols = edge_index.sparse_size()
        sizes = {size for size in (rows, cols, num_nodes) if size is not None}
        if len(sizes) > 1:
            raise ValueError(
                f"edge_index has sparse_size ({rows}, {cols}) but num_nodes={num_nodes}; a "
                "graph's adjacency is square, N x N."
            )
        num_nodes = sizes.pop() if sizes else None
        if edge_index.sort_order == "col" and num_nodes is not None:
            (colptr, row), _ = edge_index.get_csc()
            return cls.from_csr(colptr, row, num_nodes)
        return cls(edge_index.as_tensor(), num_nodes)

    # ------------------------------------------------------------------ out
    def to_edge_list(self, *, one_indexed: bool = False) -> list[tuple[int, int]]:
        """``[(u, v), ...]`` for the edges u -> v, in stored order."""
        shift = 1 if one_indexed else 0
        return [(u + shift, v + shift) for u, v in self.edge_index.t().tolist()]

    def to_dense(self, dtype: torch.dtype = torch.long) -> Tensor:
        """A [N, N] with ``A[i, j]`` = number of edges j -> i.

        Raises:
            ValueError: the N x N matrix cannot be allocated (say for N = 10^6: 8 TB).
        """
        n = self.num_nodes
        try:
            dense = torch.zeros(n, n, dtype=dtype, device=self.device)
        except (RuntimeError, MemoryError, TypeError):  # out of memory, or n^2 beyond int64
            size = n * n * torch.empty(0, dtype=dtype).element_size()
            raise ValueError(
                f"a dense {n} x {n} matrix needs {size / 1e9:.1f} GB, more than can be "
                "allocated; use the sparse form (to_sparse(), to_scipy()) or fewer nodes."
            ) from None
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


def networkx_node_order(graph: nx.Graph) -> list:
    """Nodes sorted when all are integers (1..n in a figure maps to 0..n-1), else as stored."""
    nodes = list(graph.nodes())
    if all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in nodes):
        return sorted(nodes)
    return nodes


def sparse_csr(rowptr: Tensor, col: Tensor, values: Tensor, num_nodes: int) -> Tensor:
    """A torch sparse CSR tensor [N, N] from trusted parts (no invariant re-check)."""
    return torch.sparse_csr_tensor(rowptr, col, values, (num_nodes, num_nodes),
                                   check_invariants=False)


def is_pyg_data(value) -> bool:
    """True for a ``torch_geometric.data.Data``-like object (edge_index and num_nodes)."""
    return hasattr(value, "edge_index") and hasattr(value, "num_nodes") and not isinstance(
        value, GraphConversions
    )


def is_pyg_edge_index(value) -> bool:
    """True for a ``torch_geometric.EdgeIndex`` (checked by name: PyG is not imported here)."""
    return isinstance(value, Tensor) and type(value).__name__ == "EdgeIndex" and hasattr(
        value, "get_csc"
    )


def _pairs_to_edge_index(pairs, one_indexed: bool) -> Tensor:
    """[E, 2]-like pairs of ints -> [2, E] long tensor, checked and shifted."""
    if isinstance(pairs, Tensor):
        tensor = pairs
    else:
        if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__iter__"):
            raise TypeError(
                f"edges must be a list of (u, v) pairs, got {type(pairs).__name__}; e.g. "
                "[(0, 1), (1, 2)]."
            )
        rows = list(pairs)
        for k, pair in enumerate(rows):
            if not hasattr(pair, "__len__") or len(pair) != 2:
                raise ValueError(f"edges[{k}] = {pair!r} is not a pair (u, v).")
            for value in pair:
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise TypeError(
                        f"edges[{k}] = {pair!r} holds {value!r}; node ids must be integers."
                    )
                if not -(2**63) <= value < 2**63:
                    raise ValueError(f"edges[{k}] = {pair!r}: node id {value} exceeds int64.")
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
