"""One full-batch epoch: a single optimiser step on the loss of all training nodes."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer

from .receptive_field import LabelledNodes


def full_batch_epoch(model: nn.Module, optimizer: Optimizer, train: LabelledNodes) -> float:
    """One step on the mean cross-entropy of the training nodes ``train``; the loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(train.logits(model), train.y)
    loss.backward()
    optimizer.step()
    return loss.item()
