"""Link prediction training: full batch, mini-batch, seeding, errors, CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from conftest import DATASETS

from gnnkit.cli import main
from gnnkit.data.datasets import load_dataset
from gnnkit.link import split_edges
from gnnkit.train import LinkSettings, train_link_predictor

SUMMARY = re.compile(r"^test AUC: (\d\.\d{4}) \+- (\d\.\d{4}), Hits@(\d+): (\d\.\d{4}) \+- "
                     r"(\d\.\d{4}) over (\d+) seeds?$", re.MULTILINE)


def _planetoid_root() -> Path:
    return DATASETS / "planetoid"


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_full_batch_learns_karate_and_is_seeded():
    karate = load_dataset("karate")
    first = train_link_predictor(karate, "mean-gcn", epochs=40, seed=1)
    assert 0.0 <= first.test_auc <= 1.0 and 0.0 <= first.test_hits <= 1.0
    assert first.val_auc >= 0.6 and first.epochs_run == 40
    again = train_link_predictor(karate, "mean-gcn", epochs=40, seed=1)
    assert (again.test_auc, again.history) == (first.test_auc, first.history)
    # the encoder never saw a held-out edge
    held_out = torch.cat([first.split.val_pos, first.split.test_pos], dim=1)
    train_keys = set(map(tuple, first.split.train_graph.edge_index.t().tolist()))
    assert not any((j, i) in train_keys or (i, j) in train_keys
                   for j, i in held_out.t().tolist())


def test_mini_batch_and_mlp_score_with_a_given_split():
    karate = load_dataset("karate")
    split = split_edges(karate.edge_index, 0.1, 0.2, generator=torch.Generator().manual_seed(0))
    result = train_link_predictor(karate, "gat", epochs=5, split=split, batch_size=16,
                                  fanouts=(5, 5), link=LinkSettings(score="mlp", hits_k=3))
    assert result.split is split and result.hits_k == 3 and result.scorer is not None
    assert 0.0 <= result.test_auc <= 1.0
    again = train_link_predictor(karate, "gat", epochs=5, split=split, batch_size=16,
                                 fanouts=(5, 5), link=LinkSettings(score="mlp", hits_k=3))
    assert again.history == result.history


def test_settings_and_divergence_raise():
    karate = load_dataset("karate")
    with pytest.raises(ValueError, match="score must be one of"):
        LinkSettings(score="cosine")
    with pytest.raises(ValueError, match="val \\+ test"):
        LinkSettings(val=0.5, test=0.5)
    with pytest.raises(TypeError, match="split must be"):
        train_link_predictor(karate, epochs=1, split=(1, 2))
    with pytest.raises(ValueError, match="training diverged"):
        train_link_predictor(karate, epochs=5, lr=1e30, weight_decay=0.0)


def test_cli_link_on_karate(capsys):
    code = main(["train", "--task", "link", "--epochs", "30", "--seeds", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^seed 1: test AUC \d\.\d{4}, Hits@20 \d\.\d{4}", out, re.MULTILINE)
    assert SUMMARY.search(out).group(6) == "2"


def test_cli_link_mini_batch(capsys):
    code = main(["train", "--task", "link", "--epochs", "3", "--seeds", "1", "--batch-size",
                 "32", "--fanouts", "5,5", "--no-progress"])
    assert code == 0
    assert "mini-batch 32, fanouts 5,5" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--task", "link", "--tu", "MUTAG"], "--tu"),
    (["--task", "link", "--folds", "3"], "--folds"),
    (["--task", "link", "--model", "gin"], "--model gin"),
])
def test_cli_bad_link_flags_exit_2(argv, message, capsys):
    code = main(["train", *argv, "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_link_on_cora(capsys):
    root = _planetoid_root()
    if not (root / "Cora" / "raw").is_dir():
        pytest.skip(f"Cora not found under {root} (set GNNKIT_DATA to the datasets folder)")
    code = main(["train", "--task", "link", "--dataset", "cora", "--root", str(root),
                 "--epochs", "100", "--seeds", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert float(SUMMARY.search(out).group(1)) >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("batches", [[], ["--batch-size", "16", "--fanouts", "5,5"]])
def test_cli_link_under_torchrun(batches, tmp_path):
    from tests.test_distributed import _torchrun

    result = _torchrun("-m", "gnnkit", "train", "--task", "link", "--epochs", "3", *batches,
                       tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 processes (DistributedDataParallel)" in result.stdout
    assert result.stdout.count("test AUC:") == 1
