"""``gnnkit train``: train a two-layer GNN for node classification over several seeds.

    gnnkit train [--dataset karate|cora] [--root DIR] [--model mean-gcn|median-gcn|gat]
                 [--epochs N] [--seeds K] [--patience P] [--hidden H] [--threads T]
                 [--no-progress]

Trains full batch, keeps the weights of the best validation epoch, stops early after
``--patience`` epochs without improvement, and prints the test accuracy of every seed and
``test accuracy: MEAN +- STD over K seeds`` (sample standard deviation). Karate (the default)
is built in and takes seconds; ``--dataset cora`` reads the Planetoid raw files from
``--root DIR/Cora/raw/`` and writes nothing there. Exit status: 0 success, 2 unusable input
(one line on stderr).
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import torch

from ..datasets import load_dataset
from ..graph import Graph
from ..models import MODELS
from ..train import summarize, train_node_classifier
from . import UsageError

NAME = "train"
DATASETS = ("karate", "cora", "citeseer", "pubmed")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="train a GNN node classifier (mean-GCN, median-GCN, GAT) over several seeds",
        description="Train a two-layer GNN full batch with best-validation selection and early "
        "stopping, once per seed, and print the test accuracy of each seed and their mean +- "
        "standard deviation.",
    )
    parser.add_argument(
        "--dataset", default="karate", type=str.lower, choices=DATASETS,
        help="karate (built in, default) or a Planetoid graph read from --root",
    )
    parser.add_argument(
        "--root", metavar="DIR",
        help="folder holding <Name>/raw/ with the Planetoid raw files (needed for cora, "
        "citeseer, pubmed; only read)",
    )
    parser.add_argument(
        "--model", default="mean-gcn", type=str.lower, choices=tuple(MODELS),
        help="model to train (default mean-gcn)",
    )
    parser.add_argument(
        "--epochs", type=int, metavar="N",
        help="maximum epochs per seed (default: the model's, "
        + ", ".join(f"{name} {spec.epochs}" for name, spec in MODELS.items()) + ")",
    )
    parser.add_argument("--seeds", type=int, default=10, metavar="K",
                        help="train with seeds 0..K-1 (default 10)")
    parser.add_argument(
        "--patience", type=int, metavar="P",
        help="stop after P epochs without a better validation accuracy or loss; 0 never stops "
        "early (default: the model's, "
        + ", ".join(f"{name} {spec.patience}" for name, spec in MODELS.items()) + ")",
    )
    parser.add_argument(
        "--hidden", type=int, metavar="H",
        help="hidden width (channels per head for gat; default: "
        + ", ".join(f"{name} {spec.hidden}" for name, spec in MODELS.items()) + ")",
    )
    parser.add_argument(
        "--threads", type=int, metavar="T",
        help="CPU threads for torch (default: torch's choice; 1 is often fastest on a small, "
        "busy machine)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    _check_numbers(args)
    dataset = _load(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    spec = MODELS[args.model]
    epochs = spec.epochs if args.epochs is None else args.epochs
    patience = spec.patience if args.patience is None else args.patience
    hidden = spec.hidden if args.hidden is None else args.hidden
    print(
        f"{dataset.name}: {dataset.num_nodes} nodes, {dataset.edge_index.size(1) // 2} edges, "
        f"{dataset.num_features} features, {dataset.num_classes} classes; "
        f"{int(dataset.train_mask.sum())} train / {int(dataset.val_mask.sum())} val / "
        f"{int(dataset.test_mask.sum())} test nodes"
    )
    print(
        f"model {spec.name} (hidden {hidden}, dropout {spec.dropout}); Adam lr {spec.lr}, "
        f"weight decay {spec.weight_decay}; up to {epochs} epochs, patience {patience}"
    )
    graph = Graph(dataset.edge_index, dataset.num_nodes)
    accuracies = []
    start = time.perf_counter()
    for seed in range(args.seeds):
        result = train_node_classifier(
            dataset, spec.name, epochs=epochs, seed=seed, patience=patience, hidden=hidden,
            graph=graph, progress=not args.no_progress,
        )
        accuracies.append(result.test_accuracy)
        print(
            f"seed {seed}: test accuracy {result.test_accuracy:.4f} (val {result.val_accuracy:.4f}"
            f" at epoch {result.best_epoch}, {result.epochs_run} epochs, "
            f"{result.seconds:.1f} s)", flush=True,
        )
    mean, std = summarize(accuracies)
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    seeds = f"{args.seeds} seed{'s' if args.seeds > 1 else ''}"
    print(f"test accuracy: {mean:.4f} +- {std:.4f} over {seeds}")
    return 0


def _check_numbers(args) -> None:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}.")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}.")
    if args.patience is not None and args.patience < 0:
        raise UsageError(f"--patience must be >= 0, got {args.patience}.")
    if args.hidden is not None and args.hidden < 1:
        raise UsageError(f"--hidden must be >= 1, got {args.hidden}.")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}.")


def _load(args):
    if args.dataset == "karate":
        return load_dataset("karate")
    if args.root is None:
        raise UsageError(
            f"--dataset {args.dataset} needs --root DIR, a folder containing "
            f"{_planetoid_name(args.dataset)}/raw/ with the Planetoid raw files."
        )
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"--root {args.root!r} is not a folder.")
    try:
        return load_dataset(args.dataset, root)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None
    except (OSError, EOFError, pickle.UnpicklingError, IndexError, KeyError) as error:
        raise UsageError(
            f"cannot read the {_planetoid_name(args.dataset)} files under {args.root!r}: "
            f"{type(error).__name__}: {error}"
        ) from None


def _planetoid_name(key: str) -> str:
    return {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}[key]
