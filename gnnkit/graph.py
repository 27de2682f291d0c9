"""The graph container every gnnkit function and layer works on.

Convention (fixed once for the whole package): an edge j -> i is stored as the column
``edge_index[:, k] = (j, i)``; row 0 holds sources, row 1 targets; messages flow from j to i,
and the adjacency matrix has ``A[i, j] = 1`` (rows are receivers). Row i of ``D^-1 A H`` is
therefore the mean of the features of i's in-neighbours.
"""

from __future__ import annotations

import warnings

import networkx as nx
import scipy.sparse as sp
import torch
from torch import Tensor

from ._validate import (
    as_edge_index,
    check_int,
    check_node_ids,
    is_torch_sparse,
    tensor_graph_form,
)
from .convert import (
    GraphConversions,
    is_pyg_data,
    is_pyg_edge_index,
)

# torch warns once that its sparse CSR tensors are in beta; gnnkit builds them from checked
# parts only. Filtered here, at import, and not around each call: a warnings context inside a
# backward pass is a side effect that torch.compile refuses to trace.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

#: Largest N for which the pair key ``major * N + minor`` of two node ids fits in int64.
_PAIR_KEY_MAX_NODES = 3_037_000_499


class cached_tensor:
    """A lazily computed attribute of a :class:`Graph`, stored in the instance on first use.

    Thread-safe without a lock: two threads that race compute the same value and
    ``dict.setdefault`` (atomic) keeps the first, so every caller sees one object. The value
    is computed outside ``torch.inference_mode`` and without autograd, so a cache filled while
    evaluating under inference mode can still be used by a training step later. Every read
    first checks that no tensor of the graph was edited in place (``Graph._check_unedited``).
    """

    def __init__(self, compute):
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __get__(self, graph, owner=None):
        if graph is None:
            return self
        return _cached(graph, self.name, self.compute)

    def __set__(self, graph, value):  # a data descriptor: every read goes through __get__
        graph.__setattr__(self.name, value)


def _cached(graph: Graph, name: str, compute):
    """``graph``'s cached ``name``, computed by ``compute(graph)`` on first use (see
    :class:`cached_tensor`)."""
    graph._check_unedited()
    cache = graph.__dict__
    if name in cache:
        return cache[name]
    try:
        with torch.inference_mode(False), torch.no_grad():
            value = compute(graph)
    except RuntimeError as error:
        if "allocate" not in str(error) and "out of memory" not in str(error):
            raise
        raise ValueError(
            f"the {name} layout of a graph with {graph.num_nodes:,} nodes and "
            f"{graph.num_edges:,} edges does not fit in memory (it needs buffers of N + 1 "
            "entries); renumber the nodes 0..N-1 so that N counts only nodes in use."
        ) from None
    return graph._keep(name, value)


def _stamp(value) -> tuple[tuple[Tensor, int], ...]:
    """``(tensor, version counter)`` for each tensor in ``value`` (a tensor, a Graph or a tuple
    of them): an in-place edit of a tensor bumps its counter. Inference tensors carry no
    counter and are left out."""
    if isinstance(value, Tensor):
        return () if value.is_inference() else ((value, value._version),)
    if isinstance(value, tuple):
        return tuple(pair for item in value for pair in _stamp(item))
    return ()


