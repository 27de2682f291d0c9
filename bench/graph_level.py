"""Graph-level and link-level benchmark: gnnkit against PyG in one process and one run, on the
same inputs. Writes ``bench/results/graph-level.md``.

    python -m bench.graph_level                  # everything (about 10-15 min on 2 cores)
    python -m bench.graph_level --quick          # small sizes, few epochs: checks the script
    python -m bench.graph_level --parts collate,epoch,negatives,accuracy,link

Parts (timings are medians over ``--repeats`` calls, the libraries called in turn; peak memory
is the extra resident memory one call needs above what was in use before it, VmHWM after
clear_refs as in :mod:`bench.measure`, both libraries in this one process, one after the
other, with ``malloc_trim`` between):

* ``collate``: ``GraphBatch.from_list`` vs ``Batch.from_data_list`` on 10,000 random graphs of
  20-40 nodes and on 1,000 graphs of 270-330 nodes (4 n directed edges each, 16 features).
  gnnkit is timed on items holding a :class:`gnnkit.Graph` with its CSR cached (what
  :func:`gnnkit.data.read_tu` gives) and on raw ``edge_index`` items; PyG on ``Data`` objects.
* ``epoch``: one epoch of a 3-layer GIN (hidden 64, add readout, MLP head, Adam) on
  PROTEINS_full (1,113 graphs, one-hot degree features), batches of 32 in one fixed order;
  PyG's model is gnnkit's with each ``GINConv`` swapped for PyG's ``GINConv`` around the same
  MLP (equal weights; the outputs are compared). Timed with collation (a real epoch) and on
  pre-collated batches (compute only).
* ``negatives``: ``gnnkit.link.negative_edges(graph, num)`` vs
  ``torch_geometric.utils.negative_sampling(edge_index, num_nodes, num)`` on Slashdot (SNAP,
  read by gnnkit's reader; num = E) and on the products-size synthetic graph (2.4M nodes, 62M
  edges, :mod:`gnnkit.data.synthetic`, the store cached by :mod:`bench.graphs`; num = 1M).
  gnnkit's graph has its CSR cached (as a training graph has after its first use).
* ``accuracy``: 10-fold cross-validation of the GIN on MUTAG and PROTEINS_full with
  :func:`gnnkit.train.cross_validate`, and the same protocol with PyG (same folds, same
  validation split, same initial weights, same batch order, PyG batches and layers).
* ``link``: Cora link prediction, 2-layer mean-GCN encoder (PyG: ``SAGEConv(aggr="mean")``,
  weights copied), dot score, the same :func:`gnnkit.link.split_edges` split; gnnkit's
  negatives from :func:`~gnnkit.link.negative_edges`, PyG's from its ``negative_sampling``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench import graphs
from bench.measure import PeakMemory, median, pin_malloc
from bench.report import cpu_model, git_revision

DATA = graphs.DATASETS
MB = 2**20
PARTS = ("collate", "epoch", "negatives", "accuracy", "link")


# ---------------------------------------------------------------------------------- helpers
def timed(steps: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds and peak extra MB of each step; steps called in turn."""
    times = {name: [] for name in steps}
    peaks = {}
    for name, step in steps.items():  # warm-up, and the memory of one call
        step()
        with PeakMemory("cpu") as memory:
            step()
        peaks[name] = memory.added / MB
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: median(t) for name, t in times.items()}, peaks


def random_items(count: int, low: int, high: int, seed: int = 0):
    """(edge_index, x, y) items: n in [low, high], 2 n random undirected edges."""
    generator = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(count):
        n = int(torch.randint(low, high + 1, (1,), generator=generator))
        pairs = torch.randint(0, n, (2, 2 * n), generator=generator)
        edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
        items.append((edge_index, torch.randn(n, 16, generator=generator),
                      int(torch.randint(0, 2, (1,), generator=generator))))
    return items


