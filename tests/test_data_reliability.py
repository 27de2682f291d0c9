"""Regression tests for the data modules (issue 14, "nothing lost, nothing meaningless"):
store saves that never corrupt a loaded store, loads that name the corrupt file, NaN and
infinity refused by synthetic_graph, SNAP files that are not complete gzip or not regular
files, and sample_neighbors ids and fanouts beyond int64."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest
import torch

from gnnkit import Graph
from gnnkit.data import NodeData, store
from gnnkit.data.snap import read_snap
from gnnkit.data.synthetic import synthetic_graph
from gnnkit.sampling import sample_neighbors

FIELDS = ("rowptr", "col", "x", "y", "train_mask", "val_mask", "test_mask")


def small(seed: int = 0) -> NodeData:
    return synthetic_graph(30, 90, num_classes=4, num_features=5, seed=seed)


def copy(data: NodeData, **change) -> NodeData:
    name = change.pop("name", data.name)
    parts = {k: getattr(data, k).clone() for k in FIELDS}
    return NodeData(**{**parts, **change}, name=name)


def same(a: NodeData, b: NodeData) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in FIELDS) and a.name == b.name


def beside(folder) -> list[str]:
    """Names in the folder's parent other than the folder itself (leftovers of a save)."""
    return sorted(p.name for p in folder.parent.iterdir() if p != folder)


# ------------------------------------------------------------- cause 1: store save and load
def test_save_into_the_folder_it_was_loaded_from(tmp_path):
    folder = tmp_path / "g"
    store.save(small(), folder)
    data = store.load(folder)  # memory-mapped from the files that save replaces
    data.train_mask[:3] = True
    expected = copy(data)
    store.save(data, folder)
    assert same(store.load(folder, mmap=False), expected)
    assert beside(folder) == []


def test_earlier_load_keeps_its_values_after_a_later_save(tmp_path):
    folder = tmp_path / "g"
    store.save(small(seed=1), folder)
    first = store.load(folder)
    x_before = first.x.clone()
    store.save(small(seed=2), folder)
    assert torch.equal(first.x, x_before)
    assert same(store.load(folder), small(seed=2))


def test_save_without_folder_exchange_uses_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_exchange", lambda first, second: False)
    folder = tmp_path / "g"
    store.save(small(seed=1), folder)
    earlier = store.load(folder)
    x_before = earlier.x.clone()
    store.save(small(seed=3), folder)
    assert same(store.load(folder), small(seed=3))
    assert torch.equal(earlier.x, x_before)
    assert beside(folder) == []


def test_failed_save_leaves_the_old_store(tmp_path, monkeypatch):
    folder = tmp_path / "g"
    store.save(small(seed=1), folder)

    def fail_half_way(arrays, meta, target):
        np.save(target / "rowptr.npy", arrays["rowptr"])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write", fail_half_way)
    with pytest.raises(OSError, match="No space"):
        store.save(small(seed=2), folder)
    assert same(store.load(folder), small(seed=1))
    assert beside(folder) == []


def test_saved_folder_has_the_permissions_of_a_new_folder(tmp_path):
    (tmp_path / "plain").mkdir()
    store.save(small(), tmp_path / "g")
    assert (tmp_path / "g").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_save_checks_what_it_writes(tmp_path):
    good = small()
    cases = [
        ({"x": good.x[:-2]}, ValueError, "data.x"),
        ({"y": good.y.float()}, ValueError, "data.y"),
        ({"y": good.y - 1}, ValueError, "data.y"),
        ({"train_mask": good.train_mask.int()}, TypeError, "data.train_mask"),
        ({"x": good.x.tolist()}, TypeError, "data.x"),
        ({"name": 3}, TypeError, "data.name"),
    ]
    for change, error, match in cases:
        with pytest.raises(error, match=match):
            store.save(copy(good, **change), tmp_path / "bad")
        assert not (tmp_path / "bad").exists()
    for change, match in (({"col": good.col + good.num_nodes}, "data.col"),
                          ({"rowptr": good.rowptr.flip(0)}, "data.rowptr")):
        with pytest.raises(ValueError, match=match):
            store.save(copy(good, **change), tmp_path / "bad")


