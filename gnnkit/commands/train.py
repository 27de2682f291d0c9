"""``gnnkit train``: train a two-layer GNN for node classification over several seeds; with
``--task graph`` a graph classifier by k-fold cross-validation, with ``--task link`` a link
predictor.

    gnnkit train [--task node|link] [--dataset karate|cora|citeseer|pubmed [--root DIR] | --store DIR]
                 [--model mean-gcn|median-gcn|gat] [--epochs N] [--seeds K] [--patience P]
                 [--hidden H] [--batch-size B [--fanouts 10,5]] [--chunk-size C]
                 [--device cpu|cuda|cuda:I|mps] [--threads T] [--jobs J] [--dist-timeout S]
                 [--no-progress]
    gnnkit train --task graph --tu NAME --root DIR [--model gin|mean-gcn] [--folds K] ...

Prints the test accuracy of every seed and ``test accuracy: MEAN +- STD over K seeds``. All
the training logic lives in :mod:`gnnkit.train`; this module only turns arguments into a
:class:`gnnkit.train.TrainConfig` and prints. Under ``torchrun`` the processes train together
with DistributedDataParallel (:mod:`gnnkit.distributed`) and rank 0 prints. Nothing is
written to disk.

Exit status: 0 success; 2 unusable input: a bad flag value, a dataset that cannot be trained on
(an empty split, NaN or infinite features, ...) or a run whose loss became NaN or infinite (one
line on stderr, from rank 0 under torchrun); 1 a process of a torchrun group failed (a peer
died or stalled past --dist-timeout; one line from each failing process) or a worker process
of ``--jobs`` died (one line); 130 Ctrl-C (one line; the workers are stopped).
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import time
from pathlib import Path

from .. import distributed
from .._validate import check_int
from ..data import load_dataset, read_tu, store
from ..models import MODELS
from ..sampling import check_fanouts
from ..train import (
    TrainConfig,
    graph_task,
    link_task,
    summarize,
    train_seeds,
)
from ..train.config import MINIMUM, check_device, check_setting, jobs_for, resolve_threads
from ..train.run import check_processes
from . import UsageError

NAME = "train"
TASKS = ("node", "graph", "link")
DATASETS = ("karate", "cora", "citeseer", "pubmed")
PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="train a GNN node classifier (mean-GCN, median-GCN, GAT) over several seeds",
        description="Train a two-layer GNN, full batch or mini-batch, with best-validation "
        "selection and early stopping, once per seed, and print the test accuracy of each "
        "seed and their mean +- standard deviation. Under torchrun the processes train "
        "together (DistributedDataParallel).",
    )
    parser.add_argument("--task", default="node", type=str.lower, choices=TASKS,
                        help="node classification (default), graph classification (--tu, "
                        "k-fold cross-validation) or link prediction (test AUC and Hits@K)")
    parser.add_argument("--tu", metavar="NAME",
                        help="--task graph: the TU dataset NAME under --root (one-hot degree "
                        f"features capped at {graph_task.DEFAULT_MAX_DEGREE} are added)")
    parser.add_argument("--folds", type=int, metavar="K",
                        help="--task graph: stratified folds (default 10)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", type=str.lower, choices=DATASETS,
                        help="karate (built in, default) or a Planetoid graph read from --root")
    source.add_argument("--store", metavar="DIR",
                        help="train on a graph saved by gnnkit.data.store.save (CSR, features, "
                        "labels, split); memory-mapped, so the processes of one machine share "
                        "one copy; features are used as stored (not row-normalised; float64 "
                        "or float16 features are converted to float32 for training)")
    parser.add_argument("--root", metavar="DIR",
                        help="folder holding <Name>/raw/ with the Planetoid raw files (needed "
                        "for cora, citeseer, pubmed; only read)")
    parser.add_argument("--model", type=str.lower, choices=(*MODELS, "gin"),
                        help="model to train (default mean-gcn; --task graph: gin or mean-gcn, "
                        "default gin)")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="maximum epochs per seed (default: the model's, "
                        + _defaults("epochs") + ")")
    parser.add_argument("--seeds", type=int, metavar="K",
                        help="train with seeds 0..K-1 (default 10; 1 for --task graph and "
                        "link)")
    parser.add_argument("--patience", type=int, metavar="P",
                        help="stop after P epochs without a better validation accuracy or loss; "
                        "0 never stops early (default: the model's, " + _defaults("patience")
                        + ")")
    parser.add_argument("--hidden", type=int, metavar="H",
                        help="hidden width (channels per head for gat; default: "
                        + _defaults("hidden") + ")")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help="train mini-batch on B training nodes per step (default: full "
                        "batch)")
    parser.add_argument("--fanouts", type=_fanouts, metavar="F1,F2",
                        help="with --batch-size: neighbours sampled per node in hop 1, hop 2 "
                        "(-1: all; default -1,-1)")
    parser.add_argument("--chunk-size", type=int, default=1 << 20, metavar="C",
                        help="with --batch-size: target nodes per chunk of the exact "
                        "layer-wise evaluation (default 1048576; smaller uses less memory)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), cuda, cuda:I or mps; under torchrun each process "
                        "takes the GPU of its LOCAL_RANK")
    parser.add_argument("--threads", type=int, metavar="T",
                        help="CPU threads for torch while training (default: 1 for graphs "
                        "under 1M edges, else torch's choice)")
    parser.add_argument("--jobs", type=int, metavar="J",
                        help="node task: seeds trained at once, each in its own process "
                        "(default: one per CPU core when a run uses one thread, else 1; "
                        "always 1 on a GPU or under torchrun)")
    parser.add_argument("--dist-timeout", type=float, default=distributed.DEFAULT_TIMEOUT,
                        metavar="S",
                        help="under torchrun: seconds a process waits for the others in a "
                        "collective operation before it stops with an error (default "
                        f"{distributed.DEFAULT_TIMEOUT:g}); a stalled process stops the run "
                        "after about this long")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bars (shown only on a terminal anyway)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Train as ``args`` say; a ``ValueError``/``TypeError`` of gnnkit (an unusable flag,
    dataset or run) becomes a :class:`UsageError` with the same message (one line, exit 2)."""
    try:
        _check_task(args)
        if args.task == "graph":
            return _train_graph(args)
        return _train_link(args) if args.task == "link" else _train(args)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


