"""Mini-batch training benchmark: one epoch of 2-layer mean-GCN and GAT, 1 process against 2
under torchrun, and the largest synthetic graph that trains under a memory cap. Writes a
Markdown report (default ``bench/results/training.md``).

    python -m bench training                 # epochs, torchrun, largest graph
    python -m bench training --quick         # small graphs: checks that the script works
    python -m bench training --parts epoch,torchrun --limit-nodes 3.2M,12.8M

(``python -m bench.training`` is the same command.) Every measurement runs in a fresh process
(``python -m bench.training --worker JSON``), started and watched by
:func:`bench.runner.run_command`: its resident memory (RSS of the process and its children,
polled every 50 ms, file-backed pages of the memory-mapped store included) is recorded, and it
is killed when it goes over ``--mem-limit-gb``.

What one "epoch" is here (all library code, :mod:`gnnkit.train`): the training nodes in
shuffled batches of ``--batch-size`` with fanouts ``--fanouts`` (one Adam step per batch,
:class:`gnnkit.train.mini_batch.MiniBatches`), then the exact evaluation: layer-wise inference
over the whole graph in chunks of 2^20 target nodes (:meth:`NodeClassifier.inference`).
Both are timed separately. Graphs (:mod:`bench.graphs`): Slashdot (SNAP, 82k nodes, 948k
directed edges) with random features and labels, and the seeded synthetic graph of
:mod:`gnnkit.data.synthetic`; synthetic graphs are generated once into a store under ``--data-dir``
and memory-mapped from there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from . import graphs
from .runner import run_command, run_work

GB = 2**30


# ------------------------------------------------------------------------------ worker side
def worker(task: dict) -> dict | None:
    """Train as ``task`` says; return timings (under torchrun: on the main process; the others
    return None)."""
    import torch

    from gnnkit import distributed
    from gnnkit.models import build_model
    from gnnkit.train import TrainConfig
    from gnnkit.train.evaluate import full_graph_logits, loss_and_accuracy
    from gnnkit.train.mini_batch import MiniBatches

    torch.set_num_threads(task["threads"])
    with distributed.process_group("cpu"):
        start = time.perf_counter()
        data = graphs.load(task["graph"])
        graph = data.graph()
        graph.csr  # noqa: B018 (built now, not inside the timed epoch)
        prepared = time.perf_counter() - start
        config = TrainConfig(task["model"], batch_size=task["batch_size"],
                             fanouts=tuple(task["fanouts"]), progress=False,
                             normalize_features=False)
        torch.manual_seed(0)
        model = build_model(config.model, data.num_features, data.num_classes)
        trained = distributed.wrap(model)
        optimizer = torch.optim.Adam(trained.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        train_mask, steps = data.train_mask, task.get("steps")
        if steps is not None:  # a fixed number of steps: the first training nodes only
            kept = train_mask.nonzero().view(-1)[
                : steps * config.batch_size * distributed.world_size()]
            train_mask = torch.zeros_like(train_mask).index_fill_(0, kept, True)
        batches = MiniBatches(graph, train_mask, data.x, data.y, config, seed=0)
        start = time.perf_counter()
        loss = batches.epoch(trained, optimizer, 1)
        epoch_seconds = time.perf_counter() - start
        result = {"nodes": graph.num_nodes, "edges": graph.num_edges, "steps": len(batches.loader),
                  "prepare_s": prepared, "epoch_s": epoch_seconds, "loss": loss,
                  "processes": distributed.world_size()}
        if task.get("evaluate", True):
            start = time.perf_counter()
            logits = full_graph_logits(model, data.x, graph, config.chunk_size)
            result["eval_s"] = time.perf_counter() - start
            result["val_accuracy"] = loss_and_accuracy(logits, data.y, data.val_mask)[1]
        main = distributed.is_main()
    return result if main else None


# ------------------------------------------------------------------------------ parent side
def run(task: dict, mem_limit_gb: float, timeout_s: float, processes: int = 0) -> dict:
    """Run one worker (under torchrun with ``processes`` > 0); its result with ``status``,
    ``peak_rss_gb`` (all its processes) and ``wall_s``."""
    command = [sys.executable, "-m", "bench.training", "--worker", json.dumps(task)]
    if processes:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                   str(processes), "--master_addr", "127.0.0.1", "--master_port",
                   str(_free_port()), *command[1:]]
    outcome = run_command(command, timeout_s=timeout_s, mem_limit_gb=mem_limit_gb,
                          env={"OMP_NUM_THREADS": str(task["threads"])}, poll_s=0.05)
    if outcome.status != "ok":
        print(f"  {outcome.status}: {outcome.message}", file=sys.stderr)
    result = outcome.find("result") or {}
    return {**result, "status": outcome.status, "peak_rss_gb": outcome.peak_rss_mb / 1024,
            "wall_s": outcome.seconds}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fmt(value, digits=1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small graphs, to check the script")
    parser.add_argument("--parts", default="epoch,torchrun,limit",
                        help="comma-separated: epoch, torchrun, limit (default all)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--fanouts", default="10,5")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--limit-nodes", default="3.2M,6.4M,12.8M,25.6M,32M",
                        help="synthetic sizes tried for the largest graph (E = 10 N), in order; "
                        "the search stops at the first that fails")
    parser.add_argument("--limit-steps", type=int, default=20,
                        help="training steps per size in the largest-graph search")
    parser.add_argument("--limit-evaluate", action="store_true",
                        help="also run the exact evaluation in the largest-graph search (its "
                        "layer outputs take N x 64 floats, 8 GB at 32M nodes)")
    parser.add_argument("--mem-limit-gb", type=float, default=22.0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker")
    parser.add_argument("--data-dir", type=Path, default=graphs.CACHE,
                        help=f"where synthetic graphs' stores are cached (default {graphs.CACHE})")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the generated largest-graph stores")
    parser.add_argument("--output", type=Path, default=graphs.ROOT / "bench/results/training.md")
    args = parser.parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        run_work(args.events, lambda: worker(task))
        return

    args.data_dir.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    fanouts = [int(f) for f in args.fanouts.split(",")]
    base = {"batch_size": args.batch_size, "fanouts": fanouts, "threads": args.threads}
    products = (100_000, 2_000_000) if args.quick else graphs.PRODUCTS
    specs = {f"synthetic {products[0]:,} / {products[1]:,}, 100 features":
             graphs.synthetic_spec(*products, 100, args.data_dir)}
    if graphs.SLASHDOT.is_file():
        specs = {"Slashdot (SNAP), random features (100) and labels":
                 graphs.slashdot_spec(graphs.SLASHDOT, 100), **specs}
    lines = _header(args, argv)
    say = _printer(lines)

    if "epoch" in parts:
        say("## One mini-batch epoch, one process\n")
        say("| graph | model | steps | train epoch s | exact evaluation s | peak RSS GB |")
        say("|---|---|---:|---:|---:|---:|")
        for label, spec in specs.items():
            for model in ("mean-gcn", "gat"):
                r = run({**base, "graph": spec, "model": model}, args.mem_limit_gb, args.timeout)
                say(f"| {label} | {model} | {r.get('steps', '-')} | {_fmt(r.get('epoch_s'))} | "
                    f"{_fmt(r.get('eval_s'))} | {r['peak_rss_gb']:.2f} {_status(r)}|")
        say("")

    if "torchrun" in parts:
        label, spec = list(specs.items())[-1]
        say(f"## torchrun: 1 process against 2 ({label}, mean-gcn, {args.threads} thread(s) "
            "per process, the training epoch without evaluation)\n")
        say("| processes | steps per process | train epoch s | speed-up | peak RSS GB, all "
            "processes |")
        say("|---:|---:|---:|---:|---:|")
        first = None
        for processes in (1, 2):
            r = run({**base, "graph": spec, "model": "mean-gcn", "evaluate": False},
                    args.mem_limit_gb, args.timeout, processes=processes)
            first = first or r.get("epoch_s")
            speedup = first / r["epoch_s"] if r.get("epoch_s") else None
            say(f"| {processes} | {r.get('steps', '-')} | {_fmt(r.get('epoch_s'))} | "
                f"{_fmt(speedup, 2)} | {r['peak_rss_gb']:.2f} {_status(r)}|")
        say("")

    if "limit" in parts:
        sizes = ["50k", "100k"] if args.quick else args.limit_nodes.split(",")
        evaluation = " + the exact evaluation" if args.limit_evaluate else " (no evaluation)"
        say(f"## Largest synthetic graph (E = 10 N, 32 features, GAT, {args.limit_steps} steps "
            f"of {args.batch_size}{evaluation}, {args.mem_limit_gb:g} GB cap)\n")
        say("| nodes | edges | status | train steps s | exact evaluation s | peak RSS GB |")
        say("|---:|---:|---|---:|---:|---:|")
        for size in sizes:
            nodes = graphs.count(size)
            spec = graphs.synthetic_spec(nodes, 10 * nodes, 32, args.data_dir)
            r = run({**base, "graph": spec, "model": "gat",
                     "steps": args.limit_steps, "evaluate": args.limit_evaluate},
                    args.mem_limit_gb, args.timeout)
            say(f"| {nodes:,} | {10 * nodes:,} | {r['status']} | {_fmt(r.get('epoch_s'))} | "
                f"{_fmt(r.get('eval_s'))} | {r['peak_rss_gb']:.2f} |")
            if not args.keep_data:
                shutil.rmtree(spec["path"])
            if r["status"] != "ok":
                break
        say("")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"report written to {args.output}", file=sys.stderr)


def _status(result: dict) -> str:
    return "" if result["status"] == "ok" else f"({result['status']}) "


def _header(args, argv) -> list[str]:
    import torch

    from .report import git_commit

    commit, dirty = git_commit()
    command = " ".join(["python -m bench.training", *(argv if argv is not None else sys.argv[1:])])
    return [
        "# Mini-batch training benchmark", "",
        f"- command: `{command}`",
        (f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}; "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}"),
        (f"- machine: {os.cpu_count()} logical cores, shared with other users (load average at "
        f"start {os.getloadavg()[0]:.1f}); torch {torch.__version__}, {args.threads} thread(s) "
        "per process"),
        (f"- batch size {args.batch_size}, fanouts {args.fanouts}; memory cap "
        f"{args.mem_limit_gb:g} GB; peak RSS includes the pages of the memory-mapped store "
        "that were read"), "",
    ]


def _printer(lines: list[str]):
    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)
    return say


if __name__ == "__main__":
    main()
