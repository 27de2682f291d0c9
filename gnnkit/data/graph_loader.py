"""Mini-batches of whole graphs, for one process of a (possibly distributed) training run."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .._validate import check_int
from .batch import GraphBatch


class GraphLoader:
    """Yield :class:`GraphBatch` objects of ``batch_size`` graphs from a list of items.

    Each epoch (see :meth:`set_epoch`) the graphs are put in a random order (the given order
    with ``shuffle=False``) that depends only on ``seed`` and the epoch, so every rank
    computes the same order. The order is then shared out among the ``world_size`` ranks so
    that every rank gets the same number of batches (DDP waits for every rank):

    * ``drop_last=False``: the order is padded by wrapping around to its start up to a
      multiple of ``world_size`` (at most ``world_size - 1`` graphs are seen twice per
      epoch); rank r takes every ``world_size``-th graph from position r and cuts its share
      into batches of ``batch_size`` (the last may be smaller, equally on every rank).
    * ``drop_last=True``: every rank takes ``len(items) // world_size`` graphs and only full
      batches.

    Args:
        items: a sequence (``len`` and integer indexing) of ``(graph, x, y)`` items, e.g. a
            list or the dataset of :func:`gnnkit.data.read_tu`.
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
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        if self.drop_last and len(items) // self.world_size < self.batch_size:
            raise ValueError(
                f"drop_last=True leaves no full batch: {len(items)} graphs over "
                f"{self.world_size} ranks is fewer than batch_size={self.batch_size} per rank; "
                "lower batch_size or use drop_last=False.")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration produces."""
        self.epoch = check_int(epoch, "epoch", low=0)

    def shard(self) -> Tensor:
        """This rank's item indices for the current epoch, in batch order."""
        count = len(self.items)
        order = torch.arange(count)
        if self.shuffle:
            generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
            order = torch.randperm(count, generator=generator)
        if self.drop_last:
            per_rank = count // self.world_size
            keep = per_rank // self.batch_size * self.batch_size
            return order[self.rank::self.world_size][:keep]
        padded = _ceil_div(count, self.world_size) * self.world_size
        return order[torch.arange(padded) % count][self.rank::self.world_size]

    def __len__(self) -> int:
        count = len(self.items)
        if self.drop_last:
            return count // self.world_size // self.batch_size
        per_rank = _ceil_div(count, self.world_size)  # the padded share
        return _ceil_div(per_rank, self.batch_size)

    def __iter__(self) -> Iterator[GraphBatch]:
        for indices in torch.split(self.shard(), self.batch_size):
            yield GraphBatch.from_list([self.items[k] for k in indices.tolist()])


def _ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b


def _mix(*values: int) -> int:
    """A well-spread 63-bit seed from a few ints (nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence(list(values)).generate_state(2, np.uint64)[0] >> 1)