def _train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        args.model, epochs=args.epochs, patience=args.patience, hidden=args.hidden,
        batch_size=args.batch_size, fanouts=_check_flags(args), chunk_size=args.chunk_size,
        device=args.device, progress=False if args.no_progress else None,
        normalize_features=False if args.store is not None else None, threads=args.threads,
    )
    # before joining: a process that fails while the others connect leaves them a gloo error
    check_processes(config, distributed.launched_world_size())
    dataset = _load(args)
    graph = dataset.graph()

    with distributed.process_group(config.device, args.dist_timeout) as device:
        config = dataclasses.replace(config, device=str(device))
        say = print if distributed.is_main() else _silent
        say(_describe(dataset, graph))
        jobs = _jobs(args, config, graph.num_edges)
        say(config.describe() + _processes() + (f"; {jobs} seeds at a time" if jobs > 1 else ""))
        accuracies = []
        start = time.perf_counter()
        for result in train_seeds(dataset, config, range(args.seeds), graph=graph, jobs=jobs):
            accuracies.append(result.test_accuracy)
            say(f"seed {result.seed}: test accuracy {result.test_accuracy:.4f} (val "
                f"{result.val_accuracy:.4f} at epoch {result.best_epoch}, {result.epochs_run} "
                f"epochs, {result.seconds:.1f} s)", flush=True)
        mean, std = summarize(accuracies)
        say(f"wall time: {time.perf_counter() - start:.1f} s")
        say(f"test accuracy: {mean:.4f} +- {std:.4f} over {args.seeds} "
            f"seed{'s' if args.seeds > 1 else ''}")
    return 0


