"""Parent side of a worker: start one, enforce a wall-clock timeout and a resident-memory cap,
and turn the outcome into a status.

Workers are separate processes. On CPU they are forked from a ``multiprocessing`` fork server
that has imported torch, torch_geometric and gnnkit once (and computed nothing), so each worker
starts in milliseconds instead of the seconds those imports take, yet shares no allocator state
with any other measurement. On CUDA, where a process that may have touched the driver must not
be forked, each worker is started with ``spawn`` (a fresh interpreter). Either way the worker
runs :func:`bench.worker.main`, exactly as ``python -m bench.worker`` would.

The cap is watched from outside (RSS of the child polled every 10 ms, the child killed when it
goes over) rather than with ``resource.setrlimit(RLIMIT_AS)``: torch and its thread pools
reserve far more virtual address space than they ever touch, so an address-space limit fails
programs that would fit comfortably.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.01
PRELOAD = ["bench.worker", "bench.cases", "bench.measure", "torch", "torch_geometric.nn",
           "gnnkit", "gnnkit.nn", "gnnkit.datasets"]
_contexts: dict[str, multiprocessing.context.BaseContext] = {}


def _context(device: str):
    """Fork server (preloaded) on CPU, spawn on CUDA; created once per run."""
    method = "spawn" if device.startswith("cuda") else "forkserver"
    if method not in _contexts:
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(PRELOAD)
        _contexts[method] = context
    return _contexts[method]


@dataclass
class WorkerResult:
    """What a worker reported. ``status`` is ``"ok"``, ``"OOM"``, ``"timeout"`` or ``"error"``;
    ``message`` explains a failure; ``peak_rss_mb`` is the largest RSS the watcher saw."""

    status: str
    events: list[dict] = field(default_factory=list)
    message: str = ""
    peak_rss_mb: float = 0.0
    seconds: float = 0.0

    def find(self, event: str, **match) -> dict | None:
        """The last event named ``event`` whose fields include ``match``."""
        for item in reversed(self.events):
            if item.get("event") == event and all(item.get(k) == v for k, v in match.items()):
                return item
        return None


def _rss(process: psutil.Process) -> int:
    try:
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            total += child.memory_info().rss
        return total
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def run_worker(mode: str, options: list[str], device: str, timeout_s: float,
               mem_limit_gb: float, verbose: bool = False) -> WorkerResult:
    """Run one worker (``python -m bench.worker MODE OPTIONS``) to completion, or kill it at
    ``timeout_s`` seconds or when its RSS exceeds ``mem_limit_gb``."""
    from .worker import entry

    limit_bytes = mem_limit_gb * 2**30
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        events_path, log_path = Path(tmp) / "events.jsonl", Path(tmp) / "log.txt"
        argv = [mode, *options, "--events", str(events_path)]
        if verbose:
            print("  $ python -m bench.worker", " ".join(argv), file=sys.stderr)
        child = _context(device).Process(target=entry, args=(argv, str(log_path)))
        child.start()  # the first start also starts the fork server: not counted
        start = time.monotonic()
        killed_for, peak = "", 0
        try:
            watched = psutil.Process(child.pid)
            while child.exitcode is None:
                rss = _rss(watched)
                peak = max(peak, rss)
                if rss > limit_bytes:
                    killed_for = "OOM"
                elif time.monotonic() - start > timeout_s:
                    killed_for = "timeout"
                if killed_for:
                    child.kill()
                    break
                time.sleep(POLL_SECONDS)
        except psutil.NoSuchProcess:
            pass
        except BaseException:
            child.kill()
            child.join()
            raise
        child.join()
        seconds = time.monotonic() - start
        events = _read_events(events_path)
        log_tail = (log_path.read_text(errors="replace").strip().splitlines()[-5:]
                    if log_path.exists() else [])

    result = WorkerResult("ok", events, peak_rss_mb=peak / 2**20, seconds=seconds)
    error = result.find("error")
    if killed_for == "OOM":
        result.status = "OOM"
        result.message = f"RSS went over --mem-limit-gb {mem_limit_gb:g}"
    elif killed_for == "timeout":
        result.status = "timeout"
        result.message = f"still running after {timeout_s:g} s"
    elif error is not None:
        result.status, result.message = error["kind"], error["message"]
    elif child.exitcode == -9:
        result.status = "OOM"
        result.message = "killed by SIGKILL (most likely the kernel's out-of-memory killer)"
    elif child.exitcode != 0:
        result.status = "error"
        result.message = f"exit code {child.exitcode}: " + " | ".join(log_tail)
    return result


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill
            pass
    return events
