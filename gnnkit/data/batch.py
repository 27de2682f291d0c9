"""Many small graphs as one block-diagonal graph (for graph-level tasks).

A batch of B graphs with n_0, ..., n_{B-1} nodes is one :class:`gnnkit.Graph` on
N = sum n_b nodes whose adjacency is block-diagonal: graph b's node k becomes node
``ptr[b] + k``. A layer run on the batch therefore runs on every graph at once, and a
readout (:func:`gnnkit.nn.global_add_pool`, ...) reduces the rows ``ptr[b]:ptr[b+1]``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..graph import Graph, as_graph


@dataclass(frozen=True, repr=False)
class GraphBatch:
    """B graphs batched into one block-diagonal graph.

    Attributes:
        graph: the block-diagonal :class:`gnnkit.Graph` on N nodes, its CSR (by target)
            already built from the graphs' own CSRs: edges are numbered in CSR order, graph
            b's edges are the CSR positions ``edge_ptr[b]:edge_ptr[b+1]``.
        x: [N, F] node features, graph b's in rows ``ptr[b]:ptr[b+1]``.
        y: [B, ...] one label (or target) per graph.
        batch: [N] long, the graph of each node (sorted).
        ptr: [B + 1] long node boundaries (``ptr[0] = 0``, ``ptr[B] = N``).
        edge_ptr: [B + 1] long edge boundaries in CSR order.

    Build one with :meth:`from_list`; :meth:`unbatch` gives the graphs back.
    """

    graph: Graph
    x: Tensor
    y: Tensor
    batch: Tensor
    ptr: Tensor
    edge_ptr: Tensor

    @property
    def num_graphs(self) -> int:
        """B."""
        return self.ptr.numel() - 1

    @property
    def num_nodes(self) -> int:
        """N, the nodes of all graphs."""
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        """The edges of all graphs."""
        return self.graph.num_edges

    def __len__(self) -> int:
        return self.num_graphs

    @classmethod
    def from_list(cls, items) -> GraphBatch:
        """Batch ``items``, a non-empty sequence of ``(graph, x, y)``.

        Args:
            items: each item is ``(graph, x, y)``: ``graph`` a :class:`gnnkit.Graph` or any
                form :func:`gnnkit.as_graph` takes, with n_b nodes; ``x`` [n_b, F] node
                features (same F and dtype for every item); ``y`` a number or a tensor
                (same shape for every item).

        The block CSR is assembled from each graph's CSR (``graph.csr``) shifted by the
        graph's node and edge offsets when every graph has it cached (a Graph made by
        :meth:`Graph.from_csr`, or one that was batched or used by a layer before); otherwise
        the shifted edge lists are concatenated and grouped by target with one stable sort.
        Either way it is handed to the batch's Graph, so layers do not sort again. Cost:
        O(B) Python steps to collect tensors, then one concatenation per field.

        Raises:
            ValueError: empty ``items``; an item whose x rows do not match its graph's node
                count; feature widths or label shapes that differ from item 0's.
            TypeError: an item that is not a triple, x not a floating 2-D tensor, y neither a
                number nor a tensor.
        """
        items = _as_list(items)
        graphs, xs, ys = [], [], []
        for k, item in enumerate(items):
            graph, x, y = _check_item(k, item)
            if xs:
                _check_like_first(k, x, y, xs[0], ys[0])
            graphs.append(as_graph(graph, x.shape[0], name=f"items[{k}] graph"))
            xs.append(x)
            ys.append(y)
        device = xs[0].device
        # One read of each graph's layout (every read of a Graph's cache is checked).
        cached = all("csr" in g.__dict__ for g in graphs)
        pieces = [g.csr[:2] if cached else g.edge_index for g in graphs]
        num_nodes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
        num_edges = torch.tensor([p[1].numel() if cached else p.shape[1] for p in pieces],
                                 dtype=torch.long)
        ptr, edge_ptr = _pointer(num_nodes), _pointer(num_edges)
        total_nodes, total_edges = int(ptr[-1]), int(edge_ptr[-1])
        ptr, edge_ptr = ptr.to(device), edge_ptr.to(device)
        num_nodes, num_edges = num_nodes.to(device), num_edges.to(device)
        node_offset = torch.repeat_interleave(ptr[:-1], num_edges, output_size=total_edges)
        if cached:  # shift each graph's CSR by its node and edge offsets
            rowptr = torch.cat([p[0][:-1] for p in pieces] + [edge_ptr[-1:].cpu()])
            rowptr = rowptr.to(device)
            rowptr[:-1] += torch.repeat_interleave(edge_ptr[:-1], num_nodes,
                                                   output_size=total_nodes)
            col = torch.cat([p[1] for p in pieces]).to(device) + node_offset
        else:  # group the shifted edges by target (ties keep their order)
            edges = torch.cat(pieces, dim=1).to(device) + node_offset
            order = torch.argsort(edges[1] * max(total_nodes, 1) + edges[0], stable=True)
            col = edges[0][order]
            counts = torch.zeros(total_nodes, dtype=torch.long, device=device)
            counts.index_add_(0, edges[1], torch.ones_like(edges[1]))
            rowptr = _pointer(counts)
        return cls(
            graph=Graph.from_csr(rowptr, col, total_nodes),
            x=torch.cat(xs),
            y=torch.stack(ys),
            batch=torch.repeat_interleave(torch.arange(len(graphs), device=device), num_nodes,
                                          output_size=total_nodes),
            ptr=ptr,
            edge_ptr=rowptr[ptr],
        )

    def unbatch(self) -> list[tuple[Graph, Tensor, Tensor]]:
        """The items back: ``[(graph_b, x_b, y_b), ...]``.

        ``graph_b`` is a :class:`gnnkit.Graph` made from its slice of the block CSR, so it has
        the same CSR as the graph that went in (edges in CSR order); ``x_b`` and ``y_b`` are
        views of the batch's tensors.
        """
        rowptr, col, _ = self.graph.csr
        nodes, edges = self.ptr.tolist(), self.edge_ptr.tolist()
        out = []
        for b in range(self.num_graphs):
            n0, n1, e0, e1 = nodes[b], nodes[b + 1], edges[b], edges[b + 1]
            graph = Graph.from_csr(rowptr[n0:n1 + 1] - e0, col[e0:e1] - n0, n1 - n0)
            out.append((graph, self.x[n0:n1], self.y[b]))
        return out

    def to(self, device) -> GraphBatch:
        """The batch with its tensors on ``device``."""
        rowptr, col, _ = self.graph.csr
        return GraphBatch(
            graph=Graph.from_csr(rowptr.to(device), col.to(device), self.num_nodes),
            x=self.x.to(device), y=self.y.to(device), batch=self.batch.to(device),
            ptr=self.ptr.to(device), edge_ptr=self.edge_ptr.to(device),
        )

    def __repr__(self) -> str:
        return (f"GraphBatch(num_graphs={self.num_graphs}, num_nodes={self.num_nodes}, "
                f"num_edges={self.num_edges}, x={list(self.x.shape)}, y={list(self.y.shape)})")


def _as_list(items) -> list:
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
        if hasattr(items, "__iter__") and not isinstance(items, (str, bytes, Tensor)):
            items = list(items)
        else:
            raise TypeError(f"items must be a list of (graph, x, y) tuples, got "
                            f"{type(items).__name__}.")
    if len(items) == 0:
        raise ValueError("items is empty; a batch needs at least one (graph, x, y) item.")
    return list(items)


def _check_item(k: int, item):
    if not isinstance(item, (tuple, list)) or len(item) != 3:
        raise TypeError(f"items[{k}] must be a (graph, x, y) triple, got "
                        f"{type(item).__name__}"
                        f"{f' of length {len(item)}' if isinstance(item, (tuple, list)) else ''}.")
    graph, x, y = item
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        what = f"{x.dtype} tensor of shape {list(x.shape)}" if isinstance(x, Tensor) else (
            type(x).__name__)
        raise TypeError(f"items[{k}]: x must be a floating tensor [n, F] (one row per node), "
                        f"got {what}.")
    if isinstance(y, Tensor):
        y = y if y.device == x.device else y.to(x.device)
    elif isinstance(y, (numbers.Number, np.number)) and not isinstance(y, (bool, np.bool_)):
        y = torch.tensor(y, device=x.device)
    else:
        raise TypeError(f"items[{k}]: y must be a number or a tensor (the graph's label or "
                        f"target), got {type(y).__name__}.")
    return graph, x, y


def _check_like_first(k: int, x: Tensor, y: Tensor, x0: Tensor, y0: Tensor) -> None:
    if x.shape[1] != x0.shape[1]:
        raise ValueError(f"items[{k}]: x has {x.shape[1]} features per node but items[0] has "
                         f"{x0.shape[1]}; every graph of a batch needs the same feature width.")
    if x.dtype != x0.dtype or x.device != x0.device:
        raise ValueError(f"items[{k}]: x is {x.dtype} on {x.device} but items[0]'s is "
                         f"{x0.dtype} on {x0.device}; convert them alike.")
    if y.shape != y0.shape:
        raise ValueError(f"items[{k}]: y has shape {list(y.shape)} but items[0]'s has "
                         f"{list(y0.shape)}; every label of a batch needs one shape.")


def _pointer(counts: Tensor) -> Tensor:
    pointer = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=pointer[1:])
    return pointer
