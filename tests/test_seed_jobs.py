"""Seeds trained side by side in worker processes (train_seeds(jobs=...), gnnkit train --jobs):
the same results as one process, in seed order; the rule for the default count."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import torch

from gnnkit import _threads
from gnnkit.cli import main
from gnnkit.data import load_dataset
from gnnkit.train import TrainConfig, jobs_for, train_seeds
from gnnkit.train.workers import WorkerError, run_in_workers


@pytest.fixture(scope="module")
def karate():
    return load_dataset("karate")


def outcome(result) -> tuple:
    weights = [tensor.clone() for tensor in result.model.state_dict().values()]
    return (result.seed, result.test_accuracy, result.val_accuracy, result.best_epoch,
            result.epochs_run, result.history, weights)


@pytest.mark.parametrize("model", ["gat", "mean-gcn"])
def test_workers_give_each_seed_the_result_of_one_process_in_seed_order(karate, model):
    config = TrainConfig(model, epochs=30, patience=10, progress=False)
    alone = [outcome(r) for r in train_seeds(karate, config, [3, 0, 1], jobs=1)]
    side_by_side = [outcome(r) for r in train_seeds(karate, config, [3, 0, 1], jobs=2)]
    assert [o[0] for o in side_by_side] == [3, 0, 1]
    for one, other in zip(alone, side_by_side):
        assert one[:6] == other[:6]
        assert all(torch.equal(a, b) for a, b in zip(one[6], other[6]))


def test_an_error_in_a_worker_reaches_the_caller(karate):
    config = TrainConfig("mean-gcn", epochs=5, lr=1e30, progress=False)  # diverges
    with pytest.raises(ValueError, match="training diverged"):
        list(train_seeds(karate, config, [0, 1], jobs=2))


def test_jobs_are_checked(karate):
    config = TrainConfig("mean-gcn", epochs=1, progress=False)
    for jobs, error in ((0, ValueError), (1.5, TypeError), ("2", TypeError)):
        with pytest.raises(error, match="jobs"):
            list(train_seeds(karate, config, [0, 1], jobs=jobs))


def test_jobs_rule(monkeypatch):
    monkeypatch.setattr(_threads, "usable_cores", lambda: 8)
    assert jobs_for(1, 10) == 8 and jobs_for(1, 3) == 3 and jobs_for(2, 10) == 4
    assert jobs_for(None, 10) == 1 and jobs_for(16, 10) == 1
    monkeypatch.setattr(_threads, "usable_cores", lambda: 1)
    assert jobs_for(1, 10) == 1


def test_cli_jobs_flag_prints_the_count_and_the_same_seeds(capsys):
    argv = ["train", "--model", "mean-gcn", "--seeds", "2", "--epochs", "30", "--patience",
            "10", "--no-progress"]
    assert main([*argv, "--jobs", "1"]) == 0
    one = capsys.readouterr().out
    assert main([*argv, "--jobs", "2"]) == 0
    two = capsys.readouterr().out
    assert "2 seeds at a time" in two and "seeds at a time" not in one
    seeds = re.compile(r"^seed \d: test accuracy .*epochs", re.MULTILINE)
    strip = re.compile(r", [\d.]+ s\)")  # the seconds differ
    assert [strip.sub("", s) for s in seeds.findall(one)] == \
        [strip.sub("", s) for s in seeds.findall(two)]


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "0"], "--jobs"),
    (["--task", "link", "--jobs", "2"], "--jobs does not apply to --task link"),
])
def test_cli_bad_jobs_is_one_line(argv, message, capsys):
    assert main(["train", "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _killed(item):  # a worker run that dies as if killed for memory
    os.kill(os.getpid(), signal.SIGKILL)


def _sleepy(item):
    time.sleep(item)
    return item


def _with_tensor(tensor, item):
    return item


def test_a_dead_worker_is_a_worker_error():
    with pytest.raises(WorkerError, match="worker process stopped while running 1"):
        list(run_in_workers(_killed, (), [1, 2], 2))


def test_stopping_early_terminates_the_running_workers():
    results = run_in_workers(_sleepy, (), [0, 120, 120], 2)
    assert next(results) == 0
    start = time.perf_counter()
    results.close()  # the two 120 s runs are not waited for
    assert time.perf_counter() - start < 30


def test_workers_that_cannot_get_their_tensors_are_a_worker_error(monkeypatch):
    def no_room(self, *args, **kwargs):
        raise RuntimeError("unable to write to file </torch_1>: No space left on device (28)")

    monkeypatch.setattr(torch.UntypedStorage, "_share_fd_cpu_", no_room)
    with pytest.raises(WorkerError, match="could not start the worker processes.*No space"):
        list(run_in_workers(_with_tensor, (torch.ones(3),), [0, 0], 2))
