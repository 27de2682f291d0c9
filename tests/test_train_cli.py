"""``gnnkit train``: output, mini-batch flags, thread choice and exit codes."""

import re
from pathlib import Path

import pytest
import torch

from gnnkit.cli import main

PLANETOID_ROOT = Path(__file__).resolve().parents[1].parent / "shared/datasets/planetoid"
needs_cora = pytest.mark.skipif(
    not (PLANETOID_ROOT / "Cora" / "raw").is_dir(),
    reason=f"Cora raw files not found under {PLANETOID_ROOT}/Cora/raw",
)
SUMMARY = re.compile(
    r"^test accuracy: (\d\.\d{4}) \+- (\d\.\d{4}) over (\d+) seeds?$", re.MULTILINE
)


@pytest.fixture(autouse=True)
def keep_threads():
    """The command sets torch's thread count; restore it after each test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_trains_karate_and_prints_the_summary(capsys):
    code = main(["train", "--seeds", "2", "--epochs", "60", "--patience", "30",
                 "--model", "mean-gcn", "--no-progress"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0
    assert re.search(r"^seed 0: test accuracy \d\.\d{4}", out, re.MULTILINE)
    assert re.search(r"^seed 1: test accuracy \d\.\d{4}", out, re.MULTILINE)
    match = SUMMARY.search(out)
    assert match, out
    assert match.group(3) == "2" and float(match.group(1)) >= 0.7
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    assert torch.get_num_threads() == 1  # karate is small: one thread


@pytest.mark.parametrize("model", ["mean-gcn", "median-gcn", "gat"])
def test_trains_mini_batch(model, capsys):
    code = main(["train", "--model", model, "--seeds", "1", "--epochs", "20", "--batch-size",
                 "4", "--fanouts", "10,5", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "mini-batch 4, fanouts 10,5" in out
    assert SUMMARY.search(out).group(3) == "1"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "cora"], "needs --root"),
        (["--dataset", "cora", "--root", "/nonexistent/folder"], "is not a folder"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--patience", "-3"], "--patience must be >= 0"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--fanouts", "10,5"], "--fanouts need batch_size"),
        (["--batch-size", "8", "--fanouts", "10"], "--fanouts must be two ints"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--device", "abacus"], "abacus"),
    ],
)
def test_unusable_input_exits_2(argv, message, capsys):
    code = main(["train", *argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_root_without_cora_files_exits_2(tmp_path, capsys):
    assert main(["train", "--dataset", "cora", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not found" in err


@pytest.mark.parametrize(
    "argv, message",
    [(["--model", "transformer"], "invalid choice"), (["--fanouts", "ten,five"], "such as 10,5")],
)
def test_argparse_errors_exit_2(argv, message, capsys):
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@needs_cora
def test_reads_cora_from_root(capsys):
    code = main(["train", "--dataset", "cora", "--root", str(PLANETOID_ROOT), "--model",
                 "mean-gcn", "--seeds", "1", "--epochs", "3", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Cora: 2708 nodes, 5278 edges, 1433 features, 7 classes" in out
    assert SUMMARY.search(out).group(3) == "1"


def test_trains_on_a_store(tmp_path, capsys):
    from gnnkit import store
    from gnnkit.synthetic import synthetic_graph

    store.save(synthetic_graph(300, 3000, num_classes=3, num_features=8, seed=1), tmp_path)
    code = main(["train", "--store", str(tmp_path), "--model", "gat", "--batch-size", "16",
                 "--fanouts", "5,5", "--seeds", "1", "--epochs", "3", "--chunk-size", "100"])
    out = capsys.readouterr().out
    assert code == 0
    assert "synthetic-300-3000: 300 nodes, 3000 directed edges, 8 features, 3 classes" in out
    assert SUMMARY.search(out).group(3) == "1"


def test_missing_store_exits_2(tmp_path, capsys):
    assert main(["train", "--store", str(tmp_path / "nothing"), "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "meta.json not found" in err


def test_store_and_dataset_exclude_each_other(tmp_path, capsys):
    assert main(["train", "--store", str(tmp_path), "--dataset", "karate"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
