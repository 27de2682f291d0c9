"""Graph-level and link-level benchmark: gnnkit against PyG in one process and one run, on the
same inputs. Writes ``bench/results/graph-level.md``.

    python -m bench.graph_level                  # everything (about 10-15 min on 2 cores)
    python -m bench.graph_level --quick          # small sizes, few epochs: checks the script
    python -m bench.graph_level --parts collate,epoch,negatives,accuracy,link

Parts (timings are medians over ``--repeats`` calls, the libraries called in turn; peak memory
is the extra resident memory one call needs above what was in use before it, VmHWM after
clear_refs as in :mod:`bench.measure`, both libraries in this one process, one after the
other, with ``malloc_trim`` between):

* ``collate``: one batch of all graphs, ``GraphBatch.from_list`` vs ``Batch.from_data_list``,
  on 10,000 random graphs of 20-40 nodes and on 1,000 graphs of 270-330 nodes (4 n directed
  edges each, 16 features). gnnkit is timed on items holding a :class:`gnnkit.Graph` with
  its CSR cached (what :func:`gnnkit.data.read_tu` gives), on raw ``edge_index`` items, and
  through ``TUDataset.batch`` (``GraphBatch.from_arrays``: the same graphs kept in one
  dataset's global arrays); PyG on ``Data`` objects.
* ``epoch``: one epoch of a 3-layer GIN (hidden 64, add readout, MLP head, Adam) on
  PROTEINS_full (1,113 graphs, one-hot degree features), batches of 32 in one fixed order;
  PyG's model is gnnkit's with each ``GINConv`` swapped for PyG's ``GINConv`` around the same
  MLP (equal weights; the outputs are compared). Timed with collation (a real epoch; gnnkit
  with ``from_list`` and with ``dataset.batch``) and on pre-collated batches (compute only).
* ``negatives``: ``gnnkit.link.negative_edges(graph, num)`` vs
  ``torch_geometric.utils.negative_sampling(edge_index, num_nodes, num)`` on Slashdot (SNAP,
  read by gnnkit's reader; num = E) and on the products-size synthetic graph (2.4M nodes, 62M
  edges, :mod:`gnnkit.data.synthetic`, the store cached by :mod:`bench.graphs`, generated
  before and outside the timing; num = ``--synthetic-negatives``, 1M). Each library runs in a
  process of its own (``negatives-worker``, started by :func:`bench.runner.run_command`),
  killed after ``--negatives-timeout`` or over ``--mem-limit-gb``; loading the graph,
  preparing the library's form of it (gnnkit: cached CSR; PyG: ``edge_index``) and sampling
  are timed apart, and what finished is reported either way.
* ``accuracy``: 10-fold cross-validation of the GIN on MUTAG and PROTEINS_full with
  :func:`gnnkit.train.cross_validate`, and the same protocol with PyG (same folds, same
  validation split, same initial weights, same batch order, PyG batches and layers).
* ``link``: Cora link prediction, 2-layer mean-GCN encoder (PyG: ``SAGEConv(aggr="mean")``,
  weights copied), dot score, the same :func:`gnnkit.link.split_edges` split, the same
  negatives for both every epoch (one sampler); one table per ``--link-dropouts`` value
  (0: dropout off, so both libraries compute the same function on the same data); next to
  them ``train_link_predictor`` itself, whose negatives stream is the shared one.
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
    from gnnkit.data import GraphBatch, TUDataset

    say("## Collating a batch of graphs\n")
    say("One batch of all the graphs. gnnkit three ways: `GraphBatch.from_list` on items "
        "holding a `Graph` with its CSR cached (what `read_tu` gives), `from_list` on raw "
        "`edge_index` items, and `TUDataset.batch(arange(G))` (`GraphBatch.from_arrays`, the "
        "vectorised path: the graphs kept in one dataset's global arrays). PyG: "
        "`Batch.from_data_list` on `Data` items.\n")
    say("| graphs | nodes each | PyG ms | gnnkit ms (Graph / edge_index / dataset.batch) | "
        "speed-up (Graph / edge_index / dataset.batch) | PyG peak MB | gnnkit peak MB "
        "(Graph / edge_index / dataset.batch) |")
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
        whole = GraphBatch.from_list(cached)  # the global arrays of a dataset of these graphs
        rowptr, col, _ = whole.graph.csr
        dataset = TUDataset("random", [g for g, _, _ in cached], whole.x, whole.y,
                            torch.arange(2), whole.ptr, whole.edge_ptr, None, rowptr=rowptr,
                            col=col)
        every = torch.arange(count)
        ref = Batch.from_data_list(data)
        for out in (whole, GraphBatch.from_list(raw), dataset.batch(every)):
            assert torch.equal(out.x, ref.x) and out.num_edges == ref.edge_index.shape[1]
        assert torch.equal(dataset.batch(every).graph.csr[0], rowptr)
        times, peaks = timed({
            "pyg": lambda d=data: Batch.from_data_list(d),
            "graph": lambda c=cached: GraphBatch.from_list(c),
            "raw": lambda r=raw: GraphBatch.from_list(r),
            "arrays": lambda d=dataset, i=every: d.batch(i),
        }, args.repeats)
        ms = {name: 1e3 * t for name, t in times.items()}
        say(f"| {count:,} | {low}-{high} | {ms['pyg']:.1f} | {ms['graph']:.1f} / "
            f"{ms['raw']:.1f} / {ms['arrays']:.1f} | {ms['pyg'] / ms['graph']:.1f}x / "
            f"{ms['pyg'] / ms['raw']:.1f}x / {ms['pyg'] / ms['arrays']:.1f}x | "
            f"{peaks['pyg']:.1f} | {peaks['graph']:.1f} / {peaks['raw']:.1f} / "
            f"{peaks['arrays']:.1f} |")
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

    def g_arrays():
        model.train()
        for b in batches:
            g_step(dataset.batch(b))

    def g_compute():
        model.train()
        for b in g_pre:
            g_step(b)

    def p_compute():
        pyg.train()
        for b in p_pre:
            p_step(b)

    assert torch.equal(dataset.batch(batches[0]).x, first_batch.x)
    times, peaks = timed({"g": g_epoch, "ga": g_arrays, "p": p_epoch, "gc": g_compute,
                          "pc": p_compute}, max(3, args.repeats // 2))
    say("## GIN epoch on PROTEINS_full\n")
    say(f"3-layer GIN, hidden 64, add readout, Adam; {len(batches)} batches of 32 graphs; "
        f"max abs diff of the two models' logits (eval mode, first batch): {diff:.1e}.\n")
    say("The same model and batches for both, called in turn (g, g arrays, p, g pre, p pre) "
        "each round; PyG collates with `Batch.from_data_list`, gnnkit with `from_list` on "
        "the dataset's items or with `dataset.batch` (`from_arrays`).\n")
    say("| epoch | gnnkit s | PyG s | speed-up | gnnkit peak MB | PyG peak MB |")
    say("|---|---:|---:|---:|---:|---:|")
    say(f"| with collation | {times['g']:.3f} | {times['p']:.3f} | "
        f"{times['p'] / times['g']:.2f}x | {peaks['g']:.1f} | {peaks['p']:.1f} |")
    say(f"| with collation by dataset.batch (gnnkit; PyG as above) | {times['ga']:.3f} | "
        f"{times['p']:.3f} | {times['p'] / times['ga']:.2f}x | {peaks['ga']:.1f} | "
        f"{peaks['p']:.1f} |")
    say(f"| pre-collated batches (compute only) | {times['gc']:.3f} | {times['pc']:.3f} | "
        f"{times['pc'] / times['gc']:.2f}x | {peaks['gc']:.1f} | {peaks['pc']:.1f} |")
    say("")


def negatives_worker(argv: list[str]) -> None:
    """One library's negative sampling on one graph, in a process of its own (``python -m
    bench.graph_level negatives-worker ...``, started by :func:`part_negatives` through
    :func:`bench.runner.run_command`): events ``load``, ``prepare``, ``first`` and ``repeat``
    are appended as they are known, so a timeout still shows how far it got."""
    from bench.runner import write_event

    parser = argparse.ArgumentParser(prog="python -m bench.graph_level negatives-worker")
    parser.add_argument("--library", choices=("gnnkit", "pyg"), required=True)
    parser.add_argument("--graph", choices=("slashdot", "synthetic"), required=True)
    parser.add_argument("--nodes", type=int, default=graphs.PRODUCTS[0])
    parser.add_argument("--edges", type=int, default=graphs.PRODUCTS[1])
    parser.add_argument("--num", type=int, default=0, help="0: as many as the graph's edges")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--events", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pin_malloc()

    def event(name: str, **fields) -> None:
        write_event(args.events, name, **fields)

    start = time.perf_counter()
    if args.graph == "slashdot":
        from gnnkit.data import read_snap

        graph = read_snap(graphs.SLASHDOT).graph
        event("load", seconds=time.perf_counter() - start, what="read_snap (text, gzip)")
        start = time.perf_counter()
        graph.csr  # noqa: B018  (built here: one sort of the edges)
    else:
        data = graphs.load(graphs.synthetic_spec(args.nodes, args.edges))
        event("load", seconds=time.perf_counter() - start, what="store memory-mapped")
        start = time.perf_counter()
        graph = data.graph()  # from the stored CSR: checked, no sort
        graph.csr  # noqa: B018
    if args.library == "gnnkit":
        graph.csr_target  # noqa: B018  (the target of every CSR position, cached)
        what = "graph.csr + csr_target"
    else:
        edge_index = graph.edge_index  # what PyG takes
        num_nodes = graph.num_nodes
        del graph
        what = "edge_index [2, E] from the CSR"
    event("prepare", seconds=time.perf_counter() - start, what=what)
    from torch_geometric.utils import negative_sampling

    from gnnkit.link import negative_edges

    num = args.num or (graph.num_edges if args.library == "gnnkit" else edge_index.shape[1])
    generator = torch.Generator().manual_seed(0)

    def call() -> int:
        if args.library == "gnnkit":
            return negative_edges(graph, num, generator=generator).shape[1]
        return negative_sampling(edge_index, num_nodes, num).shape[1]

    with PeakMemory("cpu") as memory:
        begin = time.perf_counter()
        returned = call()
        first = time.perf_counter() - begin
    event("first", seconds=first, returned=returned, peak_mb=memory.added / MB, num=num)
    spent = first
    for _ in range(args.repeats):
        if spent + first > args.budget:
            break
        begin = time.perf_counter()
        call()
        seconds = time.perf_counter() - begin
        spent += seconds
        event("repeat", seconds=seconds)


def part_negatives(args, say) -> None:
    from bench.runner import run_command

    say("## Negative sampling\n")
    nodes, edges = graphs.PRODUCTS if not args.quick else (100_000, 1_000_000)
    say("`gnnkit.link.negative_edges(graph, num)` vs `torch_geometric.utils.negative_sampling("
        "edge_index, num_nodes, num)`. Each library runs in a process of its own (one after "
        f"the other, {args.threads} thread(s)), killed after --negatives-timeout "
        f"({args.negatives_timeout:g} s) or over --mem-limit-gb ({args.mem_limit_gb:g}): the "
        "graph is loaded (`load`), prepared in the form the library takes (`prepare`: gnnkit "
        "the cached CSR and its target array, as a training graph has after its first use; "
        "PyG the `edge_index`), then sampled: the first call (with its peak memory above the "
        "loaded graph), then up to --repeats more within a time budget; `s` is the median of "
        "those repeats (the first call when none fitted). Slashdot: as many negatives as edges; "
        f"synthetic {nodes:,} / {edges:,} (the products-size graph of `bench.graphs`, "
        "generated once into its cache, not timed here): --synthetic-negatives.\n")
    say("| graph | N | E | negatives asked | library | status | load s | prepare s | first "
        "call s | s (repeats) | returned | speed-up | peak MB of a call | process peak MB |")
    say("|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases = []
    if graphs.SLASHDOT.is_file():
        cases.append(("Slashdot (SNAP)", ["--graph", "slashdot"], 82_168, 948_464, 0, 5))
    else:
        say(f"| Slashdot | skipped: {graphs.SLASHDOT} not found |||||||||||||")
    if args.synthetic:
        graphs.synthetic_spec(nodes, edges)  # generate the store (once) outside the timing
        cases.append((f"synthetic {nodes:,} / {edges:,}",
                      ["--graph", "synthetic", "--nodes", str(nodes), "--edges", str(edges)],
                      nodes, edges, args.synthetic_negatives, 3))
    for name, graph_args, n, e, num, repeats in cases:
        seconds = {}
        for library in ("gnnkit", "pyg"):
            result = run_command(
                [sys.executable, "-m", "bench.graph_level", "negatives-worker", "--library",
                 library, *graph_args, "--num", str(num), "--repeats", str(repeats),
                 "--threads", str(args.threads)],
                timeout_s=args.negatives_timeout, mem_limit_gb=args.mem_limit_gb,
                env={"OMP_NUM_THREADS": str(args.threads)}, expect="first")
            load, prepare = result.find("load"), result.find("prepare")
            first = result.find("first")
            repeat = [item["seconds"] for item in result.events if item["event"] == "repeat"]
            if first is not None:
                seconds[library] = median(repeat) if repeat else first["seconds"]
            status = "ok"
            if result.status != "ok":
                status = f"**{result.status}** ({result.message})"
                seconds.pop(library, None)

            def cell(item, key="seconds", form="{:.2f}"):
                return form.format(item[key]) if item is not None else "-"

            speed = ""
            if library == "pyg" and {"gnnkit", "pyg"} <= set(seconds):
                speed = f"{seconds['pyg'] / seconds['gnnkit']:.2f}x"
            asked = first["num"] if first is not None else (num or e)
            say(f"| {name} | {n:,} | {e:,} | {asked:,} | {library} | {status} | {cell(load)} | "
                f"{cell(prepare)} | {cell(first, form='{:.3f}')} | "
                f"{f'{seconds[library]:.3f} ({len(repeat)})' if library in seconds else '-'} | "
                f"{cell(first, 'returned', '{:,}')} | {speed} | "
                f"{cell(first, 'peak_mb', '{:.0f}')} | {result.peak_rss_mb:.0f} |")
            print(f"  {name} {library}: {result.status} {result.message} {result.events}",
                  file=sys.stderr, flush=True)
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


class _PlainDropout(torch.nn.Module):
    """``F.dropout`` as a module: the input dropout of the shared-masks comparison."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)


