"""Neighbour-sampling benchmark: gnnkit.sampling next to PyG's sampler on the same graph and
seed batches, and what trimming saves. Writes a Markdown report.

    python -m bench sampling                 # Slashdot + synthetic 2.4M/62M, 1 and 2 threads
    python -m bench sampling --quick         # Slashdot + a small synthetic graph, few batches
    python -m bench sampling --graphs slashdot                     # Slashdot alone
    python -m bench sampling --pyg-python /path/to/venv/bin/python   # PyG's side from that venv

(``python -m bench.sampling`` is the same command.)

PyG's ``NeighborLoader`` needs ``torch-sparse`` (or ``pyg-lib``); the measurements run in
``--pyg-python`` (default: this interpreter), and PyG's columns read "n/a" with the reason when
it cannot import them. Every measurement runs in a fresh process (``python -m bench.sampling
--worker ...``, started and watched by :func:`bench.runner.run_command`), so memory peaks and
thread settings do not leak from one to the next. Graphs come from :mod:`bench.graphs`.

What is timed, per graph and thread count (medians over ``--batches`` seed batches, the two
libraries called in turn on each batch, so machine noise hits both alike):

* **sampler**: one call that draws the 3-hop neighbourhood of one batch of seeds:
  ``gnnkit.sampling.sample_neighbors(graph, seeds, fanouts, generator=g)`` vs PyG's
  ``NeighborSampler.sample_from_nodes`` (the call ``NeighborLoader`` makes per batch);
* **loader**: one batch of each library's loader, i.e. the sample plus the batch it assembles
  (features ``x[n_id]``, the seeds' labels, the local graph): ``gnnkit.sampling.NeighborLoader``
  vs ``torch_geometric.loader.NeighborLoader`` with ``shuffle=False`` over the same seed order.

Both libraries get the same graph: gnnkit a ``Graph.from_csr`` on the CSR arrays, PyG a
``Data`` whose ``edge_index`` is already sorted by target, with ``is_sorted=True``, so neither
sorts (PyG builds its column pointer once, outside the timed steps).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from . import graphs
from .runner import run_command, run_work

MB = 2**20


# ---------------------------------------------------------------------------------- inputs
def load_graph(spec: dict):
    """(gnnkit Graph, rowptr, col, x, y) of a :mod:`bench.graphs` spec; a store's arrays are
    read through once, so that neither library pays the first touch of their pages."""
    data = graphs.load(spec)
    if spec["kind"] == "store":
        for array in (data.rowptr, data.col, data.x, data.y):
            array.sum()
    return data.graph(), data.rowptr, data.col, data.x, data.y


def seed_batches(num_nodes: int, batch_size: int, count: int) -> list[torch.Tensor]:
    order = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(1))
    return list(order[: batch_size * count].split(batch_size))


def pyg_available() -> str:
    """'' when PyG's sampler can run here, else the reason it cannot."""
    for module in ("torch_geometric", "torch_sparse"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not importable by {sys.executable}"
    try:
        import torch_sparse  # noqa: F401
    except Exception as error:  # noqa: BLE001 (any import failure is reported, not raised)
        return f"import torch_sparse failed: {error}"
    return ""


# ---------------------------------------------------------------------------------- the steps
def gnnkit_steps(graph, x, y, batches, fanouts):
    """(sample step, loader iterator factory) for gnnkit."""
    from gnnkit.sampling import NeighborLoader, sample_neighbors

    generator = torch.Generator().manual_seed(0)
    loader = NeighborLoader(graph, x, y, torch.cat(batches), fanouts, len(batches[0]),
                            shuffle=False)
    return (lambda seeds: sample_neighbors(graph, seeds, fanouts, generator=generator)), loader


def pyg_steps(rowptr, col, x, y, batches, fanouts):
    """(sample step, loader) for PyG on the same graph, given the way PyG is usually given
    one (an ``edge_index``), already sorted by target so that PyG skips its sort."""
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader
    from torch_geometric.sampler import NeighborSampler, NodeSamplerInput

    num_nodes = rowptr.numel() - 1
    target = torch.repeat_interleave(torch.arange(num_nodes), rowptr.diff(),
                                      output_size=col.numel())
    data = Data(x=x, y=y, edge_index=torch.stack([col, target]), num_nodes=num_nodes)
    sampler = NeighborSampler(data, num_neighbors=fanouts, is_sorted=True)
    loader = NeighborLoader(data, num_neighbors=fanouts, input_nodes=torch.cat(batches),
                            batch_size=len(batches[0]), shuffle=False, is_sorted=True)
    return (lambda seeds: sampler.sample_from_nodes(NodeSamplerInput(None, seeds))), loader


def sizes(sample) -> tuple[int, int]:
    """(nodes, edges) of one library's sample."""
    if hasattr(sample, "n_id"):
        return sample.n_id.numel(), sample.e_id.numel()
    return sample.node.numel(), sample.row.numel()


# ---------------------------------------------------------------------------------- workers
def worker_time(spec, threads, batch_size, count, warmup, fanouts, with_pyg) -> dict:
    """Median ms per batch of both libraries, interleaved batch by batch."""
    torch.set_num_threads(threads)
    graph, rowptr, col, x, y = load_graph(spec)
    batches = seed_batches(graph.num_nodes, batch_size, warmup + count)
    libraries = {"gnnkit": gnnkit_steps(graph, x, y, batches, fanouts)}
    if with_pyg:
        libraries["pyg"] = pyg_steps(rowptr, col, x, y, batches, fanouts)
    result = {"num_nodes": graph.num_nodes, "num_edges": graph.num_edges}
    for mode in ("sampler", "loader"):
        times = {name: [] for name in libraries}
        counts = {name: [] for name in libraries}
        iterators = {name: iter(loader) for name, (_, loader) in libraries.items()}
        for k, seeds in enumerate(batches):
            for name, (sample, _) in libraries.items():
                start = time.perf_counter()
                out = sample(seeds) if mode == "sampler" else next(iterators[name])
                elapsed = time.perf_counter() - start
                if k >= warmup:
                    times[name].append(elapsed)
                    counts[name].append(sizes(out) if mode == "sampler" else (0, 0))
        for name in libraries:
            result[f"{name}_{mode}_ms"] = 1000 * statistics.median(times[name])
            if mode == "sampler":
                result[f"{name}_nodes"] = statistics.mean(c[0] for c in counts[name])
                result[f"{name}_edges"] = statistics.mean(c[1] for c in counts[name])
    return result


def worker_memory(spec, threads, batch_size, count, fanouts, library, mode) -> dict:
    """Peak resident memory: the whole process, and what ``count`` batches add on top of the
    loaded graph (kernel high-water mark, see bench/measure.py)."""
    from .measure import PeakMemory, pin_malloc, process_peak_bytes

    pin_malloc()
    torch.set_num_threads(threads)
    graph, rowptr, col, x, y = load_graph(spec)
    batches = seed_batches(graph.num_nodes, batch_size, count)
    if library == "gnnkit":
        sample, loader = gnnkit_steps(graph, x, y, batches, fanouts)
    else:
        sample, loader = pyg_steps(rowptr, col, x, y, batches, fanouts)
    with PeakMemory("cpu") as peak:
        if mode == "sampler":
            for seeds in batches:
                sample(seeds)
        else:
            for _ in loader:
                pass
    return {"added_mb": peak.added / MB, "process_mb": process_peak_bytes("cpu") / MB,
            "method": peak.method}


def worker_trim(spec, threads, batch_size, count, fanouts) -> dict:
    """Rows and edges every layer processes with and without trimming (means over batches),
    and a 2-layer MeanGCN forward + backward on each batch with and without trimming."""
    from gnnkit.nn import MeanGCNConv
    from gnnkit.sampling import sample_neighbors

    torch.set_num_threads(threads)
    graph, _, _, x, _ = load_graph(spec)
    batches = seed_batches(graph.num_nodes, batch_size, count + 2)
    generator = torch.Generator().manual_seed(0)
    result = {}
    for num_layers in (2, 3):
        rows = {"full": [], "trimmed": []}
        for seeds in batches[2:]:
            sample = sample_neighbors(graph, seeds, fanouts[:num_layers], generator=generator)
            rows["full"].append((num_layers * sample.graph.num_nodes,
                                 num_layers * sample.graph.num_edges))
            parts = [sample.trim(layer, num_layers) for layer in range(num_layers)]
            rows["trimmed"].append((sum(p.num_nodes for p in parts),
                                    sum(p.num_edges for p in parts)))
        for kind, values in rows.items():
            result[f"{num_layers}_{kind}_rows"] = statistics.mean(v[0] for v in values)
            result[f"{num_layers}_{kind}_edges"] = statistics.mean(v[1] for v in values)
    torch.manual_seed(0)
    convs = [MeanGCNConv(x.size(1), 256), MeanGCNConv(256, 10)]
    times = {"full": [], "trimmed": []}
    for k, seeds in enumerate(batches):
        sample = sample_neighbors(graph, seeds, fanouts[:2], generator=generator)
        features = x.index_select(0, sample.n_id)
        for kind, spent in times.items():
            start = time.perf_counter()
            h = features
            for layer, conv in enumerate(convs):
                g = sample.trim(layer, 2) if kind == "trimmed" else sample.graph
                h = conv(h[: g.num_nodes], g)
                h = h.relu() if layer == 0 else h
            h[: sample.batch_size].logsumexp(1).sum().backward()
            if k >= 2:
                spent.append(time.perf_counter() - start)
    for kind, values in times.items():
        result[f"gcn_{kind}_ms"] = 1000 * statistics.median(values)
    return result


def run(args, task: dict, env: dict | None = None) -> dict:
    """Run one task in a fresh ``--pyg-python`` process (``env`` added to its environment):
    its result, or ``{"error": reason}``."""
    command = [args.pyg_python, "-m", "bench.sampling", "--worker", json.dumps(task)]
    outcome = run_command(command, timeout_s=args.timeout, mem_limit_gb=args.mem_limit_gb,
                          env=env)
    result = outcome.find("result")
    if result is None:
        return {"error": f"{outcome.status}: {outcome.message}"}
    return {key: value for key, value in result.items() if key != "event"}


def worker_main(task: dict, events: str | None) -> None:
    """One task in this process; its result goes to the ``events`` file."""
    kind = task.pop("task")
    functions = {"time": worker_time, "memory": worker_memory, "trim": worker_trim,
                 "check": lambda: {"reason": pyg_available()}}
    run_work(events, lambda: functions[kind](**task))


# ---------------------------------------------------------------------------------- report
def ratio(slow, fast) -> str:
    numbers = all(isinstance(v, (int, float)) for v in (slow, fast))
    return f"{slow / fast:.2f}x" if numbers and fast else "n/a"


def cell(result: dict, key: str, digits: int = 1) -> str:
    value = result.get(key)
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def render(args, specs, timing, memory, trimming, pyg_reason, argv, started) -> str:
    from .report import cpu_model, git_revision, table

    lines = [
        "# Neighbour sampling: gnnkit vs PyG",
        "",
        f"* date: {started['date']}",
        f"* git commit: {git_revision()}",
        f"* command: `python -m bench.sampling {' '.join(argv)}`",
        (f"* machine: {cpu_model()}, {os.cpu_count()} cores, load average at start "
        f"{started['load']}; **shared with other users "
        "while measured**, so times carry noise (the two libraries alternate batch by batch, "
        "so it hits both alike; the memory numbers do not depend on load)"),
        f"* torch {torch.__version__}; PyG side run by `{args.pyg_python}`"
        + (f" (**not measured**: {pyg_reason})" if pyg_reason else ""),
        (f"* fanouts {args.fanouts}, batch size {args.batch_size}, {args.batches} timed batches "
        f"after {args.warmup} warm-up batches, same seed batches for both libraries"),
        "",
        "## Time per batch (median ms)",
        "",
    ]
    rows = []
    for (name, threads), result in timing.items():
        rows.append([
            name, f"{result.get('num_nodes', 0):,}", f"{result.get('num_edges', 0):,}",
            str(threads),
            cell(result, "gnnkit_sampler_ms", 2), cell(result, "pyg_sampler_ms", 2),
            ratio(result.get("pyg_sampler_ms"), result.get("gnnkit_sampler_ms")),
            cell(result, "gnnkit_loader_ms", 2), cell(result, "pyg_loader_ms", 2),
            ratio(result.get("pyg_loader_ms"), result.get("gnnkit_loader_ms")),
            f"{cell(result, 'gnnkit_nodes', 0)} / {cell(result, 'gnnkit_edges', 0)}",
            f"{cell(result, 'pyg_nodes', 0)} / {cell(result, 'pyg_edges', 0)}",
            result.get("error", ""),
        ])
    lines += table(["graph", "N", "E", "threads", "gnnkit sampler", "PyG sampler",
                    "speed-up", "gnnkit loader", "PyG loader", "speed-up",
                    "gnnkit nodes / edges", "PyG nodes / edges", "error"], rows)
    lines += ["", ("speed-up = PyG ms / gnnkit ms (above 1: gnnkit is faster). Threads: "
              "`torch.set_num_threads`; with `OMP_WAIT_POLICY=PASSIVE` OpenMP threads that "
              "wait sleep instead of spinning, which on a machine whose cores are busy with "
              "other work decides whether a second thread helps or costs. Nodes / edges: "
              "mean size of one sample (the two draw different random samples of the same "
              "law)."), "", "## Peak memory (MB = 2^20 bytes)", "",
              ("`added`: the resident-memory peak while sampling all batches, above the "
              "process's memory with the graph loaded (kernel high-water mark); `process`: "
              "the whole process's peak, graph included. The synthetic graph's arrays are "
              "memory-mapped and read through once before measuring (by both libraries), so "
              "their pages count in `process`, not in `added`."), ""]
    rows = [[name, str(threads), library, mode, cell(result, "added_mb"),
             cell(result, "process_mb"), result.get("error", "")]
            for (name, threads, library, mode), result in memory.items()]
    lines += table(["graph", "threads", "library", "mode", "added MB", "process MB", "error"],
                   rows)
    lines += ["", "## Trimming (gnnkit)", "",
              ("Rows (node states) and edges all layers of an L-layer model process per "
              "batch, summed over layers, without trimming (every layer on the whole "
              "sample) and with `SampledSubgraph.trim` (layer l on the nodes within L - l "
              "hops); fanouts are the first L of the list. Last columns: a 2-layer "
              f"MeanGCNConv model ({graphs.FEATURES} -> 256 -> 10) forward + backward on one "
              "batch, median ms."), ""]
    rows = []
    for name, result in trimming.items():
        for layers in (2, 3):
            rows.append([
                name, str(layers), cell(result, f"{layers}_full_rows", 0),
                cell(result, f"{layers}_trimmed_rows", 0),
                ratio(result.get(f"{layers}_full_rows"), result.get(f"{layers}_trimmed_rows")),
                cell(result, f"{layers}_full_edges", 0), cell(result, f"{layers}_trimmed_edges", 0),
                ratio(result.get(f"{layers}_full_edges"),
                      result.get(f"{layers}_trimmed_edges")),
                cell(result, "gcn_full_ms", 1) if layers == 2 else "",
                cell(result, "gcn_trimmed_ms", 1) if layers == 2 else "",
                result.get("error", ""),
            ])
    lines += table(["graph", "L", "rows, full", "rows, trimmed", "saved", "edges, full",
                    "edges, trimmed", "saved", "GCN ms, full", "GCN ms, trimmed", "error"],
                   rows)
    lines += ["", "Graphs: " + "; ".join(f"`{name}`: {spec['label']}"
                                         for name, spec in specs.items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Time, memory and trimming rows for each graph; write the report."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench sampling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="small synthetic graph (100k nodes, 2M edges), 5 batches")
    parser.add_argument("--graphs", default="slashdot,synthetic",
                        help="comma-separated: slashdot, synthetic (default both)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--fanouts", type=int, nargs="+", default=[15, 10, 5])
    parser.add_argument("--snap", type=Path, default=graphs.SLASHDOT, help="Slashdot edge list")
    parser.add_argument("--data-dir", type=Path, default=graphs.CACHE,
                        help=f"where the synthetic graph's store is cached (default "
                             f"{graphs.CACHE})")
    parser.add_argument("--pyg-python", default=sys.executable,
                        help="interpreter with torch-sparse for PyG's side")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds before a worker is killed (default 3600)")
    parser.add_argument("--mem-limit-gb", type=float, default=22.0,
                        help="RSS cap per worker (default 22)")
    parser.add_argument("--out", type=Path, default=graphs.ROOT / "bench" / "results" /
                        "sampling.md")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker), args.events)
        return
    if args.quick:
        args.batches, args.warmup = 5, 1
    started = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
               "load": ", ".join(f"{v:.2f}" for v in os.getloadavg())}
    chosen = set(args.graphs.split(","))
    specs = {}
    if "slashdot" in chosen:
        if args.snap.is_file():
            specs["slashdot"] = graphs.slashdot_spec(args.snap)
        else:
            print(f"skipping Slashdot: {args.snap} not found", file=sys.stderr)
    if "synthetic" in chosen:
        nodes, edges = (100_000, 2_000_000) if args.quick else graphs.PRODUCTS
        specs["synthetic"] = graphs.synthetic_spec(nodes, edges, data_dir=args.data_dir)
    checked = run(args, {"task": "check"})  # '' when PyG's sampler can run there
    pyg_reason = checked.get("reason", checked.get("error"))
    common = {"batch_size": args.batch_size, "fanouts": args.fanouts}
    timing, memory, trimming = {}, {}, {}
    for name, spec in specs.items():
        for threads, label, env in thread_settings(args.threads):
            print(f"{name}, {label}: timing", file=sys.stderr, flush=True)
            timing[name, label] = run(args, {
                "task": "time", "spec": spec, "threads": threads, "count": args.batches,
                "warmup": args.warmup, "with_pyg": not pyg_reason, **common}, env)
        libraries = ["gnnkit"] + ([] if pyg_reason else ["pyg"])
        for library in libraries:
            for mode in ("sampler", "loader"):
                print(f"{name}: memory of {library} {mode}", file=sys.stderr, flush=True)
                memory[name, 1, library, mode] = run(args, {
                    "task": "memory", "spec": spec, "threads": 1, "count": args.batches,
                    "library": library, "mode": mode, **common})
        print(f"{name}: trimming", file=sys.stderr, flush=True)
        trimming[name] = run(args, {
            "task": "trim", "spec": spec, "threads": 1, "count": args.batches, **common})
    text = render(args, specs, timing, memory, trimming, pyg_reason, argv, started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


def thread_settings(counts: list[int]):
    """(threads, label, extra environment) to time: each count as it is, and each count
    above 1 again with OpenMP's idle threads sleeping instead of spinning
    (``OMP_WAIT_POLICY=PASSIVE``), which matters on a machine whose cores are busy."""
    for threads in counts:
        yield threads, str(threads), {}
        if threads > 1:
            yield threads, f"{threads}, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}


if __name__ == "__main__":
    main()
