"""Graph breaks of each gnnkit layer under ``torch.compile``: ``python -m bench graph-breaks``
(or ``python -m bench.graph_breaks``).

For every layer and graph form it prints how many graphs ``torch._dynamo.explain`` cuts one
forward into and why: a raw ``edge_index`` (checked and sorted on every call), a fresh
``gnnkit.Graph`` (its layouts are built while tracing), and a warm Graph (one training step
run before, so its layouts are cached). Small random graph, CPU.
"""

from __future__ import annotations

import argparse
import warnings

import torch
import torch._dynamo as dynamo

from gnnkit import Graph
from gnnkit.nn import GATConv, MeanGCNConv, MedianGCNConv

from .cases import message_passing_mean_gcn

FORMS = ("edge_index", "Graph", "Graph (warm)")


def layers() -> dict[str, torch.nn.Module]:
    return {
        "MeanGCNConv": MeanGCNConv(16, 8),
        "MedianGCNConv": MedianGCNConv(16, 8),
        "GATConv(heads=2)": GATConv(16, 4, heads=2),
        "MessagePassing MeanGCN": message_passing_mean_gcn(16, 8),
    }


def breaks(layer: torch.nn.Module, form: str, edge_index, x) -> tuple[int, list[str]]:
    """(number of graph breaks, their distinct reasons) of one forward."""
    graph = edge_index if form == "edge_index" else Graph(edge_index, x.size(0))
    if form == "Graph (warm)":
        layer(x, graph).sum().backward()
    dynamo.reset()
    explained = dynamo.explain(layer)(x, graph)
    reasons = sorted({str(r.reason).splitlines()[0][:90] for r in explained.break_reasons})
    return explained.graph_break_count, reasons


def main(argv: list[str] | None = None) -> None:
    """Print the table of graph breaks and their reasons (no options)."""
    argparse.ArgumentParser(prog="python -m bench graph-breaks", description=__doc__).parse_args(
        argv)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    edge_index = torch.randint(0, 50, (2, 300))
    x = torch.randn(50, 16, requires_grad=True)
    print("| layer | " + " | ".join(f"breaks, {form}" for form in FORMS) + " |")
    print("|---|" + "---:|" * len(FORMS))
    why = {}
    for name, layer in layers().items():
        cells = []
        for form in FORMS:
            count, reasons = breaks(layer, form, edge_index, x)
            cells.append(str(count))
            why[(name, form)] = reasons
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for (name, form), reasons in why.items():
        if reasons:
            print(f"- {name}, {form}: " + "; ".join(reasons))


if __name__ == "__main__":
    main()