def test_save_accepts_features_that_require_grad(tmp_path):
    data = small()
    data.x = data.x.clone().requires_grad_(True)
    loaded = store.load(store.save(data, tmp_path / "g"))
    assert torch.equal(loaded.x, data.x.detach()) and not loaded.x.requires_grad


def test_save_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="notes.txt"):
        store.save(small(), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="is a file"):
        store.save(small(), tmp_path / "notes.txt")


def _npsave(name, make):
    return lambda folder, data: np.save(folder / name, make(data))


def _meta(change):
    def mutate(folder, data):
        meta = json.loads((folder / "meta.json").read_text())
        change(meta)
        (folder / "meta.json").write_text(json.dumps(meta))
    return mutate


def _truncate(name, keep):
    def mutate(folder, data):
        with open(folder / name, "r+b") as stream:
            stream.truncate(keep if keep >= 0 else os.path.getsize(folder / name) + keep)
    return mutate


CORRUPT = {
    "x int64": ("x.npy", _npsave("x.npy", lambda d: d.x.numpy().astype(np.int64))),
    "y -1": ("y.npy", _npsave("y.npy", lambda d: np.where(np.arange(30) == 4, -1,
                                                           d.y.numpy()))),
    "y beyond num_classes": ("y.npy", _npsave("y.npy", lambda d: np.where(
        np.arange(30) == 0, 7, d.y.numpy()))),
    "source id >= N": ("col.npy", _npsave("col.npy", lambda d: np.where(
        np.arange(90) == 10, 30, d.col.numpy()))),
    "meta lacks num_edges": ("meta.json", _meta(lambda m: m.pop("num_edges"))),
    "meta num_nodes a string": ("meta.json", _meta(lambda m: m.update(num_nodes="30"))),
    "meta not JSON": ("meta.json", lambda f, d: (f / "meta.json").write_text("{nope")),
    "x.npy empty": ("x.npy", _truncate("x.npy", 0)),
    "x.npy truncated": ("x.npy", _truncate("x.npy", -12)),
    "mask uint8": ("val_mask.npy", _npsave("val_mask.npy",
                                           lambda d: d.val_mask.numpy().astype(np.uint8))),
    "mask too short": ("test_mask.npy", _npsave("test_mask.npy",
                                                lambda d: d.test_mask.numpy()[:-1].copy())),
    "pickled array": ("y.npy", _npsave("y.npy", lambda d: np.array([None] * 30))),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
@pytest.mark.parametrize("mmap", [True, False])
def test_load_names_the_corrupt_file(tmp_path, case, mmap):
    data = small()
    folder = store.save(data, tmp_path / "g")
    filename, mutate = CORRUPT[case]
    mutate(folder, data)
    with pytest.raises(ValueError, match=filename.replace(".", r"\.")):
        store.load(folder, mmap=mmap)


def test_load_keeps_float16_and_float64_features(tmp_path):
    data = small()
    folder = store.save(data, tmp_path / "g")
    for dtype in (np.float16, np.float64):
        np.save(folder / "x.npy", data.x.numpy().astype(dtype))
        loaded = store.load(folder)
        assert loaded.x.dtype == torch.from_numpy(np.zeros(0, dtype)).dtype
        assert torch.allclose(loaded.x.float(), data.x, atol=1e-2)


def test_store_without_edges_round_trips(tmp_path):
    data = synthetic_graph(6, 0, num_classes=2, num_features=3, seed=4)
    assert same(store.load(store.save(data, tmp_path / "g")), data)


# ------------------------------------------------- cause 4: NaN and infinity in synthetic_graph
@pytest.mark.parametrize("name", ["homophily", "signal", "exponent", "train_fraction",
                                  "val_fraction"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_synthetic_refuses_nan_and_infinity(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        synthetic_graph(40, 100, **{name: value})


def test_synthetic_refuses_a_graph_beyond_memory():
    with pytest.raises(ValueError, match="GiB"):
        synthetic_graph(10**14, 10)


def test_synthetic_keeps_its_bounds():
    with pytest.raises(ValueError, match=r"exponent must be > 2"):
        synthetic_graph(40, 100, exponent=2)
    with pytest.raises(TypeError, match="seed"):
        synthetic_graph(40, 100, seed=2.0)
    assert torch.equal(synthetic_graph(40, 100, seed=np.int32(7)).col,
                       synthetic_graph(40, 100, seed=7).col)


# ------------------------------------------------------------------ cause 7: the SNAP reader
def _gzip_bytes(text: bytes) -> bytes:
    return gzip.compress(text)


@pytest.mark.parametrize("cut", [-3, 0.5, 11])
def test_snap_truncated_gzip_names_the_file(tmp_path, cut):
    raw = _gzip_bytes(b"# x\n3 4\n4 5\n5 3\n6 3\n")
    keep = len(raw) + cut if cut < 0 else int(len(raw) * cut) if cut < 1 else cut
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(raw[:keep])
    with pytest.raises(ValueError, match="cut.txt.gz.*gzip"):
        read_snap(path)


def test_snap_corrupt_gzip_names_the_file(tmp_path):
    raw = bytearray(_gzip_bytes(b"1 2\n2 3\n3 1\n" * 20))
    raw[len(raw) // 2] ^= 0x5A
    path = tmp_path / "flip.txt.gz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="flip.txt.gz"):
        read_snap(path)
    plain = tmp_path / "plain.txt.gz"
    plain.write_bytes(b"1 2\n")
    with pytest.raises(ValueError, match="plain.txt.gz"):
        read_snap(plain)
    hidden = tmp_path / "hidden.txt"
    hidden.write_bytes(_gzip_bytes(b"1 2\n"))
    with pytest.raises(ValueError, match="gzip-compressed"):
        read_snap(hidden)


def test_snap_relabel_false_refuses_ids_beyond_memory(tmp_path):
    path = tmp_path / "far.txt"
    path.write_bytes(b"2 3000000000000\n3000000000000 2\n")
    with pytest.raises(ValueError, match="relabel=True"):
        read_snap(path, relabel=False)
    assert read_snap(path).node_ids.tolist() == [2, 3 * 10**12]
    path.write_bytes(b"0 9223372036854775807\n")
    with pytest.raises(ValueError, match="relabel=True"):
        read_snap(path, relabel=False)


def test_snap_directory_and_fifo_say_what_they_are(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        read_snap(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_snap(tmp_path / "absent.txt")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(ValueError, match="FIFO"):
            read_snap(tmp_path / "pipe")
    with pytest.raises(TypeError, match="path"):
        read_snap(None)


# ------------------------------------------------- cause 10: ids and fanouts beyond int64
GRAPH = Graph(torch.tensor([[1, 2, 3, 3], [0, 0, 0, 2]]), 4)


@pytest.mark.parametrize("fanout", [2**63, 2**64 + 5])
def test_sampling_fanout_beyond_int64(fanout):
    with pytest.raises(ValueError, match=r"fanouts\[1\]"):
        sample_neighbors(GRAPH, [0], [2, fanout])


def test_sampling_largest_int64_fanout_takes_all_edges():
    sample = sample_neighbors(GRAPH, [0], [2**63 - 1])
    assert sample.graph.num_edges == 3


@pytest.mark.parametrize("seeds", [[0, 2**64], [2**63], np.array([2**63, 1], dtype=np.uint64),
                                   torch.tensor([1, 2**63 + 7], dtype=torch.uint64)])
def test_sampling_seed_beyond_int64_is_named(seeds):
    with pytest.raises(ValueError, match=r"seeds contains node id (92233|18446)"):
        sample_neighbors(GRAPH, seeds, [1])


def test_sampling_uint64_seeds_within_range():
    sample = sample_neighbors(GRAPH, np.array([2, 0], dtype=np.uint64), [-1])
    assert sample.n_id[:2].tolist() == [2, 0]
