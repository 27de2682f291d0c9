"""Graph classification datasets in the TU format (https://chrsmrrs.github.io/datasets/).

A dataset NAME is a folder of text files, one line per node, edge or graph:

    NAME_A.txt               "j, i" per line: an edge from node j to node i (1-based ids over
                             the whole dataset); undirected graphs list both directions
    NAME_graph_indicator.txt the graph (1-based) of node n on line n; sorted
    NAME_graph_labels.txt    the label of graph g on line g
    NAME_node_labels.txt     optional: an integer label per node (one-hot encoded)
    NAME_node_attributes.txt optional: comma-separated floats per node
    NAME_edge_labels.txt     optional: an integer label per edge (line k for line k of A)

Each file is parsed with numpy's C parser in one call; only when that fails is the file
scanned line by line, to name the line at fault.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._validate import check_int
from ..graph import Graph, as_graph
from .batch import GraphBatch


class TUDataset:
    """Graphs read by :func:`read_tu`; ``dataset[g]`` is the item ``(graph, x, y)``.

    ``dataset.batch(indices)`` batches any graphs at once from the global arrays below
    (:meth:`GraphBatch.from_arrays`, no Python step per graph); :class:`GraphLoader` uses
    it. Iterating gives the items in order; an index outside ``-G..G-1`` raises
    ``IndexError``.

    Attributes:
        name: the dataset's name.
        graphs: one :class:`gnnkit.Graph` per graph (local node ids, CSR built).
        x: [N, F] float32 node features of all graphs; graph g's are rows ``ptr[g]:ptr[g+1]``.
        y: [G] long class of each graph in ``0..num_classes-1``.
        label_values: [num_classes] the file's label for each class (class c was
            ``label_values[c]`` in the file).
        ptr: [G + 1] node boundaries.
        edge_labels: [E] long label of every edge in CSR order (graph g's edges are the
            positions ``edge_ptr[g]:edge_ptr[g+1]``, in the order of ``graphs[g].csr``), or
            None.
        edge_ptr: [G + 1] edge boundaries.
        rowptr, col: [N + 1] and [E] long: the CSR by target of all graphs together (global
            node ids; graph g's rows are ``ptr[g]:ptr[g+1]``); built from ``graphs`` when not
            given.
    """

    def __init__(self, name: str, graphs: list[Graph], x: Tensor, y: Tensor,
                 label_values: Tensor, ptr: Tensor, edge_ptr: Tensor,
                 edge_labels: Tensor | None, rowptr: Tensor | None = None,
                 col: Tensor | None = None):
        self.name, self.graphs, self.x, self.y = name, graphs, x, y
        self.label_values, self.ptr, self.edge_ptr = label_values, ptr, edge_ptr
        self.edge_labels = edge_labels
        self._bounds = ptr.tolist()
        if rowptr is None or col is None:
            rowptr, col = _global_csr(graphs, ptr, edge_ptr)
        self.rowptr, self.col = rowptr, col
        # The transpose of the global graph, sorted once: each batch's transpose is a gather.
        self._csc = Graph._trusted_csr(rowptr, col, x.shape[0]).csc

    @property
    def num_classes(self) -> int:
        """C: the number of distinct graph labels (classes 0..C-1)."""
        return self.label_values.numel()

    @property
    def num_node_features(self) -> int:
        """F: the width of every item's x [n_i, F]."""
        return self.x.shape[1]

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> tuple[Graph, Tensor, Tensor]:
        """Item ``index`` (negative: from the end).

        Raises:
            TypeError: index not an int.
            IndexError: index outside ``-G..G-1`` (so ``for item in dataset`` stops).
        """
        index = check_int(index, "index")
        count = len(self.graphs)
        if not -count <= index < count:
            raise IndexError(f"index {index} is out of range for a dataset of {count} graphs "
                             f"(valid: -{count}..{count - 1}).")
        index %= count
        start, end = self._bounds[index], self._bounds[index + 1]
        return self.graphs[index], self.x[start:end], self.y[index]

    def __iter__(self) -> Iterator[tuple[Graph, Tensor, Tensor]]:
        """The items ``(graph, x, y)`` in order (x and y are views of the global arrays)."""
        counts = [b - a for a, b in itertools.pairwise(self._bounds)]
        return zip(self.graphs, torch.split(self.x, counts), self.y, strict=True)

    def batch(self, indices) -> GraphBatch:
        """The :class:`GraphBatch` of the graphs ``indices`` (B ints in ``-G..G-1``, a 1-D
        integer tensor or a sequence), gathered from the global arrays with vectorised index
        arithmetic: equal to ``GraphBatch.from_list([self[g] for g in indices])``, its graph's
        transpose included (no sort in the backward pass of a layer)."""
        return GraphBatch.from_arrays(indices, x=self.x, y=self.y, ptr=self.ptr,
                                      edge_ptr=self.edge_ptr, rowptr=self.rowptr, col=self.col,
                                      csc=self._csc)

    def __repr__(self) -> str:
        return (f"TUDataset({self.name!r}, graphs={len(self)}, nodes={self.x.shape[0]}, "
                f"node_features={self.num_node_features}, classes={self.num_classes})")


def _global_csr(graphs: list[Graph], ptr: Tensor, edge_ptr: Tensor) -> tuple[Tensor, Tensor]:
    """The CSR of all graphs together from each graph's CSR, shifted by its offsets."""
    csrs = [g.csr for g in graphs]
    num_nodes, num_edges = ptr[1:] - ptr[:-1], edge_ptr[1:] - edge_ptr[:-1]
    total_nodes, total_edges = int(ptr[-1]), int(edge_ptr[-1])
    rowptr = torch.empty(total_nodes + 1, dtype=torch.long)
    rowptr[-1] = total_edges
    if csrs:
        rowptr[:-1] = torch.cat([c[0][:-1] for c in csrs]) + torch.repeat_interleave(
            edge_ptr[:-1], num_nodes, output_size=total_nodes)
        col = torch.cat([c[1] for c in csrs]) + torch.repeat_interleave(
            ptr[:-1], num_edges, output_size=total_edges)
    else:
        col = torch.zeros(0, dtype=torch.long)
    return rowptr, col


def read_tu(folder, name: str, *, degree_features: int | None = None) -> TUDataset:
    """Read the TU dataset ``name`` from ``folder`` (or from ``folder/name``).

    Node features ``x`` are, in this order: the node attributes (when the file exists), the
    one-hot node labels (label - smallest label, when the file exists) and, with
    ``degree_features=D``, the one-hot in-degree capped at D (:func:`one_hot_degree`, D + 1
    columns). A dataset with none of these gets one constant feature 1 per node. Graph labels
    become classes 0..C-1 in sorted order of the file's labels.

    Raises:
        FileNotFoundError: a required file is missing.
        ValueError: naming the file and line: a line with the wrong number of values or a
            value that is not a number, a node id outside 1..N (N = lines of the graph
            indicator), graph ids not sorted or below 1, a graph id without a label (fewer
            labels than graphs), an edge between two graphs, a per-node or per-edge file with
            too few or too many lines.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be the dataset's name (a non-empty str), got {name!r}.")
    if degree_features is not None:
        degree_features = check_int(degree_features, "degree_features", low=0)
    folder = Path(folder)
    if not (folder / f"{name}_A.txt").exists() and (folder / name / f"{name}_A.txt").exists():
        folder = folder / name
    path = {part: folder / f"{name}_{part}.txt" for part in (
        "A", "graph_indicator", "graph_labels", "node_labels", "node_attributes",
        "edge_labels")}
    for part in ("A", "graph_indicator", "graph_labels"):
        if not path[part].exists():
            raise FileNotFoundError(f"{path[part]} not found; a TU dataset needs NAME_A.txt, "
                                    "NAME_graph_indicator.txt and NAME_graph_labels.txt.")
    indicator = read_numbers(path["graph_indicator"], np.int64, 1)[:, 0]
    labels = read_numbers(path["graph_labels"], np.int64, 1)[:, 0]
    num_nodes, num_graphs = indicator.size, labels.size
    _check_indicator(indicator, num_graphs, path["graph_indicator"], path["graph_labels"])
    edges = read_numbers(path["A"], np.int64, 2)
    _check_edges(edges, indicator, path["A"], path["graph_indicator"])

    source = torch.from_numpy(edges[:, 0] - 1)
    target = torch.from_numpy(edges[:, 1] - 1)
    order = torch.argsort(target * max(num_nodes, 1) + source, stable=True)
    in_degree = torch.bincount(target, minlength=num_nodes)
    rowptr = _pointer(in_degree)
    col = source[order]
    ptr = _pointer(torch.bincount(torch.from_numpy(indicator - 1), minlength=num_graphs))
    edge_ptr = rowptr[ptr]

    features = []
    if path["node_attributes"].exists():
        attributes = read_numbers(path["node_attributes"], np.float64, None)
        _check_rows(attributes, num_nodes, path["node_attributes"], "nodes")
        features.append(torch.from_numpy(attributes).float())
    if path["node_labels"].exists():
        node_labels = read_numbers(path["node_labels"], np.int64, 1)[:, 0]
        _check_rows(node_labels, num_nodes, path["node_labels"], "nodes")
        lowest = node_labels.min() if node_labels.size else 0
        features.append(_one_hot(torch.from_numpy(node_labels - lowest)))
    if degree_features is not None:
        features.append(_one_hot(in_degree.clamp(max=degree_features), degree_features + 1))
    x = torch.cat(features, dim=1) if features else torch.ones(num_nodes, 1)
    edge_labels = None
    if path["edge_labels"].exists():
        values = read_numbers(path["edge_labels"], np.int64, None)
        _check_rows(values, edges.shape[0], path["edge_labels"], "edges (lines of NAME_A.txt)")
        edge_labels = torch.from_numpy(values)[order]
        if edge_labels.shape[1] == 1:
            edge_labels = edge_labels.squeeze(1)

    label_values, y = torch.unique(torch.from_numpy(labels), sorted=True, return_inverse=True)
    nodes, edge_bounds = ptr.tolist(), edge_ptr.tolist()
    # Every id was checked above (in range, inside its graph), so each graph's slice of the
    # global CSR is a valid CSR: the trusted constructor skips a re-check per graph.
    graphs = [
        Graph._trusted_csr(rowptr[nodes[g]:nodes[g + 1] + 1] - edge_bounds[g],
                           col[edge_bounds[g]:edge_bounds[g + 1]] - nodes[g],
                           nodes[g + 1] - nodes[g])
        for g in range(num_graphs)
    ]
    return TUDataset(name, graphs, x, y, label_values, ptr, edge_ptr, edge_labels,
                     rowptr=rowptr, col=col)


def one_hot_degree(graph, max_degree: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """[N, max_degree + 1] one-hot in-degree of every node, capped: a node with in-degree d
    has its 1 in column ``min(d, max_degree)``. For undirected graphs (both directions
    stored) the in-degree is the number of neighbours.

    Args:
        graph: a :class:`gnnkit.Graph` (or any form :func:`gnnkit.as_graph` takes).
        max_degree: D >= 0, the last column (degrees >= D share it).
        dtype: the floating dtype of the result.
    """
    graph = as_graph(graph)
    max_degree = check_int(max_degree, "max_degree", low=0)
    return _one_hot(graph.in_degree.clamp(max=max_degree), max_degree + 1).to(dtype)


# ---------------------------------------------------------------------------------- parsing
def read_numbers(path: Path, dtype, width: int | None) -> np.ndarray:
    """The numbers of a text file with ``width`` values per line (separated by commas and/or
    spaces; None: as many as on the first line): [lines, width]. Trailing blank lines are
    ignored.

    Raises:
        ValueError: naming the file and the first line with the wrong number of values or a
            value that is not a number of ``dtype``.
    """
    try:
        text = path.read_bytes().decode("utf-8").replace(",", " ").rstrip()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text file ({error}).") from None
    if not text:
        return np.zeros((0, width or 1), dtype=dtype)
    num_lines = text.count("\n") + 1
    if width is None:
        width = max(len(text[: text.find("\n") if "\n" in text else len(text)].split()), 1)
    values = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=dtype, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
    if values is None or values.size != num_lines * width:
        _find_bad_line(text, path, dtype, width)
    return values.reshape(num_lines, width)


def _find_bad_line(text: str, path: Path, dtype, width: int) -> None:
    """Raise the ValueError for the first line that does not hold ``width`` numbers."""
    kind, parse = ("integers", int) if np.issubdtype(dtype, np.integer) else ("numbers", float)
    for number, line in enumerate(text.split("\n"), start=1):
        tokens = line.split()
        if len(tokens) != width:
            raise ValueError(f"{path}: line {number} has {len(tokens)} values, expected "
                             f"{width} {kind} separated by commas: {line.strip()[:80]!r}.")
        for token in tokens:
            try:
                parse(token)
            except ValueError:
                raise ValueError(f"{path}: line {number}: {token!r} is not one of the "
                                 f"{kind} expected here.") from None
    raise ValueError(f"{path}: could not be read as {width} {kind} per line.")


# ---------------------------------------------------------------------------------- checks
def _check_indicator(indicator: np.ndarray, num_graphs: int, path: Path,
                     labels_path: Path) -> None:
    if indicator.size == 0:
        return
    low = int(np.argmin(indicator))
    if indicator[low] < 1:
        raise ValueError(f"{path}: line {low + 1}: graph id {indicator[low]}; graph ids start "
                         "at 1.")
    high = int(np.argmax(indicator > num_graphs)) if indicator.max() > num_graphs else -1
    if high >= 0:
        raise ValueError(
            f"{labels_path} has {num_graphs} labels but {path} line {high + 1} puts a node in "
            f"graph {indicator[high]}: labels are missing (one line per graph is needed).")
    down = np.flatnonzero(indicator[1:] < indicator[:-1])
    if down.size:
        line = int(down[0]) + 2
        raise ValueError(
            f"{path}: line {line}: graph {indicator[line - 1]} after graph "
            f"{indicator[line - 2]}; the graph ids must be sorted (the nodes of each graph "
            "together, graphs in order).")


def _check_edges(edges: np.ndarray, indicator: np.ndarray, path: Path,
                 indicator_path: Path) -> None:
    num_nodes = indicator.size
    bad = np.flatnonzero(((edges < 1) | (edges > num_nodes)).any(axis=1))
    if bad.size:
        line = int(bad[0])
        raise ValueError(
            f"{path}: line {line + 1}: node id {edges[line].tolist()} outside 1..{num_nodes} "
            f"({indicator_path} assigns {num_nodes} nodes to graphs; every node needs a "
            "graph).")
    graph_of = indicator[edges - 1]
    crossing = np.flatnonzero(graph_of[:, 0] != graph_of[:, 1])
    if crossing.size:
        line = int(crossing[0])
        raise ValueError(
            f"{path}: line {line + 1}: the edge {edges[line, 0]}, {edges[line, 1]} joins graph "
            f"{graph_of[line, 0]} and graph {graph_of[line, 1]}; edges must stay inside one "
            "graph.")


def _check_rows(values: np.ndarray, expected: int, path: Path, what: str) -> None:
    if values.shape[0] < expected:
        raise ValueError(f"{path}: line {values.shape[0] + 1} is missing: the file has "
                         f"{values.shape[0]} lines but there are {expected} {what}.")
    if values.shape[0] > expected:
        raise ValueError(f"{path}: line {expected + 1} is one too many: there are only "
                         f"{expected} {what}.")


def _one_hot(values: Tensor, num_classes: int | None = None) -> Tensor:
    if num_classes is None:
        num_classes = int(values.max()) + 1 if values.numel() else 1
    return torch.nn.functional.one_hot(values.long(), num_classes).float()


def _pointer(counts: Tensor) -> Tensor:
    pointer = torch.zeros(counts.numel() + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=pointer[1:])
    return pointer
