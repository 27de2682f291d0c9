"""``gnnkit train``: output, mini-batch flags, thread choice and exit codes."""

import dataclasses
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import DATASETS, needs_data

from gnnkit.cli import main

PLANETOID_ROOT = DATASETS / "planetoid"
needs_cora = needs_data("planetoid/Cora/raw")
SUMMARY = re.compile(
    r"^test accuracy: (\d\.\d{4}) \+- (\d\.\d{4}) over (\d+) seeds?$", re.MULTILINE
)


@pytest.fixture(autouse=True)
def keep_threads():
    """Restore torch's thread count after each test, whatever a test sets."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_trains_karate_and_prints_the_summary(capsys):
    threads = torch.get_num_threads()
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
    # one thread while training karate (tests/test_threads.py), the caller's count after
    assert torch.get_num_threads() == threads


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
        (["--fanouts", "10,5"], "fanouts need batch_size (--batch-size"),
        (["--batch-size", "8", "--fanouts", "10"], "--fanouts must be 2 ints"),
        (["--batch-size", "8", "--fanouts", "99999999999999999999,5"], "--fanouts[0] must be"),
        (["--batch-size", "8", "--fanouts", "5,0"], "--fanouts[1] is 0"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--hidden", "0"], "--hidden must be >= 1"),
        (["--chunk-size", "0"], "--chunk-size must be >= 1"),
        (["--dist-timeout", "0"], "--dist-timeout must be > 0"),
        (["--dist-timeout", "nan"], "--dist-timeout must be a finite number"),
        (["--device", "abacus"], "--device 'abacus' is not a device"),
        (["--device", "meta"], "gnnkit trains on cpu, cuda or mps"),
        (["--device", "cuda:99"], "--device 'cuda:99'"),
    ],
)
def test_unusable_input_exits_2(argv, message, capsys):
    code = main(["train", *argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_exits_2(capsys):
    assert main(["train", "--device", "cuda", "--epochs", "1", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no usable CUDA device" in err and "Traceback" not in err


def test_argparse_errors_print_on_rank_0_only(monkeypatch, capsys):
    import gnnkit.cli

    waits = []
    monkeypatch.setattr(gnnkit.cli.time, "sleep", waits.append)
    monkeypatch.setenv("RANK", "1")
    assert main(["train", "--model", "transformer"]) == 2
    assert main(["train", "--batch-size", "0"]) == 2
    assert capsys.readouterr().err == ""
    # the quiet ranks wait for rank 0 to report (torchrun stops the group at the first exit)
    assert waits == [gnnkit.cli.RANK_0_REPORT_WAIT_S] * 2
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--model", "transformer"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_failed_process_group_is_one_line_and_exit_1(monkeypatch, capsys):
    from gnnkit.commands import train
    from gnnkit.distributed import ProcessGroupError

    def stalled(args):
        raise ProcessGroupError("process 1 of 2 stopped: RuntimeError: timed out")

    monkeypatch.setattr(train, "_train", stalled)
    monkeypatch.setenv("RANK", "1")  # every failing process reports, not only rank 0
    assert main(["train"]) == 1
    assert capsys.readouterr().err == (
        "gnnkit train: error: process 1 of 2 stopped: RuntimeError: timed out\n")


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
    assert "Cora: 2708 nodes, 10556 directed edges, 1433 features, 7 classes" in out
    assert SUMMARY.search(out).group(3) == "1"


def test_trains_on_a_store(tmp_path, capsys):
    from gnnkit.data import store
    from gnnkit.data.synthetic import synthetic_graph

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


def _store(folder, **changes):
    """A small synthetic store in ``folder`` with some arrays replaced."""
    import dataclasses

    from gnnkit.data import store
    from gnnkit.data.synthetic import synthetic_graph

    data = synthetic_graph(120, 600, num_classes=3, num_features=6, seed=2)
    store.save(dataclasses.replace(data, **{k: f(data) for k, f in changes.items()}), folder)
    return str(folder)


def _no_nodes(data):
    return torch.zeros(data.num_nodes, dtype=torch.bool)


def _nan_row(data):
    x = data.x.clone()
    x[4] = float("nan")
    return x


@pytest.mark.parametrize(
    "changes, words",
    [({"train_mask": _no_nodes}, "no training nodes"),
     ({"val_mask": _no_nodes}, "no validation nodes"),
     ({"test_mask": _no_nodes}, "no test nodes"),
     ({"x": _nan_row}, "NaN or infinity (first at node 4, feature 0")],
)
@pytest.mark.parametrize("mini_batch", [[], ["--batch-size", "16"]])
def test_an_unusable_store_exits_2_before_training(changes, words, mini_batch, tmp_path,
                                                    capsys):
    folder = _store(tmp_path / "store", **changes)
    code = main(["train", "--store", folder, "--epochs", "2", "--seeds", "2", *mini_batch])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and words in captured.err, captured.err
    assert "seed 0:" not in captured.out


def test_a_diverging_run_exits_2_without_an_accuracy(tmp_path, capsys, monkeypatch):
    # The command has no --lr; a huge learning rate stands for any run whose loss blows up.
    from gnnkit import models

    monkeypatch.setitem(models.MODELS, "mean-gcn",
                        dataclasses.replace(models.MODELS["mean-gcn"], lr=1e30))
    code = main(["train", "--epochs", "20", "--seeds", "1"])
    captured = capsys.readouterr()
    assert code == 2 and "training diverged" in captured.err and captured.err.count("\n") == 1
    assert "test accuracy" not in captured.out


def test_float64_store_features_train_as_float32(tmp_path, capsys):
    folder = _store(tmp_path / "store", x=lambda data: data.x.double())
    assert main(["train", "--store", folder, "--epochs", "2", "--seeds", "1"]) == 0
    assert SUMMARY.search(capsys.readouterr().out)


@pytest.mark.slow
def test_a_model_too_large_for_memory_exits_2(tmp_path):
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    code = ("from gnnkit.cli import main; import sys; "
            "sys.exit(main(['train', '--hidden', '1000000000', '--epochs', '1', '--seeds', '1']))")
    result = subprocess.run([sys.executable, "-c", limit + code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "smaller hidden (--hidden)" in result.stderr


def test_store_and_dataset_exclude_each_other(tmp_path, capsys):
    assert main(["train", "--store", str(tmp_path), "--dataset", "karate"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
