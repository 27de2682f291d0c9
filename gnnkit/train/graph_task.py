"""Graph classification with k-fold cross-validation.

    from gnnkit.data import read_tu
    from gnnkit.train import cross_validate

    data = read_tu("../shared/datasets/tu", "MUTAG", degree_features=32)
    result = cross_validate(data, folds=10, seed=0)
    print(f"{result.mean:.4f} +- {result.std:.4f}")

Protocol (Errica et al., "A Fair Comparison of Graph Neural Networks for Graph
Classification", ICLR 2020, with fixed hyperparameters instead of their inner grid search):

1. the G graphs are cut into k stratified folds (:func:`stratified_folds`, seeded): every
   fold holds each class in the same proportion, up to one graph;
2. for fold f, the other k - 1 folds are the training part; a stratified ``val_fraction`` of
   it is held out for validation (model selection), the rest is trained on;
3. a fresh model trains for ``epochs`` epochs of shuffled mini-batches
   (:class:`gnnkit.data.GraphLoader`); after each epoch the validation accuracy and loss are
   measured and the best epoch's weights kept (:class:`BestValidation`, with early stopping
   after ``patience`` epochs without improvement);
4. the kept weights are scored once on fold f (the test fold), which was never used for
   training or selection.

The result is the mean and sample standard deviation of the k test accuracies. (Xu et al.
2019 instead report, for the single epoch with the best test accuracy averaged over the
folds, that average: a selection on the test folds, which reads higher.)

Under ``torch.distributed`` each process trains on its shard of every epoch's batches
(``GraphLoader(rank=..., world_size=...)``) with DistributedDataParallel; all processes
evaluate the same validation and test graphs and so take the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from .. import distributed
from .._validate import check_int, check_real
from ..data.batch import GraphBatch
from ..data.graph_loader import GraphLoader
from ..graph import Graph, as_graph
from ..graph_models import CONVS, POOLS, GraphClassifier
from .config import check_device, check_setting, check_threads, training_threads
from .evaluate import accuracy
from .loop import fit
from .run import summarize
from .selection import BestValidation

#: Degree cap of the one-hot degree features the command line gives TU datasets (the copies
#: in ../shared carry no node features): degrees >= 32 share the last of 33 columns.
DEFAULT_MAX_DEGREE = 32
#: Graphs per evaluation batch (evaluation mode: batch norm uses its running statistics, so
#: the batch size changes nothing but memory).
EVAL_BATCH = 512


@dataclass(frozen=True)
class GraphTrainConfig:
    """How to train a :class:`gnnkit.graph_models.GraphClassifier` on each fold.

    Attributes:
        conv: ``"gin"`` (default) or ``"mean-gcn"``.
        num_layers: graph layers (default 3).
        hidden: width of every layer and of the readout (default 64).
        pool: readout, ``"add"`` (default), ``"mean"`` or ``"max"``.
        dropout: before the last linear layer (default 0.5).
        lr, weight_decay: Adam's (default 0.01, 0).
        epochs: epochs per fold (default 100).
        patience: early-stopping patience in epochs; 0 (default) trains all ``epochs``.
        batch_size: graphs per step (default 32).
        val_fraction: share of each training part held out for selection (default 0.1).
        device: where to train.
        progress: a progress bar over the epochs (``None``: only when stderr is a terminal).
        threads: CPU threads while training, as :class:`gnnkit.train.TrainConfig`'s
            ``threads``: ``None`` (default) follows :func:`gnnkit.train.threads_for` of the
            edges of all graphs together; the caller's count is back when
            :func:`cross_validate` returns or raises.

    Raises:
        ValueError, TypeError: naming the setting.
    """

    conv: str = "gin"
    num_layers: int = 3
    hidden: int = 64
    pool: str = "add"
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 0.0
    epochs: int = 100
    patience: int = 0
    batch_size: int = 32
    val_fraction: float = 0.1
    device: str = "cpu"
    progress: bool | None = None
    threads: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: store the checked values once, here
        if not isinstance(self.conv, str) or self.conv.lower() not in CONVS:
            raise ValueError(f"conv must be one of {CONVS}, got {self.conv!r}.")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {tuple(POOLS)}, got {self.pool!r}.")
        set_(self, "conv", self.conv.lower())
        set_(self, "num_layers", check_int(self.num_layers, "num_layers", low=1))
        for name in ("hidden", "epochs", "patience", "batch_size"):
            set_(self, name, check_setting(name, getattr(self, name)))
        set_(self, "dropout", check_real(self.dropout, "dropout", low=0.0, high=1.0,
                                         open_high=True))
        set_(self, "lr", check_real(self.lr, "lr", low=0.0, open_low=True))
        set_(self, "weight_decay", check_real(self.weight_decay, "weight_decay", low=0.0))
        set_(self, "val_fraction", check_real(self.val_fraction, "val_fraction", low=0.0,
                                              high=1.0, open_low=True, open_high=True))
        set_(self, "device", str(check_device(self.device)))
        set_(self, "threads", check_threads(self.threads))
        if self.progress is None:
            import sys

            set_(self, "progress", sys.stderr.isatty())

    def describe(self) -> str:
        """One line: model, optimiser and batches."""
        return (f"model {self.conv} ({self.num_layers} layers, hidden {self.hidden}, {self.pool} "
                f"readout, dropout {self.dropout}); Adam lr {self.lr}, weight decay "
                f"{self.weight_decay}; {self.epochs} epochs per fold, patience {self.patience}; "
                f"mini-batch {self.batch_size} graphs; {self.val_fraction:g} of each training "
                "part held out for selection")

    def build(self, in_features: int, num_classes: int) -> GraphClassifier:
        """A fresh classifier for these settings."""
        return GraphClassifier(in_features, self.hidden, num_classes, self.num_layers,
                               conv=self.conv, pool=self.pool, dropout=self.dropout)


@dataclass
class FoldResult:
    """One fold: test accuracy of the selected weights, and how they were selected."""

    fold: int
    test_accuracy: float
    val_accuracy: float
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[tuple[float, float, float]] = field(default_factory=list, repr=False)


@dataclass
class CrossValidation:
    """k folds: ``mean`` +- ``std`` (sample standard deviation) of the test accuracies."""

    folds: list[FoldResult]
    seed: int

    @property
    def accuracies(self) -> list[float]:
        """The test accuracy of each fold, in fold order."""
        return [f.test_accuracy for f in self.folds]

    @property
    def mean(self) -> float:
        """The mean test accuracy over the folds."""
        return summarize(self.accuracies)[0]

    @property
    def std(self) -> float:
        """The sample standard deviation of the fold accuracies (0 for one fold)."""
        return summarize(self.accuracies)[1]


def stratified_folds(y: Tensor, folds: int, seed: int = 0) -> list[Tensor]:
    """``folds`` disjoint index sets covering ``0..G-1``, each class spread evenly.

    The graphs of each class are shuffled (``torch.Generator`` seeded with ``seed``), the
    classes concatenated, and position p of that order goes to fold ``p mod folds``: a
    fold holds ``n_c / folds`` graphs of class c, up to one. Returns sorted long tensors.

    Raises:
        TypeError: ``y`` not a 1-D integer tensor.
        ValueError: fewer graphs than folds, or ``folds`` below 2.
    """
    if not isinstance(y, Tensor) or y.dim() != 1 or y.is_floating_point() or (
        y.dtype == torch.bool
    ):
        raise TypeError(f"y must be a 1-D integer tensor of class ids, got "
                        f"{getattr(y, 'dtype', type(y).__name__)}.")
    folds = check_int(folds, "folds", low=2, high=max(2, y.numel()))
    seed = check_int(seed, "seed", low=0)
    generator = torch.Generator().manual_seed(seed)
    y = y.cpu()
    order = []
    for label in torch.unique(y).tolist():
        members = torch.nonzero(y == label).flatten()
        order.append(members[torch.randperm(members.numel(), generator=generator)])
    order = torch.cat(order)
    fold_of = torch.empty_like(order)
    fold_of[order] = torch.arange(order.numel()) % folds
    return [torch.nonzero(fold_of == f).flatten() for f in range(folds)]


def cross_validate(dataset: Sequence, config: GraphTrainConfig | None = None, *,
                   folds: int = 10, seed: int = 0, only_folds: Sequence[int] | None = None,
                   num_classes: int | None = None) -> CrossValidation:
    """Train and test once per fold as the module docstring says; see
    :class:`CrossValidation`.

    Args:
        dataset: a sequence of ``(graph, x, y)`` items with integer labels ``y``, e.g. a
            :class:`gnnkit.data.TUDataset` (its ``y`` attribute is used when present).
        config: the settings (default ``GraphTrainConfig()``).
        folds: k >= 2.
        seed: seeds the folds, the validation split, the model and the batch order; equal
            seeds give equal results on the CPU.
        only_folds: run only these folds (0-based; default all): for quick checks.
        num_classes: C (default: the largest label + 1).

    Raises:
        ValueError: bad settings, fewer graphs than folds, a negative label, a diverging run.
    """
    config = config if config is not None else GraphTrainConfig()
    if not isinstance(config, GraphTrainConfig):
        raise TypeError(f"config must be a GraphTrainConfig, got {type(config).__name__}.")
    labels = _labels(dataset)
    num_classes = (int(labels.max()) + 1 if num_classes is None
                   else check_int(num_classes, "num_classes", low=int(labels.max()) + 1))
    parts = stratified_folds(labels, folds, seed)
    chosen = range(len(parts)) if only_folds is None else [
        check_int(f, "only_folds[]", low=0, high=len(parts) - 1) for f in only_folds]
    with training_threads(config, _num_edges(dataset)):
        results = [train_fold(dataset, labels, parts, fold, config, seed, num_classes)
                   for fold in chosen]
    return CrossValidation(results, seed)


def split_fold(labels: Tensor, parts: list[Tensor], fold: int, val_fraction: float,
               seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(train, val, test)`` indices of ``fold``: test is ``parts[fold]``; ``val`` a
    stratified ``val_fraction`` of the rest (at least one graph), ``train`` what remains."""
    test = parts[fold]
    rest = torch.cat([p for k, p in enumerate(parts) if k != fold]).sort().values
    inner = max(2, min(round(1 / val_fraction), rest.numel()))
    val_parts = stratified_folds(labels[rest], inner, seed + 1 + fold)
    val = rest[val_parts[0]]
    train = rest[torch.cat(val_parts[1:]).sort().values]
    return train, val, test


