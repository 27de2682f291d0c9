"""Tests for gnnkit.datasets; Planetoid loading is checked against torch_geometric."""

import pickle
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import DATASETS, needs_data
from torch_geometric.datasets import Planetoid
from torch_geometric.utils import to_undirected

from gnnkit.data import NodeData
from gnnkit.data.datasets import karate_club, load_dataset, normalize_rows, planetoid

PLANETOID_ROOT = DATASETS / "planetoid"
needs_cora = needs_data("planetoid/Cora/raw")


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def check_well_formed(data: NodeData) -> None:
    """Shapes, dtypes, the edge_index convention and pairwise-disjoint masks."""
    n = data.num_nodes
    assert data.x.dtype == torch.float32 and data.x.shape == (n, data.num_features)
    assert data.y.dtype == torch.long and data.y.shape == (n,)
    assert data.edge_index.dtype == torch.long and data.edge_index.size(0) == 2
    src, dst = data.edge_index
    assert int(data.edge_index.min()) >= 0 and int(data.edge_index.max()) < n
    assert not bool((src == dst).any())
    keys = dst * n + src
    assert bool((keys[1:] > keys[:-1]).all()), "not sorted by (target, source) or has duplicates"
    assert edge_set(data.edge_index) == edge_set(data.edge_index.flip(0))
    masks = (data.train_mask, data.val_mask, data.test_mask)
    for mask in masks:
        assert mask.dtype == torch.bool and mask.shape == (n,)
    assert not bool((data.train_mask & data.val_mask).any())
    assert not bool((data.train_mask & data.test_mask).any())
    assert not bool((data.val_mask & data.test_mask).any())


# --- karate club -------------------------------------------------------------


def test_karate_facts():
    data = karate_club()
    check_well_formed(data)
    assert data.num_nodes == 34
    assert data.num_features == 34
    assert data.num_classes == 2
    assert data.edge_index.size(1) == 156
    assert torch.equal(data.x, torch.eye(34))
    assert data.y[0] == 0 and data.y[33] == 1
    assert int((data.y == 0).sum()) == 17


def test_karate_split():
    data = karate_club(seed=3)
    assert bool((data.train_mask | data.val_mask | data.test_mask).all())
    assert data.train_mask[0] and data.train_mask[33]
    for label in (0, 1):
        assert int((data.train_mask & (data.y == label)).sum()) == 4
        assert int((data.val_mask & (data.y == label)).sum()) == 3
    assert int(data.test_mask.sum()) == 20


