"""Input checks shared by the whole package.

Every public function turns user input into tensors here, so that bad input fails early with a
``ValueError``/``TypeError`` that names the argument and says how to fix it, instead of an
``IndexError`` from deep inside torch or a silently wrong answer.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)


def is_torch_sparse(value) -> bool:
    """True for a torch sparse COO/CSR/CSC tensor."""
    return isinstance(value, Tensor) and value.layout in _SPARSE_LAYOUTS


def as_matrix(value, name: str = "A", *, square: bool = True) -> Tensor:
    """Convert a matrix given as nested lists, numpy array, torch tensor (dense or sparse) or
    scipy sparse matrix into a dense 2-D torch tensor, checking it on the way.

    Integer and boolean input stays integer (``torch.long``) so that walk counts stay exact;
    floating input keeps its floating dtype.

    Raises:
        TypeError: the value is not a matrix of numbers.
        ValueError: ragged rows, not 2-D, not square or empty (when ``square``), NaN or
            infinity.
    """
    if is_torch_sparse(value):
        value = value.to_dense()
    elif sp.issparse(value):
        value = value.toarray()
    if isinstance(value, Tensor):
        tensor = value.detach()
    else:
        tensor = _nested_to_tensor(value, name)
    if tensor.is_complex() or not (tensor.is_floating_point() or _is_integer_dtype(tensor.dtype)):
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}.")
    if tensor.dtype == torch.bool or (_is_integer_dtype(tensor.dtype) and tensor.dtype != torch.long):
        tensor = tensor.long()
    if tensor.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D matrix, got shape {tuple(tensor.shape)}; "
            "pass a list of rows such as [[0, 1], [1, 0]]."
        )
    if square and tensor.size(0) != tensor.size(1):
        raise ValueError(
            f"{name} must be square (n x n), got shape {tuple(tensor.shape)}; "
            "an adjacency or Laplacian matrix has one row and one column per node."
        )
    if square and tensor.size(0) == 0:
        raise ValueError(
            f"{name} is empty (0 x 0); a graph needs at least one node, so the matrix needs at "
            "least one row."
        )
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        bad = torch.nonzero(~torch.isfinite(tensor))[0].tolist()
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}); "
            "replace it with a number."
        )
    return tensor


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    return dtype == torch.bool or (not dtype.is_floating_point and not dtype.is_complex)


def _nested_to_tensor(value, name: str) -> Tensor:
    if isinstance(value, np.ndarray):
        array = value
    else:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(
                f"{name} must be a matrix (nested lists, numpy array, torch tensor or scipy "
                f"sparse matrix), got {type(value).__name__}."
            )
        rows = list(value)
        lengths = {len(row) if hasattr(row, "__len__") else -1 for row in rows}
        if -1 in lengths:
            raise ValueError(f"{name} must be a list of rows (lists of numbers), e.g. [[0, 1], [1, 0]].")
        if len(lengths) > 1:
            raise ValueError(
                f"{name} is ragged: its rows have lengths {sorted(lengths)}; every row needs the "
                "same number of entries."
            )
        for r, row in enumerate(rows):
            for c, entry in enumerate(row):
                if isinstance(entry, bool) or not isinstance(entry, numbers.Real):
                    raise TypeError(
                        f"{name}[{r}][{c}] = {entry!r} is not a number; every entry must be an "
                        "int or a float."
                    )
        array = np.array(rows)
        if array.size == 0:
            array = array.reshape(len(rows), 0)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(f"{name} must hold numbers, got numpy dtype {array.dtype}.")
    return torch.from_numpy(np.ascontiguousarray(array))


def as_edge_index(value, name: str = "edge_index") -> Tensor:
    """Check a [2, E] integer tensor of (source, target) ids and return it as ``torch.long``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch tensor of shape [2, E], got {type(value).__name__}.")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer node ids, got dtype {value.dtype}; "
            f"use {name}.long() if the values are whole numbers."
        )
    if value.dim() != 2 or value.size(0) != 2:
        raise ValueError(
            f"{name} must have shape [2, E] (row 0 sources, row 1 targets), got {tuple(value.shape)}; "
            "a list of (u, v) pairs of shape [E, 2] needs a transpose: edge_index.t()."
        )
    return value.long()