class Graph(GraphConversions):
    """A directed graph: ``edge_index`` [2, E] (source j, target i) and ``num_nodes`` N.

    An undirected graph stores both directions of every edge. A Graph owns its tensors: the
    constructor copies ``edge_index``, so editing the caller's tensor afterwards changes
    nothing here. It is immutable: assigning an attribute raises ``AttributeError``, and an
    in-place edit of one of its tensors (``graph.edge_index[0, 0] = 2``) is detected by the
    tensors' version counters and makes the next use raise ``ValueError`` instead of serving a
    stale layout (checked in eager mode; code traced by ``torch.compile`` skips the check).
    The compressed sparse row (CSR) form sorted by target, its
    transpose and the degrees are computed once on first use and cached in the object (the
    only cache in gnnkit: hold a Graph to sort once, pass a raw ``edge_index`` to have it
    processed on every call).

    Args:
        edge_index: integer tensor [2, E]; ``edge_index[0]`` sources, ``edge_index[1]`` targets.
        num_nodes: N; defaults to ``max id + 1`` (0 for an empty edge list). Give it to keep
            isolated nodes at the end.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int | None = None):
        edge_index = as_edge_index(edge_index)
        if num_nodes is None:
            num_nodes = _count(edge_index)
        num_nodes = check_int(num_nodes, "num_nodes", low=0)
        check_node_ids(edge_index, num_nodes)
        self._init(num_nodes, edge_index=_own(edge_index))

    @classmethod
    def _trusted(cls, edge_index: Tensor, num_nodes: int) -> Graph:
        """A Graph from a checked, freshly made edge_index (no copy, no re-check)."""
        graph = cls.__new__(cls)
        graph._init(num_nodes, edge_index=edge_index)
        return graph

    @classmethod
    def from_csr(cls, rowptr: Tensor, col: Tensor, num_nodes: int | None = None) -> Graph:
        """A Graph from its CSR form sorted by target, without copying the tensors.

        The sources of the edges into node i are ``col[rowptr[i]:rowptr[i+1]]``; the edges are
        numbered in this order (``edge_index`` is ``[col, target]``). The tensors are used as
        they are (for example memory-mapped arrays shared by several processes) and must not
        be modified afterwards; only tensors made under ``torch.inference_mode`` are copied
        (autograd cannot save those).

        Args:
            rowptr: [N + 1] integer, starts at 0, non-decreasing, ends at E.
            col: [E] integer source ids in ``0..N-1``.
            num_nodes: N; defaults to ``rowptr.numel() - 1``.
        """
        for name, value, dim in (("rowptr", rowptr, 1), ("col", col, 1)):
            if not isinstance(value, Tensor) or value.dim() != dim or value.is_floating_point():
                raise TypeError(f"{name} must be a 1-D integer tensor, got {_describe(value)}.")
        rowptr, col = rowptr.long(), col.long()
        if rowptr.is_inference() or col.is_inference():  # made under inference_mode: a normal
            with torch.inference_mode(False):  # copy, so that autograd may save them later
                rowptr, col = rowptr.clone(), col.clone()
        if rowptr.numel() == 0:
            raise ValueError("rowptr must have N + 1 >= 1 entries (rowptr[0] = 0).")
        if num_nodes is None:
            num_nodes = rowptr.numel() - 1
        num_nodes = check_int(num_nodes, "num_nodes", low=0)
        if rowptr.numel() != num_nodes + 1:
            raise ValueError(
                f"rowptr has {rowptr.numel()} entries but num_nodes={num_nodes} needs "
                f"{num_nodes + 1}."
            )
        if int(rowptr[0]) != 0 or int(rowptr[-1]) != col.numel():
            raise ValueError(
                f"rowptr must start at 0 and end at E = col.numel() = {col.numel()}; got "
                f"{int(rowptr[0])} and {int(rowptr[-1])}."
            )
        if num_nodes and bool((rowptr[1:] < rowptr[:-1]).any()):
            raise ValueError("rowptr must be non-decreasing (counts of edges per target).")
        check_node_ids(col, num_nodes, "col")
        return cls._trusted_csr(rowptr, col, num_nodes)

    @classmethod
    def _trusted_csr(cls, rowptr: Tensor, col: Tensor, num_nodes: int) -> Graph:
        """A Graph from a checked CSR (no copy, no re-check)."""
        graph = cls.__new__(cls)
        graph._init(num_nodes, csr=(rowptr, col, None))
        return graph

    # ------------------------------------------------------------------ immutability
    def _init(self, num_nodes: int, **tensors) -> None:
        """Set ``num_nodes`` and the defining tensors (``edge_index`` or ``csr``)."""
        self.__dict__.update(num_nodes=num_nodes, _stamps={})
        for name, value in tensors.items():
            self._keep(name, value)

    def _keep(self, name: str, value):
        """Store ``value`` as ``name`` unless another thread stored it first (``setdefault``
        is atomic), and remember the version counters of its tensors; returns the kept one."""
        value = self.__dict__.setdefault(name, value)
        # Reading version counters breaks a torch.compile graph: while tracing, the stamp is
        # left to the next eager check.
        self._stamps.setdefault(name, None if torch.compiler.is_compiling() else _stamp(value))
        return value

    def _check_unedited(self) -> None:
        """Raise ``ValueError`` if a tensor of this graph was modified in place since it was
        stored (its version counter moved): the cached layouts would be stale."""
        if torch.compiler.is_compiling():
            return
        for name, stamp in list(self._stamps.items()):
            if stamp is None:
                self._stamps[name] = _stamp(self.__dict__[name])
                continue
            for tensor, version in stamp:
                if tensor._version != version:
                    raise ValueError(
                        f"graph.{name} was modified in place after the Graph was made; a Graph "
                        "is immutable and its cached layouts would be stale. Build a new Graph "
                        "from the edited edges instead: gnnkit.Graph(edge_index, num_nodes)."
                    )

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(
            f"a Graph is immutable: cannot set '{name}'; build a new one, e.g. "
            "gnnkit.Graph(graph.edge_index, num_nodes=...)."
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Graph is immutable: cannot delete '{name}'.")

    def __setstate__(self, state: dict) -> None:
        """Unpickled or deep-copied: the copied tensors have fresh version counters."""
        self.__dict__.update(state)
        self.__dict__["_stamps"] = dict.fromkeys(state["_stamps"])  # stamped on the next read

    # ------------------------------------------------------------------ basic facts
    @cached_tensor
    def edge_index(self) -> Tensor:
        """[2, E] long: sources (row 0) and targets (row 1)."""
        _, col, _ = self.csr
        return torch.stack([col, self.csr_target])

    @property
    def num_edges(self) -> int:
        """Number of edges E (parallel edges counted)."""
        if "edge_index" in self.__dict__:
            return self.edge_index.size(1)
        return self.csr[1].numel()

    @property
    def device(self) -> torch.device:
        """The device of the graph's index tensors."""
        return self.csr[1].device if "csr" in self.__dict__ else self.edge_index.device

    @property
    def source(self) -> Tensor:
        """[E] source node j of every edge."""
        return self.edge_index[0]

    @property
    def target(self) -> Tensor:
        """[E] target node i of every edge."""
        return self.edge_index[1]

    @cached_tensor
    def in_degree(self) -> Tensor:
        """[N] long: number of edges arriving at each node (row sums of A)."""
        if "csr" in self.__dict__:
            rowptr = self.csr[0]
            return rowptr[1:] - rowptr[:-1]
        return _count_per_node(self.target, self.num_nodes)

    @cached_tensor
    def out_degree(self) -> Tensor:
        """[N] long: number of edges leaving each node (column sums of A)."""
        return _count_per_node(self.csr[1], self.num_nodes)

    # ------------------------------------------------------------------ sparse layouts
    @cached_tensor
    def csr(self) -> tuple[Tensor, Tensor, Tensor]:
        """Edges grouped by target: ``(rowptr [N+1], col [E], perm [E])``.

        The sources of the edges into node i are ``col[rowptr[i]:rowptr[i+1]]`` (ascending
        for a Graph made from an edge_index; in the given order for one made by :meth:`from_csr`);
        ``perm[k]`` is the position in ``edge_index`` of the k-th edge in this order (None
        for a Graph made by :meth:`from_csr`, whose edges are numbered in CSR order).

        An ``edge_index`` already sorted by (target, source) costs one O(E) check and the
        pointer from the in-degrees; any other order one stable sort.
        """
        rowptr = _pointer(self.in_degree)
        perm = _order(self.target, self.source, self.num_nodes)
        if perm is None:  # already grouped by target (as PyG's datasets are): no sort, no copy
            self._keep("csr_target", self.target.contiguous())
            source = self.source.contiguous()
            return rowptr, source, torch.arange(source.numel(), device=source.device)
        return rowptr, self.source[perm], perm

    @cached_tensor
    def csr_target(self) -> Tensor:
        """[E] target of each edge in CSR order (the row of each stored entry)."""
        return torch.repeat_interleave(
            torch.arange(self.num_nodes, device=self.device), self.in_degree,
            output_size=self.num_edges,
        )

    @cached_tensor
    def csc(self) -> tuple[Tensor, Tensor, Tensor]:
        """The transpose of A in CSR form, i.e. edges grouped by source:
        ``(colptr [N+1], row [E], csr_to_csc [E])``.

        The targets reached from node j are ``row[colptr[j]:colptr[j+1]]``; ``csr_to_csc[k]``
        is the CSR position of the k-th edge in this order, so values stored in CSR order ``v``
        become ``v[csr_to_csc]`` in this order. No sort when ``edge_index`` is sorted by
        (source, target) or the CSR order already is the transpose's; else one stable sort.
        """
        if "_copies_of" in self.__dict__:  # heads copies: from the original's transpose
            return _copies_transpose(*self._copies_of)
        _, col, perm = self.csr
        target, num_nodes = self.csr_target, self.num_nodes
        csr_to_csc = None
        if perm is not None and _order(self.source, self.target, num_nodes) is None:
            # edge_index is sorted by (source, target): its own order is the transpose's, so
            # the k-th edge there is the k-th here, and its CSR position inverts perm (ties,
            # i.e. parallel edges, stay in edge_index order in both: the stable sort's result)
            csr_to_csc = torch.empty_like(perm).scatter_(
                0, perm, torch.arange(perm.numel(), device=perm.device))
        else:
            csr_to_csc = _order(col, target, num_nodes)
            if csr_to_csc is None:
                csr_to_csc = torch.arange(col.numel(), device=col.device)
        return _pointer(self.out_degree), target[csr_to_csc], csr_to_csc

    @cached_tensor
    def nodes_by_in_degree(self) -> tuple[tuple[int, Tensor], ...]:
        """``((d, nodes with in-degree d), ...)`` for every in-degree d > 0 that occurs,
        ascending: the groups that a median selects in together."""
        degrees = self.in_degree
        return tuple(
            (degree, torch.nonzero(degrees == degree).view(-1))
            for degree in torch.unique(degrees).tolist() if degree > 0
        )

    @cached_tensor
    def reverse(self) -> Graph:
        """The graph with every edge reversed (A^T), built from the cached transpose, so its
        CSR is this graph's :attr:`csc` (no second sort)."""
        colptr, row, _ = self.csc
        return Graph._trusted_csr(colptr, row, self.num_nodes)

    def heads_copies(self, heads: int) -> tuple[Graph, Tensor]:
        """``heads`` disjoint copies of this graph as one graph, so that a product over every
        attention head is one product: node ``i * heads + h`` is node i of copy h, with an edge
        ``j * heads + h -> i * heads + h`` for every edge j -> i and every h.

        Returns ``(copies, order)``: ``order`` [E * heads] says which value of this graph
        each edge of ``copies`` (in its CSR order) carries: values ``v`` [E, heads] in this
        graph's CSR order become ``v.reshape(-1)[order]``, and [N, heads, C] node features are
        ``x.reshape(N * heads, C)`` there. The transpose of ``copies`` (its :attr:`csc`, for
        backward passes) is made from this graph's when first needed, without a sort. Computed
        once per ``heads`` and cached: two index tensors of E * heads entries, two more with
        the transpose.
        """
        heads = check_int(heads, "heads", low=1)
        return _cached(self, f"_heads_copies_{heads}", lambda graph: _heads_copies(graph, heads))

    # ------------------------------------------------------------------ derived graphs
    def to(self, device) -> Graph:
        """The same graph with its tensors on ``device`` (``self`` if already there)."""
        if torch.device(device) == self.device:
            return self
        return Graph._trusted(self.edge_index.to(device), self.num_nodes)

    def remove_self_loops(self) -> Graph:
        """The graph without edges i -> i."""
        keep = self.source != self.target
        return Graph._trusted(self.edge_index[:, keep], self.num_nodes)

    def add_self_loops(self) -> Graph:
        """The graph without its self-loops, plus exactly one edge i -> i for every node.

        Computed once and cached, so a layer that adds self-loops on every call reuses it."""
        return self._with_self_loops

    @cached_tensor
    def _with_self_loops(self) -> Graph:
        keep = self.source != self.target
        # no self-loop to remove (the usual case): no masked copy. The loops go last, so an
        # edge_index sorted by target stays nearly sorted and its CSR sort is short.
        edges = self.edge_index if bool(keep.all()) else self.edge_index[:, keep]
        loops = torch.arange(self.num_nodes, device=self.device).repeat(2, 1)
        return Graph._trusted(torch.cat([edges, loops], dim=1), self.num_nodes)

    def coalesce(self) -> Graph:
        """The graph with duplicate edges merged, edges sorted by (target, source)."""
        order = _argsort_pairs(self.target, self.source, self.num_nodes)
        edges = self.edge_index[:, order]
        if edges.size(1) > 1:
            new = torch.ones(edges.size(1), dtype=torch.bool, device=edges.device)
            new[1:] = (edges[:, 1:] != edges[:, :-1]).any(0)
            edges = edges[:, new]
        return Graph._trusted(edges, self.num_nodes)

    def sorted(self) -> Graph:
        """The same edges (duplicates kept) in (target, source) order."""
        order = _argsort_pairs(self.target, self.source, self.num_nodes)
        return Graph._trusted(self.edge_index[:, order], self.num_nodes)

    def to_undirected(self) -> Graph:
        """The graph with the reverse of every edge added and duplicates merged."""
        both = torch.cat([self.edge_index, self.edge_index.flip(0)], dim=1)
        return Graph._trusted(both, self.num_nodes).coalesce()

    def is_undirected(self) -> bool:
        """True when every edge j -> i has its reverse i -> j (with the same multiplicity)."""
        source, target = self.source, self.target
        forward = self.edge_index[:, _argsort_pairs(target, source, self.num_nodes)]
        backward = self.edge_index.flip(0)[:, _argsort_pairs(source, target, self.num_nodes)]
        return bool(torch.equal(forward, backward))

    def __repr__(self) -> str:
        return f"Graph(num_nodes={self.num_nodes}, num_edges={self.num_edges})"


