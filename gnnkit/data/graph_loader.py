"""Mini-batches of whole graphs, for one process of a (possibly distributed) training run."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from .._validate import check_int
from .batch import GraphBatch
from .epoch_order import EpochOrder


class GraphLoader:
    """Yield :class:`GraphBatch` objects of ``batch_size`` graphs from a list of items.

    Each epoch (see :meth:`set_epoch`) the graphs are put in a random order (the given order
    with ``shuffle=False``) that depends only on ``seed`` and the epoch, and shared out among
    the ``world_size`` ranks so that every rank gets the same number of batches (DDP waits for
    every rank), as :mod:`gnnkit.data.epoch_order` describes.

    Args:
        items: a sequence (``len`` and integer indexing) of ``(graph, x, y)`` items, e.g. a
            list or the dataset of :func:`gnnkit.data.read_tu`. When it has a ``batch``
            method (``items.batch(indices [B] long) -> GraphBatch``, as
            :class:`gnnkit.data.TUDataset` does) each batch is made by it in one vectorised
            gather; otherwise by :meth:`GraphBatch.from_list` on the indexed items.
        batch_size: graphs per batch (>= 1).
        shuffle: shuffle every epoch.
        drop_last: see above.
        seed: the run's seed (int >= 0).
        rank: this process's rank, in 0..world_size-1.
        world_size: the number of processes.

    Yields:
        ``len(loader)`` :class:`GraphBatch` objects per epoch.
    """

    def __init__(self, items, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        if not (hasattr(items, "__len__") and hasattr(items, "__getitem__")) or isinstance(
            items, (str, bytes, Tensor)
        ):
            raise TypeError(f"items must be a sequence of (graph, x, y) items (a list or a "
                            f"dataset), got {type(items).__name__}.")
        if len(items) == 0:
            raise ValueError("items is empty; a loader needs at least one graph.")
        self.items = items
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.world_size = check_int(world_size, "world_size", low=1)
        self.rank = check_int(rank, "rank", low=0, high=self.world_size - 1)
        self.seed = check_int(seed, "seed", low=0)
        self.order = EpochOrder(len(items), self.batch_size, bool(shuffle), self.seed, self.rank,
                                self.world_size, bool(drop_last))
        self.order.check("graphs")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration produces."""
        self.epoch = check_int(epoch, "epoch", low=0)

    def shard(self) -> Tensor:
        """This rank's item indices for the current epoch, in batch order."""
        return self.order.positions(self.epoch)

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[GraphBatch]:
        gather = getattr(self.items, "batch", None)
        for indices in torch.split(self.shard(), self.batch_size):
            if callable(gather):  # a dataset with global arrays: one vectorised gather
                yield gather(indices)
            else:
                yield GraphBatch.from_list([self.items[k] for k in indices.tolist()])
