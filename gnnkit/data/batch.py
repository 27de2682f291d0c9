"""Many small graphs as one block-diagonal graph (for graph-level tasks).

A batch of B graphs with n_0, ..., n_{B-1} nodes is one :class:`gnnkit.Graph` on
N = sum n_b nodes whose adjacency is block-diagonal: graph b's node k becomes node
``ptr[b] + k``. A layer run on the batch therefore runs on every graph at once, and a
readout (:func:`gnnkit.nn.global_add_pool`, ...) reduces the rows ``ptr[b]:ptr[b+1]``.
"""

from __future__ import annotations

import itertools
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
        Either way it is handed to the batch's Graph, so layers do not sort again.

        Cost: a few C-level passes over ``items`` (list comprehensions) and one concatenation
        per field; the checks run on the concatenated tensors and per-item counts, and only
        when one fails is the offending item looked for, to name it. Raw ``edge_index``
        items ([2, E_b] integer tensors) are checked and grouped all at once, without a
        Graph per item. A dataset that keeps all its graphs in global arrays batches any
        indices faster still with :meth:`from_arrays`.

        Raises:
            ValueError: empty ``items``; an item whose x rows do not match its graph's node
                count; an edge_index with a node id outside its graph; feature widths,
                dtypes or label shapes that differ from item 0's.
            TypeError: an item that is not a triple, x not a floating 2-D tensor, y neither a
                number nor a tensor.
        """
        items = _as_list(items)
        if not all(type(item) in _PAIRS and len(item) == 3 for item in items):
            for k, item in enumerate(items):
                _check_triple(k, item)
        graphs, xs, ys = zip(*items)
        x = _features(xs)
        device = x.device
        rows = list(map(Tensor.size, xs, itertools.repeat(0)))
        y = _labels(ys, device)
        num_nodes = torch.tensor(rows, dtype=torch.long)
        ptr = _pointer(num_nodes).to(device)
        num_nodes = num_nodes.to(device)
        total_nodes = x.shape[0]
        batch = torch.repeat_interleave(torch.arange(len(rows), device=device), num_nodes,
                                        output_size=total_nodes)
        kinds = set(map(type, graphs))
        if kinds == {Tensor} and _all_edge_lists(graphs):
            graph = _grouped_by_target(graphs, rows, num_nodes, ptr, check=True)
        else:
            if kinds != {Graph}:
                graphs = [g if type(g) is Graph else as_graph(g, n, name=f"items[{k}] graph")
                          for k, (g, n) in enumerate(zip(graphs, rows, strict=True))]
            counts = [g.num_nodes for g in graphs]
            if counts != rows:
                k = next(k for k, (a, b) in enumerate(zip(counts, rows, strict=True)) if a != b)
                as_graph(graphs[k], rows[k], name=f"items[{k}] graph")  # raises, naming k
            if all("csr" in g.__dict__ for g in graphs):
                graph = _shifted_csrs(_cached_csrs(graphs), ptr, num_nodes, device)
            else:
                graph = _grouped_by_target([g.edge_index for g in graphs], rows, num_nodes,
                                           ptr, check=False)
        return cls(graph=graph, x=x, y=y, batch=batch, ptr=ptr, edge_ptr=graph.csr[0][ptr])

    @classmethod
    def from_arrays(cls, indices, *, x: Tensor, y: Tensor, ptr: Tensor, edge_ptr: Tensor,
                    rowptr: Tensor, col: Tensor, csc=None) -> GraphBatch:
        """Batch the graphs ``indices`` of a dataset that keeps all its G graphs in global
        arrays (the layout of :class:`gnnkit.data.TUDataset`), with vectorised index
        arithmetic and no Python step per graph.

        Graph g owns the nodes ``ptr[g]:ptr[g+1]`` and the CSR positions
        ``edge_ptr[g]:edge_ptr[g+1]`` of the dataset's global CSR (by target) over all its
        nodes. The batch takes, for each chosen graph, its node rows of ``x`` and its rows of
        the global CSR, shifted to the batch's node and edge offsets: the result equals
        :meth:`from_list` on the items ``(graph g, x[ptr[g]:ptr[g+1]], y[g])``.

        Args:
            indices: B >= 1 graph indices (a 1-D integer tensor or a sequence of ints) in
                ``-G..G-1`` (negative ones count from the end); repeats are allowed.
            x: [N_all, F] node features of all graphs.
            y: [G, ...] one label per graph.
            ptr: [G + 1] long node boundaries of the graphs.
            edge_ptr: [G + 1] long boundaries of the graphs' edges in CSR order
                (``rowptr[ptr]``).
            rowptr: [N_all + 1] long, col: [E_all] long: the global CSR by target; no edge
                joins two graphs.
            csc: optional ``(colptr [N_all + 1], row [E_all], csr_to_csc [E_all])``, the
                global transpose (``Graph.csc`` of the global graph): when given, the batch's
                graph gets its transpose the same way (no sort in a backward pass).

        The global arrays are trusted to be consistent (the dataset checked them once); the
        batch's CSR is still checked when its Graph is made (one vectorised pass).

        Raises:
            TypeError: indices not integers.
            ValueError: empty indices, or one outside ``-G..G-1`` (its position is named).
        """
        num_graphs = ptr.numel() - 1
        index = _check_indices(indices, num_graphs, ptr.device)
        starts, ends = ptr[index], ptr[index + 1]
        edge_starts, edge_ends = edge_ptr[index], edge_ptr[index + 1]
        num_nodes, num_edges = ends - starts, edge_ends - edge_starts
        new_ptr, new_edge_ptr = _pointer(num_nodes), _pointer(num_edges)
        total_nodes, total_edges = int(new_ptr[-1]), int(new_edge_ptr[-1])
        node_shift, edge_shift = starts - new_ptr[:-1], edge_starts - new_edge_ptr[:-1]
        graph_ids = torch.arange(index.numel(), device=ptr.device)
        batch = torch.repeat_interleave(graph_ids, num_nodes, output_size=total_nodes)
        owner = torch.repeat_interleave(graph_ids, num_edges, output_size=total_edges)
        nodes = torch.arange(total_nodes, device=ptr.device) + node_shift[batch]
        edges = torch.arange(total_edges, device=ptr.device) + edge_shift[owner]
        node_edge_shift, edge_node_shift = edge_shift[batch], node_shift[owner]

        def rows_of(pointer: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
            local = torch.empty(total_nodes + 1, dtype=torch.long, device=ptr.device)
            torch.sub(pointer[nodes], node_edge_shift, out=local[:-1])
            local[-1] = total_edges
            return local, ids[edges] - edge_node_shift

        graph = Graph.from_csr(*rows_of(rowptr, col), total_nodes)
        if csc is not None:
            colptr, row, csr_to_csc = csc
            graph._keep("csc", (*rows_of(colptr, row), csr_to_csc[edges] - edge_shift[owner]))
        return cls(graph=graph, x=x.index_select(0, nodes.to(x.device)),
                   y=y.index_select(0, index.to(y.device)), batch=batch, ptr=new_ptr,
                   edge_ptr=new_edge_ptr)

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


_PAIRS = (tuple, list)
_INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _check_triple(k: int, item) -> None:
    if not isinstance(item, _PAIRS) or len(item) != 3:
        raise TypeError(f"items[{k}] must be a (graph, x, y) triple, got "
                        f"{type(item).__name__}"
                        f"{f' of length {len(item)}' if isinstance(item, _PAIRS) else ''}.")


def _check_x(k: int, x) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        what = f"{x.dtype} tensor of shape {list(x.shape)}" if isinstance(x, Tensor) else (
            type(x).__name__)
        raise TypeError(f"items[{k}]: x must be a floating tensor [n, F] (one row per node), "
                        f"got {what}.")


def _features(xs: tuple) -> Tensor:
    """[N, F]: the items' x concatenated, after checking (on the set of their types, dims and
    dtypes, per item only to name a bad one) that they are floating [n_b, F] tensors of one
    width, dtype and device."""
    dtypes = {x.dtype for x in xs} if set(map(type, xs)) == {Tensor} else None
    if dtypes is None or set(map(Tensor.dim, xs)) != {2} or len(dtypes) != 1 or not (
        xs[0].is_floating_point()
    ):
        for k, x in enumerate(xs):
            _check_x(k, x)
    try:
        out = torch.cat(xs)
    except RuntimeError:
        out = None
    if out is None or len(dtypes or ()) != 1:
        first = xs[0]
        for k, x in enumerate(xs):
            if x.shape[1] != first.shape[1]:
                raise ValueError(
                    f"items[{k}]: x has {x.shape[1]} features per node but items[0] has "
                    f"{first.shape[1]}; every graph of a batch needs the same feature width.")
            if x.dtype != first.dtype or x.device != first.device:
                raise ValueError(f"items[{k}]: x is {x.dtype} on {x.device} but items[0]'s is "
                                 f"{first.dtype} on {first.device}; convert them alike.")
        if out is None:
            out = torch.cat(xs)  # fails with torch's own message: nothing named above
    return out


def _label(k: int, y, device) -> Tensor:
    if isinstance(y, Tensor):
        return y if y.device == device else y.to(device)
    if isinstance(y, (numbers.Number, np.number)) and not isinstance(y, (bool, np.bool_)):
        return torch.tensor(y, device=device)
    raise TypeError(f"items[{k}]: y must be a number or a tensor (the graph's label or "
                    f"target), got {type(y).__name__}.")


def _labels(ys: tuple, device) -> Tensor:
    """[B, ...]: the labels stacked. Python ints and floats become one tensor in one call;
    tensors are stacked after checking their shapes (as a set; per item only to name a bad
    one); anything else is converted item by item."""
    kinds = set(map(type, ys))
    if kinds <= {int, float}:
        return torch.tensor(ys, device=device)
    if kinds != {Tensor}:
        ys = [_label(k, y, device) for k, y in enumerate(ys)]
    if len({y.shape for y in ys}) != 1:
        first = ys[0]
        k = next(k for k, y in enumerate(ys) if y.shape != first.shape)
        raise ValueError(f"items[{k}]: y has shape {list(ys[k].shape)} but items[0]'s has "
                         f"{list(first.shape)}; every label of a batch needs one shape.")
    if {y.device for y in ys} != {device}:
        ys = [y.to(device) for y in ys]
    return torch.stack(ys)


def _all_edge_lists(graphs: tuple) -> bool:
    """Every graph an integer [2, E_b] tensor (what as_graph reads as an edge_index)."""
    return set(map(Tensor.dim, graphs)) == {2} and set(
        map(Tensor.size, graphs, itertools.repeat(0))) == {2} and {
        g.dtype for g in graphs} <= set(_INTEGER_DTYPES)


def _grouped_by_target(edge_lists: list, rows: list, num_nodes: Tensor, ptr: Tensor, *,
                       check: bool) -> Graph:
    """The block-diagonal Graph of the items' edge lists ([2, E_b], local ids), its CSR built
    with one stable sort by (graph, target, source): the same order as each graph's own CSR.

    With ``check``, every id is first checked against its own graph's node count in one
    pass (the item of a bad id is then named by :func:`gnnkit.as_graph`'s message). The sort
    key ``base_b + target * n_b + source`` (``base_b`` the sum of n_c^2 over earlier graphs)
    is local to each graph's block, so it is small (int32 when it fits, which sorts fastest).
    """
    device = ptr.device
    edges = torch.cat(edge_lists, dim=1).to(device=device, dtype=torch.long)
    counts = torch.tensor(list(map(Tensor.size, edge_lists, itertools.repeat(1))),
                          device=device)
    total_nodes, total_edges = int(ptr[-1]), edges.shape[1]
    owner = torch.repeat_interleave(torch.arange(len(edge_lists), device=device), counts,
                                    output_size=total_edges)
    size = num_nodes.index_select(0, owner)
    source, target = edges[0], edges[1]
    if check and total_edges:
        bad = (torch.minimum(source, target) < 0) | (torch.maximum(source, target) >= size)
        if bool(bad.any()):
            k = int(owner[int(torch.nonzero(bad)[0])])
            as_graph(edge_lists[k], rows[k], name=f"items[{k}] graph")  # raises, naming k
    base = _pointer(num_nodes * num_nodes)
    key = base.index_select(0, owner) + target * size + source
    if int(base[-1]) < 2**31:
        key = key.int()
    order = torch.argsort(key, stable=True)  # keeps every graph's block where it is
    shift = ptr[:-1].index_select(0, owner)
    col = source.index_select(0, order) + shift
    in_degree = torch.bincount(target + shift, minlength=total_nodes)
    return Graph.from_csr(_pointer(in_degree), col, total_nodes)


def _cached_csrs(graphs: list) -> list:
    """Each graph's cached CSR, after the check that every read of a Graph's cache makes (no
    tensor of the graph edited in place since it was stored), in one pass over the version
    counters of all graphs; a graph that fails it is checked on its own, which raises."""
    stamps = [g._stamps for g in graphs]
    if not all(stamp is not None for s in stamps for stamp in s.values()) or not all(
        t._version == v for s in stamps for stamp in s.values() for t, v in stamp
    ):
        for g in graphs:
            g._check_unedited()
    return [g.__dict__["csr"] for g in graphs]


def _shifted_csrs(csrs: list, ptr: Tensor, num_nodes: Tensor, device) -> Graph:
    """The block-diagonal Graph from each graph's CSR ``(rowptr_b, col_b, _)``: the rowptrs
    (last entries dropped) shifted by the edge offsets, the cols by the node offsets."""
    cols = [c[1] for c in csrs]
    num_edges = torch.tensor(list(map(Tensor.numel, cols)), dtype=torch.long, device=device)
    edge_ptr = _pointer(num_edges)
    total_nodes, total_edges = int(ptr[-1]), int(edge_ptr[-1])
    col = torch.cat(cols).to(device)
    col += torch.repeat_interleave(ptr[:-1], num_edges, output_size=total_edges)
    full = torch.cat([c[0] for c in csrs]).to(device)  # N + B entries: each graph's n_b + 1
    rowptr = torch.empty(total_nodes + 1, dtype=torch.long, device=device)
    lasts = ptr[1:] + torch.arange(len(csrs), device=device)  # each graph's last entry
    keep = torch.ones(full.numel(), dtype=torch.bool, device=device)
    keep[lasts] = False
    torch.add(full[keep], torch.repeat_interleave(edge_ptr[:-1], num_nodes,
                                                  output_size=total_nodes), out=rowptr[:-1])
    rowptr[-1] = total_edges
    return Graph.from_csr(rowptr, col, total_nodes)


def _check_indices(indices, num_graphs: int, device) -> Tensor:
    """[B] long indices in 0..G-1 from ``indices`` in -G..G-1."""
    if not isinstance(indices, Tensor):
        try:
            indices = torch.as_tensor(indices)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"indices must be a 1-D integer tensor or a sequence of ints, got "
                            f"{type(indices).__name__}.") from None
    if indices.numel() == 0:
        raise ValueError("indices is empty; a batch needs at least one graph.")
    if indices.dtype not in _INTEGER_DTYPES or indices.dim() != 1:
        raise TypeError(f"indices must be a 1-D integer tensor (graph ids), got "
                        f"{indices.dtype} of shape {list(indices.shape)}.")
    index = indices.to(device=device, dtype=torch.long)
    bad = (index < -num_graphs) | (index >= num_graphs)
    if bool(bad.any()):
        k = int(torch.nonzero(bad)[0])
        raise ValueError(f"indices[{k}] = {int(index[k])} is outside -{num_graphs}.."
                         f"{num_graphs - 1}; the dataset has {num_graphs} graphs.")
    return torch.where(index < 0, index + num_graphs, index)


def _pointer(counts: Tensor) -> Tensor:
    pointer = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=pointer[1:])
    return pointer
