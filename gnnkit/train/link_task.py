"""Link prediction: an encoder of :data:`gnnkit.models.MODELS` embeds the nodes, a pair
score ranks candidate edges.

    from gnnkit.data import load_dataset
    from gnnkit.train import train_link_predictor

    result = train_link_predictor(load_dataset("karate"), "mean-gcn", seed=0)
    print(result.test_auc, result.test_hits)

Protocol:

1. the edges are split (:func:`gnnkit.link.split_edges`, seeded; both directions of an
   undirected edge together): ``val`` and ``test`` fractions held out with as many
   negative pairs each; the encoder only ever sees the training graph;
2. every epoch, the training pairs (one per undirected edge) are positives and as many fresh
   :func:`gnnkit.link.negative_edges` of the training graph are negatives; the loss is

       L = -mean_k log sigma(s(z_j, z_i)) - mean_k log(1 - sigma(s(z_j', z_i')))

   with ``z = encoder(x, train_graph)`` [N, D] and ``s`` the dot product (or an MLP,
   :class:`gnnkit.link.MLPScore`). Full batch: one Adam step per epoch. Mini-batch
   (``batch_size`` pairs per step, as many negatives): the endpoints of a batch are the seeds
   (:func:`gnnkit.link.link_seeds`) of a sampled neighbourhood
   (:func:`gnnkit.sampling.sample_neighbors` with ``fanouts``), so a step costs the batch's
   neighbourhood, not the graph;
3. after each epoch the validation ROC AUC (loss as tie-break) selects the weights kept
   (:class:`BestValidation`, early stopping after ``patience`` epochs);
4. the kept weights are scored on the test pairs: ROC AUC and Hits@K
   (:func:`gnnkit.link.roc_auc`, :func:`gnnkit.link.hits_at_k`).

Embeddings for evaluation are exact (the whole training graph, or layer-wise chunks in
mini-batch mode, :func:`gnnkit.train.evaluate.full_graph_logits`). Under
``torch.distributed`` each process takes its share of every epoch's pairs, DDP averages the
gradients, and all processes evaluate alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import distributed
from .._validate import check_int, check_real
from ..data.datasets import normalize_rows
from ..data.epoch_order import mix_seeds
from ..graph import Graph
from ..link import (
    EdgeSplit,
    MLPScore,
    dot_score,
    hits_at_k,
    link_seeds,
    negative_edges,
    roc_auc,
    split_edges,
)
from ..ops.features import dense_features
from ..sampling import sample_neighbors
from .config import TrainConfig, training_threads
from .data import features
from .evaluate import full_graph_logits
from .loop import fit
from .run import model_for
from .selection import BestValidation

SCORES = ("dot", "mlp")


@dataclass(frozen=True)
class LinkSettings:
    """What link prediction adds to a :class:`TrainConfig`.

    Attributes:
        out_features: D, the embedding width (the encoder's output; default 64).
        score: ``"dot"`` (default) or ``"mlp"`` (:class:`gnnkit.link.MLPScore`, hidden D).
        val, test: fractions of the edges held out (default 0.05, 0.1).
        hits_k: K of the reported Hits@K (default 20).
    """

    out_features: int = 64
    score: str = "dot"
    val: float = 0.05
    test: float = 0.1
    hits_k: int = 20

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "out_features", check_int(self.out_features, "out_features", low=1))
        if self.score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {self.score!r}.")
        set_(self, "val", check_real(self.val, "val", low=0.0, high=1.0, open_low=True,
                                     open_high=True))
        set_(self, "test", check_real(self.test, "test", low=0.0, high=1.0, open_low=True,
                                      open_high=True))
        if self.val + self.test >= 1.0:
            raise ValueError(f"val + test must be below 1 to leave training edges, got "
                             f"{self.val} + {self.test}.")
        set_(self, "hits_k", check_int(self.hits_k, "hits_k", low=1))


@dataclass
class LinkResult:
    """One link-prediction run: test metrics of the best-validation weights."""

    model_name: str
    seed: int
    test_auc: float
    test_hits: float
    hits_k: int
    val_auc: float
    best_epoch: int
    epochs_run: int
    seconds: float
    encoder: nn.Module = field(repr=False)
    scorer: nn.Module | None = field(repr=False)
    split: EdgeSplit = field(repr=False)
    history: list[tuple[float, float, float]] = field(default_factory=list, repr=False)


class LinkModel(nn.Module):
    """``encoder`` (x [N, F], graph -> z [N, D]) and a pair score (dot or
    :class:`gnnkit.link.MLPScore`): ``forward(z, pairs [2, P]) -> [P]`` logits."""

    def __init__(self, encoder: nn.Module, scorer: nn.Module | None):
        super().__init__()
        self.encoder, self.scorer = encoder, scorer

    def forward(self, x: Tensor, graph, pairs: Tensor, rows: int | None = None) -> Tensor:
        """Scores of ``pairs`` (ids into the first ``rows`` encoder outputs, all by default)."""
        z = self.encoder(x, graph)
        z = z if rows is None else z[:rows]
        return self.score(z, pairs)

    def score(self, z: Tensor, pairs: Tensor) -> Tensor:
        return dot_score(z, pairs) if self.scorer is None else self.scorer(z, pairs)


def train_link_predictor(dataset, model_name: str = "mean-gcn", epochs: int | None = None,
                         seed: int = 0, patience: int | None = None, *,
                         split: EdgeSplit | None = None, link: LinkSettings | None = None,
                         **settings) -> LinkResult:
    """Train ``model_name`` (a key of :data:`gnnkit.models.MODELS`) as a link predictor on
    ``dataset``'s graph and features (see the module docstring).

    Args:
        dataset: a :class:`gnnkit.data.NodeData` (its graph and ``x`` [N, F]; labels and
            masks are not used).
        model_name: the encoder, a key of :data:`gnnkit.models.MODELS`.
        epochs: as :func:`gnnkit.train.train_node_classifier`.
        seed: as :func:`gnnkit.train.train_node_classifier`.
        patience: as :func:`gnnkit.train.train_node_classifier`.
        **settings: as :func:`gnnkit.train.train_node_classifier` (``hidden``, ``dropout``,
            ``lr``, ``weight_decay``, ``batch_size`` (pairs per step), ``fanouts``,
            ``device``, ``threads``, ...).
        split: an :class:`gnnkit.link.EdgeSplit` to use (default: split here with ``seed``).
        link: :class:`LinkSettings` (default ``LinkSettings()``).

    Raises:
        ValueError: an unusable setting or dataset, or a loss that became NaN or infinite.
    """
    config = TrainConfig(model_name, epochs=epochs, patience=patience, **settings)
    return train_link(dataset, config, seed, split=split, link=link)


def train_link(dataset, config: TrainConfig, seed: int = 0, *, split: EdgeSplit | None = None,
               link: LinkSettings | None = None) -> LinkResult:
    """:func:`train_link_predictor` with a built :class:`TrainConfig`.

    Trains on ``config.threads`` CPU threads, or by :func:`gnnkit.train.threads_for` of the
    dataset's edges when that is ``None``; the caller's thread count is back afterwards."""
    link = link if link is not None else LinkSettings()
    if not isinstance(link, LinkSettings):
        raise TypeError(f"link must be a LinkSettings, got {type(link).__name__}.")
    seed = check_int(seed, "seed", low=0)
    with training_threads(config, dataset.num_edges):
        return _train_link(dataset, config, seed, split, link)


def _train_link(dataset, config: TrainConfig, seed: int, split: EdgeSplit | None,
                link: LinkSettings) -> LinkResult:
    device = torch.device(config.device)
    x = dense_features(features(dataset.x))  # batches gather rows of x
    x = normalize_rows(x) if config.normalize_features else x
    if split is None:
        split = split_edges(dataset.graph(), link.val, link.test,
                            generator=torch.Generator().manual_seed(seed))
    if not isinstance(split, EdgeSplit):
        raise TypeError(f"split must be a gnnkit.link.EdgeSplit, got {type(split).__name__}.")
    x = x.to(device)
    graph = split.train_graph.to(device) if split.train_graph.device != device \
        else split.train_graph
    pairs = {name: getattr(split, name).to(device) for name in (
        "train_pos", "val_pos", "val_neg", "test_pos", "test_neg")}

    torch.manual_seed(seed)
    encoder = model_for(config, x.shape[1], link.out_features, device)
    scorer = MLPScore(link.out_features, link.out_features).to(device) \
        if link.score == "mlp" else None
    model = LinkModel(encoder, scorer)
    trained = distributed.wrap(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    # Negatives and neighbourhoods: a stream per process; the pair order: one per epoch,
    # equal on every process (each takes its share of the same permutation).
    generator = torch.Generator(device=device).manual_seed(mix_seeds(seed, distributed.rank()))
    chunk_size = config.chunk_size if config.mini_batch else None

    def train_epoch(epoch: int) -> float:
        if config.mini_batch:
            order = torch.Generator(device=device).manual_seed(mix_seeds(seed, epoch))
            return mini_batch_link_epoch(trained, optimizer, x, graph, pairs["train_pos"],
                                         config, generator, order)
        return full_batch_link_epoch(trained, optimizer, x, graph, pairs["train_pos"],
                                     generator)

    def validate() -> tuple[float, float]:
        z = full_graph_logits(encoder, x, graph, chunk_size)
        val_loss, val_auc, _ = pair_metrics(model, z, pairs["val_pos"], pairs["val_neg"],
                                            link.hits_k)
        return val_loss, val_auc

    selection = BestValidation(config.patience)
    fitted = fit(model, selection, config.epochs, train_epoch, validate, seed=seed,
                 lr=config.lr, label=f"{config.model} seed {seed}", progress=config.progress,
                 score="val_auc")
    z = full_graph_logits(encoder, x, graph, chunk_size)
    _, test_auc, test_hits = pair_metrics(model, z, pairs["test_pos"], pairs["test_neg"],
                                          link.hits_k)
    return LinkResult(
        model_name=config.model, seed=seed, test_auc=test_auc, test_hits=test_hits,
        hits_k=link.hits_k, val_auc=selection.val_accuracy, best_epoch=selection.best_epoch,
        epochs_run=fitted.epochs_run, seconds=fitted.seconds, encoder=encoder, scorer=scorer,
        split=split, history=fitted.history,
    )


def pair_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """Binary cross-entropy with logits: positives labelled 1, negatives 0, each side
    averaged on its own (``-mean log sigma(pos) - mean log(1 - sigma(neg))``)."""
    return (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))


def full_batch_link_epoch(model: nn.Module, optimizer, x: Tensor, graph: Graph,
                          train_pos: Tensor, generator) -> float:
    """One Adam step on all training pairs and as many fresh negatives; the loss. Under DDP
    each process takes its share of the pairs."""
    model.train()
    pos = train_pos[:, distributed.rank()::distributed.world_size()]
    neg = negative_edges(graph, pos.shape[1], generator=generator)
    optimizer.zero_grad(set_to_none=True)
    scores = model(x, graph, torch.cat([pos, neg], dim=1))
    loss = pair_loss(scores[: pos.shape[1]], scores[pos.shape[1]:])
    loss.backward()
    optimizer.step()
    return distributed.mean_over_ranks(loss.item(), x.device)


def mini_batch_link_epoch(model: nn.Module, optimizer, x: Tensor, graph: Graph,
                          train_pos: Tensor, config: TrainConfig, generator,
                          order_generator) -> float:
    """The training pairs in batches of ``config.batch_size``, in an order drawn from
    ``order_generator`` (equal on every process; each process takes its share, all the same
    number of steps), each with as many negatives (from ``generator``); the encoder runs on
    the sampled neighbourhood of the batch's endpoints. The mean loss over all steps."""
    model.train()
    count, world = train_pos.shape[1], distributed.world_size()
    order = torch.randperm(count, generator=order_generator, device=train_pos.device)
    padded = -(-count // world) * world
    share = order[torch.arange(padded, device=order.device) % count][distributed.rank()::world]
    fanouts = list(config.layer_fanouts)
    total, steps = 0.0, 0
    for batch in torch.split(share, config.batch_size):
        pos = train_pos[:, batch]
        neg = negative_edges(graph, pos.shape[1], generator=generator)
        nodes, local = link_seeds(torch.cat([pos, neg], dim=1))
        sample = sample_neighbors(graph, nodes, fanouts, generator=generator)
        layers = [sample.trim(layer, sample.num_hops) for layer in range(sample.num_hops)]
        optimizer.zero_grad(set_to_none=True)
        scores = model(x[sample.n_id], layers, local, rows=sample.batch_size)
        loss = pair_loss(scores[: pos.shape[1]], scores[pos.shape[1]:])
        loss.backward()
        optimizer.step()
        total, steps = total + loss.item(), steps + 1
    return distributed.mean_over_ranks(total / max(steps, 1), x.device)


@torch.no_grad()
def pair_metrics(model: LinkModel, z: Tensor, pos: Tensor, neg: Tensor,
                 hits_k: int) -> tuple[float, float, float]:
    """Loss, ROC AUC and Hits@K of the positive pairs ``pos`` against ``neg``."""
    model.eval()
    pos_scores, neg_scores = model.score(z, pos), model.score(z, neg)
    loss = float(pair_loss(pos_scores, neg_scores))
    if not (torch.isfinite(pos_scores).all() and torch.isfinite(neg_scores).all()):
        return loss, float("nan"), float("nan")
    return (loss, float(roc_auc(pos_scores, neg_scores)),
            float(hits_at_k(pos_scores, neg_scores, hits_k)))
