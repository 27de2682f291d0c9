"""Training node classifiers (and graph classifiers, link predictors), full batch or mini-batch, in one process or several.

    from gnnkit.data import load_dataset
    from gnnkit.train import train_node_classifier

    result = train_node_classifier(load_dataset("karate"), "gat", seed=0)
    print(result.test_accuracy, result.best_epoch, result.epochs_run)
    # mini-batch: 64 training nodes per step, 10 then 5 sampled neighbours per hop
    result = train_node_classifier(dataset, "gat", batch_size=64, fanouts=(10, 5))

The parts, one job each:

- ``config.py``: :class:`TrainConfig`, the settings with the model's defaults filled in and
  checked; :func:`threads_for`, the CPU thread count for a graph's size,
  :func:`training_threads`, which applies it for the duration of a training call, and
  :func:`jobs_for`, how many seeds to train at once on the machine's cores.
- ``run.py``: :func:`train` (the epoch loop), :func:`train_seeds` (the seed loop),
  :func:`train_node_classifier` (keyword front end), :class:`TrainResult`, :func:`summarize`.
- ``data.py``: :class:`~gnnkit.train.data.TrainingData`, the dataset checked (no empty
  split, finite float32 features, split labels >= 0) and moved to the training device.
- ``workers.py``: independent runs (seeds) side by side in spawned worker processes.
- ``full_batch.py`` / ``mini_batch.py``: one training epoch each way.
- ``receptive_field.py``: :func:`~gnnkit.train.receptive_field.labelled_nodes`, a split's
  nodes with the part of the graph their logits depend on (full batch computes only that).
- ``evaluate.py``: full-graph logits (one pass, or exact layer-wise chunks) and accuracy.
- ``graph_task.py``: graph classification, k-fold cross-validation
  (:func:`cross_validate`, :class:`GraphTrainConfig`, :func:`stratified_folds`).
- ``link_task.py``: link prediction (:func:`train_link_predictor`, :class:`LinkSettings`).
- ``selection.py``: :class:`BestValidation`, best-epoch weights and early stopping.

Multi-process training (DistributedDataParallel under ``torchrun``) is switched on by
:func:`gnnkit.distributed.process_group`; the loop itself only asks
:mod:`gnnkit.distributed` for its rank.
"""

from .config import TrainConfig, jobs_for, threads_for, training_threads
from .graph_task import CrossValidation, GraphTrainConfig, cross_validate, stratified_folds
from .link_task import LinkResult, LinkSettings, train_link, train_link_predictor
from .run import TrainResult, summarize, train, train_node_classifier, train_seeds
from .selection import BestValidation

__all__ = [
    "BestValidation",
    "CrossValidation",
    "GraphTrainConfig",
    "LinkResult",
    "LinkSettings",
    "TrainConfig",
    "TrainResult",
    "cross_validate",
    "jobs_for",
    "stratified_folds",
    "summarize",
    "threads_for",
    "train",
    "train_link",
    "train_link_predictor",
    "train_node_classifier",
    "train_seeds",
    "training_threads",
]
