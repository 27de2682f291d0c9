"""``gnnkit matrices``: print A, A^n, D and L of a graph, and check a person's answers.

    gnnkit matrices [GRAPH] [--homework {1,2}] [--one-indexed] [--directed] [--power N]
                    [--laplacian {none,sym,rw}] [--check ANSWERS]

GRAPH is an edge-list file (``u v`` per line, ``#`` comments); without it the built-in homework
graph 1 (or ``--homework 2``) is used. ``--check`` reads a JSON object of answers keyed ``"A"``,
``"A^n"`` (any n), ``"D"`` and ``"L"``, each a list of rows. Exit status: 0 all answers right
(or nothing to check), 1 some answer wrong, 2 unusable input (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import re

import torch

from ..check import CheckReport, check_adjacency, check_laplacian, check_matrix
from ..graph import Graph
from ..io import HOMEWORK_GRAPHS, load_graph
from ..matrices import adjacency, degree_matrix, laplacian, matrix_power
from . import UsageError

NAME = "matrices"
_POWER_KEY = re.compile(r"^A\^(\d+)$")
_LAPLACIAN_TITLES = {
    "none": "L = D - A (Laplacian)",
    "sym": "L = I - D^-1/2 A D^-1/2 (symmetric normalised Laplacian)",
    "rw": "L = I - D^-1 A (random-walk normalised Laplacian)",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="print A, A^n, D and L of a graph; check answers",
        description="Print the adjacency matrix A, its power A^n, the degree matrix D and the "
        "Laplacian L of a graph, and optionally check answers computed by hand.",
    )
    parser.add_argument(
        "graph", nargs="?", metavar="GRAPH",
        help="edge-list file, one edge 'u v' per line, '#' comments "
        "(default: homework graph 1, built in)",
    )
    parser.add_argument(
        "--homework", type=int, choices=sorted(HOMEWORK_GRAPHS),
        help="use this built-in homework graph (numbered 1..n as in the figure)",
    )
    parser.add_argument(
        "--one-indexed", action="store_true",
        help="node ids in GRAPH start at 1 (as in a figure); output uses the same numbering",
    )
    parser.add_argument(
        "--directed", action="store_true",
        help="each line 'u v' is the edge u -> v only (A[v, u] = 1)",
    )
    parser.add_argument(
        "--power", type=_nonnegative_int, default=2, metavar="N", help="print A^N (default 2)"
    )
    parser.add_argument(
        "--laplacian", choices=("none", "sym", "rw"), default="none",
        help="which Laplacian to print and check (default none: L = D - A)",
    )
    parser.add_argument(
        "--check", metavar="ANSWERS",
        help='JSON file of answers, e.g. {"A": [[0, 1], [1, 0]], "A^2": ..., "D": ..., "L": ...}',
    )
    return parser


def run(args: argparse.Namespace) -> int:
    graph, description, one_based = _load(args)
    answers = _load_answers(args.check) if args.check else None
    A = adjacency(graph)
    normalization = None if args.laplacian == "none" else args.laplacian
    labels = [str(k + one_based) for k in range(graph.num_nodes)]
    base = "from 1, as in the figure" if one_based else "from 0"
    print(f"Graph: {description}")
    print(f"{graph.num_nodes} nodes, {'directed' if args.directed else 'undirected'}; "
          f"rows and columns are numbered {base} (row k is node k).")
    edge = "there is an edge j -> i" if args.directed else "i and j are neighbours"
    sections = [
        (f"A (adjacency: A[i, j] = 1 when {edge})", A),
        (f"A^{args.power} (entry [i, j] counts the walks of length {args.power} from j to i)",
         matrix_power(A, args.power)),
        ("D (degree matrix: the row sums of A on the diagonal)", degree_matrix(A)),
        (_LAPLACIAN_TITLES[args.laplacian], laplacian(A, normalization)),
    ]
    for title, matrix in sections:
        print()
        print(f"{title}:")
        print(format_matrix(matrix, labels))
    if answers is None:
        return 0
    return _check_answers(answers, args.check, A, normalization, args.directed, one_based)


def format_matrix(matrix: torch.Tensor, labels: list[str]) -> str:
    """The matrix as aligned text with node labels above the columns and left of the rows.
    Whole numbers print as integers; otherwise every entry gets 4 decimals (0 stays "0")."""
    values = matrix.tolist()
    whole = all(float(v) == int(v) for row in values for v in row)
    cells = [[_format_number(v, whole) for v in row] for row in values]
    width = max([len(text) for row in cells for text in row] + [len(x) for x in labels] + [1])
    label_width = max([len(x) for x in labels] + [1])
    lines = [" " * (label_width + 2) + " ".join(x.rjust(width) for x in labels)]
    for label, row in zip(labels, cells):
        lines.append(f"{label.rjust(label_width)}  " + " ".join(t.rjust(width) for t in row))
    return "\n".join("  " + line.rstrip() for line in lines)


def _format_number(value, whole: bool) -> str:
    if whole:
        return str(int(value))
    return "0" if abs(value) < 5e-5 else f"{value:.4f}"


def _load(args) -> tuple[Graph, str, int]:
    """The graph, a one-line description and 1 if its nodes are numbered from 1 else 0."""
    if args.graph is not None and args.homework is not None:
        raise UsageError("give either a GRAPH file or --homework, not both.")
    if args.graph is None:
        number = args.homework or 1
        num_nodes, edges = HOMEWORK_GRAPHS[number]
        graph = Graph.from_edge_list(edges, num_nodes, one_indexed=True,
                                     undirected=not args.directed)
        note = "" if args.homework else "; give a GRAPH file to use another graph"
        return graph, f"homework graph {number} (built in{note})", 1
    try:
        graph = load_graph(args.graph, one_indexed=args.one_indexed, directed=args.directed)
    except FileNotFoundError:
        raise UsageError(f"graph file {args.graph!r} not found.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read graph file {args.graph!r}: {error}") from None
    except ValueError as error:
        raise UsageError(str(error)) from None
    if graph.num_nodes == 0:
        raise UsageError(f"graph file {args.graph!r} lists no nodes; write one 'u v' per line.")
    return graph, args.graph, 1 if args.one_indexed else 0


def _load_answers(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            answers = json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"answers file {path!r} not found.") from None
    except json.JSONDecodeError as error:
        raise UsageError(
            f"answers file {path!r} is not valid JSON (line {error.lineno}, column "
            f"{error.colno}: {error.msg})."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read answers file {path!r}: {error}") from None
    if not isinstance(answers, dict) or not answers:
        raise UsageError(
            f'answers file {path!r} must hold a JSON object such as {{"A": [[0, 1], [1, 0]]}}.'
        )
    for key in answers:
        if key not in ("A", "D", "L") and not _POWER_KEY.match(key):
            raise UsageError(
                f"unknown answer {key!r} in {path!r}; use the keys \"A\", \"A^n\" (e.g. \"A^2\"), "
                "\"D\" and \"L\"."
            )
    return answers


def _check_answers(answers: dict, path: str, A, normalization, directed: bool,
                   one_based: int) -> int:
    one_indexed = bool(one_based)
    reports: list[CheckReport] = []
    for key, answer in answers.items():
        if key == "A":
            report = check_adjacency(answer, undirected=not directed, expected=A,
                                     one_indexed=one_indexed)
        elif key == "D":
            report = check_matrix(answer, degree_matrix(A), "D", one_indexed=one_indexed)
        elif key == "L" and normalization is None:
            report = check_laplacian(answer, adjacency=A, one_indexed=one_indexed)
        elif key == "L":
            report = check_matrix(answer, laplacian(A, normalization), "L",
                                  one_indexed=one_indexed)
        else:
            power = int(_POWER_KEY.match(key).group(1))
            report = check_matrix(answer, matrix_power(A, power), key, one_indexed=one_indexed)
        reports.append(report)
    print()
    print(f"Checking the answers in {path}:")
    for report in reports:
        print(str(report))
    wrong = sum(not report.ok for report in reports)
    print()
    if wrong:
        print(f"Verdict: {wrong} of {len(reports)} answers wrong.")
        return 1
    print(f"Verdict: all {len(reports)} answers are correct.")
    return 0


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"the power must be >= 0, got {value}")
    return value