def as_graph(graph_like, num_nodes: int | None = None, *, name: str = "graph") -> Graph:
    """Turn any supported graph form into a :class:`Graph`.

    Accepted: a ``Graph``; an integer tensor [2, E] (source, target); a PyG ``EdgeIndex``; a
    torch sparse COO/CSR or dense floating/boolean adjacency [N, N] with ``A[i, j] != 0`` for
    an edge j -> i; a scipy sparse matrix; a networkx graph; a ``torch_geometric.data.Data``.
    Everything but a ``Graph`` is converted anew on every call.

    ``num_nodes`` (for layers: ``x.size(0)``) is checked against the graph: ids must be below it
    and a matrix or ``Graph`` must have exactly that many nodes. An integer tensor is always
    an edge_index and a boolean square one always an adjacency; a floating [2, 2] tensor with
    ``num_nodes=2`` could be either (a 2 x 2 adjacency, or an edge_index of two edges given as
    floats by mistake) and is refused with the two unambiguous spellings.
    """
    if isinstance(graph_like, Graph):
        graph = graph_like
    elif is_pyg_edge_index(graph_like):
        graph = Graph.from_pyg_edge_index(graph_like, num_nodes)
    elif is_pyg_data(graph_like):
        graph = Graph.from_pyg(graph_like)
    elif isinstance(graph_like, nx.Graph):
        graph = Graph.from_networkx(graph_like)
    elif sp.issparse(graph_like) or is_torch_sparse(graph_like):
        graph = Graph.from_matrix(graph_like, name)
    elif isinstance(graph_like, Tensor):
        if tensor_graph_form(graph_like, num_nodes, name) == "adjacency":
            graph = Graph.from_matrix(graph_like, name)
        else:
            edge_index = as_edge_index(graph_like, name)
            if num_nodes is None:
                graph = Graph(edge_index)
            else:  # checked here, under the caller's name, once
                check_node_ids(edge_index, num_nodes, name)
                graph = Graph._trusted(_own(edge_index), num_nodes)
    else:
        raise TypeError(
            f"{name} must be an edge_index tensor [2, E], a gnnkit.Graph, a torch sparse or "
            f"dense adjacency, a scipy sparse matrix, a networkx graph, a PyG Data or EdgeIndex; "
            f"got {type(graph_like).__name__}."
        )
    if num_nodes is not None and graph.num_nodes != num_nodes:
        raise ValueError(
            f"{name} has {graph.num_nodes} nodes but {num_nodes} were expected (x has "
            f"{num_nodes} rows); give one feature row per node."
        )
    return graph


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _count(edge_index: Tensor) -> int:
    return int(edge_index.max()) + 1 if edge_index.numel() else 0


