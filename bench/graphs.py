"""Graph specs shared by every benchmark: random sizes, Cora, Slashdot, synthetic graphs.

* **Random graphs** (:class:`Size`, :data:`SIZES`, :func:`parse_size`, :func:`limit_size`):
  N nodes, E uniform random edges and a layer's F_in -> F_out, e.g. ``100k-1M``; the layer
  rows draw them from the seed.
* **Datasets** under :data:`DATASETS` (``$GNNKIT_DATA``, default ``../shared/datasets`` next
  to the repository): Cora (``planetoid/Cora/raw``), Slashdot (``snap/soc-Slashdot0902.txt.gz``,
  read by :func:`gnnkit.data.read_snap`), TU datasets (``tu/``).
* **Planetoid-sized graphs** (:data:`PLANETOID_SIZED`, :func:`planetoid_sized`): seeded stand-ins
  with the sizes of CiteSeer and PubMed (whose files are not on disk), for the epoch rows.
* **Synthetic graphs** of :mod:`gnnkit.data.synthetic` (the products-size one is 2.4M nodes, 62M
  edges, 100 features): generated once, seed 0, into a :mod:`gnnkit.data.store` under one cache
  folder (:data:`CACHE`, ``--data-dir``) and memory-mapped from there.

The sampling and training workers get a graph as a *spec*, a small JSON-able dict made by
:func:`slashdot_spec` or :func:`synthetic_spec`, and turn it into data with :func:`load`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("GNNKIT_DATA", ROOT.parent / "shared" / "datasets"))
CORA_ROOT = DATASETS / "planetoid"
SLASHDOT = DATASETS / "snap" / "soc-Slashdot0902.txt.gz"
CACHE = Path("/tmp/gnnkit-bench")
PRODUCTS = (2_400_000, 62_000_000)  # nodes, edges of the products-size synthetic graph
FEATURES = 100  # feature width of the sampling and training graphs
LIMIT_EDGES_PER_NODE = 10


# ---------------------------------------------------------------------------------- random
@dataclass(frozen=True)
class Size:
    """A random graph: ``num_nodes`` N, ``num_edges`` E, and the layer's F_in -> F_out."""

    name: str
    num_nodes: int
    num_edges: int
    in_features: int = 128
    out_features: int = 64


SIZES = {
    size.name: size
    for size in (
        Size("tiny", 1_000, 5_000),  # --quick only
        Size("cora-sized", 2_708, 10_556),
        Size("50k-500k", 50_000, 500_000, 64, 64),
        Size("100k-1M", 100_000, 1_000_000),
        Size("large", 1_000_000, 10_000_000),
    )
}


def parse_size(text: str) -> Size:
    """A preset name, or ``<nodes>x<edges>`` (e.g. ``200000x2000000``) with 128 -> 64 features."""
    if text in SIZES:
        return SIZES[text]
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if match:
        return Size(text, int(match[1]), int(match[2]))
    raise ValueError(f"unknown size {text!r}: use one of {sorted(SIZES)} or <nodes>x<edges>")


def limit_size(num_nodes: int) -> Size:
    """The graph tried by ``--find-limit``: N nodes, 10 N edges, 128 -> 64 features."""
    return Size(f"{num_nodes}x{LIMIT_EDGES_PER_NODE * num_nodes}", num_nodes,
                LIMIT_EDGES_PER_NODE * num_nodes)


def count(text: str) -> int:
    """``2.4M`` -> 2400000, ``800k`` -> 800000, ``5000`` -> 5000."""
    scale = {"k": 10**3, "M": 10**6}.get(text[-1], 1)
    return int(float(text.rstrip("kM")) * scale)


# ---------------------------------------------------------------------------------- Cora
def cora_missing(root: str | Path) -> str | None:
    """None when Cora's raw files are under ``root``, else the reason they cannot be used."""
    raw = Path(root) / "Cora" / "raw"
    if not raw.is_dir():
        return f"Cora not found: {raw} does not exist (pass --cora-root)"
    return None


def cora(root: str | Path, normalize: bool = False):
    """Cora (2708 nodes, 10556 directed edges, 1433 features, 7 classes), public split;
    features as stored (binary), or each row divided by its sum with ``normalize``."""
    from gnnkit.data import planetoid

    return planetoid(root, "Cora", normalize_features=normalize)


# ---------------------------------------------------------------------------------- Planetoid-sized
@dataclass(frozen=True)
class PlanetoidSize:
    """A synthetic stand-in for a Planetoid dataset: N nodes, ``num_pairs`` undirected edges
    (2 x that many directed ones), F features of which about ``density`` are non-zero (binary
    bag of words, or positive TF-IDF-like values), C classes."""

    name: str
    num_nodes: int
    num_pairs: int
    num_features: int
    density: float
    num_classes: int
    binary: bool


PLANETOID_SIZED = {
    size.name: size
    for size in (
        PlanetoidSize("citeseer-sized", 3_327, 4_552, 3_703, 0.0085, 6, binary=True),
        PlanetoidSize("pubmed-sized", 19_717, 44_324, 500, 0.10, 3, binary=False),
    )
}
EPOCH_DATASETS = ("cora", *PLANETOID_SIZED)
TRAIN_PER_CLASS = 20


