"""Training settings: one :class:`TrainConfig` holds them, fills in the model's defaults and
checks them, for the library and the command line alike."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from .._threads import (  # noqa: F401 (ONE_THREAD_MAX_EDGES, threads_for: named here too)
    ONE_THREAD_MAX_EDGES,
    check_threads,
    cpu_threads,
    jobs_for,
    resolve_threads,
    threads_for,
)
from .._validate import check_int, check_real
from ..models import model_spec
from ..sampling import check_fanouts

#: The smallest value of each integer setting; the command line checks its flags against the
#: same table (:func:`check_setting`).
MINIMUM = {"epochs": 1, "patience": 0, "hidden": 1, "batch_size": 1, "chunk_size": 1}
#: The largest fanout: the sampler counts edges in int64 (-1 means all edges anyway).
#: The devices gnnkit trains on.
DEVICE_TYPES = ("cpu", "cuda", "mps")


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
        threads: CPU threads torch uses while training (``torch.set_num_threads``).
            ``None`` (default) follows :func:`threads_for` of the graph trained on: one
            thread below :data:`ONE_THREAD_MAX_EDGES` edges, else the caller's own setting
            unchanged; an int >= 1 is used as given. The count applies for the duration of
            the training call only (:func:`training_threads`): when the call returns, or
            raises, ``torch.get_num_threads()`` is back to what the caller had set.

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
    threads: int | None = None

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
        for name in MINIMUM:
            if getattr(self, name) is not None:
                set_(self, name, check_setting(name, getattr(self, name)))
        set_(self, "dropout", check_real(self.dropout, "dropout", low=0.0, high=1.0,
                                         open_high=True))
        set_(self, "lr", check_real(self.lr, "lr", low=0.0, open_low=True))
        set_(self, "weight_decay", check_real(self.weight_decay, "weight_decay", low=0.0))
        if self.fanouts is not None:
            if self.batch_size is None:
                raise ValueError(
                    "fanouts need batch_size (--batch-size on the command line): sampling "
                    "applies to mini-batch training."
                )
            set_(self, "fanouts", tuple(check_fanouts(self.fanouts, hops=spec.num_layers,
                                                      smallest=1)))
        set_(self, "device", str(check_device(self.device)))
        set_(self, "threads", check_threads(self.threads))

    @property
    def mini_batch(self) -> bool:
        """True when training samples mini-batches (``batch_size`` given)."""
        return self.batch_size is not None

    @property
    def layer_fanouts(self) -> tuple[int, ...]:
        """The fanouts used for sampling: the given ones, or -1 (all) per layer."""
        return self.fanouts if self.fanouts is not None else (
            (-1,) * model_spec(self.model).num_layers)

    def describe(self) -> str:
        """One line: the model and optimiser settings and how batches are formed."""
        batches = "full batch"
        if self.mini_batch:
            fanouts = ",".join(str(f) for f in self.layer_fanouts)
            batches = f"mini-batch {self.batch_size}, fanouts {fanouts}"
        heads = model_spec(self.model).heads
        hidden = f"{self.hidden} x {heads} heads" if heads > 1 else f"{self.hidden}"
        return (
            f"model {self.model} (hidden {hidden}, dropout {self.dropout}); Adam lr "
            f"{self.lr}, weight decay {self.weight_decay}; up to {self.epochs} epochs, patience "
            f"{self.patience}; {batches}"
        )


def training_threads(setting, num_edges: int) -> AbstractContextManager[None]:
    """The thread rule of training as a context manager: ``with training_threads(config,
    graph.num_edges): ...`` runs the block on ``config.threads`` CPU threads, or on
    :func:`threads_for` ``(num_edges)`` when that is ``None``, and restores the caller's count
    afterwards (see :func:`cpu_threads`).

    Args:
        setting: an object with a ``threads`` attribute (:class:`TrainConfig`,
            :class:`~gnnkit.train.graph_task.GraphTrainConfig`), an int >= 1, or ``None``.
        num_edges: the edges of the graph (or all graphs) trained on.

    Raises:
        TypeError, ValueError: ``threads`` is not ``None`` or an int >= 1.
    """
    return cpu_threads(resolve_threads(getattr(setting, "threads", setting), num_edges))



def check_setting(name: str, value, label: str | None = None) -> int:
    """The integer setting ``name`` (a key of :data:`MINIMUM`) checked against its minimum;
    errors call it ``label`` (default ``name``; the command line passes its flag)."""
    return check_int(value, label or name, low=MINIMUM[name])


def check_device(value, name: str = "device") -> torch.device:
    """A device gnnkit can train on here: ``cpu``, or ``cuda``/``cuda:I``/``mps`` when this
    machine has it.

    Raises:
        TypeError: not a string or ``torch.device``.
        ValueError: not a device name, a device type gnnkit does not train on, or a device
            this machine lacks.
    """
    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a string such as 'cpu' or 'cuda', got "
                        f"{type(value).__name__}.")
    try:
        device = torch.device(value)
    except RuntimeError:  # torch's parse error for a string that names no device
        raise ValueError(f"{name} {value!r} is not a device; use cpu, cuda, cuda:I or mps.") \
            from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"{name} {value!r}: gnnkit trains on cpu, cuda or mps.")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"{name} {value!r}: this machine has no usable CUDA device "
                "(torch.cuda.is_available() is False); use cpu."
            )
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"{name} {value!r}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {value!r}: MPS is not available on this machine; use cpu.")
    return device