def train_fold(dataset: Sequence, labels: Tensor, parts: list[Tensor], fold: int,
               config: GraphTrainConfig, seed: int, num_classes: int) -> FoldResult:
    """Train a fresh model on fold ``fold``'s training part and score the selected weights on
    its test fold (step 2-4 of the protocol)."""
    train_idx, val_idx, test_idx = split_fold(labels, parts, fold, config.val_fraction, seed)
    device = torch.device(config.device)
    items = _Subset(dataset, train_idx)
    in_features = items[0][1].shape[1]
    torch.manual_seed(seed * 1009 + fold)
    model = config.build(in_features, num_classes).to(device)
    trained = distributed.wrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    loader = GraphLoader(items, config.batch_size, shuffle=True, seed=seed * 1009 + fold,
                         rank=distributed.rank(), world_size=distributed.world_size())
    val_batches = _eval_batches(dataset, val_idx, device)
    test_batches = _eval_batches(dataset, test_idx, device)

    def train_epoch(epoch: int) -> float:
        loader.set_epoch(epoch)
        loss = graph_epoch(trained, optimizer, loader, device)
        _sync_buffers(model)
        return loss

    selection = BestValidation(config.patience)
    fitted = fit(model, selection, config.epochs, train_epoch,
                 lambda: evaluate_graphs(model, val_batches), seed=seed, lr=config.lr,
                 label=f"fold {fold}", progress=config.progress)
    return FoldResult(
        fold=fold, test_accuracy=evaluate_graphs(model, test_batches)[1],
        val_accuracy=selection.val_accuracy, best_epoch=selection.best_epoch,
        epochs_run=fitted.epochs_run, seconds=fitted.seconds, history=fitted.history,
    )


