"""An on-disk store of a node-classification graph (:class:`NodeData`) that several
processes can share.

:func:`save` writes one ``.npy`` file per array into a folder; :func:`load` maps them back
with ``numpy.load(mmap_mode="c")`` and wraps them as torch tensors without copying. The
pages come from the operating system's page cache, so P training processes on one machine
that load the same folder hold one copy of the graph and features in memory, not P, and
only the pages they touch are read from disk. The mapping is copy-on-write: a process that
writes into a tensor changes its own private copy of that page, never the file.

Saving is atomic and never touches a file that may be mapped. :func:`save` writes every
array into a fresh hidden folder beside the target (``.<name>.saving-*``), checks it with the
same rules as :func:`load`, and only then puts it in place:

* a new target: one ``rename``;
* an existing store: one atomic exchange of the two folders (Linux ``renameat2``), after which
  the old files are deleted. Where the exchange is not available, two renames: for that
  instant ``folder`` is missing and the old store sits beside it in ``.<name>.old-*/store``.

So a crash at any point leaves ``folder`` holding the old store or the new one, complete
(plus, at worst, a hidden leftover folder beside it that can be deleted). Tensors of an
earlier :func:`load` keep their values: on Linux a mapped file that is unlinked stays alive
until it is unmapped. This is also what makes ``save(load(folder), folder)`` safe.

Every load and save checks the arrays (dtypes, shapes, ``rowptr`` 0..E and non-decreasing,
source ids in 0..N-1, labels in 0..C-1) and ``meta.json``; a problem is a ``ValueError`` that
names the file (or the ``NodeData`` field). Feature values are not scanned (a NaN in ``x``
is not detected here).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..ops.features import dense_features
from .node_data import NodeData

FORMAT = "gnnkit-graph-store"
VERSION = 1
_ARRAYS = ("rowptr", "col", "x", "y", "train_mask", "val_mask", "test_mask")
_MASKS = ("train_mask", "val_mask", "test_mask")
_META_KEYS = ("format", "version", "name", "num_nodes", "num_edges")
_X_DTYPES = (np.float32, np.float16, np.float64)
_TORCH_DTYPES = {torch.long: np.int64, torch.bool: np.bool_, torch.float32: np.float32,
                 torch.float16: np.float16, torch.float64: np.float64}


# ------------------------------------------------------------------------------------ save
def save(data: NodeData, folder: str | Path) -> Path:
    """Write ``data`` into ``folder`` atomically (see the module docstring): ``<array>.npy``
    for each array (a sparse ``x`` is written dense) and ``meta.json`` (format, version, name, num_nodes, num_edges,
    num_classes). An existing store in ``folder`` is replaced; any other non-empty folder is
    refused. Returns the folder's path.

    Raises:
        TypeError: ``data`` is not a :class:`NodeData`, a field is not a tensor of an
            accepted dtype, or ``name`` is not a string.
        ValueError: the arrays break a rule of :func:`load` (the message names the field), or
            ``folder`` is a file or a folder that holds something else than a store.
    """
    given = _as_path(folder)
    arrays, meta = _to_arrays(data)
    _check_arrays(arrays, meta, lambda name: f"data.{name}")
    folder = Path(os.path.realpath(given))  # a link to a store: replace the store it names
    _check_target(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = folder.parent / f".{folder.name}.saving-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    fresh.mkdir()  # with the umask's permissions, as the store will have (not mkdtemp's 0700)
    try:
        _write(arrays, meta, fresh)
        load(fresh)  # what is on disk passes the checks of load
        _put_in_place(fresh, folder)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)  # gone already unless something failed
    return given


def _to_arrays(data: NodeData) -> tuple[dict[str, np.ndarray], dict]:
    """The numpy arrays of ``data`` (detached, on the CPU; no copy when already there) and
    the ``meta.json`` content for them."""
    if not isinstance(data, NodeData):
        raise TypeError(f"data must be a NodeData, got {type(data).__name__}.")
    if not isinstance(data.name, str):
        raise TypeError(f"data.name must be a str, got {type(data.name).__name__}.")
    arrays = {}
    for name in _ARRAYS:
        value = getattr(data, name)
        if not isinstance(value, Tensor):
            raise TypeError(f"data.{name} must be a torch tensor, got {type(value).__name__}.")
        if value.dtype not in _TORCH_DTYPES:
            raise TypeError(f"data.{name} has dtype {value.dtype}; {_expected(name)}.")
        arrays[name] = dense_features(value).detach().cpu().numpy()  # a store holds dense x
    num_nodes = max(arrays["rowptr"].shape[0] - 1, 0) if arrays["rowptr"].ndim else 0
    labels = arrays["y"]
    num_classes = int(labels.max()) + 1 if labels.size and labels.dtype == np.int64 else 1
    meta = {"format": FORMAT, "version": VERSION, "name": data.name, "num_nodes": num_nodes,
            "num_edges": int(arrays["col"].size), "num_classes": max(num_classes, 1)}
    return arrays, meta


def _check_target(folder: Path) -> None:
    """Refuse to replace a file, or a folder holding anything but store files."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; save needs a folder (new, empty, or a store).")
    if folder.is_dir():
        known = {f"{name}.npy" for name in _ARRAYS} | {"meta.json"}
        other = sorted(entry.name for entry in folder.iterdir() if entry.name not in known)
        if other:
            raise ValueError(
                f"{folder} holds files that are not part of a gnnkit store ({', '.join(other[:5])}"
                f"{', ...' if len(other) > 5 else ''}); save into a new or empty folder, or "
                "move them out first (saving replaces the whole folder)."
            )