def _own(edge_index: Tensor) -> Tensor:
    """A contiguous copy that the Graph owns (a normal tensor even under inference mode, so
    autograd may save it later)."""
    with torch.inference_mode(False):
        return edge_index.clone(memory_format=torch.contiguous_format)


def _order(major: Tensor, minor: Tensor, num_nodes: int) -> Tensor | None:
    """None when the edges are already in (major, minor) order (one O(E) comparison of
    neighbouring keys), else their stable order (:func:`_argsort_pairs`). Code traced by
    ``torch.compile`` always sorts (the check would be a data-dependent branch)."""
    if major.numel() < 2:
        return None
    if not torch.compiler.is_compiling():
        if num_nodes <= _PAIR_KEY_MAX_NODES:
            key = major * max(num_nodes, 1) + minor
            if bool((key[1:] >= key[:-1]).all()):
                return None
            return torch.argsort(key, stable=True)
        step = major[1:] - major[:-1]
        if bool((step > 0).logical_or_((step == 0) & (minor[1:] >= minor[:-1])).all()):
            return None
    return _argsort_pairs(major, minor, num_nodes)


def _argsort_pairs(major: Tensor, minor: Tensor, num_nodes: int) -> Tensor:
    """Stable order of edges by (major, minor). One sort of the key ``major * N + minor`` while
    it fits in int64 (N up to about 3e9), else two stable sorts (minor, then major)."""
    if num_nodes <= _PAIR_KEY_MAX_NODES:
        return torch.argsort(major * max(num_nodes, 1) + minor, stable=True)
    order = torch.argsort(minor, stable=True)
    return order[torch.argsort(major[order], stable=True)]