def pyg_model_like(model):
    """A copy of gnnkit's GraphClassifier whose GINConvs are PyG's, around the same MLPs."""
    from torch_geometric.nn import GINConv as PygGIN
    from torch_geometric.nn import global_add_pool

    class PygClassifier(torch.nn.Module):
        def __init__(self, source):
            super().__init__()
            self.convs = torch.nn.ModuleList(
                PygGIN(copy.deepcopy(conv.nn), eps=float(conv.eps), train_eps=False)
                for conv in source.convs)
            self.lin1, self.lin2 = copy.deepcopy(source.lin1), copy.deepcopy(source.lin2)
            for ours, theirs in zip(source.convs, self.convs, strict=True):
                theirs.nn.load_state_dict(ours.nn.state_dict())  # PyG's init resets nn
            self.dropout = source.dropout

        def forward(self, data):
            h = data.x
            for conv in self.convs:
                h = conv(h, data.edge_index)
            r = global_add_pool(h, data.batch, size=data.num_graphs)
            r = F.dropout(F.relu(self.lin1(r)), self.dropout, self.training)
            return self.lin2(r)

    return PygClassifier(model)


def pyg_graphs(dataset):
    from torch_geometric.data import Data

    return [Data(x=x, edge_index=graph.edge_index, y=y.view(1)) for graph, x, y in dataset]


# ---------------------------------------------------------------------------------- parts
def part_collate(args, say) -> None:
    from torch_geometric.data import Batch, Data

    from gnnkit import Graph
    from gnnkit.data import GraphBatch

    say("## Collating a batch of graphs\n")
    say("| graphs | nodes each | gnnkit ms (Graph / edge_index) | PyG ms | speed-up (Graph / "
        "edge_index) | gnnkit peak MB (Graph / edge_index) | PyG peak MB |")
    say("|---:|---|---:|---:|---:|---:|---:|")
    cases = [(10_000, 20, 40), (1_000, 270, 330)]
    if args.quick:
        cases = [(500, 20, 40), (100, 270, 330)]
    for count, low, high in cases:
        raw = random_items(count, low, high)
        cached = []
        for edge_index, x, y in raw:
            graph = Graph(edge_index, x.shape[0])
            graph.csr  # noqa: B018  (cached, as read_tu's graphs are)
            cached.append((graph, x, y))
        data = [Data(x=x, edge_index=e, y=torch.tensor([y])) for e, x, y in raw]
        out = GraphBatch.from_list(cached)
        ref = Batch.from_data_list(data)
        assert torch.equal(out.x, ref.x) and out.num_edges == ref.edge_index.shape[1]
        times, peaks = timed({
            "graph": lambda c=cached: GraphBatch.from_list(c),
            "raw": lambda r=raw: GraphBatch.from_list(r),
            "pyg": lambda d=data: Batch.from_data_list(d),
        }, args.repeats)
        say(f"| {count:,} | {low}-{high} | {times['graph'] * 1e3:.1f} / {times['raw'] * 1e3:.1f} "
            f"| {times['pyg'] * 1e3:.1f} | {times['pyg'] / times['graph']:.1f}x / "
            f"{times['pyg'] / times['raw']:.1f}x | {peaks['graph']:.1f} / {peaks['raw']:.1f} "
            f"| {peaks['pyg']:.1f} |")
    say("")


