"""Timing, peak-memory and bandwidth primitives, for CPU and CUDA.

Peak memory on CPU -- how it is measured and why
-------------------------------------------------

The number wanted is "how much more resident memory does one step need at its worst moment",
i.e. peak RSS during the step minus RSS just before it. Ways to get it:

* a thread sampling ``psutil.Process().memory_info().rss`` every ~1 ms misses short peaks
  (a temporary allocated and freed within a millisecond), competes for the GIL and CPU, and
  its resolution depends on machine load;
* ``ru_maxrss`` is a process-lifetime maximum: it cannot be reset, so a step that peaks lower
  than the warm-up did reads as zero.
* The kernel's own high-water mark ``VmHWM`` (/proc/self/status) is exact (it is updated on
  every page fault, so no peak is missed) and, on Linux >= 4.0, writing ``5`` to
  /proc/self/clear_refs resets it to the current RSS. Resetting it, reading ``VmRSS`` (the
  base), running the step and reading ``VmHWM`` gives exactly the peak the step added.

The last is used; where clear_refs cannot be written (old kernels, some sandboxes) the sampler
is the fallback, and the method used is reported.

RSS counts pages the C allocator holds, not only live tensors. glibc keeps freed memory for
reuse and moves its mmap threshold up after large frees, so a second step may reuse memory the
first one freed (reading too low) or fragment its heap (reading too high). Workers that
measure memory therefore pin the mmap threshold at 128 KiB (:func:`pin_malloc`, which also
stops the threshold from moving), so every tensor above that size is its own mapping,
returned to the system when freed, and call ``malloc_trim(0)`` before taking the base. The
RSS peak then follows the peak of live memory closely. Each library runs in its own process
so neither inherits the other's allocator state.

On CUDA, ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus
``memory_allocated()`` before the step: tensor bytes, not counting the caching allocator's
reserve or the CUDA context.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import threading
import time
from collections.abc import Callable

import torch

_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def pin_malloc() -> bool:
    """Fix glibc's mmap threshold (see the module docstring). False where not glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))


def malloc_trim() -> None:
    """Give freed heap memory back to the system (glibc only; a no-op elsewhere)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def sync(device: str) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(fn: Callable[[], object], device: str) -> float:
    """Seconds one call of ``fn`` takes, queued device work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def plan_repeats(step_seconds: dict[str, float], wanted: int, allowed: float) -> dict[str, int]:
    """Repeats per step so that all of them fit in ``allowed`` seconds: the time is shared
    equally, a fast step's unused share going to the slower ones; at most ``wanted`` each
    (0 when not even one more call fits)."""
    repeats, remaining = {}, allowed
    by_speed = sorted(step_seconds, key=step_seconds.get)
    for k, name in enumerate(by_speed):
        share = remaining / (len(by_speed) - k)
        repeats[name] = max(0, min(wanted, int(share / max(step_seconds[name], 1e-9))))
        remaining -= repeats[name] * step_seconds[name]
    return {name: repeats[name] for name in step_seconds}


def interleaved_times(steps: dict[str, Callable[[], object]], repeats: dict[str, int],
                      device: str) -> dict[str, list[float]]:
    """Call the steps in turn (a, b, a, b, ...), each ``repeats[name]`` times, so that slow
    phases of a noisy machine hit every library alike (a step with more repeats than the
    others does its extra ones at the end). Returns the seconds of each call."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(max(repeats.values(), default=0)):
        for name, step in steps.items():
            if round_ < repeats[name]:
                times[name].append(time_once(step, device))
    return times


# ---------------------------------------------------------------------------------- memory
def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_rss_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel or sandbox does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


class _RssSampler:
    """Fallback: the largest RSS seen by a thread polling every ``interval`` seconds."""

    def __init__(self, interval: float = 0.001):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._process.memory_info().rss)


class PeakMemory:
    """``with PeakMemory(device) as m: step()`` then ``m.added``: the bytes the block's peak
    needed above what was in use when it started; ``m.method`` says how it was measured."""

    def __init__(self, device: str):
        self.device = device
        self.added = 0
        self.method = ""
        self._base = 0
        self._sampler: _RssSampler | None = None

    def __enter__(self):
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
            return self
        malloc_trim()
        if _reset_rss_peak():
            self.method = "VmHWM after clear_refs"
            self._base = _status_bytes("VmRSS")
        else:
            self.method = "RSS sampled every 1 ms"
            self._sampler = _RssSampler()
            self._base = self._sampler.peak
        return self

    def __exit__(self, *exc_info) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        elif self._sampler is not None:
            peak = self._sampler.stop()
        else:
            peak = _status_bytes("VmHWM")
        self.added = max(0, peak - self._base)


def process_peak_bytes(device: str) -> int:
    """The whole process's peak so far: VmHWM on CPU, max allocated tensor bytes on CUDA."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    try:
        return _status_bytes("VmHWM")
    except (OSError, KeyError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------------- bandwidth
def spmm_bytes(num_nodes: int, num_edges: int, features: int, index_bytes: int = 8,
               value_bytes: int = 4, feature_bytes: int = 4) -> int:
    """Bytes a CSR product ``A @ x`` must move at least once per use: each edge's column index
    and value, one gathered row of x per edge, the written output, and the row pointer."""
    return (num_edges * (index_bytes + value_bytes) + num_edges * features * feature_bytes
            + num_nodes * features * feature_bytes + (num_nodes + 1) * 8)


def copy_step(num_bytes: int, device: str) -> tuple[Callable[[], object], int]:
    """``dst.copy_(src)`` for float32 tensors of ``num_bytes``, and the bytes it moves
    (read + write = 2 x size). Both tensors are touched once beforehand."""
    src = torch.randn(num_bytes // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return (lambda: dst.copy_(src)), 2 * src.numel() * src.element_size()