def _check_task(args: argparse.Namespace) -> None:
    """Flags of another task refused by name; the per-task defaults filled in."""
    foreign = {"node": ("--tu", "--folds"), "link": ("--tu", "--folds", "--jobs"),
               "graph": ("--dataset", "--store", "--fanouts", "--jobs")}[args.task]
    for flag in foreign:
        if getattr(args, flag[2:]) is not None:
            raise ValueError(f"{flag} does not apply to --task {args.task}.")
    if args.task != "graph" and args.model == "gin":
        raise ValueError(f"--model gin is a graph classifier; --task {args.task} trains one of "
                         f"{', '.join(MODELS)}.")
    if args.task == "graph" and args.model not in (None, *graph_task.CONVS):
        raise ValueError(f"--model {args.model}: --task graph trains one of "
                         f"{', '.join(graph_task.CONVS)}.")
    args.model = args.model or ("gin" if args.task == "graph" else "mean-gcn")
    args.seeds = args.seeds if args.seeds is not None else 10 if args.task == "node" else 1
    args.dataset = args.dataset or "karate"


def _train_graph(args: argparse.Namespace) -> int:
    """``--task graph``: k-fold cross-validation on a TU dataset, once per seed."""
    _check_flags(args)
    folds = check_int(10 if args.folds is None else args.folds, "--folds", low=2)
    if args.tu is None or args.root is None:
        raise ValueError("--task graph needs --tu NAME and --root DIR (the folder holding "
                         "NAME/NAME_A.txt, ...).")
    defaults = graph_task.GraphTrainConfig()
    config = graph_task.GraphTrainConfig(
        conv=args.model, epochs=args.epochs or defaults.epochs,
        patience=defaults.patience if args.patience is None else args.patience,
        hidden=args.hidden or defaults.hidden, batch_size=args.batch_size or defaults.batch_size,
        device=args.device, progress=False if args.no_progress else None, threads=args.threads)
    try:
        data = read_tu(args.root, args.tu, degree_features=graph_task.DEFAULT_MAX_DEGREE)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    with distributed.process_group(config.device, args.dist_timeout) as device:
        config = dataclasses.replace(config, device=str(device))
        say = print if distributed.is_main() else _silent
        say(f"{data.name}: {len(data)} graphs, {data.x.shape[0]} nodes, {data.num_classes} "
            f"classes; {data.num_node_features} node features (one-hot degree capped at "
            f"{graph_task.DEFAULT_MAX_DEGREE})")
        say(config.describe() + _processes())
        accuracies = []
        for seed in range(args.seeds):
            result = graph_task.cross_validate(data, config, folds=folds, seed=seed)
            for fold in result.folds:
                say(f"fold {fold.fold}: test accuracy {fold.test_accuracy:.4f} (val "
                    f"{fold.val_accuracy:.4f} at epoch {fold.best_epoch}, {fold.seconds:.1f} s)",
                    flush=True)
            accuracies += result.accuracies
            say(f"seed {seed}: test accuracy {result.mean:.4f} +- {result.std:.4f}")
        mean, std = summarize(accuracies)
        say(f"test accuracy: {mean:.4f} +- {std:.4f} over {folds} folds x {args.seeds} "
            f"seed{'s' if args.seeds > 1 else ''} (stratified; Errica et al. protocol)")
    return 0