def part_epoch(args, say) -> None:
    from torch_geometric.data import Batch

    from gnnkit.data import GraphBatch, read_tu
    from gnnkit.train import GraphTrainConfig
    from gnnkit.train.graph_task import DEFAULT_MAX_DEGREE

    root = DATA / "tu"
    if not (root / "PROTEINS_full").is_dir():
        say(f"## GIN epoch\n\nskipped: PROTEINS_full not found under {root}\n")
        return
    dataset = read_tu(root, "PROTEINS_full", degree_features=DEFAULT_MAX_DEGREE)
    items = [dataset[k] for k in range(len(dataset))]
    data = pyg_graphs(dataset)
    torch.manual_seed(0)
    config = GraphTrainConfig()
    model = config.build(dataset.num_node_features, dataset.num_classes)
    pyg = pyg_model_like(model)
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(0))
    batches = torch.split(order, 32)
    if args.quick:
        batches = batches[:5]
    first = [items[k] for k in batches[0].tolist()]
    model.eval()
    pyg.eval()
    with torch.no_grad():
        first_batch = GraphBatch.from_list(first)
        g_out = model(first_batch.x, first_batch)
        p_out = pyg(Batch.from_data_list([data[k] for k in batches[0].tolist()]))
    diff = float((g_out - p_out).abs().max())
    g_opt = torch.optim.Adam(model.parameters(), lr=0.01)
    p_opt = torch.optim.Adam(pyg.parameters(), lr=0.01)
    g_pre = [GraphBatch.from_list([items[k] for k in b.tolist()]) for b in batches]
    p_pre = [Batch.from_data_list([data[k] for k in b.tolist()]) for b in batches]

    def g_step(batch):
        g_opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch.x, batch), batch.y).backward()
        g_opt.step()

    def p_step(batch):
        p_opt.zero_grad(set_to_none=True)
        F.cross_entropy(pyg(batch), batch.y).backward()
        p_opt.step()

    def g_epoch():
        model.train()
        for b in batches:
            g_step(GraphBatch.from_list([items[k] for k in b.tolist()]))

    def p_epoch():
        pyg.train()
        for b in batches:
            p_step(Batch.from_data_list([data[k] for k in b.tolist()]))

    def g_compute():
        model.train()
        for b in g_pre:
            g_step(b)

    def p_compute():
        pyg.train()
        for b in p_pre:
            p_step(b)

    times, peaks = timed({"g": g_epoch, "p": p_epoch, "gc": g_compute, "pc": p_compute},
                         max(3, args.repeats // 2))
    say("## GIN epoch on PROTEINS_full\n")
    say(f"3-layer GIN, hidden 64, add readout, Adam; {len(batches)} batches of 32 graphs; "
        f"max abs diff of the two models' logits (eval mode, first batch): {diff:.1e}.\n")
    say("| epoch | gnnkit s | PyG s | speed-up | gnnkit peak MB | PyG peak MB |")
    say("|---|---:|---:|---:|---:|---:|")
    say(f"| with collation | {times['g']:.3f} | {times['p']:.3f} | "
        f"{times['p'] / times['g']:.2f}x | {peaks['g']:.1f} | {peaks['p']:.1f} |")
    say(f"| pre-collated batches (compute only) | {times['gc']:.3f} | {times['pc']:.3f} | "
        f"{times['pc'] / times['gc']:.2f}x | {peaks['gc']:.1f} | {peaks['pc']:.1f} |")
    say("")


def part_negatives(args, say) -> None:
    from torch_geometric.utils import negative_sampling

    from gnnkit.data import read_snap
    from gnnkit.link import negative_edges

    say("## Negative sampling\n")
    say("| graph | N | E | negatives asked | gnnkit s | PyG s (returned) | speed-up | "
        "gnnkit peak MB | PyG peak MB |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    slashdot = graphs.SLASHDOT
    cases = []
    if slashdot.is_file():
        cases.append(("Slashdot (SNAP)", lambda: read_snap(slashdot).graph, None))
    else:
        say(f"| Slashdot | skipped: {slashdot} not found ||||||||")
    nodes, edges = graphs.PRODUCTS if not args.quick else (100_000, 1_000_000)
    if args.synthetic:
        cases.append((f"synthetic {nodes:,} / {edges:,}",
                      lambda: graphs.load(graphs.synthetic_spec(nodes, edges)).graph(),
                      1_000_000))
    for name, load, num in cases:
        start = time.perf_counter()
        graph = load()
        graph.csr  # noqa: B018
        loaded = time.perf_counter() - start
        edge_index = graph.edge_index
        num = graph.num_edges if num is None else num
        generator = torch.Generator().manual_seed(0)
        returned = {}

        def g_call(graph=graph, num=num, generator=generator):
            return negative_edges(graph, num, generator=generator)

        def p_call(edge_index=edge_index, num_nodes=graph.num_nodes, num=num, out=returned):
            pairs = negative_sampling(edge_index, num_nodes, num)
            out["pyg"] = pairs.shape[1]
            return pairs

        check = g_call()
        assert check.shape[1] == num
        times, peaks = timed({"g": g_call, "p": p_call}, args.repeats if num < 5e6 else 3)
        say(f"| {name} | {graph.num_nodes:,} | {graph.num_edges:,} | {num:,} | {times['g']:.3f} "
            f"| {times['p']:.3f} ({returned['pyg']:,}) | {times['p'] / times['g']:.2f}x | "
            f"{peaks['g']:.0f} | {peaks['p']:.0f} |")
        print(f"  {name}: loaded in {loaded:.0f} s", file=sys.stderr, flush=True)
        del graph, edge_index
    if not args.synthetic:
        say("\nThe products-size synthetic graph was left out (--no-synthetic).")
    say("")


def pyg_cross_validate(dataset, config, folds: int, seed: int, epochs: int) -> list[float]:
    """The protocol of :func:`gnnkit.train.cross_validate` with PyG batches and layers: same
    folds, validation split, initial weights (copied) and batch order."""
    from torch_geometric.data import Batch

    from gnnkit.data import GraphLoader
    from gnnkit.train import BestValidation, stratified_folds
    from gnnkit.train.evaluate import accuracy
    from gnnkit.train.graph_task import _Subset, split_fold

    data = pyg_graphs(dataset)
    labels = dataset.y
    parts = stratified_folds(labels, folds, seed)
    results = []
    for fold in range(folds):
        train, val, test = split_fold(labels, parts, fold, config.val_fraction, seed)
        torch.manual_seed(seed * 1009 + fold)
        model = pyg_model_like(config.build(dataset.num_node_features, dataset.num_classes))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        loader = GraphLoader(_Subset(dataset, train), config.batch_size, shuffle=True,
                             seed=seed * 1009 + fold)
        val_batch = Batch.from_data_list([data[k] for k in val.tolist()])
        test_batch = Batch.from_data_list([data[k] for k in test.tolist()])
        selection = BestValidation(config.patience)

        def evaluate(batch, model=model):
            model.eval()
            with torch.no_grad():
                logits = model(batch)
            return float(F.cross_entropy(logits, batch.y)), accuracy(logits, batch.y)

        for epoch in range(1, epochs + 1):
            loader.set_epoch(epoch)
            model.train()
            for chunk in torch.split(loader.shard(), config.batch_size):
                batch = Batch.from_data_list([data[train[k]] for k in chunk.tolist()])
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(batch), batch.y).backward()
                optimizer.step()
            val_loss, val_accuracy = evaluate(val_batch)
            if selection.update(epoch, model, val_loss, val_accuracy):
                break
        model.load_state_dict(selection.state)
        results.append(evaluate(test_batch)[1])
    return results


def part_accuracy(args, say) -> None:
    from gnnkit.data import read_tu
    from gnnkit.train import GraphTrainConfig, cross_validate, summarize
    from gnnkit.train.graph_task import DEFAULT_MAX_DEGREE

    say("## Accuracy: 10-fold GIN\n")
    say("Stratified 10 folds (seed 0); per fold 10% of the training part held out to select "
        "the epoch (best validation accuracy); the mean +- sample std of the 10 test-fold "
        "accuracies (Errica et al. protocol, fixed hyperparameters: 3 GIN layers, hidden 64, "
        "add readout, dropout 0.5, Adam lr 0.01, batch 32, one-hot degree features capped at "
        f"{DEFAULT_MAX_DEGREE}).\n")
    say("| dataset | epochs | gnnkit | PyG | difference (points) | gnnkit s | PyG s |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    folds = 10 if not args.quick else 3
    for name, epochs in (("MUTAG", args.mutag_epochs), ("PROTEINS_full", args.proteins_epochs)):
        root = DATA / "tu"
        if not (root / name).is_dir():
            say(f"| {name} | skipped: not found under {root} ||||||")
            continue
        dataset = read_tu(root, name, degree_features=DEFAULT_MAX_DEGREE)
        config = GraphTrainConfig(epochs=epochs, progress=False)
        start = time.perf_counter()
        ours = cross_validate(dataset, config, folds=folds, seed=0).accuracies
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = pyg_cross_validate(dataset, config, folds, 0, epochs)
        theirs_s = time.perf_counter() - start
        (m1, s1), (m2, s2) = summarize(ours), summarize(theirs)
        say(f"| {name} | {epochs} | {100 * m1:.1f} +- {100 * s1:.1f} | {100 * m2:.1f} +- "
            f"{100 * s2:.1f} | {100 * (m1 - m2):+.1f} | {ours_s:.0f} | {theirs_s:.0f} |")
        print(f"  {name}: {ours} vs {theirs}", file=sys.stderr, flush=True)
    say("")


def part_link(args, say) -> None:
    from torch_geometric.utils import negative_sampling

    from bench.cases import copy_weights, make_model
    from gnnkit.data.datasets import load_dataset, normalize_rows
    from gnnkit.link import dot_score, roc_auc, split_edges
    from gnnkit.train import BestValidation, LinkSettings, train_link_predictor
    from gnnkit.train.link_task import pair_loss

    root = DATA / "planetoid"
    say("## Link prediction on Cora\n")
    if not (root / "Cora" / "raw").is_dir():
        say(f"skipped: Cora not found under {root}\n")
        return
    cora = load_dataset("cora", root)
    epochs, seeds = args.link_epochs, range(args.link_seeds)
    say(f"2-layer mean-GCN encoder (1433 -> 64 -> 64, ReLU, dropout 0.5 on input and hidden), "
        f"dot score, Adam lr 0.01, weight decay 5e-4, {epochs} epochs, best validation AUC; "
        "5% / 10% of the edges held out for validation / test (the same split for both), as "
        "many negatives. Test AUC per seed (the split and initial weights follow the seed).\n")
    say("| seed | gnnkit AUC | PyG AUC | difference (points) | gnnkit s | PyG s |")
    say("|---:|---:|---:|---:|---:|---:|")
    x = normalize_rows(cora.x)
    diffs = []
    for seed in seeds:
        split = split_edges(cora.edge_index, 0.05, 0.1,
                            generator=torch.Generator().manual_seed(seed))
        start = time.perf_counter()
        ours = train_link_predictor(cora, "mean-gcn", epochs=epochs, seed=seed, patience=0,
                                    split=split, link=LinkSettings())
        ours_s = time.perf_counter() - start
        # PyG: same initial weights (gnnkit's model built from the same seed, copied)
        torch.manual_seed(seed)
        from gnnkit.models import build_model

        source = build_model("mean-gcn", x.shape[1], 64)
        model = make_model("cora-mean", "pyg", x.shape[1], 64)
        model.input_dropout = True
        copy_weights(source.conv1, model.conv1)
        copy_weights(source.conv2, model.conv2)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
        train_edges = split.train_graph.edge_index
        selection = BestValidation(0)
        start = time.perf_counter()
        for epoch in range(1, epochs + 1):
            model.train()
            neg = negative_sampling(train_edges, cora.num_nodes, split.train_pos.shape[1])
            optimizer.zero_grad(set_to_none=True)
            z = model(x, train_edges)
            loss = pair_loss(dot_score(z, split.train_pos), dot_score(z, neg))
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                z = model(x, train_edges)
                pos, neg = dot_score(z, split.val_pos), dot_score(z, split.val_neg)
            selection.update(epoch, model, float(pair_loss(pos, neg)), float(roc_auc(pos, neg)))
        model.load_state_dict(selection.state)
        model.eval()
        with torch.no_grad():
            z = model(x, train_edges)
            theirs = float(roc_auc(dot_score(z, split.test_pos), dot_score(z, split.test_neg)))
        theirs_s = time.perf_counter() - start
        diffs.append(ours.test_auc - theirs)
        say(f"| {seed} | {ours.test_auc:.4f} | {theirs:.4f} | {100 * diffs[-1]:+.1f} | "
            f"{ours_s:.0f} | {theirs_s:.0f} |")
    say(f"\nMean difference: {100 * sum(diffs) / len(diffs):+.2f} points.\n")


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench graph-level",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mutag-epochs", type=int, default=50)
    parser.add_argument("--proteins-epochs", type=int, default=20)
    parser.add_argument("--link-epochs", type=int, default=100)
    parser.add_argument("--link-seeds", type=int, default=2)
    parser.add_argument("--no-synthetic", dest="synthetic", action="store_false")
    parser.add_argument("--output", type=Path,
                        default=graphs.ROOT / "bench" / "results" / "graph-level.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.mutag_epochs, args.proteins_epochs = 2, 2, 2
        args.link_epochs, args.link_seeds = 3, 1
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {PARTS}")
    torch.set_num_threads(args.threads)
    pin_malloc()
    import torch_geometric

    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    start = time.perf_counter()
    say("# Graph-level and link-level benchmark: gnnkit vs PyG\n")
    say(f"- command: `python -m bench.graph_level {' '.join(argv or sys.argv[1:])}`")
    say(f"- commit: {git_revision()}; {datetime.datetime.now():%Y-%m-%d %H:%M}; load average "
        f"at start {os.getloadavg()[0]:.1f}")
    say(f"- {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__} "
        f"({args.threads} threads), torch_geometric {torch_geometric.__version__}")
    say("- speed-up = PyG time / gnnkit time (above 1: gnnkit faster); peak MB = extra "
        "resident memory of one call above what was in use before it\n")
    for part in parts:
        print(f"part {part} ...", file=sys.stderr, flush=True)
        globals()[f"part_{part}"](args, say)
    say(f"Total run time: {time.perf_counter() - start:.0f} s.")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".md.tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(args.output)


if __name__ == "__main__":
    main()
