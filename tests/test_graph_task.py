"""Graph classification with k-fold cross-validation: folds, training loop, CLI."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from conftest import DATASETS

from gnnkit.cli import main
from gnnkit.train import GraphTrainConfig, cross_validate, stratified_folds
from gnnkit.train.graph_task import split_fold

SUMMARY = re.compile(r"^test accuracy: (\d\.\d{4}) \+- (\d\.\d{4}) over (\d+) folds", re.MULTILINE)


def _data_root() -> Path:
    return DATASETS


def toy_graphs(count: int = 40, seed: int = 0):
    """Cycles (class 0) and stars (class 1) of 5-9 nodes, features all ones: only the
    structure tells them apart (a star's centre has a high degree)."""
    generator = torch.Generator().manual_seed(seed)
    items = []
    for k in range(count):
        n = int(torch.randint(5, 10, (1,), generator=generator))
        if k % 2 == 0:
            src = torch.arange(n)
            dst = (src + 1) % n
        else:
            src = torch.zeros(n - 1, dtype=torch.long)
            dst = torch.arange(1, n)
        edge_index = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
        items.append((edge_index, torch.ones(n, 1), k % 2))
    return items


def write_tu(folder: Path, items, name: str = "TOY") -> Path:
    """``items`` in the TU text format under ``folder/name``."""
    path = folder / name
    path.mkdir(parents=True)
    edges, indicator, labels, offset = [], [], [], 0
    for g, (edge_index, x, y) in enumerate(items):
        edges += [f"{int(j) + offset + 1}, {int(i) + offset + 1}" for j, i in edge_index.t()]
        indicator += [str(g + 1)] * x.shape[0]
        labels.append(str(y + 1))
        offset += x.shape[0]
    for part, lines in (("A", edges), ("graph_indicator", indicator), ("graph_labels", labels)):
        (path / f"{name}_{part}.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_stratified_folds_partition_and_balance():
    y = torch.tensor([0] * 30 + [1] * 12 + [2] * 7)
    folds = stratified_folds(y, 5, seed=3)
    together = torch.cat(folds).sort().values
    assert torch.equal(together, torch.arange(y.numel()))  # disjoint and complete
    for fold in folds:  # each class spread evenly, up to one graph
        counts = torch.bincount(y[fold], minlength=3)
        assert all(abs(int(c) - n / 5) < 1 for c, n in zip(counts, (30, 12, 7), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(folds, stratified_folds(y, 5, seed=3),
                                                  strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(folds, stratified_folds(y, 5, seed=4),
                                                      strict=True))
    train, val, test = split_fold(y, folds, 2, 0.1, seed=3)
    assert torch.equal(test, folds[2])
    parts = torch.cat([train, val, test]).sort().values
    assert torch.equal(parts, torch.arange(y.numel()))
    assert 3 <= val.numel() <= 5


def test_stratified_folds_check_input():
    with pytest.raises(TypeError, match="y must be a 1-D integer"):
        stratified_folds(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="folds"):
        stratified_folds(torch.zeros(5, dtype=torch.long), 1)


def test_cross_validation_learns_structure_and_is_seeded():
    items = toy_graphs()
    config = GraphTrainConfig(epochs=15, hidden=16, num_layers=2, batch_size=8)
    first = cross_validate(items, config, folds=4, seed=0)
    assert len(first.folds) == 4
    assert first.mean >= 0.8, first.accuracies
    again = cross_validate(items, config, folds=4, seed=0)
    assert again.accuracies == first.accuracies
    assert [f.history for f in again.folds] == [f.history for f in first.folds]
    assert all(1 <= f.best_epoch <= f.epochs_run == 15 for f in first.folds)
    assert math.isclose(first.std, torch.tensor(first.accuracies).std().item(), rel_tol=1e-6)


def test_settings_are_checked_by_name():
    with pytest.raises(ValueError, match="conv must be one of"):
        GraphTrainConfig(conv="sage")
    with pytest.raises(ValueError, match="val_fraction"):
        GraphTrainConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        GraphTrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="folds"):
        cross_validate(toy_graphs(4), GraphTrainConfig(epochs=1), folds=5)
    with pytest.raises(TypeError, match="config must be a GraphTrainConfig"):
        cross_validate(toy_graphs(), {"epochs": 1})


def test_a_diverging_run_raises():
    with pytest.raises(ValueError, match="training diverged"):
        cross_validate(toy_graphs(), GraphTrainConfig(epochs=3, lr=1e30), folds=2,
                       only_folds=[0])


def test_cli_trains_a_generated_tu_dataset(tmp_path, capsys):
    root = write_tu(tmp_path, toy_graphs(30))
    code = main(["train", "--task", "graph", "--tu", "TOY", "--root", str(root), "--folds",
                 "3", "--epochs", "5", "--hidden", "8", "--batch-size", "8", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^fold 0: test accuracy \d\.\d{4}", out, re.MULTILINE)
    assert SUMMARY.search(out).group(3) == "3"
    assert "one-hot degree" in out


@pytest.mark.parametrize("argv, message", [
    (["--task", "graph"], "--tu"),
    (["--task", "graph", "--tu", "TOY"], "--root"),
    (["--task", "graph", "--tu", "TOY", "--root", "{root}", "--folds", "1"], "--folds"),
    (["--task", "graph", "--tu", "NOPE", "--root", "{root}"], "NOPE_A.txt"),
    (["--task", "graph", "--tu", "TOY", "--root", "{root}", "--model", "gat"], "--model"),
])
def test_cli_bad_graph_flags_exit_2(argv, message, tmp_path, capsys):
    root = write_tu(tmp_path, toy_graphs(10))
    argv = [a.replace("{root}", str(root)) for a in argv]
    code = main(["train", *argv, "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_mutag_ten_folds(capsys):
    root = _data_root() / "tu"
    if not (root / "MUTAG" / "MUTAG_A.txt").exists():
        pytest.skip(f"MUTAG not found under {root} (set GNNKIT_DATA to the datasets folder)")
    code = main(["train", "--task", "graph", "--tu", "MUTAG", "--root", str(root),
                 "--folds", "10", "--epochs", "20", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert float(SUMMARY.search(out).group(1)) >= 0.7


@pytest.mark.slow
def test_cli_graph_under_torchrun(tmp_path):
    from tests.test_distributed import _torchrun

    root = write_tu(tmp_path / "data", toy_graphs(24))
    result = _torchrun("-m", "gnnkit", "train", "--task", "graph", "--tu", "TOY", "--root",
                       str(root), "--folds", "3", "--epochs", "3", "--batch-size", "4",
                       tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 processes (DistributedDataParallel)" in result.stdout
    assert result.stdout.count("test accuracy:") == 1  # rank 0 prints
