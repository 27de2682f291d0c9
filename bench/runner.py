"""The one way a benchmark starts a worker: a process of its own, watched for time and memory,
whose JSON result is read back.

Two ways to start one, one watcher for both:

* :func:`run_forked` (the layer rows): on CPU the process is forked from a ``multiprocessing``
  fork server that has imported torch, torch_geometric and gnnkit once (and computed nothing),
  so it starts in milliseconds instead of the seconds those imports take, yet shares no
  allocator state with any other measurement. On CUDA, where a process that may have touched
  the driver must not be forked, it is a fresh ``spawn``ed interpreter.
* :func:`run_command` (sampling, training): any command line, e.g. another interpreter
  (``--pyg-python``) or ``torchrun``; stdout and stderr go to a log file.

The worker gets ``--events PATH`` and appends JSON objects to it, one per line, flushed as
they are known (:func:`write_event`; :func:`run_work` wraps a whole worker), so whatever was
measured survives a kill. The watcher polls the resident memory of the process and all its
children every ``poll_s`` seconds and kills them when it goes over ``mem_limit_gb`` (status
``"OOM"``) or when the process passes ``timeout_s`` (``"timeout"``). The cap is watched from
outside rather than set with ``resource.setrlimit(RLIMIT_AS)``: torch and its thread pools
reserve far more virtual address space than they ever touch, so an address-space limit fails
programs that would fit comfortably.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01
PRELOAD = ["bench.worker", "bench.cases", "bench.measure", "torch", "torch_geometric.nn",
           "gnnkit", "gnnkit.nn", "gnnkit.data"]
_contexts: dict[str, multiprocessing.context.BaseContext] = {}


@dataclass
class WorkerResult:
    """What a worker reported. ``status`` is ``"ok"``, ``"OOM"``, ``"timeout"`` or ``"error"``;
    ``message`` explains a failure; ``peak_rss_mb`` is the largest RSS (process and children)
    the watcher saw; ``seconds`` the wall time."""

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


# ---------------------------------------------------------------------------------- worker side
def write_event(path: str | Path, event: str, **fields) -> None:
    """Append one result line to the events file."""
    with open(path, "a") as events:
        events.write(json.dumps({"event": event, **fields}) + "\n")


def failure(error: BaseException) -> tuple[str, str]:
    """(kind, message) of an exception: kind ``"OOM"`` for running out of memory (host or
    CUDA), else ``"error"``; the message is its first line, at most 300 characters."""
    text = str(error).lower()
    oom = isinstance(error, MemoryError) or "out of memory" in text or (
        "can't allocate memory" in text) or type(error).__name__ == "OutOfMemoryError"
    message = f"{type(error).__name__}: {error}".strip().splitlines()[0][:300]
    return ("OOM" if oom else "error"), message


def run_work(events: str | Path | None, work: Callable[[], dict]) -> dict:
    """Body of a command-line worker: ``work()``'s dict becomes the ``"result"`` event, an
    exception an ``"error"`` event (then raised again, so the exit code says it too)."""
    try:
        result = work()
    except Exception as error:
        if events:
            kind, message = failure(error)
            write_event(events, "error", kind=kind, message=message)
        raise
    if events and result is not None:
        write_event(events, "result", **result)
    return result


# ---------------------------------------------------------------------------------- parent side
def preload_without_gnnkit() -> None:
    """Leave gnnkit out of the fork server's preloaded modules, so that each worker imports
    it itself (from ``--gnnkit-path``). Call before the first :func:`run_forked`."""
    if _contexts:
        raise RuntimeError("the fork server has already started with gnnkit preloaded")
    PRELOAD[:] = [name for name in PRELOAD if name.split(".")[0] != "gnnkit"]


def _context(device: str):
    """Fork server (preloaded) on CPU, spawn on CUDA; created once per run."""
    method = "spawn" if device.startswith("cuda") else "forkserver"
    if method not in _contexts:
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(PRELOAD)
        _contexts[method] = context
    return _contexts[method]


def run_forked(target: Callable[[list[str], str], None], argv: list[str], *, device: str,
               timeout_s: float, mem_limit_gb: float, verbose: bool = False) -> WorkerResult:
    """Run ``target(argv + ["--events", PATH], log_path)`` in a forked (CPU) or spawned (CUDA)
    process to completion, or kill it at ``timeout_s`` or over ``mem_limit_gb``."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        events, log = Path(tmp) / "events.jsonl", Path(tmp) / "log.txt"
        argv = [*argv, "--events", str(events)]
        if verbose:
            print("  $ python -m bench.worker", " ".join(argv), file=sys.stderr)
        child = _context(device).Process(target=target, args=(argv, str(log)))
        child.start()  # the first start also starts the fork server: not counted
        return _supervise(child.pid, lambda: child.exitcode, child.join, events, log,
                          timeout_s, mem_limit_gb, POLL_SECONDS, "")