def _train_link(args: argparse.Namespace) -> int:
    """``--task link``: link prediction once per seed; test AUC and Hits@K."""
    config = TrainConfig(
        args.model, epochs=args.epochs, patience=args.patience, hidden=args.hidden,
        batch_size=args.batch_size, fanouts=_check_flags(args), chunk_size=args.chunk_size,
        device=args.device, progress=False if args.no_progress else None,
        normalize_features=False if args.store is not None else None, threads=args.threads)
    dataset = _load(args)
    settings = link_task.LinkSettings()
    with distributed.process_group(config.device, args.dist_timeout) as device:
        config = dataclasses.replace(config, device=str(device))
        say = print if distributed.is_main() else _silent
        say(f"{dataset.name}: link prediction, {settings.val:g} / {settings.test:g} of the "
            "edges held out for validation / test")
        say(config.describe() + _processes())
        aucs, hits = [], []
        for seed in range(args.seeds):
            result = link_task.train_link(dataset, config, seed, link=settings)
            aucs.append(result.test_auc)
            hits.append(result.test_hits)
            say(f"seed {seed}: test AUC {result.test_auc:.4f}, Hits@{settings.hits_k} "
                f"{result.test_hits:.4f} (val AUC {result.val_auc:.4f} at epoch "
                f"{result.best_epoch}, {result.seconds:.1f} s)", flush=True)
        (auc, auc_std), (hit, hit_std) = summarize(aucs), summarize(hits)
        say(f"test AUC: {auc:.4f} +- {auc_std:.4f}, Hits@{settings.hits_k}: {hit:.4f} +- "
            f"{hit_std:.4f} over {args.seeds} seed{'s' if args.seeds > 1 else ''}")
    return 0


def _check_flags(args: argparse.Namespace) -> tuple[int, int] | None:
    """Check the flags by the rules :class:`TrainConfig` applies to its settings, naming the
    flags (``--batch-size`` rather than ``batch_size``); return the checked fanouts."""
    check_int(args.seeds, "--seeds", low=1)
    if args.threads is not None:
        check_int(args.threads, "--threads", low=1)
    distributed.check_timeout(args.dist_timeout, "--dist-timeout")
    for name in MINIMUM:
        if getattr(args, name) is not None:
            check_setting(name, getattr(args, name), "--" + name.replace("_", "-"))
    check_device(args.device, "--device")
    if args.fanouts is None:
        return None
    layers = MODELS[args.model].num_layers  # the graph task refused --fanouts already
    return tuple(check_fanouts(args.fanouts, "--fanouts", hops=layers, smallest=1))


def _defaults(name: str) -> str:
    return ", ".join(f"{model} {getattr(spec, name)}" for model, spec in MODELS.items())


def _fanouts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of ints such as 10,5"
        ) from None


def _describe(dataset, graph) -> str:
    return (
        f"{dataset.name}: {dataset.num_nodes} nodes, {graph.num_edges} directed edges, "
        f"{dataset.num_features} features, {dataset.num_classes} classes; "
        f"{int(dataset.train_mask.sum())} train / {int(dataset.val_mask.sum())} val / "
        f"{int(dataset.test_mask.sum())} test nodes"
    )


def _jobs(args: argparse.Namespace, config: TrainConfig, num_edges: int) -> int:
    """``--jobs``, or by default :func:`jobs_for` the run's threads on the CPU (1 on another
    device or under torchrun)."""
    if args.jobs is not None:
        return check_int(args.jobs, "--jobs", low=1)
    if config.device != "cpu" or distributed.world_size() > 1:
        return 1
    return jobs_for(resolve_threads(config.threads, num_edges), args.seeds)


def _processes() -> str:
    count = distributed.world_size()
    return f"; {count} processes (DistributedDataParallel)" if count > 1 else ""


def _silent(*args, **kwargs) -> None:
    pass


def _load(args):
    if args.store is not None:
        try:
            return store.load(args.store)
        except FileNotFoundError as error:
            raise UsageError(str(error)) from None
    if args.dataset == "karate":
        return load_dataset("karate")
    name = PLANETOID[args.dataset]
    if args.root is None:
        raise UsageError(
            f"--dataset {args.dataset} needs --root DIR, a folder containing {name}/raw/ "
            "with the Planetoid raw files."
        )
    if not Path(args.root).is_dir():
        raise UsageError(f"--root {args.root!r} is not a folder.")
    try:
        return load_dataset(args.dataset, args.root)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    except (OSError, EOFError, pickle.UnpicklingError, IndexError, KeyError) as error:
        raise UsageError(
            f"cannot read the {name} files under {args.root!r}: {type(error).__name__}: {error}"
        ) from None