def part_link(args, say) -> None:
    from bench.cases import copy_weights, make_model
    from gnnkit.data.datasets import load_dataset, normalize_rows
    from gnnkit.data.epoch_order import mix_seeds
    from gnnkit.link import dot_score, negative_edges, roc_auc, split_edges
    from gnnkit.models import build_model
    from gnnkit.train import BestValidation, train_link_predictor
    from gnnkit.train.link_task import pair_loss

    root = DATA / "planetoid"
    say("## Link prediction on Cora\n")
    if not (root / "Cora" / "raw").is_dir():
        say(f"skipped: Cora not found under {root}\n")
        return
    cora = load_dataset("cora", root)
    epochs, seeds = args.link_epochs, range(args.link_seeds)
    say(f"2-layer mean-GCN encoder (1433 -> 64 -> 64, ReLU; gnnkit `MeanGCN`, PyG "
        f"`SAGEConv(aggr=\"mean\")` with gnnkit's initial weights copied), dot score, pair "
        f"loss (BCE, positives and negatives each averaged), Adam lr 0.01, weight decay 5e-4, "
        f"{epochs} full-batch epochs, the weights of the best validation AUC kept; 5% / 10% "
        "of the edge groups held out for validation / test with as many negatives "
        "(`split_edges`, the same split for both). Every epoch one sampler "
        "(`negative_edges` on the training graph, one generator seeded as "
        "`train_link_predictor` seeds its own) draws the negatives once and both libraries "
        "train on them. The split and the initial weights follow the seed. Columns: "
        "`library loop` is `gnnkit.train.train_link_predictor` itself on the same split "
        "(its own negatives stream, which is the shared one); `gnnkit` and `PyG` are the two "
        "models trained side by side in one loop; `max loss gap` the largest |gnnkit - PyG| "
        "training loss over the epochs; `initial diff` the largest difference of the two "
        "encoders' outputs before training (eval mode).\n")
    x = normalize_rows(cora.x)
    variants = [(p, False) for p in args.link_dropouts
                if args.link_masks in ("own", "both") or p == 0]
    if args.link_masks in ("shared", "both"):
        variants += [(p, True) for p in args.link_dropouts if p > 0]
    if args.link_masks == "own-plain":
        variants += [(p, "plain") for p in args.link_dropouts if p > 0]
    for dropout, shared in variants:
        masks = ("off" if dropout == 0 else
                 f"{dropout} on input and hidden, each library drawing its own masks"
                 if not shared else
                 f"{dropout} on input and hidden, each library drawing its own masks, gnnkit's "
                 "sparse-input dropout replaced by `F.dropout` (as PyG's model has)"
                 if shared == "plain" else
                 f"{dropout} on input and hidden, the same masks for both (the global "
                 "generator seeded alike before each library's training step, gnnkit's "
                 "sparse-input dropout replaced by `F.dropout`, so both draw the same calls)")
        say(f"### Dropout {masks}\n")
        say("| seed | library loop AUC | gnnkit AUC | PyG AUC | difference (points) | best "
            "epoch (gnnkit / PyG) | max loss gap | initial diff | s (gnnkit + PyG) |")
        say("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        diffs = []
        for seed in seeds:
            split = split_edges(cora.edge_index, 0.05, 0.1,
                                generator=torch.Generator().manual_seed(seed))
            library = "-"
            if dropout == 0 and not args.link_skip_library:
                result = train_link_predictor(cora, "mean-gcn", epochs=epochs, seed=seed,
                                              patience=0, split=split, dropout=dropout,
                                              progress=False)
                library = f"{result.test_auc:.4f}"
            torch.manual_seed(seed)  # the library's initial weights (train_link does the same)
            ours = build_model("mean-gcn", x.shape[1], 64, 64, dropout)
            theirs = make_model("cora-mean", "pyg", x.shape[1], 64)
            theirs.input_dropout, theirs.dropout = True, dropout
            copy_weights(ours.conv1, theirs.conv1)
            copy_weights(ours.conv2, theirs.conv2)
            if shared:  # True or "plain"
                ours.input_dropout = _PlainDropout(dropout)
            graph = split.train_graph
            edges = graph.edge_index
            models = {"gnnkit": (ours, graph), "pyg": (theirs, edges)}
            with torch.no_grad():
                ours.eval()
                theirs.eval()
                initial = float((ours(x, graph) - theirs(x, edges)).abs().max())
            optimizers = {name: torch.optim.Adam(model.parameters(), lr=0.01,
                                                 weight_decay=5e-4)
                          for name, (model, _) in models.items()}
            selections = {name: BestValidation(0) for name in models}
            seconds = {name: 0.0 for name in models}
            sampler = torch.Generator().manual_seed(mix_seeds(seed, 0))
            loss_gap = 0.0
            for epoch in range(1, epochs + 1):
                neg = negative_edges(graph, split.train_pos.shape[1], generator=sampler)
                losses = {}
                for name, (model, form) in models.items():
                    start = time.perf_counter()
                    model.train()
                    optimizers[name].zero_grad(set_to_none=True)
                    if shared is True:
                        torch.manual_seed(mix_seeds(seed, epoch))
                    z = model(x, form)
                    loss = pair_loss(dot_score(z, split.train_pos), dot_score(z, neg))
                    loss.backward()
                    optimizers[name].step()
                    losses[name] = loss.item()
                    model.eval()
                    with torch.no_grad():
                        z = model(x, form)
                        pos, neg_val = dot_score(z, split.val_pos), dot_score(z, split.val_neg)
                    selections[name].update(epoch, model, float(pair_loss(pos, neg_val)),
                                            float(roc_auc(pos, neg_val)))
                    seconds[name] += time.perf_counter() - start
                loss_gap = max(loss_gap, abs(losses["gnnkit"] - losses["pyg"]))
            test = {}
            for name, (model, form) in models.items():
                model.load_state_dict(selections[name].state)
                model.eval()
                with torch.no_grad():
                    z = model(x, form)
                    test[name] = float(roc_auc(dot_score(z, split.test_pos),
                                               dot_score(z, split.test_neg)))
            diffs.append(test["gnnkit"] - test["pyg"])
            say(f"| {seed} | {library} | {test['gnnkit']:.4f} | {test['pyg']:.4f} | "
                f"{100 * diffs[-1]:+.2f} | {selections['gnnkit'].best_epoch} / "
                f"{selections['pyg'].best_epoch} | {loss_gap:.1e} | {initial:.1e} | "
                f"{seconds['gnnkit']:.0f} + {seconds['pyg']:.0f} |")
        mean = sum(diffs) / len(diffs)
        spread = (sum((d - mean) ** 2 for d in diffs) / max(len(diffs) - 1, 1)) ** 0.5
        say(f"\nMean difference over {len(diffs)} seeds: {100 * mean:+.2f} points "
            f"(sample std {100 * spread:.2f}).\n")


# ---------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["negatives-worker"]:
        negatives_worker(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m bench graph-level",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mutag-epochs", type=int, default=50)
    parser.add_argument("--proteins-epochs", type=int, default=20)
    parser.add_argument("--link-epochs", type=int, default=100)
    parser.add_argument("--link-seeds", type=int, default=3)
    parser.add_argument("--link-dropouts", type=float, nargs="+", default=[0.0, 0.5],
                        help="one table per dropout (0: off)")
    parser.add_argument("--link-masks", choices=("own", "shared", "both", "own-plain"),
                        default="own",
                        help="dropout > 0: each library its own masks, the same masks for "
                             "both, a table of each, or own masks with gnnkit's input "
                             "dropout replaced by F.dropout")
    parser.add_argument("--link-skip-library", action="store_true",
                        help="leave out the train_link_predictor column")
    parser.add_argument("--no-synthetic", dest="synthetic", action="store_false")
    parser.add_argument("--synthetic-negatives", type=int, default=1_000_000)
    parser.add_argument("--negatives-timeout", type=float, default=900.0,
                        help="seconds per library and graph (load and prepare included)")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0)
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
    say(f"- command: `python -m bench.graph_level {' '.join(argv)}`")
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