def _count_per_node(ids: Tensor, num_nodes: int) -> Tensor:
    """[N] long: how often each node id occurs in ``ids`` (``bincount`` with a fixed output
    size, so ``torch.compile`` traces it without a graph break)."""
    counts = torch.zeros(num_nodes, dtype=torch.long, device=ids.device)
    return counts.index_add_(0, ids, torch.ones_like(ids))


def _heads_copies(graph: Graph, heads: int) -> tuple[Graph, Tensor]:
    """:meth:`Graph.heads_copies` computed from this graph's CSR without a sort; the copies
    remember where they come from, so their transpose is made from this graph's when first
    asked for (:func:`_copies_transpose`)."""
    rowptr, col, _ = graph.csr
    ptr, position = _copies_layout(rowptr, graph.csr_target, heads)
    total = col.numel() * heads
    head = torch.arange(heads, device=col.device)
    order = _placed(position, torch.arange(total, device=col.device), total)
    copies = Graph._trusted_csr(ptr, _placed(position, (col.unsqueeze(1) * heads + head).view(-1),
                                             total), graph.num_nodes * heads)
    copies._keep("_copies_of", (graph, heads))
    return copies, order


def _copies_transpose(graph: Graph, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """The :attr:`Graph.csc` of ``graph.heads_copies(heads)`` from ``graph``'s transpose: the
    copies of the transpose, and for each of their entries the position in the copies' CSR of
    the same edge and head (this graph's CSR edge ``csr_to_csc[k']``, head h)."""
    colptr, row, csr_to_csc = graph.csc
    _, position = _copies_layout(graph.csr[0], graph.csr_target, heads)
    reverse_ptr, reverse_position = _copies_layout(colptr, graph.reverse.csr_target, heads)
    total = row.numel() * heads
    head = torch.arange(heads, device=row.device)
    return (reverse_ptr,
            _placed(reverse_position, (row.unsqueeze(1) * heads + head).view(-1), total),
            _placed(reverse_position, position.index_select(0, csr_to_csc).view(-1), total))


def _copies_layout(rowptr: Tensor, target: Tensor, heads: int) -> tuple[Tensor, Tensor]:
    """For ``heads`` copies of the CSR with pointer ``rowptr`` and row of every entry
    ``target`` [E]: the copies' pointer [N * heads + 1] (row ``i * heads + h`` holds the
    entries of row i, for copy h) and ``position`` [E, heads], where entry k of copy h lands:
    ``rowptr[i] * heads + h * degree(i) + (k - rowptr[i])``."""
    degree = rowptr[1:] - rowptr[:-1]
    head = torch.arange(heads, device=rowptr.device)
    starts = rowptr[:-1].unsqueeze(1) * heads + head * degree.unsqueeze(1)  # [N, heads]
    total = target.numel() * heads
    ptr = torch.cat([starts.view(-1), starts.new_tensor([total])])
    first = rowptr.index_select(0, target)  # [E]: where the entry's row starts
    within = torch.arange(target.numel(), device=rowptr.device) + first * (heads - 1)
    position = within.unsqueeze(1) + head * degree.index_select(0, target).unsqueeze(1)
    return ptr, position


def _placed(position: Tensor, values: Tensor, total: int) -> Tensor:
    """[total] with ``values[m]`` (flattened [E, heads] order) at ``position.view(-1)[m]``."""
    return torch.empty(total, dtype=values.dtype, device=values.device).scatter_(
        0, position.view(-1), values)


def _pointer(counts: Tensor) -> Tensor:
    pointer = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=pointer[1:])
    return pointer
