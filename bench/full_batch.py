"""``gnnkit train``'s full-batch epoch: each split on its receptive field, against the whole
graph. Writes a Markdown report (default ``bench/results/full-batch.md``).

    python -m bench full-batch --cora-root ../shared/datasets/planetoid
    python -m bench full-batch --quick       # karate only, 3 rounds: checks the script

One epoch as :func:`gnnkit.train.train` runs it: a training step (forward in training mode,
cross-entropy on the training nodes, backward, Adam step) and the validation loss and
accuracy in evaluation mode. **fields**: both computed on the receptive field of their nodes,
cut once (:func:`gnnkit.train.receptive_field.labelled_nodes`, at the default threshold);
**whole**: on the whole graph, as before. Two copies of the same model and optimiser, the two
ways interleaved round by round in one process, median milliseconds over the rounds. The
rows: Cora (standard split, sparse x) for mean-GCN, median-GCN and GAT, and a 100k-node /
1M-edge synthetic graph (10% training, 10% validation nodes) where the fields reach most of
the graph, so the threshold keeps the whole graph for both ("share" is the field's work
against the whole graph's). The ratio against PyG's epoch is in ``python -m bench --epochs``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _datasets(args):
    from gnnkit.data import synthetic_graph
    from gnnkit.data.datasets import load_dataset

    if args.quick:
        return [("karate", load_dataset("karate"))]
    return [("Cora", load_dataset("cora", args.cora_root)),
            ("synthetic 100k / 1M", synthetic_graph(100_000, 1_000_000, seed=0))]


def _share(nodes, graph, num_layers: int) -> float:
    """The field's work (nodes plus edges over the layers) against the whole graph's."""
    if not isinstance(nodes.graph, list):
        return 1.0
    work = sum(g.num_nodes + g.num_edges for g in nodes.graph)
    return work / (num_layers * (graph.num_nodes + graph.num_edges))


def measure(dataset, model_name: str, rounds: int) -> dict:
    """Median ms of a training step and a validation pass, fields against whole graph."""
    import torch
    import torch.nn.functional as F

    from gnnkit.train import TrainConfig
    from gnnkit.train.data import TrainingData
    from gnnkit.train.evaluate import split_loss_and_accuracy
    from gnnkit.train.receptive_field import LabelledNodes, labelled_nodes
    from gnnkit.train.run import model_for

    config = TrainConfig(model_name, progress=False)
    data = TrainingData.on_device(dataset, dataset.graph(), config.normalize_features,
                                  torch.device("cpu"), sparse_features=True)
    torch.manual_seed(0)
    model = model_for(config, dataset.num_features, dataset.num_classes, torch.device("cpu"))
    ways = {}
    for way in ("fields", "whole"):
        copy_ = copy.deepcopy(model)
        optimizer = torch.optim.Adam(copy_.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        if way == "fields":
            train, val = (labelled_nodes(data.graph, data.x, data.y, mask, copy_.num_layers)
                          for mask in (data.train_mask, data.val_mask))
        else:
            train, val = (LabelledNodes(data.x, data.graph, mask, data.y[mask])
                          for mask in (data.train_mask, data.val_mask))
        ways[way] = (copy_, optimizer, train, val)

    def step(model, optimizer, train):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(train.logits(model), train.y).backward()
        optimizer.step()

    times = {(way, part): [] for way in ways for part in ("train", "eval")}
    for _ in range(rounds + 1):  # the first round warms the caches up and is dropped
        for way, (model_, optimizer, train, val) in ways.items():
            start = time.perf_counter()
            step(model_, optimizer, train)
            middle = time.perf_counter()
            split_loss_and_accuracy(model_, val)
            end = time.perf_counter()
            times[way, "train"].append(middle - start)
            times[way, "eval"].append(end - middle)
    result = {key: statistics.median(values[1:]) * 1e3 for key, values in times.items()}
    _, _, train, val = ways["fields"]
    num_layers = model.num_layers
    result["train share"] = _share(train, data.graph, num_layers)
    result["val share"] = _share(val, data.graph, num_layers)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench full-batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cora-root", default=str(ROOT.parent / "shared/datasets/planetoid"))
    parser.add_argument("--models", nargs="+", default=["mean-gcn", "median-gcn", "gat"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench/results/full-batch.md"))
    args = parser.parse_args(argv)
    import torch

    from .report import git_commit

    torch.set_num_threads(args.threads)
    rounds = 3 if args.quick else args.rounds
    commit, dirty = git_commit()
    command = " ".join(["python -m bench full-batch", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "# gnnkit train's full-batch epoch: receptive fields against the whole graph", "",
        f"- command: `{command}`",
        (f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}; "
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}"),
        (f"- machine: {os.cpu_count()} logical cores, shared (load average at start "
        f"{os.getloadavg()[0]:.1f}); torch {torch.__version__}, {args.threads} thread(s); "
        f"median of {rounds} interleaved rounds"), "",
        ("| graph | model | share train / val | train step: whole ms | fields ms | "
        "evaluation: whole ms | fields ms | epoch ratio |"),
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name, dataset in _datasets(args):
        for model in args.models:
            r = measure(dataset, model, rounds)
            whole = r["whole", "train"] + r["whole", "eval"]
            fields = r["fields", "train"] + r["fields", "eval"]
            line = (f"| {name} | {model} | {r['train share']:.2f} / {r['val share']:.2f} | "
                    f"{r['whole', 'train']:,.1f} | {r['fields', 'train']:,.1f} | "
                    f"{r['whole', 'eval']:,.1f} | {r['fields', 'eval']:,.1f} | "
                    f"**{whole / fields:.2f}x** |")
            lines.append(line)
            print(line, flush=True)
    lines += ["", ("Share 1.00: the field was above the threshold, the whole graph is used "
              "both ways (the ratio then measures noise). Epoch ratio = whole / fields (above "
              "1: the fields are faster).")]
    if not args.quick:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