def test_karate_split_deterministic_per_seed():
    a, b = karate_club(seed=7), karate_club(seed=7)
    for name in ("train_mask", "val_mask", "test_mask", "edge_index", "y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    splits = {tuple(karate_club(seed=s).train_mask.tolist()) for s in range(5)}
    assert len(splits) > 1


# --- Planetoid ---------------------------------------------------------------


def pyg_oracle(root: Path, name: str):
    return Planetoid(str(root), name)[0]


def assert_matches_pyg(ours: NodeData, ref) -> None:
    assert torch.equal(ours.x, ref.x)
    assert torch.equal(ours.y, ref.y)
    assert edge_set(ours.edge_index) == edge_set(ref.edge_index)
    assert ours.edge_index.size(1) == ref.edge_index.size(1)
    assert torch.equal(ours.train_mask, ref.train_mask)
    assert torch.equal(ours.val_mask, ref.val_mask)
    assert torch.equal(ours.test_mask, ref.test_mask)


def copy_raw(src_raw: Path, dst_root: Path, name: str) -> None:
    dst_raw = dst_root / name / "raw"
    dst_raw.mkdir(parents=True)
    for f in src_raw.iterdir():
        shutil.copyfile(f, dst_raw / f.name)


@needs_cora
def test_cora_facts():
    data = planetoid(PLANETOID_ROOT, "Cora")
    check_well_formed(data)
    assert data.num_nodes == 2708
    assert data.edge_index.size(1) == 10556
    assert data.num_features == 1433
    assert data.num_classes == 7
    assert set(data.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(data.train_mask.nonzero().view(-1), torch.arange(140))
    assert torch.equal(data.val_mask.nonzero().view(-1), torch.arange(140, 640))
    assert int(data.test_mask.sum()) == 1000
    assert torch.equal(torch.bincount(data.y[data.train_mask]), torch.full((7,), 20))


@needs_cora
def test_cora_matches_pyg(tmp_path):
    copy_raw(PLANETOID_ROOT / "Cora" / "raw", tmp_path, "Cora")
    ours, ref = planetoid(PLANETOID_ROOT, "Cora"), pyg_oracle(tmp_path, "Cora")
    assert_matches_pyg(ours, ref)
    assert torch.equal(ours.edge_index, ref.edge_index)  # same (target, source) order too


@needs_cora
def test_cora_normalized_features():
    raw = planetoid(PLANETOID_ROOT, "Cora")
    norm = planetoid(PLANETOID_ROOT, "Cora", normalize_features=True)
    sums = norm.x.sum(dim=1)
    nonzero = raw.x.sum(dim=1) > 0
    assert torch.allclose(sums[nonzero], torch.ones(int(nonzero.sum())))
    assert torch.equal(norm.x > 0, raw.x > 0)


@needs_cora
def test_planetoid_does_not_write_into_root():
    def snapshot():
        return sorted((str(p), p.stat().st_mtime_ns) for p in PLANETOID_ROOT.rglob("*"))

    before = snapshot()
    planetoid(PLANETOID_ROOT, "Cora")
    load_dataset("cora", PLANETOID_ROOT)
    assert snapshot() == before


@needs_cora
def test_load_dataset_cora():
    data = load_dataset("CORA", root=PLANETOID_ROOT)
    assert data.num_nodes == 2708 and data.num_classes == 7


def write_citeseer_like(root: Path) -> None:
    """Tiny Planetoid files with CiteSeer's quirks.

    Test ids out of order with gaps (isolated nodes without rows), an all-zero
    label row, and a graph dict holding a self-loop, a duplicate and one-way edges.
    """
    rng = np.random.default_rng(0)
    num_classes, num_feats, num_all = 3, 5, 510  # room for 6 train + 500 val nodes
    test_index = np.array([513, 510, 516, 511, 515])  # 512 and 514 are missing
    raw = root / "CiteSeer" / "raw"
    raw.mkdir(parents=True)

    def one_hot(n):
        out = np.eye(num_classes, dtype=np.int32)[rng.integers(0, num_classes, n)]
        return out

    ally = one_hot(num_all)
    ally[7] = 0
    allx = sp.csr_matrix(rng.integers(0, 2, (num_all, num_feats)).astype(np.float32))
    tx = sp.csr_matrix(rng.integers(0, 2, (len(test_index), num_feats)).astype(np.float32))
    graph = defaultdict(list, {i: [] for i in range(517)})
    for u, v in [(0, 1), (1, 0), (2, 2), (3, 4), (3, 4), (4, 3), (5, 510), (513, 6), (516, 511)]:
        graph[u].append(v)
    parts = {
        "x": allx[: 2 * num_classes],
        "y": ally[: 2 * num_classes],
        "allx": allx,
        "ally": ally,
        "tx": tx,
        "ty": one_hot(len(test_index)),
        "graph": graph,
    }
    for part, obj in parts.items():
        with (raw / f"ind.citeseer.{part}").open("wb") as f:
            pickle.dump(obj, f)
    (raw / "ind.citeseer.test.index").write_text("\n".join(map(str, test_index)) + "\n")


def test_citeseer_quirks_match_pyg(tmp_path):
    src, oracle = tmp_path / "src", tmp_path / "oracle"
    write_citeseer_like(src)
    copy_raw(src / "CiteSeer" / "raw", oracle, "CiteSeer")
    ours = planetoid(src, "CiteSeer")
    assert ours.num_nodes == 517
    assert not bool(ours.x[[512, 514]].any())
    assert ours.y[7] == 0 and not bool(ours.test_mask[[512, 514]].any())
    assert ours.edge_index.size(1) == 10  # 5 undirected edges after symmetrising
    ref = pyg_oracle(oracle, "CiteSeer")
    # PyG keeps one-way adjacency entries as they are; the real files are symmetric.
    ref.edge_index = to_undirected(ref.edge_index, num_nodes=ref.num_nodes)
    assert_matches_pyg(ours, ref)


def test_missing_files_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--root") as err:
        planetoid(tmp_path, "Cora")
    assert str(tmp_path / "Cora" / "raw") in str(err.value)
    assert list(tmp_path.iterdir()) == []


# --- helpers and dispatch ----------------------------------------------------


def test_normalize_rows_keeps_zero_rows():
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert torch.equal(normalize_rows(x), torch.tensor([[0.25, 0.75], [0.0, 0.0]]))


def test_load_dataset_karate():
    assert load_dataset("Karate").num_nodes == 34


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError, match="karate, cora, citeseer, pubmed"):
        load_dataset("imagenet")


def test_load_dataset_planetoid_needs_root():
    with pytest.raises(ValueError, match="root"):
        load_dataset("pubmed")
