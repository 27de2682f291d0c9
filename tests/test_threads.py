"""CPU threads: training (node, graph, link) runs on the thread rule of
:func:`gnnkit.train.threads_for` or the ``threads`` setting, and gives the caller's own count
back afterwards, also after an error; the command line passes ``--threads`` on; the sampler
runs on its own count, which never changes the batches. No timing here: docs/architecture.md
("CPU threads") has the measurements."""

from __future__ import annotations

import contextlib

import pytest
import torch

from gnnkit import _threads, sampling
from gnnkit.cli import main
from gnnkit.data import load_dataset, synthetic_graph
from gnnkit.sampling import NeighborLoader
from gnnkit.train import (
    GraphTrainConfig,
    TrainConfig,
    cross_validate,
    threads_for,
    train_link_predictor,
    train_node_classifier,
    training_threads,
)


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def karate():
    return load_dataset("karate")


def toy_graphs(count: int) -> list:
    """Cycles (class 0) and stars (class 1) of 6 nodes as ``(edge_index, x, y)`` items."""
    cycle = torch.stack([torch.arange(6), (torch.arange(6) + 1) % 6])
    star = torch.stack([torch.zeros(5, dtype=torch.long), torch.arange(1, 6)])
    return [(cycle if k % 2 == 0 else star, torch.ones(6, 1), k % 2) for k in range(count)]


@contextlib.contextmanager
def threads_in_forward(fail: bool = False):
    """The thread count seen by every module's forward call, in a list; with ``fail``, the
    first forward call raises after recording."""
    seen = []

    def hook(module, args):
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("forward failed on purpose")

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


# --- the rule and the context managers -----------------------------------------

def test_cpu_threads_sets_and_restores_also_after_an_error():
    torch.set_num_threads(2)
    with _threads.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(KeyError), _threads.cpu_threads(1):
        raise KeyError("inside")
    assert torch.get_num_threads() == 2
    with _threads.cpu_threads(None):  # None: the caller's count
        assert torch.get_num_threads() == 2


def test_training_threads_follow_the_rule_unless_given():
    torch.set_num_threads(2)
    with training_threads(TrainConfig(), 10_556):  # Cora-sized: one thread
        assert torch.get_num_threads() == 1
    with training_threads(TrainConfig(), 2 * _threads.ONE_THREAD_MAX_EDGES):
        assert torch.get_num_threads() == 2  # large: the caller's setting kept
    torch.set_num_threads(1)
    with training_threads(TrainConfig(threads=2), 10_556):
        assert torch.get_num_threads() == 2
    with training_threads(3, 10_556):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == 1
    assert threads_for(_threads.ONE_THREAD_MAX_EDGES - 1) == 1
    assert threads_for(_threads.ONE_THREAD_MAX_EDGES) is None


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError),
                                          (1.5, TypeError), ("2", TypeError),
                                          (True, TypeError)])
def test_bad_threads_are_refused_by_name(value, error, karate):
    makers = [lambda: TrainConfig(threads=value), lambda: GraphTrainConfig(threads=value),
              lambda: training_threads(value, 100),
              lambda: NeighborLoader(karate.graph(), None, None, None, [2], 4, threads=value),
              lambda: train_node_classifier(karate, epochs=1, threads=value),
              lambda: train_link_predictor(karate, epochs=1, threads=value)]
    for make in makers:
        with pytest.raises(error, match="threads"):
            make()


# --- training entry points ----------------------------------------------------------

@pytest.mark.parametrize("settings", [{}, {"batch_size": 8, "fanouts": (3, 2)}],
                         ids=["full-batch", "mini-batch"])
def test_node_training_uses_the_rule_and_restores(settings, karate):
    torch.set_num_threads(2)
    with threads_in_forward() as seen:
        train_node_classifier(karate, epochs=2, seed=0, **settings)
    assert seen and set(seen) == {1}  # karate is small: one thread
    assert torch.get_num_threads() == 2


def test_node_training_honours_explicit_threads(karate):
    torch.set_num_threads(1)
    with threads_in_forward() as seen:
        train_node_classifier(karate, epochs=2, threads=2)
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == 1


def test_large_graph_keeps_the_callers_setting(karate, monkeypatch):
    monkeypatch.setattr(_threads, "ONE_THREAD_MAX_EDGES", 10)  # karate counts as large
    torch.set_num_threads(2)
    with threads_in_forward() as seen:
        train_node_classifier(karate, epochs=2)
    assert seen and set(seen) == {2}


