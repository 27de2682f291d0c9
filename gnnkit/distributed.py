"""Multi-process training on ``torch.distributed``, as launched by ``torchrun``.

gnnkit has no distributed engine of its own: ``torchrun`` starts the processes and sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`process_group` joins them (gloo on CPU, nccl on CUDA) and
:class:`torch.nn.parallel.DistributedDataParallel` all-reduces the gradients. Everything
here is a no-op in a single process, so the training code reads the same either way::

    with gnnkit.distributed.process_group("cpu") as device:
        model = gnnkit.distributed.wrap(model)   # DDP when there are several processes
        ...
        if gnnkit.distributed.is_main():
            print(...)

When a process dies (a crash, ``kill``), ``torchrun`` stops the others within seconds. A
process that stalls (stopped, swapping, stuck) is noticed by the others at their next
collective operation (a gradient all-reduce, the epoch loss, the evaluation): after
``timeout`` seconds they raise :class:`ProcessGroupError`, and ``torchrun`` then stops the
whole group. (With nccl the timeout is enforced by its watchdog, which ends the process.)
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from ._validate import check_real

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: Seconds a collective operation waits for the other processes before it fails (the
#: process group's timeout): long enough for any skew between processes doing equal work,
#: short enough that a stalled process does not block the others for long.
DEFAULT_TIMEOUT = 120.0


class ProcessGroupError(RuntimeError):
    """Training in one process of a ``torchrun`` group failed with a ``RuntimeError``: most
    often another process died or stalled and a collective operation failed or timed out.
    The message names this process and the timeout; the original error is its
    ``__cause__``."""


def launched() -> bool:
    """True when this process was started by ``torchrun`` (its environment variables are
    set)."""
    return all(name in os.environ for name in _TORCHRUN_VARIABLES)


@contextmanager
def process_group(device: str | torch.device = "cpu",
                  timeout: float = DEFAULT_TIMEOUT) -> Iterator[torch.device]:
    """Join the ``torchrun`` process group for the duration of the block and yield the device
    this process trains on.

    Under ``torchrun``: gloo for ``device="cpu"``; for CUDA, nccl on GPU ``LOCAL_RANK``
    (``torch.cuda.set_device``). Joining, and every collective operation inside the block,
    waits at most ``timeout`` seconds for the other processes; a ``RuntimeError`` inside
    the block (such as that timeout, or a peer that died) comes out as
    :class:`ProcessGroupError`. The group is destroyed when the block ends, also on an
    error or Ctrl-C. Without ``torchrun`` it only yields ``device``.

    Raises:
        ValueError: ``timeout`` is not a finite number > 0.
        ProcessGroupError: training under the group failed (see above).
    """
    timeout = check_timeout(timeout)
    device = torch.device(device)
    if not launched() or dist.is_initialized():
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    try:
        yield device
    except RuntimeError as error:
        raise ProcessGroupError(
            f"process {rank()} of {world_size()} stopped: {type(error).__name__}: "
            f"{_first_line(error)} (a process that dies or stalls for more than the "
            f"{timeout:g} s timeout stops the others)"
        ) from error
    finally:
        dist.destroy_process_group()


def check_timeout(value, name: str = "timeout") -> float:
    """A process-group timeout: a finite number of seconds > 0 (errors call it ``name``)."""
    return check_real(value, name, low=0.0, open_low=True)


def launched_world_size() -> int:
    """The number of processes ``torchrun`` started (``WORLD_SIZE``; 1 without torchrun),
    known before the process group is joined."""
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the process that prints and writes."""
    return rank() == 0


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when there are
    several processes (it broadcasts rank 0's parameters, then averages gradients in
    ``backward``), else ``model`` itself."""
    if world_size() == 1:
        return model
    device = next(model.parameters()).device
    device_ids = [device] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def mean_over_ranks(value: float, device: str | torch.device = "cpu") -> float:
    """The mean of ``value`` over all processes (``value`` itself in a single process)."""
    if world_size() == 1:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor) / world_size()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
