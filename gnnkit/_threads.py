"""CPU threads: the one rule for how many threads torch uses while gnnkit trains or samples,
a context manager that applies a count for a block and gives the caller's back, and how many
independent runs to do at once on the machine's cores.

It sits at the bottom of the package (it imports only torch and :mod:`gnnkit._validate`) so
that the sampler (:class:`gnnkit.sampling.NeighborLoader`) and training
(:func:`gnnkit.train.training_threads`) share it. docs/architecture.md, "CPU threads", has the
measurements behind it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ._validate import check_int

#: Graphs with fewer edges than this train (and sample) on one CPU thread; larger ones keep
#: torch's setting. On a busy 2-core machine two threads lose badly on small graphs
#: (``gnnkit train`` on Cora: 115-225 s against 9 s with one thread; a GAT mini-batch epoch on a
#: 20k-node, 200k-edge synthetic graph: 4.6-16 s against 1.0 s), so the threshold is set high.
ONE_THREAD_MAX_EDGES = 1_000_000


def threads_for(num_edges: int) -> int | None:
    """CPU threads to train a graph with ``num_edges`` edges on: 1 for small graphs (thread
    start-up and contention cost more than they save), ``None`` (keep torch's setting) for
    larger ones."""
    return 1 if num_edges < ONE_THREAD_MAX_EDGES else None


def check_threads(value, name: str = "threads") -> int | None:
    """A thread-count setting: ``None`` (follow :func:`threads_for`) or an int >= 1.

    Raises:
        TypeError: not an int (a float, a string, a bool).
        ValueError: below 1.
    """
    return None if value is None else check_int(value, name, low=1)


def resolve_threads(threads, num_edges: int) -> int | None:
    """``threads`` checked (:func:`check_threads`), or :func:`threads_for` ``(num_edges)``
    when it is ``None``."""
    threads = check_threads(threads)
    return threads if threads is not None else threads_for(num_edges)


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the ``with`` block on ``threads`` CPU threads (``torch.set_num_threads``), then
    put the caller's count back, also when the block raises. ``None``, or the count already
    set, changes nothing."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity on this platform (macOS, Windows)
        return os.cpu_count() or 1


def jobs_for(threads: int | None, runs: int) -> int:
    """How many of ``runs`` independent training runs to do at once on this machine's CPUs,
    each on ``threads`` threads: one per ``threads`` usable cores, at most ``runs``; 1 when a
    run keeps torch's own thread count (``None``: a large graph, which takes every core)."""
    if threads is None:
        return 1
    return max(1, min(runs, usable_cores() // threads))
