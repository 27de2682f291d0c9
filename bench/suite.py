"""What one run measures, row by row, by driving workers (see :mod:`bench.worker`).

For every (case, size) row:

1. one ``time`` worker runs both libraries in one process, interleaved. If it dies (timeout,
   out of memory, error), the library whose warm-up step was running takes the blame and each
   other library without a result is timed again alone, so one library's failure does not
   hide the other's number;
2. one ``memory`` worker per library, each in its own process (skipped for a library that
   already failed in step 1, which then shows the same failure).

The epoch rows of ``--epochs`` (:meth:`Suite.run_epochs`) are such rows, one per dataset, model
and thread count, with the libraries of ``--libs``; the thread counts of one dataset and model
run one after the other, and the memory of a row is measured at the first thread count only.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .cases import EPOCH_CASES, GRAPH_LIBS, LIB_NAMES, LIBS
from .graphs import cora_missing, limit_size
from .runner import WorkerResult, run_forked

Value = float | str  # a measurement, or the reason there is none ("OOM", "timeout", ...)
#: A library that caches nothing between steps (no Graph) and whose warm-up step took longer
#: than this has its memory measured on its first step, without a warm-up step before it.
SLOW_STEP_MS = 10_000


@dataclass
class Row:
    """One line of the main table."""

    case: str
    size: str
    num_nodes: int | None = None
    num_edges: int | None = None
    features: str = ""
    time_ms: dict[str, Value] = field(default_factory=dict)
    memory_mb: dict[str, Value] = field(default_factory=dict)
    csr_ms: float | None = None
    csr_mb: float | None = None
    repeats: dict[str, int] = field(default_factory=dict)
    max_diff: float | None = None
    threads: int | None = None  # the epoch rows' thread count
    inputs: dict = field(default_factory=dict)  # the worker's "inputs" event
    warm_ms: dict[str, float] = field(default_factory=dict)  # last warm-up step per library


@dataclass
class LimitStep:
    """One size tried by ``--find-limit``: per library ``(seconds, peak MB)`` or a failure."""

    num_nodes: int
    num_edges: int
    results: dict[str, tuple[float, float] | str] = field(default_factory=dict)


@dataclass
class Results:
    """Everything a run produced, in the order it was measured."""

    rows: list[Row] = field(default_factory=list)
    bandwidth: list[dict] = field(default_factory=list)
    limit: list[LimitStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memory_method: str = ""
    threads: int | None = None
    device_name: str = ""
    gnnkit_file: str = ""  # the gnnkit the workers imported (from the probe)


def log(message: str) -> None:
    """Progress, on stderr, so stdout carries only the final table."""
    print(message, file=sys.stderr, flush=True)


class Suite:
    """Runs rows with the options of one command line (see :mod:`bench.__main__`)."""

    def __init__(self, args, results: Results):
        self.args = args
        self.results = results

    # ------------------------------------------------------------------ workers
    def _common(self, case: str, size: str, threads: int | None = None) -> list[str]:
        a = self.args
        threads = a.threads[0] if threads is None else threads
        return ["--case", case, "--size", size, "--device", a.device, "--seed", str(a.seed),
                "--threads", str(threads), "--cora-root", a.cora_root,
                "--deadline-s", str(0.9 * a.timeout),
                *(["--gnnkit-path", a.gnnkit_path] if a.gnnkit_path else [])]

    def _run(self, mode: str, options: list[str]) -> WorkerResult:
        from .worker import entry

        a = self.args
        result = run_forked(entry, [mode, *options], device=a.device, timeout_s=a.timeout,
                            mem_limit_gb=a.mem_limit_gb, verbose=a.verbose)
        env = result.find("env")
        if env is not None:
            self.results.threads, self.results.device_name = env["threads"], env["device_name"]
        return result

    def _time(self, case: str, size: str, libs: list[str],
              threads: int | None = None) -> WorkerResult:
        a = self.args
        return self._run("time", self._common(case, size, threads) + [
            "--libs", ",".join(libs), "--repeats", str(a.repeats), "--warmup", str(a.warmup),
            "--budget-s", str(a.budget)])

    def _memory(self, case: str, size: str, lib: str, threads: int | None = None,
                warm_ms: float = 0.0) -> WorkerResult:
        first_step = lib not in GRAPH_LIBS and warm_ms > SLOW_STEP_MS
        return self._run("memory", self._common(case, size, threads) + [
            "--libs", lib, "--warmup", "0" if first_step else "1"])

    def _note(self, row: Row, lib: str, what: str, result: WorkerResult) -> None:
        threads = f", {row.threads} thread(s)" if row.threads else ""
        self.results.notes.append(
            f"{row.case} / {row.size}{threads}, {LIB_NAMES[lib]} {what}: {result.status}: "
            f"{result.message}")

    def probe(self) -> dict:
        """The gnnkit the workers import: ``{"gnnkit_file", "sparse_features"}``."""
        result = self._run("probe", ["--threads", "1", *(
            ["--gnnkit-path", self.args.gnnkit_path] if self.args.gnnkit_path else [])])
        event = result.find("probe")
        if event is None:
            raise SystemExit(f"cannot import gnnkit in a worker: {result.status}: "
                             f"{result.message}")
        self.results.gnnkit_file = event["gnnkit_file"]
        return event

    # ------------------------------------------------------------------ rows
    def run_row(self, case: str, size: str, libs: list[str] | None = None,
                threads: int | None = None, memory: bool = True) -> Row:
        """Time (interleaved) and memory (one process per library) of one case and size.

        ``libs`` defaults to gnnkit and PyG, plus gnnkit on the raw edge_index (layer cases)
        and the MessagePassing MeanGCN (mean); ``threads`` to the first of ``--threads``.
        Without ``memory`` no memory worker runs."""
        row = Row(case, size, threads=threads)
        if libs is None:
            libs = [*LIBS] if case in EPOCH_CASES else [*LIBS, "gnnkit-raw"] + (
                ["gnnkit-mp"] if case == "mean" else [])
        timing = self._time(case, size, libs, threads)
        self._absorb_time(row, timing)
        missing = [lib for lib in libs if lib not in row.time_ms]
        if missing:
            blamed = _interrupted_lib(timing)
            for lib in missing:
                if lib == blamed:
                    row.time_ms[lib] = timing.status
                    self._note(row, lib, "time", timing)
                    continue
                alone = self._time(case, size, [lib], threads)
                self._absorb_time(row, alone)
                if lib not in row.time_ms:
                    row.time_ms[lib] = alone.status
                    self._note(row, lib, "time", alone)

        # Every library but the MessagePassing MeanGCN gets a memory worker, unless it failed.
        measured = [lib for lib in libs if lib != "gnnkit-mp"]
        to_measure = [lib for lib in measured if not isinstance(row.time_ms[lib], str)]
        for lib in measured:
            if lib not in to_measure:
                row.memory_mb[lib] = row.time_ms[lib]
        if not memory:
            self.results.rows.append(row)
            return row
        # Memory numbers do not depend on CPU contention, so --quick runs both at once.
        with ThreadPoolExecutor(max_workers=2 if self.args.quick else 1) as pool:
            outcomes = list(pool.map(
                lambda lib: self._memory(case, size, lib, threads, row.warm_ms.get(lib, 0.0)),
                to_measure))
        for lib, result in zip(to_measure, outcomes):
            event = result.find("memory", lib=lib)
            if event is None:
                row.memory_mb[lib] = result.status
                self._note(row, lib, "memory", result)
            else:
                row.memory_mb[lib] = event["peak_mb"]
                self.results.memory_method = event["method"]
        self.results.rows.append(row)
        return row

    def _absorb_time(self, row: Row, result: WorkerResult) -> None:
        for item in result.events:
            kind = item["event"]
            if kind == "inputs":
                row.inputs = item
                row.num_nodes, row.num_edges = item["num_nodes"], item["num_edges"]
                row.features = f"{item['in_features']} -> {item['out_features']}"
            elif kind == "csr":
                row.csr_ms, row.csr_mb = item["ms"], item["cache_mb"]
            elif kind == "check":
                row.max_diff = item["max_abs_diff"]
            elif kind == "plan":
                row.repeats.update(item["repeats"])
            elif kind == "time":
                row.time_ms[item["lib"]] = item["median_ms"]
            elif kind == "warmup-end":
                row.warm_ms[item["lib"]] = item["ms"]

    def run_bandwidth(self, size: str) -> None:
        a = self.args
        result = self._run("bandwidth", self._common("bandwidth", size) + [
            "--repeats", str(a.repeats), "--warmup", str(a.warmup),
            "--copy-mb", str(a.copy_mb)])
        event = result.find("bandwidth")
        if event is None:
            self.results.notes.append(f"bandwidth / {size}: {result.status}: {result.message}")
        else:
            self.results.bandwidth.append(event)

    # ------------------------------------------------------------------ plan
    def run_all(self, plan: list[tuple[str, str]], on_progress) -> None:
        """Run every (case, size) of ``plan``; ``on_progress()`` after each."""
        for number, (case, size) in enumerate(plan, 1):
            log(f"[{number}/{len(plan)}] {case} / {size} ...")
            if case in EPOCH_CASES and (reason := cora_missing(self.args.cora_root)):
                self.results.notes.append(f"{case} skipped: {reason}")
                log(f"  skipped: {reason}")
            elif case == "bandwidth":
                self.run_bandwidth(size)
                if self.results.bandwidth:
                    b = self.results.bandwidth[-1]
                    log(f"  spmm {b['spmm_gbps']:.1f} GB/s, copy {b['copy_gbps']:.1f} GB/s")
            else:
                row = self.run_row(case, size)
                log("  " + ", ".join(
                    f"{LIB_NAMES[lib]} {_short(row.time_ms[lib], 'ms')} "
                    f"{_short(row.memory_mb[lib], 'MB')}" for lib in LIBS))
            on_progress()

    # ------------------------------------------------------------------ --epochs
    def run_epochs(self, on_progress) -> None:
        """The epoch rows: for each of ``--datasets`` and ``--models``, one row per thread
        count of ``--threads`` (run one after the other, so that the machine's load hits them
        alike), each timing ``--libs`` interleaved; memory is measured with the first thread
        count and shown in every table. ``on_progress()`` after each row."""
        a = self.args
        pairs = [(dataset, model) for dataset in a.datasets for model in a.models]
        for number, (dataset, model) in enumerate(pairs, 1):
            case = f"epoch-{model}"
            if dataset == "cora" and (reason := cora_missing(a.cora_root)):
                self.results.notes.append(f"cora skipped: {reason}")
                log(f"[{number}/{len(pairs)}] cora / {model} skipped: {reason}")
                continue
            first = None
            for threads in a.threads:
                log(f"[{number}/{len(pairs)}] {dataset} / {model}, {threads} thread(s) ...")
                row = self.run_row(case, dataset, list(a.libs), threads, memory=first is None)
                if first is None:
                    first = row
                else:
                    row.memory_mb = dict(first.memory_mb)
                log("  " + ", ".join(f"{LIB_NAMES[lib]} {_short(row.time_ms[lib], 'ms')}"
                                     for lib in a.libs))
                on_progress()

    # ------------------------------------------------------------------ --find-limit
    def find_limit(self, on_progress) -> None:
        """Double N (E = 10 N) for a GAT training step until each library fails."""
        a = self.args
        alive = set(LIBS)
        nodes = a.limit_start
        while alive and nodes <= a.limit_max:
            size = limit_size(nodes)
            step = LimitStep(size.num_nodes, size.num_edges)
            for lib in LIBS:
                if lib not in alive:
                    continue
                log(f"limit: {LIB_NAMES[lib]} N={size.num_nodes} E={size.num_edges} ...")
                result = self._run("limit", self._common("gat", size.name) + ["--libs", lib])
                event = result.find("limit", lib=lib)
                if event is None:
                    step.results[lib] = result.status
                    alive.discard(lib)
                    self.results.notes.append(
                        f"find-limit N={nodes}, {LIB_NAMES[lib]}: {result.status}: "
                        f"{result.message}")
                else:
                    step.results[lib] = (event["seconds"], event["peak_mb"])
                log(f"  {_short_limit(step.results[lib])}")
            self.results.limit.append(step)
            on_progress()
            nodes *= 2


def _interrupted_lib(result: WorkerResult) -> str | None:
    """The library whose warm-up step started but never ended, if the worker died there."""
    started = result.find("warmup-start")
    if started is None:
        return None
    ended = [e for e in result.events if e["event"] == "warmup-end"]
    starts = [e for e in result.events if e["event"] == "warmup-start"]
    return started["lib"] if len(starts) > len(ended) else None


def _short(value: Value, unit: str) -> str:
    return f"{value:.1f} {unit}" if isinstance(value, float) else str(value)


def _short_limit(value) -> str:
    if isinstance(value, tuple):
        return f"ok: {value[0]:.2f} s, peak {value[1]:.0f} MB"
    return value