def graph_epoch(model: nn.Module, optimizer: Optimizer, loader: GraphLoader,
                device: torch.device) -> float:
    """One pass over this process's batches of ``loader`` (one Adam step per batch, loss
    ``cross_entropy(model(batch) [B, C], y [B])``); the mean loss over all processes."""
    model.train()
    total, steps = 0.0, 0
    for batch in loader:
        batch = batch.to(device) if batch.x.device != device else batch
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(batch.x, batch), batch.y)
        loss.backward()
        optimizer.step()
        total, steps = total + loss.item(), steps + 1
    return distributed.mean_over_ranks(total / max(steps, 1), device)


@torch.no_grad()
def evaluate_graphs(model: nn.Module, batches: list) -> tuple[float, float]:
    """Cross-entropy and accuracy of ``model`` (evaluation mode) over pre-built batches."""
    model.eval()
    logits = torch.cat([model(b.x, b) for b in batches])
    labels = torch.cat([b.y for b in batches])
    return float(F.cross_entropy(logits, labels)), accuracy(logits, labels)


def _eval_batches(dataset, indices: Tensor, device: torch.device) -> list:
    loader = GraphLoader(_Subset(dataset, indices), EVAL_BATCH, shuffle=False)
    return [b.to(device) if b.x.device != device else b for b in loader]