def test_threads_restored_after_an_error(karate):
    torch.set_num_threads(2)
    with threads_in_forward(fail=True) as seen, pytest.raises(RuntimeError, match="on purpose"):
        train_node_classifier(karate, epochs=2)
    assert seen == [1]
    assert torch.get_num_threads() == 2
    with threads_in_forward(fail=True), pytest.raises(RuntimeError, match="on purpose"):
        train_link_predictor(karate, epochs=2)
    assert torch.get_num_threads() == 2
    with threads_in_forward(fail=True), pytest.raises(RuntimeError, match="on purpose"):
        cross_validate(toy_graphs(8), GraphTrainConfig(epochs=1), folds=2, only_folds=[0])
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)])
def test_link_training_threads(threads, expected, karate):
    torch.set_num_threads(3 - expected)
    with threads_in_forward() as seen:
        train_link_predictor(karate, epochs=2, threads=threads)
    assert seen and set(seen) == {expected}
    assert torch.get_num_threads() == 3 - expected


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)])
def test_graph_training_threads(threads, expected):
    torch.set_num_threads(3 - expected)
    with threads_in_forward() as seen:
        cross_validate(toy_graphs(8), GraphTrainConfig(epochs=1, batch_size=4,
                                                       threads=threads),
                       folds=2, only_folds=[0])
    assert seen and set(seen) == {expected}
    assert torch.get_num_threads() == 3 - expected


# --- the command line -----------------------------------------------------------------

@pytest.mark.parametrize("task", ["node", "link"])
@pytest.mark.parametrize("argv, expected", [([], 1), (["--threads", "2"], 2)])
def test_cli_threads_reach_training_and_are_not_kept(task, argv, expected, capsys):
    torch.set_num_threads(3 - expected)
    with threads_in_forward() as seen:
        code = main(["train", "--task", task, "--epochs", "2", "--seeds", "1", "--no-progress",
                     *argv])
    assert code == 0, capsys.readouterr().err
    assert seen and set(seen) == {expected}
    assert torch.get_num_threads() == 3 - expected  # nothing set for the rest of the process


def test_cli_threads_reach_the_config(monkeypatch, capsys):
    from gnnkit.commands import train as command

    configs = []
    real = command.train_seeds

    def recording(dataset, config, seeds, **kwargs):
        configs.append(config)
        return real(dataset, config, seeds, **kwargs)

    monkeypatch.setattr(command, "train_seeds", recording)
    assert main(["train", "--epochs", "1", "--seeds", "1", "--threads", "2"]) == 0
    assert main(["train", "--epochs", "1", "--seeds", "1"]) == 0
    assert [c.threads for c in configs] == [2, None]


# --- the sampler ----------------------------------------------------------------------

def _batches(loader: NeighborLoader) -> list:
    return [(b.n_id, *b.graph.csr[:2], b.e_id, b.x, b.y, b.num_sampled_nodes)
            for b in loader]


def test_loader_batches_do_not_depend_on_threads():
    data = synthetic_graph(300, 2_000, num_features=4, seed=0)
    graph = data.graph()

    def batches(threads, caller):
        torch.set_num_threads(caller)
        loader = NeighborLoader(graph, data.x, data.y, data.train_mask | data.val_mask,
                                [4, 3], 16, seed=5, threads=threads)
        loader.set_epoch(2)
        return _batches(loader)

    reference = batches(1, 1)
    assert len(reference) > 2
    for threads, caller in [(None, 2), (2, 1), (2, 2), (None, 1)]:
        for got, want in zip(batches(threads, caller), reference, strict=True):
            for a, b in zip(got, want, strict=True):
                assert a == b if isinstance(a, list) else torch.equal(a, b)


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)])
def test_loader_samples_on_its_threads_and_hands_batches_over_on_the_callers(
        threads, expected, monkeypatch):
    data = synthetic_graph(200, 1_000, num_features=4, seed=1)
    seen = []
    real = sampling.sample_neighbors

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "sample_neighbors", recording)
    caller = 3 - expected
    torch.set_num_threads(caller)
    loader = NeighborLoader(data.graph(), data.x, data.y, None, [3, 2], 50, threads=threads)
    assert loader.threads == expected
    for _ in loader:
        assert torch.get_num_threads() == caller  # the caller's count while it holds a batch
    assert seen and set(seen) == {expected}


def test_loader_restores_threads_after_a_sampling_error(monkeypatch):
    data = synthetic_graph(100, 500, num_features=4, seed=2)

    def failing(*args, **kwargs):
        raise RuntimeError("sampling failed on purpose")

    monkeypatch.setattr(sampling, "sample_neighbors", failing)
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="on purpose"):
        next(iter(NeighborLoader(data.graph(), data.x, None, None, [2], 10)))
    assert torch.get_num_threads() == 2


def test_mini_batch_training_samples_on_the_threads_given(karate, monkeypatch):
    seen = []
    sample = sampling.sample_neighbors

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return sample(*args, **kwargs)

    monkeypatch.setattr(sampling, "sample_neighbors", recording)
    torch.set_num_threads(1)
    train_node_classifier(karate, epochs=1, batch_size=8, fanouts=(3, 3), threads=2)
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == 1
