"""Training a node classifier: the epoch loop, the seed loop and their results."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import distributed
from .._validate import check_int
from ..data import NodeData
from ..graph import Graph
from ..models import build_model
from .config import TrainConfig, training_threads
from .data import TrainingData
from .evaluate import full_graph_logits, loss_and_accuracy, split_loss_and_accuracy
from .full_batch import full_batch_epoch
from .loop import fit
from .mini_batch import MiniBatches
from .receptive_field import labelled_nodes
from .selection import BestValidation
from .workers import run_in_workers


@dataclass
class TrainResult:
    """The outcome of one training run.

    Attributes:
        model_name: the model trained (``mean-gcn``, ``median-gcn``, ``gat``).
        seed: the seed given to ``torch.manual_seed``.
        test_accuracy: test accuracy of the selected (best-validation) weights.
        val_accuracy: validation accuracy of the selected weights.
        val_loss: validation cross-entropy of the selected weights.
        train_accuracy: training accuracy of the selected weights (evaluation mode).
        best_epoch: the epoch (1-based) whose weights were selected.
        epochs_run: epochs trained before stopping (early or at ``epochs``).
        seconds: wall time of the training loop.
        model: the model holding the selected weights, in evaluation mode.
        history: per epoch ``(train loss, val loss, val accuracy)``.
    """

    model_name: str
    seed: int
    test_accuracy: float
    val_accuracy: float
    val_loss: float
    train_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    model: nn.Module = field(repr=False)
    history: list[tuple[float, float, float]] = field(default_factory=list, repr=False)


def train_node_classifier(
    dataset: NodeData,
    model_name: str = "mean-gcn",
    epochs: int | None = None,
    seed: int = 0,
    patience: int | None = None,
    *,
    graph: Graph | None = None,
    **settings,
) -> TrainResult:
    """Train ``model_name`` on ``dataset`` and return the best-validation result.

    Each epoch trains on the training nodes (full batch: one Adam step; with ``batch_size``:
    one step per mini-batch of sampled neighbourhoods), then evaluates (dropout off) on the
    validation nodes. Full batch computes each of the two on the receptive field of its
    nodes when that is small (:mod:`gnnkit.train.receptive_field`): the same logits. The
    weights of the epoch with the highest validation accuracy are kept, ties broken by the
    lower validation loss; training stops early once neither has improved for ``patience``
    epochs, or after ``epochs`` epochs (see :class:`BestValidation`).

    ``torch.manual_seed(seed)`` is called before the model is built, so a run is reproducible
    for a given seed (on the CPU).

    Args:
        dataset: features ``x``, labels ``y``, the graph and the three masks: a
            :class:`gnnkit.data.NodeData`.
        model_name: a key of :data:`gnnkit.models.MODELS`.
        epochs: see :class:`TrainConfig` (None: the model's default).
        patience: see :class:`TrainConfig` (None: the model's default).
        seed: random seed for initialisation, dropout and sampling.
        graph: the :class:`gnnkit.Graph` to train on (default ``dataset.graph()``, whose
            cached CSR form is reused every epoch).
        **settings: any other :class:`TrainConfig` field (``hidden``, ``dropout``, ``lr``,
            ``weight_decay``, ``normalize_features``, ``batch_size``, ``fanouts``,
            ``chunk_size``, ``device``, ``progress``, ``threads``).

    Raises:
        ValueError: an unknown model, an unusable setting, an unusable dataset (see
            :func:`train`) or a run whose loss became NaN or infinite.
        TypeError: a setting or a dataset tensor of the wrong type.
    """
    config = TrainConfig(model_name, epochs=epochs, patience=patience, **settings)
    return train(dataset, config, seed, graph=graph)


def train_seeds(
    dataset: NodeData, config: TrainConfig, seeds: Iterable[int], *,
    graph: Graph | None = None, jobs: int = 1,
) -> Iterator[TrainResult]:
    """:func:`train` once per seed, sharing one :class:`Graph`; yields the results in the order
    of ``seeds``, each as soon as it is ready.

    ``jobs`` > 1 trains that many seeds at a time, each in its own worker process
    (:func:`gnnkit.train.workers.run_in_workers`; spawned, so a script calling this needs the
    ``if __name__ == "__main__":`` guard), on the CPU only and without progress bars. Each
    result is the one a single process gives for that seed; a run on a small graph uses one
    thread (:func:`threads_for`), so ``jobs`` up to the number of cores
    (:func:`gnnkit.train.jobs_for`) finish the seeds about ``jobs`` times sooner.

    Raises:
        ValueError: no seeds; ``jobs`` > 1 with a device other than the CPU or under
            torchrun; and whatever :func:`train` raises.
        gnnkit.train.workers.WorkerError: a worker process died.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed.")
    jobs = min(check_int(jobs, "jobs", low=1), len(seeds))
    graph = graph if graph is not None else dataset.graph()
    if jobs == 1:
        for seed in seeds:
            yield train(dataset, config, seed, graph=graph)
        return
    if config.device != "cpu" or distributed.world_size() > 1:
        raise ValueError(
            f"jobs={jobs} trains seeds side by side in CPU processes; on {config.device}"
            f"{' under torchrun' if distributed.world_size() > 1 else ''} use jobs=1."
        )
    # an unusable dataset fails here, before any worker starts
    TrainingData.on_device(dataset, graph, config.normalize_features, torch.device("cpu"),
                           sparse_features=not config.mini_batch)
    quiet = dataclasses.replace(config, progress=False)  # bars of several processes would mix
    yield from run_in_workers(_train_seed, (dataset, quiet, graph), seeds, jobs)


def _train_seed(dataset: NodeData, config: TrainConfig, graph: Graph, seed: int) -> TrainResult:
    """:func:`train` with the seed last (the worker calling convention)."""
    return train(dataset, config, seed, graph=graph)


def train(
    dataset: NodeData, config: TrainConfig, seed: int = 0, *,
    graph: Graph | None = None,
) -> TrainResult:
    """Train once with ``config`` and ``seed`` (see :func:`train_node_classifier`).

    Under ``torch.distributed`` (see :mod:`gnnkit.distributed`) every process calls this
    with the same arguments: the model is wrapped in DistributedDataParallel, each process
    trains on its own share of every epoch's mini-batches, and the losses and evaluations are
    combined so that all processes select the same epoch and stop together.

    The dataset is checked first (:class:`~gnnkit.train.data.TrainingData`): every split
    needs at least one node, features must be finite (other floating dtypes are converted to
    float32) and split labels >= 0. Training stops with a ``ValueError`` as soon as the
    training or validation loss of an epoch is NaN or infinite: its accuracy would mean
    nothing.

    Raises:
        ValueError: an unusable dataset, a model too large to allocate, or a loss that became
            NaN or infinite.
        TypeError: a dataset tensor of the wrong dtype.
    """
    check_processes(config, distributed.world_size())
    device = torch.device(config.device)
    graph = graph if graph is not None else dataset.graph()
    data = TrainingData.on_device(dataset, graph, config.normalize_features, device,
                                  sparse_features=not config.mini_batch)

    torch.manual_seed(seed)
    model = model_for(config, dataset.num_features, dataset.num_classes, device)
    trained = distributed.wrap(model)
    optimizer = torch.optim.Adam(trained.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    chunk_size = config.chunk_size if config.mini_batch else None
    selection = BestValidation(config.patience)
    with training_threads(config, graph.num_edges):  # the caller's count is back afterwards
        steps = _mini_batch_steps(model, trained, optimizer, data, config, seed) \
            if config.mini_batch else _full_batch_steps(model, trained, optimizer, data)
        fitted = fit(model, selection, config.epochs, *steps, seed=seed,
                     lr=config.lr, label=f"{config.model} seed {seed}",
                     progress=config.progress)
        logits = full_graph_logits(model, data.x, data.graph, chunk_size)
    return TrainResult(
        model_name=config.model,
        seed=seed,
        test_accuracy=loss_and_accuracy(logits, data.y, data.test_mask)[1],
        val_accuracy=selection.val_accuracy,
        val_loss=selection.val_loss,
        train_accuracy=loss_and_accuracy(logits, data.y, data.train_mask)[1],
        best_epoch=selection.best_epoch,
        epochs_run=fitted.epochs_run,
        seconds=fitted.seconds,
        model=model,
        history=fitted.history,
    )


def _full_batch_steps(model: nn.Module, trained: nn.Module, optimizer, data: TrainingData):
    """``(train_epoch, validate)`` for :func:`fit`: one step on all training nodes, and the
    validation nodes evaluated, each split computed on its receptive field
    (:func:`labelled_nodes`, cut once here)."""
    train_nodes, val_nodes = (labelled_nodes(data.graph, data.x, data.y, mask, model.num_layers)
                              for mask in (data.train_mask, data.val_mask))
    return (lambda epoch: full_batch_epoch(trained, optimizer, train_nodes),
            lambda: split_loss_and_accuracy(model, val_nodes))


def _mini_batch_steps(model: nn.Module, trained: nn.Module, optimizer, data: TrainingData,
                      config: TrainConfig, seed: int):
    """``(train_epoch, validate)`` for :func:`fit`: the epoch's shuffled mini-batches, and the
    validation nodes evaluated on exact layer-wise logits of the whole graph."""
    batches = MiniBatches(data.graph, data.train_mask, data.x, data.y, config, seed)

    def validate() -> tuple[float, float]:
        logits = full_graph_logits(model, data.x, data.graph, config.chunk_size)
        return loss_and_accuracy(logits, data.y, data.val_mask)

    return (lambda epoch: batches.epoch(trained, optimizer, epoch)), validate


def check_processes(config: TrainConfig, processes: int) -> None:
    """Training in ``processes`` > 1 processes needs mini-batches (``batch_size``).

    Raises:
        ValueError: full-batch training in several processes.
    """
    if not config.mini_batch and processes > 1:
        raise ValueError(
            "training in several processes needs batch_size (mini-batch training); "
            "pass --batch-size B."
        )


def summarize(accuracies) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of ``accuracies``."""
    values = [float(a) for a in accuracies]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def model_for(config: TrainConfig, num_features: int, num_classes: int,
              device: torch.device) -> nn.Module:
    """The model of ``config`` on ``device``.

    Raises:
        ValueError: its weights cannot be allocated there (e.g. a huge ``hidden``).
    """
    try:
        return build_model(config.model, num_features, num_classes, config.hidden,
                           config.dropout).to(device)
    except (RuntimeError, MemoryError) as error:  # torch's allocation failure (CPU or CUDA)
        with torch.device("meta"):  # count the weights without allocating them
            meta = build_model(config.model, num_features, num_classes, config.hidden,
                               config.dropout)
        count = sum(p.numel() for p in meta.parameters())
        raise ValueError(
            f"the {config.model} model with hidden={config.hidden} has {count:,} weights "
            f"({count * 4 / 2**30:.1f} GiB as float32), more than {device} could allocate; "
            "choose a smaller hidden (--hidden)."
        ) from error
