"""The subprocess that does the measured work: ``python -m bench.worker MODE [options]``.

Modes:

* ``time``: both libraries in this process, same inputs; reports the gnnkit CSR one-off build,
  the largest output difference, then forward + backward times interleaved (g, p, g, p, ...).
* ``memory``: one library (``--libs`` names exactly one); after a warm-up step, the peak
  memory one step adds (see :mod:`bench.measure` for how).
* ``bandwidth``: gnnkit ``spmm`` forward alone, and a plain copy, in bytes per second.
* ``limit``: one GAT training step (forward, backward, SGD step) on one library; reports its
  time and the whole process's peak memory. Used by ``--find-limit``.
* ``probe``: which gnnkit this worker imports (file, sparse node feature support), so that a
  run can check ``--gnnkit-path`` and the variants asked for before measuring anything.

``--gnnkit-path DIR`` imports gnnkit from ``DIR/gnnkit`` (e.g. a ``git worktree`` of an older
commit) while the benchmark code stays this one; ``--threads T`` sets ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` to T and ``torch.set_num_threads(T)`` before anything is computed.

Results are JSON objects, one per line, appended (and flushed) to ``--events`` as they are
known, so the parent keeps what was measured even if it has to kill this process. A failure
is reported as ``{"event": "error", "kind": "OOM" | "error", ...}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

from .graphs import CORA_ROOT
from .measure import pin_malloc
from .runner import failure

_started = time.monotonic()
_events_file = None


def seconds_left(args) -> float:
    """Seconds until ``--deadline-s`` (counted from the start of :func:`main`, not from the
    import: workers forked from a long-lived fork server import this module only once)."""
    return args.deadline_s - (time.monotonic() - _started)


def emit(event: str, **fields) -> None:
    """Append one result line to the events file."""
    _events_file.write(json.dumps({"event": event, **fields}) + "\n")
    _events_file.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("time", "memory", "bandwidth", "limit", "probe"))
    parser.add_argument("--events", required=True, help="file to append JSON result lines to")
    parser.add_argument("--case", default="gat")
    parser.add_argument("--size", default="tiny",
                        help="preset name or <nodes>x<edges>; a dataset for the epoch-* cases")
    parser.add_argument("--libs", default="gnnkit,pyg")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=60.0,
                        help="time allowed for the timed repeats; fewer repeats when slower")
    parser.add_argument("--deadline-s", type=float, default=540.0,
                        help="finish (with fewer repeats or warm-ups) within this many seconds")
    parser.add_argument("--copy-mb", type=int, default=256)
    parser.add_argument("--cora-root", default=str(CORA_ROOT))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--gnnkit-path", help="import gnnkit from DIR/gnnkit")
    return parser.parse_args(argv)


def use_gnnkit_from(path: str) -> None:
    """Put ``path`` first on ``sys.path`` so that ``import gnnkit`` finds ``path/gnnkit``
    (the ``bench`` package, already imported, stays this one)."""
    if "gnnkit" in sys.modules:
        raise RuntimeError("gnnkit was imported before --gnnkit-path could take effect")
    sys.path.insert(0, os.path.abspath(path))


def _setup(args: argparse.Namespace):
    if args.threads > 0:
        # Before torch computes anything, so that its OpenMP and MKL pools start this size.
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    emit("env", threads=torch.get_num_threads(), torch=torch.__version__,
         omp_num_threads=os.environ.get("OMP_NUM_THREADS", ""),
         device_name=torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu")


def _inputs(args):
    import torch

    from .cases import LAYER_CASES, MATRIX_CASES, make_inputs
    from .graphs import parse_size

    size = parse_size(args.size) if args.case in LAYER_CASES else None
    inputs = make_inputs(args.case, args.size if args.case in MATRIX_CASES else size,
                         args.seed, args.device, args.cora_root)
    nonzero = int(torch.count_nonzero(inputs.x.detach()))
    emit("inputs", num_nodes=inputs.num_nodes, num_edges=inputs.num_edges,
         in_features=inputs.x.size(1),
         out_features=size.out_features if size else inputs.num_classes,
         num_classes=inputs.num_classes, density=nonzero / max(1, inputs.x.numel()))
    return size, inputs


def run_time(args) -> None:
    """CSR one-off build, output check, warm-up, then interleaved timed repeats (for the median,
    gnnkit's mean layer on the same inputs joins the rounds as ``gnnkit-mean``)."""
    from .cases import build_gnnkit_csr, cached_bytes, prepare
    from .measure import interleaved_times, median, plan_repeats, sync, time_once

    libs = args.libs.split(",")
    size, inputs = _inputs(args)
    if "gnnkit" in libs:
        # A first build on a slice of the graph pays the process's first-call costs of the ops
        # involved, so the timed builds show the per-graph cost only.
        build_gnnkit_csr(args.case, inputs.edge_index[:, :100], inputs.num_nodes)
        builds, graph = [], None
        for _ in range(max(1, min(3, args.repeats))):
            sync(args.device)
            start = time.perf_counter()
            graph = build_gnnkit_csr(args.case, inputs.edge_index, inputs.num_nodes)
            sync(args.device)
            builds.append(time.perf_counter() - start)
        emit("csr", ms=1e3 * median(builds),
             cache_mb=cached_bytes(graph, inputs.edge_index) / 2**20)
        del graph

    prepared = prepare(args.case, libs, size, inputs, args.seed, args.device)
    if "pyg" in prepared and len(prepared) > 1:
        # The largest difference of any gnnkit form's output from PyG's (same weights).
        pyg_out = prepared["pyg"].output()
        diff = max(float((job.output() - pyg_out).abs().max())
                   for lib, job in prepared.items() if lib != "pyg")
        emit("check", max_abs_diff=diff, max_abs_value=float(pyg_out.abs().max()))
        del pyg_out
    if args.case == "median" and "gnnkit" in prepared:
        # gnnkit's own mean layer on the same inputs, timed in the same rounds, so that the
        # median's cost relative to the mean does not drift with the machine between runs.
        prepared["gnnkit-mean"] = prepare("mean", ["gnnkit"], size, inputs, args.seed,
                                          args.device)["gnnkit"]

    warm: dict[str, float] = {}
    for _ in range(max(1, args.warmup)):
        for lib, job in prepared.items():
            emit("warmup-start", lib=lib)
            warm[lib] = time_once(job.step, args.device)
            emit("warmup-end", lib=lib, ms=1e3 * warm[lib])
        if seconds_left(args) < 2 * sum(warm.values()):
            break

    # As many repeats as asked for, as long as they fit the budget and the deadline; a library
    # for which not even one more step fits keeps its last warm-up step as the measurement.
    allowed = min(args.budget_s, seconds_left(args))
    repeats = plan_repeats(warm, args.repeats, allowed)
    emit("plan", repeats=repeats)
    times = interleaved_times({lib: job.step for lib, job in prepared.items()}, repeats,
                              args.device)
    for lib, samples in times.items():
        if not samples:
            samples.append(warm[lib])
    for lib, samples in times.items():
        emit("time", lib=lib, median_ms=1e3 * median(samples),
             samples_ms=[1e3 * s for s in samples])


def run_memory(args) -> None:
    """One warm-up step (gnnkit builds and caches its CSR here), then the peak of two
    measured steps; with ``--warmup 0`` (the suite's choice for a slow step of a library that
    caches nothing between steps) the peak of the first step alone."""
    from .cases import prepare
    from .measure import PeakMemory, time_once

    libs = args.libs.split(",")
    if len(libs) != 1:
        raise SystemExit("memory mode measures exactly one library (--libs gnnkit or pyg)")
    size, inputs = _inputs(args)
    job = prepare(args.case, libs, size, inputs, args.seed, args.device)[libs[0]]
    warm = time_once(job.step, args.device) if args.warmup > 0 else math.inf
    peaks, method = [], ""
    # A second measured step guards against anything still initialising lazily; a slow step
    # (where that is negligible) is measured once.
    for _ in range(2 if warm < 5 and seconds_left(args) > 3 * warm else 1):
        with PeakMemory(args.device) as peak:
            job.step()
        peaks.append(peak.added)
        method = peak.method
    emit("memory", lib=libs[0], peak_mb=max(peaks) / 2**20, method=method)


def run_bandwidth(args) -> None:
    """``spmm(graph, values, x)`` forward with 64 features, next to ``dst.copy_(src)``, the two
    timed in alternation; the ratio is the median over rounds of (spmm GB/s) / (copy GB/s)."""
    import torch

    from gnnkit import Graph
    from gnnkit.ops import spmm

    from .cases import BANDWIDTH_FEATURES
    from .graphs import parse_size
    from .measure import copy_step, interleaved_times, median, spmm_bytes

    size = parse_size(args.size)
    generator = torch.Generator().manual_seed(args.seed)
    edge_index = torch.randint(0, size.num_nodes, (2, size.num_edges), generator=generator)
    x = torch.randn(size.num_nodes, BANDWIDTH_FEATURES, generator=generator)
    values = torch.rand(size.num_edges, generator=generator)
    graph = Graph(edge_index.to(args.device), size.num_nodes)
    x, values = x.to(args.device), values.to(args.device)
    graph.csr  # noqa: B018 - build the cached CSR outside the timing

    def forward():
        with torch.no_grad():
            return spmm(graph, values, x)

    copy, copy_moved = copy_step(args.copy_mb * 2**20, args.device)
    for _ in range(max(1, args.warmup)):
        forward()
        copy()
    seconds = interleaved_times({"spmm": forward, "copy": copy},
                                {"spmm": args.repeats, "copy": args.repeats}, args.device)
    moved = spmm_bytes(size.num_nodes, size.num_edges, BANDWIDTH_FEATURES,
                       index_bytes=graph.csr[1].element_size(),
                       value_bytes=values.element_size())
    spmm_s, copy_s = median(seconds["spmm"]), median(seconds["copy"])
    ratios = [(moved / s) / (copy_moved / c) for s, c in zip(seconds["spmm"], seconds["copy"])]
    emit("bandwidth", size=size.name, num_nodes=size.num_nodes, num_edges=size.num_edges,
         features=BANDWIDTH_FEATURES, spmm_ms=1e3 * spmm_s, spmm_bytes=moved,
         spmm_gbps=moved / spmm_s / 1e9, copy_ms=1e3 * copy_s, copy_bytes=copy_moved,
         copy_gbps=copy_moved / copy_s / 1e9, ratio=median(ratios),
         ratio_low=min(ratios), ratio_high=max(ratios), rounds=len(ratios))


def run_limit(args) -> None:
    """One GAT (8 heads, 128 -> 64) training step: forward, backward, SGD step."""
    import torch

    from .cases import make_layer, random_inputs
    from .graphs import parse_size
    from .measure import process_peak_bytes, time_once

    lib = args.libs.split(",")[0]
    size = parse_size(args.size)
    inputs = random_inputs(size, args.seed, args.device)
    torch.manual_seed(args.seed)
    layer = make_layer("gat", lib, size).to(args.device)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.01)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        layer(inputs.x, inputs.edge_index).backward(inputs.grad_out)
        optimizer.step()

    seconds = time_once(train_step, args.device)
    emit("limit", lib=lib, num_nodes=size.num_nodes, num_edges=size.num_edges,
         seconds=seconds, peak_mb=process_peak_bytes(args.device) / 2**20)