def run_command(command: list[str], *, timeout_s: float = math.inf,
                mem_limit_gb: float = math.inf, env: dict | None = None,
                poll_s: float = POLL_SECONDS, expect: str = "result") -> WorkerResult:
    """Run ``command + ["--events", PATH]`` from the repository root (``env`` added to the
    environment, the repository on ``PYTHONPATH``) to completion, or kill it and its children
    at ``timeout_s`` or over ``mem_limit_gb``. A run that ends without an ``expect`` event is
    an ``"error"``."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        events, log = Path(tmp) / "events.jsonl", Path(tmp) / "log.txt"
        with open(log, "wb") as output:
            child = subprocess.Popen(
                [*command, "--events", str(events)], cwd=ROOT, stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        return _supervise(child.pid, child.poll, child.wait, events, log, timeout_s,
                          mem_limit_gb, poll_s, expect)


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [*process.children(recursive=True), process]
    except psutil.NoSuchProcess:
        return []


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _supervise(pid: int, exitcode: Callable[[], int | None], wait: Callable[[], object],
               events: Path, log: Path, timeout_s: float, mem_limit_gb: float,
               poll_s: float, expect: str) -> WorkerResult:
    """Poll the process tree's RSS until the process ends or is killed; read what it wrote."""
    start = time.monotonic()
    killed_for, peak = "", 0
    try:
        watched = psutil.Process(pid)
        while exitcode() is None:
            processes = _tree(watched)
            rss = _rss(processes)
            peak = max(peak, rss)
            if rss > mem_limit_gb * 2**30:
                killed_for = "OOM"
            elif time.monotonic() - start > timeout_s:
                killed_for = "timeout"
            if killed_for:
                _kill(processes)
                break
            time.sleep(poll_s)
    except psutil.NoSuchProcess:
        pass
    except BaseException:
        try:
            _kill(_tree(psutil.Process(pid)))
        except psutil.NoSuchProcess:
            pass
        wait()
        raise
    wait()
    code = exitcode()
    seconds = time.monotonic() - start
    log_tail = (log.read_text(errors="replace").strip().splitlines()[-5:]
                if log.exists() else [])

    result = WorkerResult("ok", _read_events(events), peak_rss_mb=peak / 2**20,
                          seconds=seconds)
    error = result.find("error")
    if killed_for == "OOM":
        result.status = "OOM"
        result.message = f"RSS went over --mem-limit-gb {mem_limit_gb:g}"
    elif killed_for == "timeout":
        result.status = "timeout"
        result.message = f"still running after {timeout_s:g} s"
    elif error is not None:
        result.status, result.message = error["kind"], error["message"]
    elif code == -9:
        result.status = "OOM"
        result.message = "killed by SIGKILL (most likely the kernel's out-of-memory killer)"
    elif code != 0 or (expect and result.find(expect) is None):
        result.status = "error"
        result.message = f"exit code {code}: " + " | ".join(log_tail)
    return result


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


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