@dataclass
class NodeTensors:
    """One node-classification dataset as plain tensors: ``x`` [N, F] dense, ``edge_index``
    [2, E], labels ``y`` [N], ``train_mask`` [N]."""

    x: object
    edge_index: object
    y: object
    train_mask: object
    num_classes: int


def planetoid_sized(size: PlanetoidSize, seed: int = 0) -> NodeTensors:
    """The seeded synthetic graph of ``size``, laid out as :func:`gnnkit.data.planetoid` lays
    out Cora:

    * edges: ``num_pairs`` distinct node pairs drawn uniformly (no self-loops), each in both
      directions, sorted by (target, source) as Planetoid's ``edge_index`` is; the degrees are
      those of a uniform random graph, less skewed than the real citation graphs';
    * features: each entry non-zero with probability ``density`` (1.0, or uniform in (0, 1) for
      the TF-IDF-like ones), each row divided by its sum (as PyG's ``NormalizeFeatures``);
    * labels: uniform random, except that the first 20 C nodes, the training nodes (the public
      split's layout), hold 20 of each class in a random order.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    n = size.num_nodes
    pairs = torch.empty(0, dtype=torch.long)
    while pairs.numel() < size.num_pairs:
        ends = torch.randint(0, n, (2, 2 * size.num_pairs), generator=generator)
        low, high = ends.min(0).values, ends.max(0).values
        pairs = torch.cat([pairs, (low * n + high)[low != high]]).unique()
    pairs = pairs[torch.randperm(pairs.numel(), generator=generator)[: size.num_pairs]]
    u, v = pairs // n, pairs % n
    keys = torch.cat([v * n + u, u * n + v]).sort().values  # (target, source), both directions
    edge_index = torch.stack([keys % n, keys // n])

    shape = (n, size.num_features)
    present = torch.rand(shape, generator=generator) < size.density
    values = torch.ones(shape) if size.binary else torch.rand(shape, generator=generator)
    x = torch.where(present, values, torch.zeros(()))
    x = x / x.sum(1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)

    num_train = TRAIN_PER_CLASS * size.num_classes
    y = torch.randint(0, size.num_classes, (n,), generator=generator)
    y[:num_train] = torch.arange(size.num_classes).repeat_interleave(TRAIN_PER_CLASS)[
        torch.randperm(num_train, generator=generator)]
    train_mask = torch.zeros(n, dtype=torch.bool)
    train_mask[:num_train] = True
    return NodeTensors(x, edge_index, y, train_mask, size.num_classes)


def epoch_dataset(name: str, cora_root: str | Path, seed: int = 0) -> NodeTensors:
    """A dataset of the epoch rows by name: ``cora`` (the real one, rows normalised so that
    all three datasets are alike) or one of :data:`PLANETOID_SIZED`."""
    if name == "cora":
        data = cora(cora_root, normalize=True)
        return NodeTensors(data.x, data.edge_index, data.y, data.train_mask, data.num_classes)
    if name in PLANETOID_SIZED:
        return planetoid_sized(PLANETOID_SIZED[name], seed)
    raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(EPOCH_DATASETS)}")


# ---------------------------------------------------------------------------------- specs
def slashdot_spec(path: Path = SLASHDOT, features: int = FEATURES) -> dict:
    """Slashdot (SNAP, 82,168 nodes, 948,464 directed edges) with random features, labels and
    split (seed 0)."""
    return {"kind": "snap", "path": str(path), "features": features,
            "label": f"soc-Slashdot0902 (SNAP), random features ({features}) and labels"}


def synthetic_spec(num_nodes: int, num_edges: int, features: int = FEATURES,
                   data_dir: Path = CACHE) -> dict:
    """A synthetic graph's store under ``data_dir``, generated on first use (seed 0, in a child
    process, so that this one stays small)."""
    folder = Path(data_dir) / f"synthetic-{num_nodes}-{num_edges}-{features}"
    if not (folder / "meta.json").is_file():
        print(f"  generating {num_nodes:,} nodes / {num_edges:,} edges / {features} features "
              f"into {folder} ...", file=sys.stderr, flush=True)
        code = ("import sys; from gnnkit.data import store, synthetic_graph; "
                f"store.save(synthetic_graph({num_nodes}, {num_edges}, "
                f"num_features={features}, seed=0), sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return {"kind": "store", "path": str(folder), "features": features,
            "label": f"gnnkit.data.synthetic_graph({num_nodes:,}, {num_edges:,}, "
                     f"num_features={features}, seed=0), memory-mapped store"}


def load(spec: dict):
    """The :class:`gnnkit.data.NodeData` of a spec: the store memory-mapped, or the SNAP graph
    in CSR form with random features, labels in 0..9 and a 10% / 10% / 80% split (seed 0)."""
    import torch

    from gnnkit.data import NodeData, read_snap, store

    if spec["kind"] == "store":
        return store.load(spec["path"])
    graph = read_snap(spec["path"]).graph
    rowptr, col, _ = graph.csr
    n = graph.num_nodes
    generator = torch.Generator().manual_seed(0)
    split = torch.rand(n, generator=generator)
    return NodeData(
        rowptr=rowptr, col=col, x=torch.randn(n, spec["features"], generator=generator),
        y=torch.randint(0, 10, (n,), generator=generator), train_mask=split < 0.1,
        val_mask=(split >= 0.1) & (split < 0.2), test_mask=split >= 0.2, name="slashdot")