def run_probe(args) -> None:
    """Which gnnkit is imported, and whether it has sparse node features
    (``gnnkit.ops.feature_dropout``)."""
    import gnnkit
    import gnnkit.ops

    emit("probe", gnnkit_file=gnnkit.__file__,
         sparse_features=hasattr(gnnkit.ops, "feature_dropout"))


MODES = {"time": run_time, "memory": run_memory, "bandwidth": run_bandwidth, "limit": run_limit,
         "probe": run_probe}


def main(argv: list[str] | None = None) -> int:
    global _events_file, _started
    _started = time.monotonic()
    args = parse_args(argv)
    if args.gnnkit_path:
        use_gnnkit_from(args.gnnkit_path)
    if args.mode == "memory":
        pin_malloc()  # before torch allocates anything; see bench.measure
    with open(args.events, "a") as _events_file:
        try:
            _setup(args)
            MODES[args.mode](args)
        except Exception as error:  # noqa: BLE001 - every failure becomes a result line
            kind, message = failure(error)
            emit("error", kind=kind, message=message)
            traceback.print_exc()
            return 3
    return 0


def entry(argv: list[str], log_path: str) -> None:
    """Process target given to :func:`bench.runner.run_forked`: stdout and stderr go to
    ``log_path``."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.exit(main(argv))


if __name__ == "__main__":
    sys.exit(main())