def tensor_graph_form(value: Tensor, num_nodes: int | None = None, name: str = "graph") -> str:
    """The one rule telling a graph given as a tensor apart: ``"adjacency"`` for a torch sparse
    tensor or a square floating or boolean one [N, N], ``"edge_index"`` for an integer one
    ([2, E], checked later).

    Raises:
        ValueError: a floating [2, 2] tensor for ``num_nodes=2``: a 2 x 2 adjacency, or two
            edges given as floats? The message gives both unambiguous spellings.
        TypeError: a floating or boolean tensor that is not square.
    """
    if is_torch_sparse(value):
        return "adjacency"
    if num_nodes == 2 and value.shape == (2, 2) and value.is_floating_point():
        raise ValueError(
            f"{name} is a floating [2, 2] tensor for 2 nodes: an adjacency matrix or an "
            "edge_index of 2 edges given as floats? Say which: A.bool() or "
            "gnnkit.Graph.from_matrix(A) for an adjacency matrix, edge_index.long() for "
            "an edge list."
        )
    if value.is_floating_point() or value.dtype == torch.bool:
        if value.dim() == 2 and value.size(0) == value.size(1):
            return "adjacency"
        raise TypeError(
            f"{name} is a floating tensor of shape {tuple(value.shape)}: an edge_index must be "
            "an integer tensor [2, E] (use .long()), and a dense adjacency must be square "
            "[N, N]."
        )
    return "edge_index"


def check_node_ids(edge_index: Tensor, num_nodes: int, name: str = "edge_index") -> None:
    """Raise ``ValueError`` if any id in ``edge_index`` is negative or not below ``num_nodes``."""
    if edge_index.numel() == 0:
        return
    low, high = int(edge_index.min()), int(edge_index.max())
    if low < 0:
        raise ValueError(f"{name} contains the negative node id {low}; node ids start at 0.")
    if high >= num_nodes:
        raise ValueError(
            f"{name} contains node id {high}, but the graph has only {num_nodes} nodes "
            f"(ids 0..{num_nodes - 1}); pass num_nodes={high + 1} or fix the id "
            "(1-indexed input needs one_indexed=True)."
        )


def check_int(value, name: str, *, low: int | None = None, high: int | None = None,
              tensor: bool = False) -> int:
    """An integer setting (a Python or numpy int, never a bool or a float; with ``tensor=True``
    also a one-element integer tensor) within ``low..high``; returned as a Python ``int``.

    Raises:
        TypeError: not an integer.
        ValueError: outside the bounds (the message names the argument and the bounds).
    """
    if tensor and isinstance(value, Tensor) and value.numel() == 1 and not (
        value.is_floating_point() or value.is_complex() or value.dtype == torch.bool
    ):
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {_bounds(low, high)}, got {value}.")
    return value


def check_real(value, name: str, *, low: float | None = None, high: float | None = None,
               open_low: bool = False, open_high: bool = False) -> float:
    """A finite real setting (int or float, not a bool, never NaN or infinity) within the
    bounds, ``low < value`` instead of ``<=`` when ``open_low`` (same for ``high``); returned as
    a Python ``float``.

    Raises:
        TypeError: not a real number.
        ValueError: NaN, infinite, or outside the bounds.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        raise ValueError(
            f"{name} must be {_bounds(low, high, open_low, open_high)}, got {value:g}."
        )
    return value


def _bounds(low, high, open_low: bool = False, open_high: bool = False) -> str:
    if high is None:
        return f"{'>' if open_low else '>='} {low}"
    if low is None:
        return f"{'<' if open_high else '<='} {high}"
    return f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"


def check_memory(nbytes: int, what: str, fix: str) -> None:
    """Raise ``ValueError`` before allocating when ``nbytes`` exceed the machine's physical
    memory (no check where the system does not report it). For the data readers and
    generators, whose sizes come from user input."""
    total = _physical_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} needs about {nbytes / 2**30:,.1f} GiB, more than this "
                         f"machine's {total / 2**30:,.1f} GiB of memory; {fix}")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
