"""One mini-batch epoch: sampled neighbourhoods of the training nodes, one step per batch."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from .. import distributed
from ..sampling import NeighborLoader
from .config import TrainConfig


class MiniBatches:
    """The training nodes of a graph in shuffled mini-batches with their sampled
    neighbourhoods (:class:`gnnkit.sampling.NeighborLoader`), a new order every epoch.

    Under ``torch.distributed`` each process takes its own share of every epoch's training
    nodes and all processes take the same number of steps (DistributedDataParallel needs
    every process in every gradient all-reduce).
    """

    def __init__(self, graph, train_mask: Tensor, x: Tensor, y: Tensor, config: TrainConfig,
                 seed: int):
        self.loader = NeighborLoader(
            graph, x, y, train_mask, list(config.layer_fanouts), config.batch_size,
            shuffle=True, seed=seed, rank=distributed.rank(), world_size=distributed.world_size(),
            threads=config.threads,
        )

    def epoch(self, model: nn.Module, optimizer: Optimizer, epoch: int) -> float:
        """Train one epoch (``epoch`` 1-based picks its order); the mean training loss over
        the steps of all processes."""
        model.train()
        self.loader.set_epoch(epoch)
        total, steps = 0.0, 0
        for batch in self.loader:
            graphs = [batch.trim(layer, batch.num_hops) for layer in range(batch.num_hops)]
            optimizer.zero_grad(set_to_none=True)
            logits = model(batch.x, graphs)[: batch.batch_size]
            loss = F.cross_entropy(logits, batch.y[: batch.batch_size])
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        device = next(model.parameters()).device  # nccl reduces CUDA tensors only
        return distributed.mean_over_ranks(total / max(steps, 1), device)
