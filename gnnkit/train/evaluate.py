"""Evaluation: logits on the whole graph (one forward pass, or exact layer-wise chunks) or
of one split's nodes, and the loss and accuracy of a node mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import distributed
from .receptive_field import LabelledNodes


@torch.no_grad()
def full_graph_logits(model: nn.Module, x: Tensor, graph, chunk_size: int | None = None):
    """Logits [N, C] of ``model`` in evaluation mode. ``chunk_size=None``: one forward pass;
    otherwise exact layer-wise inference in chunks of target nodes
    (:meth:`gnnkit.models.NodeClassifier.inference`), split over the processes when several
    train together."""
    model.eval()
    if chunk_size is None:
        return model(x, graph)
    return model.inference(
        x, graph, chunk_size, rank=distributed.rank(), world_size=distributed.world_size()
    )


@torch.no_grad()
def split_loss_and_accuracy(model: nn.Module, nodes: LabelledNodes) -> tuple[float, float]:
    """Cross-entropy and accuracy of ``model`` in evaluation mode on the nodes ``nodes``."""
    model.eval()
    logits = nodes.logits(model)
    return float(F.cross_entropy(logits, nodes.y)), accuracy(logits, nodes.y)


def loss_and_accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> tuple[float, float]:
    """Cross-entropy and accuracy of ``logits`` on the nodes of ``mask``."""
    logits, labels = logits[mask], y[mask]
    loss = float(F.cross_entropy(logits, labels))
    return loss, accuracy(logits, labels)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of rows whose largest logit is at the label."""
    return float((logits.argmax(1) == labels).float().mean())