def _write(arrays: dict[str, np.ndarray], meta: dict, folder: Path) -> None:
    """Write and flush every array and ``meta.json`` into the (new, empty) ``folder``."""
    for name, array in arrays.items():
        with open(folder / f"{name}.npy", "wb") as stream:
            np.save(stream, array, allow_pickle=False)
            stream.flush()
            os.fsync(stream.fileno())
    with open(folder / "meta.json", "w") as stream:
        stream.write(json.dumps(meta, indent=1) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def _put_in_place(fresh: Path, folder: Path) -> None:
    """Make the complete store in ``fresh`` appear at ``folder``; what was at ``folder``
    ends up in ``fresh`` (then deleted by the caller) or is deleted here."""
    if not folder.exists():
        os.rename(fresh, folder)
    elif not _exchange(fresh, folder):
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.rename(folder, old / "store")
        os.rename(fresh, folder)
        shutil.rmtree(old, ignore_errors=True)
    _sync_folder(folder.parent)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``). False where
    the system or file system does not offer it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                 _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the renames) to disk, where the system allows it."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


# ------------------------------------------------------------------------------------ load
def load(folder: str | Path, *, mmap: bool = True) -> NodeData:
    """Open a folder written by :func:`save`.

    With ``mmap=True`` (default) every tensor is a copy-on-write memory map of its file (see
    the module docstring): only the headers, ``rowptr``, ``col`` and ``y`` are read by the
    checks, the features when used. ``mmap=False`` reads everything into private memory.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: a file is corrupt or not a store file (truncated, empty, pickled,
            ``meta.json`` not JSON or lacking a key), another format or version, or arrays
            that break a rule: dtypes (int64 ``rowptr``/``col``/``y``, bool masks, floating
            ``x``), shapes, ``rowptr`` 0..E non-decreasing, source ids in 0..N-1, labels in
            0..C-1. The message names the file.
        TypeError: ``mmap`` is not a bool.
    """
    folder = _as_path(folder)
    if not isinstance(mmap, bool):
        raise TypeError(f"mmap must be True or False, got {mmap!r}.")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file; load needs the folder written by "
                         "gnnkit.data.store.save.")
    meta = _read_meta(folder)
    arrays = {name: _open(folder / f"{name}.npy", mmap) for name in _ARRAYS}
    _check_arrays(arrays, meta, lambda name: str(folder / f"{name}.npy"))
    tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
    return NodeData(**tensors, name=meta["name"])


def _as_path(folder) -> Path:
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or pathlib.Path), got "
                        f"{type(folder).__name__}.")
    return Path(folder)


def _read_meta(folder: Path) -> dict:
    """The checked content of ``folder/meta.json``."""
    path = folder / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {folder} a folder written by "
                                "gnnkit.data.store.save?")
    try:
        meta = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the store is corrupt, save "
                         "it again.") from None
    if not isinstance(meta, dict):
        raise ValueError(  # noqa: TRY004 - a corrupt file, not a bad argument
            f"{path} must hold a JSON object, got {type(meta).__name__}; the store is "
            "corrupt, save it again.")
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(map(repr, missing))}; the store is "
                         "corrupt, save it again.")
    if meta["format"] != FORMAT or meta["version"] != VERSION:
        raise ValueError(f"{path}: {folder} holds {meta['format']} version "
                         f"{meta['version']}; this gnnkit reads {FORMAT} version {VERSION}.")
    if not isinstance(meta["name"], str):
        raise ValueError(  # noqa: TRY004 - a corrupt file, not a bad argument
            f"{path}: name must be a string, got {meta['name']!r}; the store is corrupt, "
            "save it again.")
    for key, low in (("num_nodes", 1), ("num_edges", 0), ("num_classes", 1)):
        if key in meta:  # num_classes: absent in stores written before it was recorded
            _check_count(meta[key], f"{path}: {key}", low)
    return meta


