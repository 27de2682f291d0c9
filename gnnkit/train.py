"""Full-batch training of a node classifier with best-validation selection and early stopping.

    from gnnkit.datasets import load_dataset
    from gnnkit.train import train_node_classifier

    result = train_node_classifier(load_dataset("karate"), "gat", seed=0)
    print(result.test_accuracy, result.best_epoch, result.epochs_run)
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from .datasets import NodeDataset, normalize_rows
from .graph import Graph
from .models import build_model, model_spec


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
    dataset: NodeDataset,
    model_name: str = "mean-gcn",
    epochs: int | None = None,
    seed: int = 0,
    patience: int | None = None,
    *,
    hidden: int | None = None,
    dropout: float | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    normalize_features: bool | None = None,
    graph: Graph | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> TrainResult:
    """Train ``model_name`` on ``dataset`` full batch and return the best-validation result.

    Each epoch takes one Adam step on the cross-entropy of the training nodes, then evaluates
    (dropout off) on the validation nodes. The weights of the epoch with the highest
    validation accuracy are kept, ties broken by the lower validation loss. Training stops
    early once neither the validation accuracy nor the validation loss has improved on its
    best for ``patience`` epochs (the GAT paper's rule), or after ``epochs`` epochs.

    ``torch.manual_seed(seed)`` is called before the model is built, so a run is reproducible
    for a given seed (on the CPU).

    Args:
        dataset: features ``x``, labels ``y``, ``edge_index`` and the three masks.
        model_name: a key of :data:`gnnkit.models.MODELS`.
        epochs: maximum number of epochs (None: the model's default, e.g. 1000 for GAT).
        seed: random seed for initialisation and dropout.
        patience: early-stopping patience in epochs (None: the model's default; 0 or a
            value >= ``epochs`` trains all ``epochs``).
        hidden, dropout, lr, weight_decay, normalize_features: override the model's
            defaults (see :class:`gnnkit.models.ModelSpec`).
        graph: the :class:`gnnkit.Graph` of ``dataset.edge_index``, if already built;
            otherwise it is built here, once, and its cached CSR form reused every epoch.
        device: where to train.
        progress: show a tqdm progress bar over the epochs.

    Raises:
        ValueError: for an unknown model, ``epochs < 1`` or ``patience < 0``.
    """
    spec = model_spec(model_name)
    epochs = spec.epochs if epochs is None else int(epochs)
    patience = spec.patience if patience is None else int(patience)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    if patience < 0:
        raise ValueError(f"patience must be >= 0, got {patience}.")
    if normalize_features is None:
        normalize_features = spec.normalize_features

    device = torch.device(device)
    x = normalize_rows(dataset.x) if normalize_features else dataset.x
    x, y = x.to(device), dataset.y.to(device)
    masks = [m.to(device) for m in (dataset.train_mask, dataset.val_mask, dataset.test_mask)]
    train_mask, val_mask, test_mask = masks
    if graph is None:
        graph = Graph(dataset.edge_index, dataset.num_nodes)
    graph = graph.to(device) if graph.device != device else graph

    torch.manual_seed(seed)
    model = build_model(spec.name, dataset.num_features, dataset.num_classes, hidden, dropout)
    model = model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=spec.lr if lr is None else lr,
        weight_decay=spec.weight_decay if weight_decay is None else weight_decay,
    )

    best_key = (-1.0, float("inf"))  # (val accuracy, val loss) of the selected epoch
    best_state, best_epoch = None, 0
    best_acc_seen, best_loss_seen, since_improved = -1.0, float("inf"), 0
    history: list[tuple[float, float, float]] = []
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"{spec.name} seed {seed}", disable=not progress,
               leave=False, unit="epoch")
    epoch = 0
    for epoch in bar:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, graph)[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()

        val_loss, val_acc = _evaluate(model, x, graph, y, val_mask)
        train_loss = loss.item()
        history.append((train_loss, val_loss, val_acc))
        if val_acc > best_key[0] or (val_acc == best_key[0] and val_loss < best_key[1]):
            best_key, best_epoch = (val_acc, val_loss), epoch
            best_state = copy.deepcopy(model.state_dict())
        if val_acc > best_acc_seen or val_loss < best_loss_seen:
            since_improved = 0
        else:
            since_improved += 1
        best_acc_seen = max(best_acc_seen, val_acc)
        best_loss_seen = min(best_loss_seen, val_loss)
        bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.3f}",
                        best=f"{best_key[0]:.3f}@{best_epoch}", refresh=False)
        if 0 < patience <= since_improved:
            break
    bar.close()
    seconds = time.perf_counter() - start

    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        logits = model(x, graph)
    return TrainResult(
        model_name=spec.name,
        seed=seed,
        test_accuracy=_accuracy(logits, y, test_mask),
        val_accuracy=best_key[0],
        val_loss=best_key[1],
        train_accuracy=_accuracy(logits, y, train_mask),
        best_epoch=best_epoch,
        epochs_run=epoch,
        seconds=seconds,
        model=model,
        history=history,
    )


def train_seeds(
    dataset: NodeDataset, model_name: str = "mean-gcn", seeds=range(10), **kwargs
) -> list[TrainResult]:
    """:func:`train_node_classifier` once per seed, sharing one :class:`Graph`."""
    kwargs.setdefault("graph", Graph(dataset.edge_index, dataset.num_nodes))
    return [train_node_classifier(dataset, model_name, seed=seed, **kwargs) for seed in seeds]


def summarize(accuracies) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of ``accuracies``."""
    values = [float(a) for a in accuracies]
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _evaluate(model: nn.Module, x: Tensor, graph: Graph, y: Tensor, mask: Tensor):
    model.eval()
    with torch.no_grad():
        logits = model(x, graph)[mask]
        loss = float(F.cross_entropy(logits, y[mask]))
    return loss, float((logits.argmax(1) == y[mask]).float().mean())


def _accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    return float((logits[mask].argmax(1) == y[mask]).float().mean())
