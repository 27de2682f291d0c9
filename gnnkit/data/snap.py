"""Read edge lists in the format of the Stanford Large Network Dataset Collection (SNAP).

Format: plain text or gzip (``.gz``); lines starting with ``#`` are comments (a ``#`` later in
a line starts a comment too), blank lines are skipped; every other line holds two integer
node ids separated by tabs or spaces, ``u v`` for a directed edge u -> v (stored as the
column ``(u, v)`` of ``edge_index``: u is the source, v the target).

The file is read in blocks of bytes, each parsed by numpy's C reader, so a file with tens of
millions of edges is read without a Python loop over its lines.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._validate import check_memory
from ..graph import Graph

BLOCK_BYTES = 1 << 25  # 32 MiB of text per parsed block
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class SnapGraph:
    """A graph read by :func:`read_snap`.

    Attributes:
        graph: the directed :class:`Graph` on ids 0..N-1.
        node_ids: [N] long, the file's id of each node (``arange(N)`` when the file's ids
            were already 0..N-1 and kept).
    """

    graph: Graph
    node_ids: Tensor


def read_snap(path: str | Path, *, relabel: bool | None = None) -> SnapGraph:
    """Read a SNAP edge list (``.txt`` or ``.txt.gz``) into a directed :class:`Graph`.

    Args:
        path: the file; gzip-compressed when its name ends with ``.gz``.
        relabel: map the ids that occur to 0..N-1 in increasing order (True), keep the file's
            ids with N = largest id + 1 (False), or decide (None, the default): keep them when
            every id 0..max occurs in some edge, relabel otherwise.

    Returns:
        A :class:`SnapGraph`: the graph, and the file's id of every node.

    Raises:
        FileNotFoundError: no such file.
        TypeError: ``path`` is not a path, ``relabel`` not a bool or None.
        ValueError: ``path`` is a directory, FIFO or other non-regular file; a truncated or
            corrupt gzip file; a line that is not two non-negative integer ids (the message
            gives its line number and text); a file without edges; ``relabel=False`` with
            ids so large that the N = largest id + 1 nodes do not fit in memory.
    """
    path = _check_path(path)
    if relabel is not None and not isinstance(relabel, bool):
        raise TypeError(f"relabel must be True, False or None, got {relabel!r}.")
    edges = _read_pairs(path)
    if edges.shape[0] == 0:
        raise ValueError(f"{path} holds no edges (only comments or blank lines).")
    if int(edges.min()) < 0:
        raise ValueError(f"{path} contains the negative node id {int(edges.min())}; SNAP ids "
                         "are non-negative integers.")
    node_ids, edges = _relabel(edges, relabel)
    edge_index = torch.from_numpy(np.ascontiguousarray(edges.T))
    return SnapGraph(Graph(edge_index, int(node_ids.numel())), node_ids)


def _check_path(path) -> Path:
    """``path`` as a Path to an existing regular file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or pathlib.Path), got "
                        f"{type(path).__name__}.")
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"SNAP edge list {path} not found.") from None
    if not stat.S_ISREG(mode):
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
        raise ValueError(f"SNAP edge list {path} is {kind}, not a regular file; give the path "
                         "of a .txt or .txt.gz edge list.")
    if not path.name.endswith(".gz"):
        with open(path, "rb") as stream:
            if stream.read(2) == GZIP_MAGIC:
                raise ValueError(f"{path} is gzip-compressed but its name does not end with "
                                 "'.gz'; rename it to end with .gz.")
    return path


def _read_pairs(path: Path) -> np.ndarray:
    """All (u, v) pairs of the file as an [E, 2] int64 array."""
    if not path.name.endswith(".gz"):
        return _read_stream(path, open)
    try:
        return _read_stream(path, gzip.open)
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ValueError(f"{path} is not a complete gzip file ({error}); it is truncated or "
                         "corrupt: download it again, or drop the .gz from the name of a "
                         "plain-text file.") from None


def _read_stream(path: Path, opener) -> np.ndarray:
    parts, lines_before, tail = [], 0, b""
    with opener(path, "rb") as stream:
        while True:
            block = stream.read(BLOCK_BYTES)
            text = tail + block
            if block:
                cut = text.rfind(b"\n") + 1
                text, tail = text[:cut], text[cut:]
            if text:
                parts.append(_parse_block(text, path, lines_before))
                lines_before += text.count(b"\n")
            if not block:
                break
    return np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)


def _parse_block(text: bytes, path: Path, lines_before: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            pairs = np.loadtxt(io.BytesIO(text), dtype=np.int64, comments="#", ndmin=2)
    except ValueError:
        pairs = None
    if pairs is None or (pairs.size and pairs.shape[1] != 2):
        number, line = _first_bad_line(text)
        raise ValueError(
            f"{path}, line {lines_before + number}: {line!r} is not an edge; every line that "
            "is not a '#' comment must hold two integer node ids separated by tabs or spaces."
        )
    return pairs.reshape(-1, 2)


def _first_bad_line(text: bytes) -> tuple[int, str]:
    """(1-based line number within ``text``, the line) of the first line that is not a pair."""
    for number, raw in enumerate(text.split(b"\n"), start=1):
        fields = raw.split(b"#", 1)[0].split()
        if fields and (len(fields) != 2 or not all(f.isdigit() for f in fields)):
            return number, raw.decode("utf-8", "replace").rstrip("\r")
    return 1, text.split(b"\n", 1)[0].decode("utf-8", "replace")


def _relabel(edges: np.ndarray, relabel: bool | None) -> tuple[Tensor, np.ndarray]:
    """(file id of each node [N], edges on ids 0..N-1)."""
    high = int(edges.max()) + 1
    if relabel is False:
        check_memory(16 * high, f"relabel=False with the largest id {high - 1} (N = {high} "
                     "nodes)", "pass relabel=True to number the nodes that occur 0..N-1.")
        return torch.arange(high), edges
    if high <= 4 * edges.size:  # a presence table is cheaper than sorting every id
        present = np.zeros(high, dtype=bool)
        present[edges.reshape(-1)] = True
        if relabel is None and present.all():
            return torch.arange(high), edges
        ids = np.flatnonzero(present)
        new_id = np.cumsum(present) - 1
        return torch.from_numpy(ids), new_id[edges]
    ids, inverse = np.unique(edges, return_inverse=True)
    return torch.from_numpy(ids), inverse.reshape(edges.shape).astype(np.int64)
