"""Data at scale: SNAP edge lists, the synthetic generator, the on-disk store."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATASETS, needs_data

from gnnkit import Graph
from gnnkit.data import snap, store
from gnnkit.data.synthetic import synthetic_graph

SLASHDOT = DATASETS / "snap" / "soc-Slashdot0902.txt.gz"

# ------------------------------------------------------------------ SNAP reader


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["edges.txt", "edges.txt.gz"])
def test_snap_comments_tabs_spaces(tmp_path, name):
    text = "# Directed graph\n# FromNodeId\tToNodeId\n0\t1\n2 0\n\n1\t\t2  # trailing\n3 3\n"
    result = snap.read_snap(write(tmp_path / name, text))
    assert result.graph.num_nodes == 4
    assert result.graph.edge_index.t().tolist() == [[0, 1], [2, 0], [1, 2], [3, 3]]
    assert result.node_ids.tolist() == [0, 1, 2, 3]


def test_snap_relabels_only_when_needed(tmp_path):
    path = write(tmp_path / "gaps.txt", "10 30\n30 20\n")
    result = snap.read_snap(path)
    assert result.node_ids.tolist() == [10, 20, 30]
    assert result.graph.edge_index.t().tolist() == [[0, 2], [2, 1]]
    kept = snap.read_snap(path, relabel=False)
    assert kept.graph.num_nodes == 31 and kept.graph.edge_index.t().tolist() == [[10, 30], [30, 20]]
    huge = snap.read_snap(write(tmp_path / "huge.txt", "5 123456789012\n"))
    assert huge.node_ids.tolist() == [5, 123456789012] and huge.graph.num_nodes == 2


def test_snap_reads_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(snap, "BLOCK_BYTES", 7)  # lines cut between blocks
    pairs = [(k, (3 * k + 1) % 50) for k in range(50)]
    text = "# c\n" + "".join(f"{u}\t{v}\n" for u, v in pairs)
    result = snap.read_snap(write(tmp_path / "e.txt.gz", text[:-1]))  # no final newline
    assert result.graph.edge_index.t().tolist() == [list(p) for p in pairs]


@pytest.mark.parametrize(
    "text, line",
    [("0 1\n1\n", 2), ("# c\n0 1\n1 x\n", 3), ("0 1 2\n", 1), ("0 1\n1.5 2\n", 2),
     ("0 -1\n", 1)],
)
def test_snap_malformed_line(tmp_path, text, line):
    path = write(tmp_path / "bad.txt", text)
    match = "negative" if "-1" in text else f"line {line}:"
    with pytest.raises(ValueError, match=match):
        snap.read_snap(path)


def test_snap_empty_and_missing(tmp_path):
    with pytest.raises(ValueError, match="no edges"):
        snap.read_snap(write(tmp_path / "empty.txt", "# nothing\n"))
    with pytest.raises(FileNotFoundError):
        snap.read_snap(tmp_path / "absent.txt")


@needs_data("snap/soc-Slashdot0902.txt.gz")
def test_slashdot_counts():
    result = snap.read_snap(SLASHDOT)
    assert result.graph.num_nodes == 82_168
    assert result.graph.num_edges == 948_464
    assert int((result.graph.source == result.graph.target).sum()) == 78_303


# ------------------------------------------------------------------ synthetic graph


def test_synthetic_sizes_and_determinism():
    data = synthetic_graph(3000, 40_000, num_classes=5, num_features=8, seed=3)
    assert data.num_nodes == 3000 and data.num_edges == 40_000
    assert data.rowptr.shape == (3001,) and int(data.rowptr[0]) == 0
    assert bool((data.rowptr.diff() >= 0).all())
    assert data.x.shape == (3000, 8) and data.x.dtype == torch.float32
    assert data.y.min() >= 0 and data.y.max() < 5
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert bool((masks.sum(0) == 1).all())  # a partition of the nodes
    assert int(data.train_mask.sum()) == 300 and int(data.val_mask.sum()) == 300
    again = synthetic_graph(3000, 40_000, num_classes=5, num_features=8, seed=3)
    other = synthetic_graph(3000, 40_000, num_classes=5, num_features=8, seed=4)
    for name in ("rowptr", "col", "x", "y", "train_mask"):
        assert torch.equal(getattr(data, name), getattr(again, name))
    assert not torch.equal(data.col, other.col)
    graph = data.graph()
    assert graph.num_edges == 40_000
    rowptr, col, _ = graph.csr
    assert torch.equal(rowptr, data.rowptr) and torch.equal(col, data.col)


def test_synthetic_power_law_and_class_signal():
    data = synthetic_graph(20_000, 300_000, seed=0)
    graph = data.graph()
    in_degree = graph.in_degree.float()
    assert in_degree.max() > 30 * in_degree.mean()  # heavy tail
    assert graph.out_degree.max() > 30 * in_degree.mean()
    same = (data.y[graph.source] == data.y[graph.target]).float().mean()
    assert 0.65 < float(same) < 0.8  # homophily 0.7 + 0.3 / 10

    def centroid_accuracy(features):
        train = data.train_mask
        centres = torch.stack([features[train & (data.y == c)].mean(0) for c in range(10)])
        predicted = torch.cdist(features, centres).argmin(1)
        return float((predicted == data.y)[data.test_mask].float().mean())

    mean_of_neighbours = torch.zeros_like(data.x).index_add_(0, graph.target, data.x[graph.source])
    mean_of_neighbours /= graph.in_degree.clamp(min=1).unsqueeze(1)
    alone = centroid_accuracy(data.x)
    assert 0.2 < alone < 0.8  # the features carry the class, not perfectly
    assert centroid_accuracy(mean_of_neighbours) > alone + 0.1  # the graph helps


@pytest.mark.parametrize(
    "kwargs, error",
    [({"num_nodes": 5, "num_classes": 10}, ValueError), ({"num_edges": -1}, ValueError),
     ({"homophily": 1.5}, ValueError), ({"exponent": 2.0}, ValueError),
     ({"num_nodes": 10.0}, TypeError), ({"train_fraction": 0.7, "val_fraction": 0.5}, ValueError)],
)
def test_synthetic_bad_input(kwargs, error):
    arguments = {"num_nodes": 100, "num_edges": 500, **kwargs}
    with pytest.raises(error, match=next(iter(kwargs))):
        synthetic_graph(**arguments)


# ------------------------------------------------------------------ store


def mapped_files() -> dict[int, str]:
    """Start address -> file of every file mapping of this process (Linux)."""
    result = {}
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6:
            start, end = (int(v, 16) for v in parts[0].split("-"))
            result[(start, end)] = parts[5]
    return result


def test_store_round_trip_is_memory_mapped(tmp_path):
    data = synthetic_graph(500, 4000, num_features=6, seed=1)
    store.save(data, tmp_path / "g")
    loaded = store.load(tmp_path / "g")
    assert loaded.name == data.name
    for name in ("rowptr", "col", "x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(loaded, name), getattr(data, name)), name
    if Path("/proc/self/maps").is_file():
        maps = mapped_files()
        for name in ("col", "x"):
            address = getattr(loaded, name).data_ptr()
            files = [f for (lo, hi), f in maps.items() if lo <= address < hi]
            assert files and files[0].endswith(f"{name}.npy"), name
    loaded.x[0, 0] = 1e6  # copy-on-write: the file is unchanged
    assert float(np.load(tmp_path / "g" / "x.npy")[0, 0]) == float(data.x[0, 0])
    in_memory = store.load(tmp_path / "g", mmap=False)
    assert torch.equal(in_memory.col, data.col)
    graph = loaded.graph()
    assert isinstance(graph, Graph) and graph.num_edges == 4000


def test_store_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        store.load(tmp_path)
    data = synthetic_graph(50, 200, seed=0)
    folder = store.save(data, tmp_path / "g")
    np.save(folder / "y.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="y.npy"):
        store.load(folder)
    (folder / "col.npy").unlink()
    with pytest.raises(FileNotFoundError, match="col.npy"):
        store.load(folder)
    with pytest.raises(TypeError, match="NodeData"):
        store.save(object(), tmp_path / "h")


# ------------------------------------------------------------------ one data package
def test_old_module_paths_and_names_warn_and_keep_working():
    import importlib

    import gnnkit
    from gnnkit.data import NodeData

    with pytest.warns(DeprecationWarning, match="gnnkit.store moved to gnnkit.data.store"):
        assert gnnkit.store.save is store.save
    with pytest.warns(DeprecationWarning, match="GraphData is now gnnkit.data.NodeData"):
        assert store.GraphData is NodeData
    for old in ("datasets", "snap", "synthetic"):
        with pytest.warns(DeprecationWarning, match=f"gnnkit.{old} moved"):
            assert getattr(gnnkit, old) is importlib.import_module(f"gnnkit.data.{old}")


def test_node_data_prints_a_summary_and_builds_from_an_edge_index():
    from gnnkit.data import NodeData, karate_club

    karate = karate_club()
    text = repr(karate)
    assert text.startswith("NodeData(name='KarateClub', num_nodes=34, num_edges=156")
    assert "x=[34, 34] float32" in text and "train/val/test=8/6/20" in text
    assert len(text) < 200  # shapes, never the tensors
    again = NodeData.from_edge_index(karate.edge_index.flip(1), karate.x, karate.y,
                                     karate.train_mask, karate.val_mask, karate.test_mask)
    assert torch.equal(again.rowptr, karate.rowptr) and torch.equal(again.col, karate.col)
