"""The order in which a loader visits its items in each epoch, shared by the node loader
(:class:`gnnkit.sampling.NeighborLoader`, seed nodes) and :class:`GraphLoader` (graphs).

Each epoch the ``count`` items are shuffled with a generator seeded from ``(seed, epoch)``, the
same permutation on every process; process ``rank`` of ``world_size`` then takes every
``world_size``-th position from ``rank`` and cuts its share into batches of ``batch_size``:

* ``drop_last=False``: the order is padded by repeating its start up to a multiple of
  ``world_size``, so every rank has the same number of batches (the last may be smaller);
* ``drop_last=True``: each rank takes ``count // world_size`` items and full batches only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


def mix_seeds(*values: int) -> int:
    """A well-spread 63-bit seed from a few ints (nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence(list(values)).generate_state(2, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class EpochOrder:
    """The batches of one process over ``count`` items (arguments checked by the loaders).

    Attributes:
        count: the number of items.
        batch_size: items per batch.
        shuffle: shuffle every epoch (else the items' own order).
        seed: the run's seed.
        rank: this process, in 0..world_size-1.
        world_size: the number of processes.
        drop_last: full batches only (see the module docstring).
    """

    count: int
    batch_size: int
    shuffle: bool
    seed: int
    rank: int
    world_size: int
    drop_last: bool

    def check(self, what: str) -> None:
        """Refuse ``drop_last`` when it leaves no batch; ``what`` names the items."""
        if self.drop_last and self.count // self.world_size < self.batch_size:
            raise ValueError(
                f"drop_last=True leaves no full batch: {self.count} {what} over "
                f"{self.world_size} ranks is fewer than batch_size={self.batch_size} per rank; "
                "lower batch_size or use drop_last=False.")

    def positions(self, epoch: int) -> Tensor:
        """[n] long: the positions (0..count-1) this rank visits in ``epoch``, batch by batch."""
        order = torch.arange(self.count)
        if self.shuffle:
            generator = torch.Generator().manual_seed(mix_seeds(self.seed, epoch))
            order = torch.randperm(self.count, generator=generator)
        if self.drop_last:
            per_rank = self.count // self.world_size
            return order[self.rank::self.world_size][:per_rank // self.batch_size
                                                     * self.batch_size]
        padded = _ceil_div(self.count, self.world_size) * self.world_size
        return order[torch.arange(padded) % self.count][self.rank::self.world_size]

    def __len__(self) -> int:
        """The number of batches per epoch, the same on every rank."""
        if self.drop_last:
            return self.count // self.world_size // self.batch_size
        return _ceil_div(_ceil_div(self.count, self.world_size), self.batch_size)


def _ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b
