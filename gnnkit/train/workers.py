"""Independent runs (one per seed) side by side, each in its own spawned worker process.

Used by :func:`gnnkit.train.train_seeds` with ``jobs > 1``: a run on a small graph uses one CPU
thread (:func:`gnnkit.train.threads_for`), so on a machine with several cores separate seeds
can train at the same time. Each worker receives the shared arguments once (tensors travel
through shared memory), then runs one item after another; the results come back in the order
of the items, each as soon as it and the ones before it are done. Every run is the same call as
in the parent, so its result is the same.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch.multiprocessing

_shared: tuple = ()  # the shared arguments, set once in each worker by _start


class WorkerError(RuntimeError):
    """A worker process stopped without a result (killed, for example for lack of memory)."""


def _start(shared: tuple) -> None:
    global _shared
    _shared = shared
    # Ctrl-C in a terminal reaches every process of the group: the workers leave it to the
    # caller, which terminates them (_stop) and reports the interruption once
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(function: Callable, item):
    return function(*_shared, item)


def run_in_workers(function: Callable, shared: tuple, items: Sequence, jobs: int) -> Iterator:
    """``function(*shared, item)`` for every item of ``items``, ``jobs`` at a time in worker
    processes; yields the results in the order of ``items``.

    ``function`` must be importable (a module-level function) and ``shared`` and the results
    picklable. Workers are spawned (a fresh interpreter each, never forked from a process
    whose OpenMP threads may hold locks), so a script that calls this must keep its own
    top-level work under ``if __name__ == "__main__":``. An exception of a run is raised here;
    then, and when the caller stops iterating or is interrupted, the workers are terminated.

    Raises:
        WorkerError: a worker process could not start (for example, no room in shared memory
            for the shared tensors) or died (killed, perhaps for lack of memory).
    """
    context = torch.multiprocessing.get_context("spawn")  # torch's shared-memory tensors
    executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start,
                                   initargs=(shared,))
    finished = False
    try:
        try:  # the workers start here; the shared tensors go to shared memory (/dev/shm)
            futures = [executor.submit(_call, function, item) for item in items]
        except (OSError, RuntimeError) as error:
            raise WorkerError(
                f"could not start the worker processes ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else 'no message'}); run one at a "
                "time (jobs=1, --jobs 1)."
            ) from error
        for item, future in zip(items, futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise WorkerError(
                    f"a worker process stopped while running {item!r} (killed, perhaps for "
                    "lack of memory); run one at a time (jobs=1, --jobs 1)."
                ) from None
            yield result
        finished = True
    finally:
        if not finished:  # an error, Ctrl-C or an early stop: no run is waited for
            _stop(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _stop(executor: ProcessPoolExecutor) -> None:
    """Terminate the executor's worker processes (``terminate_workers`` from Python 3.14 on;
    before that, through its table of processes)."""
    terminate = getattr(executor, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
