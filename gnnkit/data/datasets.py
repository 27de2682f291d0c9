"""Node-classification datasets: Zachary's karate club and the Planetoid citation graphs.

Every loader returns a :class:`NodeData`. Its graph's ``edge_index`` follows the
project convention: a ``[2, E]`` long tensor whose row 0 holds the source
``j`` and row 1 the target ``i`` of each message ``j -> i``. Both directions of
every undirected edge are stored, without duplicates or self-loops, sorted by
``(target, source)``.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from ..ops.features import csr_parts, is_sparse
from ..ops.features import sparse_features as to_sparse
from .node_data import NodeData

PLANETOID_NAMES = ("Cora", "CiteSeer", "PubMed")
_PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def normalize_rows(x: Tensor) -> Tensor:
    """Scale each row of ``x`` ``[N, F]`` to sum to 1; all-zero rows stay zero. A sparse ``x``
    gives a sparse CSR result with the same pattern."""
    if is_sparse(x):
        rowptr, col, values = csr_parts(x)
        row_sum = torch.segment_reduce(values, "sum", offsets=rowptr, axis=0)
        row_sum = torch.where(row_sum == 0, torch.ones_like(row_sum), row_sum)
        divisor = torch.repeat_interleave(row_sum, rowptr.diff())
        return torch.sparse_csr_tensor(rowptr, col, values / divisor, x.shape,
                                       check_invariants=False)
    row_sum = x.sum(dim=1, keepdim=True)
    return x / torch.where(row_sum == 0, torch.ones_like(row_sum), row_sum)


def _undirected_edge_index(src: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
    """Build a symmetric ``[2, E]`` edge_index from directed pairs ``src -> dst`` (each ``[M]``).

    Adds the reverse of every pair, drops self-loops and duplicates, and sorts
    the result by ``(target, source)``.
    """
    src, dst = torch.cat([src, dst]), torch.cat([dst, src])
    keep = src != dst
    keys = torch.unique(dst[keep] * num_nodes + src[keep])  # sorted ascending
    return torch.stack([keys % num_nodes, keys // num_nodes])


def _index_to_mask(index: Tensor, num_nodes: int) -> Tensor:
    """Boolean ``[num_nodes]`` mask that is True at ``index``."""
    mask = torch.zeros(num_nodes, dtype=torch.bool)
    mask[index] = True
    return mask


def karate_club(seed: int = 0) -> NodeData:
    """Zachary's karate club (34 nodes, 78 undirected edges, 2 classes).

    * Features: the identity matrix ``[34, 34]`` (one-hot node id).
    * Labels: the faction in the node attribute ``"club"``:
      ``"Mr. Hi"`` -> 0, ``"Officer"`` -> 1.
    * Split (deterministic for a given ``seed``): 4 training nodes per class,
      always including the two leaders (node 0 for class 0, node 33 for
      class 1) plus 3 others drawn at random; 3 validation nodes per class
      drawn at random from the remaining nodes; the other 20 nodes are test.
    """
    graph = nx.karate_club_graph()
    num_nodes = graph.number_of_nodes()
    clubs = {"Mr. Hi": 0, "Officer": 1}
    y = torch.tensor([clubs[graph.nodes[v]["club"]] for v in range(num_nodes)])

    pairs = torch.tensor(list(graph.edges()), dtype=torch.long)
    edge_index = _undirected_edge_index(pairs[:, 0], pairs[:, 1], num_nodes)

    generator = torch.Generator().manual_seed(seed)
    train_mask = torch.zeros(num_nodes, dtype=torch.bool)
    val_mask = torch.zeros(num_nodes, dtype=torch.bool)
    for label, leader in ((0, 0), (1, num_nodes - 1)):
        others = torch.nonzero((y == label) & (torch.arange(num_nodes) != leader)).view(-1)
        others = others[torch.randperm(others.numel(), generator=generator)]
        train_mask[leader] = True
        train_mask[others[:3]] = True
        val_mask[others[3:6]] = True
    test_mask = ~(train_mask | val_mask)

    return NodeData.from_edge_index(
        edge_index,
        name="KarateClub",
        x=torch.eye(num_nodes, dtype=torch.float32),
        y=y,
        train_mask=train_mask,
        val_mask=val_mask,
        test_mask=test_mask,
    )


def _read_planetoid_part(path: Path):
    """Load one raw Planetoid file: a dense ``np.ndarray``, a graph dict, or test ids ``[T]``."""
    if path.name.endswith(".test.index"):
        return np.array(path.read_text().split(), dtype=np.int64)
    with path.open("rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old scipy module paths
        obj = pickle.load(f, encoding="latin1")
    if isinstance(obj, dict):
        return obj
    return obj.toarray() if hasattr(obj, "toarray") else np.asarray(obj)


def planetoid(
    root: str | Path, name: str = "Cora", normalize_features: bool = False,
    sparse_features: bool = False,
) -> NodeData:
    """Load a Planetoid citation graph (Cora, CiteSeer, PubMed) from its original raw files.

    Reads ``<root>/<name>/raw/ind.<name lower>.{x,tx,allx,y,ty,ally,graph,test.index}``
    and never writes anything. The result matches
    ``torch_geometric.datasets.Planetoid(root, name)`` with the public split:

    * Nodes: ``allx`` / ``ally`` rows are nodes ``0 .. len(allx)-1``; row ``k``
      of ``tx`` / ``ty`` is node ``test.index[k]``. Ids inside the test range
      with no row (isolated CiteSeer nodes) get all-zero features and label 0.
    * Features ``x``: ``[N, F]`` float32, binary bag of words; row-normalised
      (each row sums to 1) when ``normalize_features`` is True; a sparse CSR tensor when
      ``sparse_features`` is True (Cora's are 1.3% non-zero; every gnnkit layer and model
      takes either form, see :mod:`gnnkit.ops.features`; full-batch training converts to the
      sparse form by itself).
    * Labels ``y``: ``[N]`` long, argmax of the one-hot label rows (0 for an
      all-zero row).
    * Edges: the adjacency lists of ``graph`` (``key -> neighbour``) with
      self-loops and duplicates removed, made symmetric (the standard files
      are already symmetric, so this only guards against one-way entries).
    * Split: train = nodes ``0 .. len(y)-1`` (20 per class), val = the next
      500 nodes, test = the ids listed in ``test.index`` (1000 nodes).

    Raises:
        FileNotFoundError: if any raw file is missing.
    """
    raw_dir = Path(root) / name / "raw"
    prefix = f"ind.{name.lower()}"
    paths = [raw_dir / f"{prefix}.{part}" for part in _PLANETOID_PARTS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Planetoid raw file {missing[0]} not found (expected the files "
            f"{prefix}.{{{','.join(_PLANETOID_PARTS)}}} in {raw_dir}). "
            f"Pass --root pointing at a folder containing {name}/raw/."
        )
    raw = {part: _read_planetoid_part(p) for part, p in zip(_PLANETOID_PARTS, paths) if part != "x"}
    tx, allx, ty, ally = raw["tx"], raw["allx"], raw["ty"], raw["ally"]
    graph, test_index = raw["graph"], raw["test.index"]

    num_nodes = max(len(allx), int(test_index.max()) + 1)
    features = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    features[: len(allx)] = allx
    features[test_index] = tx
    one_hot = np.zeros((num_nodes, ally.shape[1]), dtype=np.int64)
    one_hot[: len(ally)] = ally
    one_hot[test_index] = ty

    src = torch.tensor([u for u, nbrs in graph.items() for _ in nbrs], dtype=torch.long)
    dst = torch.tensor([v for nbrs in graph.values() for v in nbrs], dtype=torch.long)

    x = torch.from_numpy(features)
    x = normalize_rows(x) if normalize_features else x
    num_train = len(raw["y"])
    return NodeData.from_edge_index(
        _undirected_edge_index(src, dst, num_nodes),
        name=name,
        x=to_sparse(x) if sparse_features else x,
        y=torch.from_numpy(one_hot.argmax(axis=1)),
        train_mask=_index_to_mask(torch.arange(num_train), num_nodes),
        val_mask=_index_to_mask(torch.arange(num_train, num_train + 500), num_nodes),
        test_mask=_index_to_mask(torch.from_numpy(test_index), num_nodes),
    )


def load_dataset(name: str, root: str | Path | None = None) -> NodeData:
    """Load a dataset by case-insensitive name: ``karate``, ``cora``, ``citeseer`` or ``pubmed``.

    ``root`` is required for the Planetoid datasets and must contain
    ``Cora/raw/``, ``CiteSeer/raw/`` or ``PubMed/raw/`` (see :func:`planetoid`).

    Raises:
        ValueError: for an unknown name, or a Planetoid name without ``root``.
    """
    key = name.lower()
    if key == "karate":
        return karate_club()
    planetoid_names = {n.lower(): n for n in PLANETOID_NAMES}
    if key not in planetoid_names:
        choices = ", ".join(["karate", *planetoid_names])
        raise ValueError(f"unknown dataset {name!r}; choose one of: {choices}")
    if root is None:
        raise ValueError(
            f"dataset {name!r} needs root: a folder containing {planetoid_names[key]}/raw/"
        )
    return planetoid(root, planetoid_names[key])
