"""NodeData: one graph with node features, node labels and a node split, the one container of
node classification (Planetoid, karate, SNAP-based, synthetic and stored graphs alike)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..graph import Graph


@dataclass(repr=False, eq=False)
class NodeData:
    """A graph for node classification, the graph in CSR form sorted by target.

    Attributes:
        rowptr: [N + 1] long; the sources of the edges into node i (edges j -> i) are
            ``col[rowptr[i]:rowptr[i+1]]``.
        col: [E] long source ids.
        x: [N, F] node features (float32; a store may keep float16 or float64, which
            training converts to float32).
        y: [N] long labels in 0..C-1.
        train_mask: [N] bool, the nodes whose labels train the model.
        val_mask: [N] bool, the validation nodes (model selection).
        test_mask: [N] bool, the test nodes.
        name: a label for reports.

    :meth:`graph` gives the :class:`gnnkit.Graph` on these arrays without copying them (a
    memory-mapped store stays shared by processes); :meth:`from_edge_index` builds one from an
    edge list.
    """

    rowptr: Tensor
    col: Tensor
    x: Tensor
    y: Tensor
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    name: str = ""

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, x: Tensor, y: Tensor, train_mask: Tensor,
                        val_mask: Tensor, test_mask: Tensor, name: str = "") -> NodeData:
        """From an ``edge_index`` [2, E] (row 0 sources j, row 1 targets i) of
        ``x.size(0)`` nodes: its CSR by target becomes ``rowptr`` and ``col``."""
        rowptr, col, _ = Graph(edge_index, x.size(0)).csr
        return cls(rowptr, col, x, y, train_mask, val_mask, test_mask, name)

    def graph(self) -> Graph:
        """The :class:`gnnkit.Graph` on ``rowptr`` and ``col`` themselves (checked, no copy).
        Hold on to it: each call makes a new Graph, with its own cached layouts."""
        return Graph.from_csr(self.rowptr, self.col, self.num_nodes)

    @property
    def num_nodes(self) -> int:
        """N, the number of nodes."""
        return self.rowptr.numel() - 1

    @property
    def num_edges(self) -> int:
        """E, the number of edges (an undirected edge counts twice, once per direction)."""
        return self.col.numel()

    @property
    def num_features(self) -> int:
        """F, the width of x."""
        return self.x.size(1)

    @property
    def num_classes(self) -> int:
        """C = largest label + 1."""
        return int(self.y.max()) + 1

    @property
    def edge_index(self) -> Tensor:
        """[2, E] the edges in CSR order (row 0 sources j, row 1 targets i)."""
        return self.graph().edge_index

    def __repr__(self) -> str:
        splits = "/".join(str(int(mask.sum())) for mask in
                          (self.train_mask, self.val_mask, self.test_mask))
        return (f"NodeData(name={self.name!r}, num_nodes={self.num_nodes:,}, "
                f"num_edges={self.num_edges:,}, x=[{', '.join(map(str, self.x.shape))}] "
                f"{str(self.x.dtype).removeprefix('torch.')}, num_classes={self.num_classes}, "
                f"train/val/test={splits})")
