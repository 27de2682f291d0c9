"""One full-batch epoch: a single optimiser step on the loss of all training nodes."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer


def full_batch_epoch(
    model: nn.Module, optimizer: Optimizer, x: Tensor, y: Tensor, graph, train_mask: Tensor,
) -> float:
    """Forward the whole graph, one step on the cross-entropy of ``train_mask``; the loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x, graph)[train_mask], y[train_mask])
    loss.backward()
    optimizer.step()
    return loss.item()