def _check_count(value, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}; the store is "
                         "corrupt, save it again.")


def _open(path: Path, mmap: bool) -> np.ndarray:
    """The array in the ``.npy`` file ``path`` (memory-mapped copy-on-write with ``mmap``)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; the store is incomplete.")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; the store is corrupt, save it again.")
    try:
        return np.load(path, mmap_mode="c" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npy array (truncated, empty or not "
                         f"written by gnnkit.data.store.save: {error}); the store is corrupt, save "
                         "it again.") from None


# ---------------------------------------------------------------------------------- checks
def _check_arrays(arrays: dict[str, np.ndarray], meta: dict,
                  where: Callable[[str], str]) -> None:
    """Every rule of a store, on its numpy arrays; ``where(name)`` names an array (its file,
    or its NodeData field) in the error. Reads rowptr, col and y; x only by its header."""
    n, e = meta["num_nodes"], meta["num_edges"]
    if n < 1:
        raise ValueError(f"{where('rowptr')} must have N + 1 >= 2 entries (a graph needs a "
                         "node).")
    shapes = {"rowptr": (n + 1,), "col": (e,), "y": (n,), **{mask: (n,) for mask in _MASKS}}
    for name, shape in shapes.items():
        _check_dtype(arrays[name], name, where)
        if arrays[name].shape != shape:
            raise ValueError(f"{where(name)} has shape {arrays[name].shape}; expected {shape} "
                             f"(N = {n} nodes, E = {e} edges).")
    x = arrays["x"]
    _check_dtype(x, "x", where)
    if x.ndim != 2 or x.shape[0] != n or x.shape[1] < 1:
        raise ValueError(f"{where('x')} has shape {x.shape}; expected [{n}, F] with F >= 1 "
                         "(one row of features per node).")
    _check_rowptr(arrays["rowptr"], e, where("rowptr"))
    _check_range(arrays["col"], n, where("col"), "source id", "the graph's node ids")
    classes = meta.get("num_classes", n)
    _check_range(arrays["y"], classes, where("y"), "label",
                 "the labels 0..C-1" + (f" with C = {classes} (meta.json num_classes)"
                                        if "num_classes" in meta else " (C <= N)"))


def _expected(name: str) -> str:
    if name == "x":
        return "x must hold floating features (float32; float16 and float64 are kept as is)"
    if name in _MASKS:
        return f"{name} must be bool (one True/False per node)"
    return f"{name} must be int64 (long)"


def _check_dtype(array: np.ndarray, name: str, where: Callable[[str], str]) -> None:
    if name == "x":
        ok = array.dtype in [np.dtype(t) for t in _X_DTYPES]
    else:
        ok = array.dtype == (np.bool_ if name in _MASKS else np.int64)
    if not ok:
        raise ValueError(f"{where(name)} has dtype {array.dtype}; {_expected(name)}.")


def _check_rowptr(rowptr: np.ndarray, num_edges: int, where: str) -> None:
    if rowptr[0] != 0 or rowptr[-1] != num_edges:
        raise ValueError(f"{where} must start at 0 and end at E = {num_edges}, got "
                         f"{int(rowptr[0])} and {int(rowptr[-1])}.")
    if rowptr.size > 1 and (np.diff(rowptr) < 0).any():
        node = int(np.flatnonzero(np.diff(rowptr) < 0)[0])
        raise ValueError(f"{where} decreases after node {node}; rowptr must be "
                         "non-decreasing (in-degree of node i = rowptr[i+1] - rowptr[i]).")


def _check_range(values: np.ndarray, count: int, where: str, what: str, meaning: str) -> None:
    """Every entry of ``values`` in 0..count-1."""
    if values.size == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= count:
        bad = low if low < 0 else high
        raise ValueError(f"{where} contains the {what} {bad}, outside {meaning}, i.e. "
                         f"0..{count - 1}.")


def __getattr__(name: str):
    """``GraphData``: the container's name before it became :class:`NodeData`."""
    if name == "GraphData":
        warnings.warn("gnnkit.data.store.GraphData is now gnnkit.data.NodeData; the old name "
                      "goes in the next release.", DeprecationWarning, stacklevel=2)
        return NodeData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