def _sync_buffers(model: nn.Module) -> None:
    """Under DDP: give every process rank 0's buffers (batch-norm running statistics), so all
    processes evaluate the same model and take the same selection decisions."""
    if distributed.world_size() > 1:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, 0)


def _labels(dataset) -> Tensor:
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"dataset must be a sequence of (graph, x, y) items, got "
                        f"{type(dataset).__name__}.")
    if len(dataset) == 0:
        raise ValueError("dataset is empty; cross-validation needs graphs.")
    y = getattr(dataset, "y", None)
    if not isinstance(y, Tensor):
        y = torch.stack([torch.as_tensor(dataset[k][2]) for k in range(len(dataset))])
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"graph labels must be integer class ids (one per graph), got "
                        f"{y.dtype} of shape {list(y.shape)}.")
    if int(y.min()) < 0:
        graph = int(torch.nonzero(y < 0)[0])
        raise ValueError(f"graph {graph} has the label {int(y[graph])}; labels must be class "
                         "ids 0..C-1.")
    return y.long()


def _num_edges(dataset) -> int:
    """Edges of all graphs of ``dataset`` together, what the thread rule looks at: the
    dataset's ``edge_ptr`` when it has one (a TU dataset), else counted item by item."""
    edge_ptr = getattr(dataset, "edge_ptr", None)
    if isinstance(edge_ptr, Tensor) and edge_ptr.numel():
        return int(edge_ptr[-1])
    graphs = (dataset[k][0] for k in range(len(dataset)))
    return sum(g.num_edges if isinstance(g, Graph) else as_graph(g).num_edges for g in graphs)


class _Subset:
    """The items of ``dataset`` at ``indices``, as a sequence; batches come from the dataset's
    own vectorised ``batch`` when it has one (a TU dataset), else from the items."""

    def __init__(self, dataset, indices: Tensor):
        self.dataset, self.indices = dataset, indices.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int):
        return self.dataset[self.indices[k]]

    def batch(self, positions: Tensor) -> GraphBatch:
        """The :class:`GraphBatch` of the items at ``positions`` (into this subset)."""
        chosen = torch.as_tensor(self.indices)[positions]
        if callable(getattr(self.dataset, "batch", None)):
            return self.dataset.batch(chosen)
        return GraphBatch.from_list([self.dataset[k] for k in chosen.tolist()])
