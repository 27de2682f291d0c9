"""Training settings: one :class:`TrainConfig` holds them, fills in the model's defaults and
checks them, for the library and the command line alike."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields

import torch

from ..models import model_spec

#: Graphs with fewer edges than this train on one CPU thread; larger ones keep torch's setting.
#: On a busy 2-core machine two threads lose badly on small graphs (``gnnkit train`` on Cora:
#: 115-225 s against 9 s with one thread; a GAT mini-batch epoch on a 20k-node, 200k-edge
#: synthetic graph: 4.6-16 s against 1.0 s), so the threshold is set high.
ONE_THREAD_MAX_EDGES = 1_000_000


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model; ``None`` means the model's default (see
    :class:`gnnkit.models.ModelSpec`), filled in on construction.

    Attributes:
        model: a key of :data:`gnnkit.models.MODELS` (``mean-gcn``, ``median-gcn``, ``gat``).
        epochs: maximum number of epochs.
        patience: early-stopping patience in epochs (0 never stops early).
        hidden, dropout, lr, weight_decay, normalize_features: model and optimiser settings.
        batch_size: training nodes per step; ``None`` trains full batch (one step per epoch).
        fanouts: mini-batch only: neighbours sampled per node and hop, one per layer,
            ``-1`` for all of them (the default: all, so the sample is exact).
        chunk_size: target nodes per chunk of the exact layer-wise evaluation used in
            mini-batch training (default 2^20; smaller chunks use less memory but recompute
            more: every chunk runs the layer on all its in-neighbours).
        device: where to train.
        progress: show a progress bar over the epochs (``None``: only when stderr is a
            terminal).

    Raises:
        ValueError: naming the setting and what it must be.
    """

    model: str = "mean-gcn"
    epochs: int | None = None
    patience: int | None = None
    hidden: int | None = None
    dropout: float | None = None
    lr: float | None = None
    weight_decay: float | None = None
    normalize_features: bool | None = None
    batch_size: int | None = None
    fanouts: tuple[int, ...] | None = None
    chunk_size: int = 1 << 20
    device: str = "cpu"
    progress: bool | None = None

    def __post_init__(self):
        spec = model_spec(self.model)
        set_ = object.__setattr__  # frozen: fill in the defaults once, here
        set_(self, "model", spec.name)
        for name in ("epochs", "patience", "hidden", "dropout", "lr", "weight_decay",
                     "normalize_features"):
            if getattr(self, name) is None:
                set_(self, name, getattr(spec, name))
        if self.progress is None:
            set_(self, "progress", sys.stderr.isatty())
        _at_least("epochs", self.epochs, 1)
        _at_least("patience", self.patience, 0)
        _at_least("hidden", self.hidden, 1)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.batch_size is not None:
            _at_least("batch_size", self.batch_size, 1)
        _at_least("chunk_size", self.chunk_size, 1)
        if self.fanouts is not None:
            fanouts = tuple(self.fanouts)
            if len(fanouts) != 2 or any(
                not isinstance(f, int) or isinstance(f, bool) or (f < 1 and f != -1)
                for f in fanouts
            ):
                raise ValueError(
                    f"fanouts must be two ints (one per layer), each >= 1 or -1 for all "
                    f"neighbours, e.g. (10, 5); got {self.fanouts!r}."
                )
            if self.batch_size is None:
                raise ValueError("fanouts need batch_size: they apply to mini-batch training.")
            set_(self, "fanouts", fanouts)
        set_(self, "device", str(torch.device(self.device)))

    @property
    def mini_batch(self) -> bool:
        """True when training samples mini-batches (``batch_size`` given)."""
        return self.batch_size is not None

    @property
    def layer_fanouts(self) -> tuple[int, ...]:
        """The fanouts used for sampling: the given ones, or -1 (all) per layer."""
        return self.fanouts if self.fanouts is not None else (-1, -1)

    def describe(self) -> str:
        """One line: the model and optimiser settings and how batches are formed."""
        batches = "full batch"
        if self.mini_batch:
            fanouts = ",".join(str(f) for f in self.layer_fanouts)
            batches = f"mini-batch {self.batch_size}, fanouts {fanouts}"
        return (
            f"model {self.model} (hidden {self.hidden}, dropout {self.dropout}); Adam lr "
            f"{self.lr}, weight decay {self.weight_decay}; up to {self.epochs} epochs, patience "
            f"{self.patience}; {batches}"
        )

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def threads_for(num_edges: int) -> int | None:
    """CPU threads to train a graph with ``num_edges`` edges on: 1 for small graphs (thread
    start-up and contention cost more than they save), ``None`` (keep torch's setting) for
    larger ones."""
    return 1 if num_edges < ONE_THREAD_MAX_EDGES else None


def _at_least(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
