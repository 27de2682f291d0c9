"""A node-classification graph in CSR form, and an on-disk store for it that several
processes can share.

:func:`save` writes one ``.npy`` file per array into a folder; :func:`load` maps them back
with ``numpy.load(mmap_mode="c")`` and wraps them as torch tensors without copying. The
pages come from the operating system's page cache, so P training processes on one machine
that load the same folder hold one copy of the graph and features in memory, not P, and
only the pages they touch are read from disk. The mapping is copy-on-write: a process that
writes into a tensor changes its own private copy of that page, never the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .graph import Graph

FORMAT = "gnnkit-graph-store"
VERSION = 1
_ARRAYS = ("rowptr", "col", "x", "y", "train_mask", "val_mask", "test_mask")


@dataclass
class GraphData:
    """A graph with node features, labels and a split, with the graph in CSR form.

    Attributes:
        rowptr: [N + 1] long; the sources of the edges into node i (edges j -> i) are
            ``col[rowptr[i]:rowptr[i+1]]``.
        col: [E] long source ids.
        x: [N, F] float32 features.
        y: [N] long labels in 0..C-1.
        train_mask, val_mask, test_mask: [N] bool.
        name: a label for reports.
    """

    rowptr: Tensor
    col: Tensor
    x: Tensor
    y: Tensor
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor
    name: str = ""

    @property
    def num_nodes(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def num_features(self) -> int:
        return self.x.size(1)

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1

    def graph(self) -> Graph:
        """The :class:`Graph` on the CSR arrays themselves (no copy: a memory-mapped store
        stays shared)."""
        return Graph.from_csr(self.rowptr, self.col, self.num_nodes)


def save(data: GraphData, folder: str | Path) -> Path:
    """Write ``data`` into ``folder`` (created if needed): ``<array>.npy`` for each array and
    ``meta.json`` (format, version, name, counts). Returns the folder's path."""
    if not isinstance(data, GraphData):
        raise TypeError(f"data must be a GraphData, got {type(data).__name__}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", getattr(data, name).numpy())
    meta = {"format": FORMAT, "version": VERSION, "name": data.name,
            "num_nodes": data.num_nodes, "num_edges": data.num_edges}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def load(folder: str | Path, *, mmap: bool = True) -> GraphData:
    """Open a folder written by :func:`save`.

    With ``mmap=True`` (default) every tensor is a copy-on-write memory map of its file (see
    the module docstring): nothing is read until used. ``mmap=False`` reads everything into
    private memory.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: the folder holds another format or version, or inconsistent arrays.
    """
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found; is {folder} a folder written by "
                                "gnnkit.store.save?")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{folder} holds {meta.get('format')} version {meta.get('version')}; "
                         f"this gnnkit reads {FORMAT} version {VERSION}.")
    arrays = {name: _open(folder / f"{name}.npy", mmap) for name in _ARRAYS}
    data = GraphData(**arrays, name=meta["name"])
    _check(data, meta, folder)
    return data


def _open(path: Path, mmap: bool) -> Tensor:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; the store is incomplete.")
    return torch.from_numpy(np.load(path, mmap_mode="c" if mmap else None))


def _check(data: GraphData, meta: dict, folder: Path) -> None:
    """Cheap consistency checks (shapes and dtypes; the edges themselves are not scanned)."""
    n, e = meta["num_nodes"], meta["num_edges"]
    expected = {"rowptr": ((n + 1,), torch.long), "col": ((e,), torch.long),
                "y": ((n,), torch.long), "train_mask": ((n,), torch.bool),
                "val_mask": ((n,), torch.bool), "test_mask": ((n,), torch.bool)}
    for field in fields(GraphData):
        if field.name not in expected:
            continue
        value = getattr(data, field.name)
        shape, dtype = expected[field.name]
        if tuple(value.shape) != shape or value.dtype != dtype:
            raise ValueError(f"{folder}/{field.name}.npy has shape {tuple(value.shape)} and "
                             f"dtype {value.dtype}; expected {shape} {dtype}.")
    if data.x.dim() != 2 or data.x.size(0) != n:
        raise ValueError(f"{folder}/x.npy has shape {tuple(data.x.shape)}; expected [{n}, F].")
