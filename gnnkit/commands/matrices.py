"""``gnnkit matrices``: print A, A^n, D and L of a graph, and check a person's answers.

    gnnkit matrices [GRAPH] [--homework {1,2}] [--one-indexed] [--directed] [--power N]
                    [--laplacian {none,sym,rw}] [--apply X] [--check ANSWERS]

GRAPH is an edge-list file (``u v`` per line, ``#`` comments); without it the built-in homework
graph 1 (or ``--homework 2``) is used. ``--check`` reads a JSON object of answers keyed ``"A"``,
``"A^n"`` (any n), ``"D"`` and ``"L"``, each a list of rows, and ``"LX"`` with ``--apply``.
``--apply X`` prints ``L X`` (see :func:`gnnkit.laplacian_step`) for features X given
as a JSON file (a list of values or of rows, one per node) or inline: ``"1,0,2,0,1"`` (one value
per node) or ``"1,0; 0,1; ..."`` (one row per node). Exit status: 0 all answers right
(or nothing to check), 1 some answer wrong, 2 unusable input (message on stderr), including an
answer that is not a matrix of numbers.

Walk counts are exact integers at any size (up to ``MAX_PRINTED_DIGITS`` digits); graphs with
more than ``MAX_PRINTED_NODES`` nodes are refused before anything is allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import re

import torch

from ..check import check_answers
from ..check.answers import looks_one_indexed
from ..graph import Graph
from ..io import HOMEWORK_GRAPHS, homework_graph, load_graph
from ..laplacian_step import laplacian_step
from ..matrices import adjacency, degree_matrix, exact_matrix_power, laplacian
from . import UsageError

NAME = "matrices"
#: Larger graphs are refused: an N x N matrix past this is not something a person reads.
MAX_PRINTED_NODES = 100
#: Powers whose entries have more digits than this are refused rather than printed.
MAX_PRINTED_DIGITS = 40
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
        "--apply", metavar="X",
        help='apply L to features X and say which nodes change most: a JSON file, or inline '
        '"1,0,2,0,1" (one value per node) or "1,0; 0,1; ..." (one row per node)',
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
    power = _exact_power(A, args.power)
    features = None if args.apply is None else _load_features(args.apply)
    step = None
    if features is not None:
        if (args.graph is not None and not one_based and looks_one_indexed(A)
                and len(features) == graph.num_nodes - 1):
            raise UsageError(f"--apply gives {len(features)} values but the graph read has "
                             f"{graph.num_nodes} nodes: node 0 has no edges and the ids run "
                             f"1..{len(features)}, so the file looks 1-indexed; add --one-indexed.")
        try:
            step = laplacian_step(A, features, normalization, one_indexed=bool(one_based))
        except (TypeError, ValueError) as error:
            raise UsageError(f"--apply: {error}") from None
    report = None
    if answers is not None:
        if "LX" in answers and features is None:
            raise UsageError(f"answers file {args.check!r} has an answer 'LX' (L X): give the "
                             "features X with --apply X.json or --apply \"1,0,2,...\".")
        try:
            report = check_answers(answers, A, laplacian_kind=normalization,
                                   directed=args.directed, one_indexed=bool(one_based),
                                   source=args.check, features=features)
        except ValueError as error:  # an unknown key or an answer that is no matrix
            raise UsageError(str(error)) from None
    labels = [str(k + one_based) for k in range(graph.num_nodes)]
    base = "from 1, as in the figure" if one_based else "from 0"
    print(f"Graph: {description}")
    print(f"{graph.num_nodes} nodes, {'directed' if args.directed else 'undirected'}; "
          f"rows and columns are numbered {base} (row k is node k).")
    if args.graph is not None and not one_based and looks_one_indexed(A):
        print(f"Note: node 0 has no edges and the ids run 1..{graph.num_nodes - 1}: the file "
              "looks 1-indexed (numbered from 1); if it is, add --one-indexed.")
    loops = sorted({int(v) + one_based for v in graph.source[graph.source == graph.target]})
    if loops:
        print(f"{len(loops)} self-loop{'s' if len(loops) != 1 else ''} read (node "
              f"{', '.join(map(str, loops))}): each puts a 1 on the diagonal of A and counts once "
              "in the degree.")
    edge = "there is an edge j -> i" if args.directed else "i and j are neighbours"
    sections = [
        (f"A (adjacency: A[i, j] = 1 when {edge})", A.tolist()),
        (f"A^{args.power} (entry [i, j] counts the walks of length {args.power} from j to i)",
         power),
        ("D (degree matrix: the row sums of A on the diagonal)", degree_matrix(A).tolist()),
        (_LAPLACIAN_TITLES[args.laplacian], laplacian(A, normalization).tolist()),
    ]
    for title, matrix in sections:
        print()
        print(f"{title}:")
        print(format_matrix(matrix, labels))
    if step is not None:
        for title, matrix in (("X (the features given with --apply, one row per node)",
                               features), ("L X (the Laplacian above applied to X)",
                                           step.values.tolist())):
            print()
            print(f"{title}:")
            print(format_matrix(_as_rows(matrix), labels, columns=False))
        print()
        print(step)
    if report is None:
        return 0
    print()
    print(f"Checking the answers in {args.check}:")
    print(report)
    return 0 if report.ok else 1


def format_matrix(matrix, labels: list[str], *, columns: bool = True) -> str:
    """The matrix (a tensor or a list of rows) as aligned text with node labels left of the
    rows and, with ``columns``, above the columns (without: a feature matrix, whose columns
    are no nodes). Whole numbers print exactly as integers (any size); otherwise every entry
    gets 4 decimals (0 stays "0")."""
    values = matrix.tolist() if isinstance(matrix, torch.Tensor) else matrix
    whole = all(isinstance(v, int) or float(v).is_integer() for row in values for v in row)
    cells = [[_format_number(v, whole) for v in row] for row in values]
    top = labels if columns else []
    width = max([len(text) for row in cells for text in row] + [len(x) for x in top] + [1])
    label_width = max([len(x) for x in labels] + [1])
    lines = [" " * (label_width + 2) + " ".join(x.rjust(width) for x in top)] if columns else []
    for label, row in zip(labels, cells):
        lines.append(f"{label.rjust(label_width)}  " + " ".join(t.rjust(width) for t in row))
    return "\n".join("  " + line.rstrip() for line in lines)


def _format_number(value, whole: bool) -> str:
    if whole:
        return str(int(value))
    return "0" if abs(value) < 5e-5 else f"{value:.4f}"


def _exact_power(A: torch.Tensor, n: int) -> list[list[int]]:
    """A^n as exact Python integers, or a UsageError when they are too long to print."""
    try:
        power = exact_matrix_power(A, n)
    except ValueError as error:
        raise UsageError(str(error)) from None
    digits = max(len(str(abs(x))) for row in power for x in row)
    if digits > MAX_PRINTED_DIGITS:
        raise UsageError(
            f"A^{n} has entries of {digits} digits, more than the {MAX_PRINTED_DIGITS} that are "
            "printed; choose a smaller --power."
        )
    return power


def _load(args) -> tuple[Graph, str, int]:
    """The graph, a one-line description and 1 if its nodes are numbered from 1 else 0."""
    if args.graph is not None and args.homework is not None:
        raise UsageError("give either a GRAPH file or --homework, not both.")
    if args.graph is None:
        number = args.homework or 1
        graph = homework_graph(number, directed=args.directed)
        note = "" if args.homework else "; give a GRAPH file to use another graph"
        return graph, f"homework graph {number} (built in{note})", 1
    try:
        graph = load_graph(args.graph, one_indexed=args.one_indexed, directed=args.directed)
    except FileNotFoundError:
        raise UsageError(f"graph file {args.graph!r} not found.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read graph file {args.graph!r}: {error}") from None
    except ValueError as error:
        line = _line_with_id_0(args) if args.one_indexed else None
        if line is not None:
            raise UsageError(f"{args.graph}:{line}: node id 0, but --one-indexed says the ids "
                             "start at 1; leave out --one-indexed (the ids start at 0).") from None
        raise UsageError(str(error)) from None
    if graph.num_nodes == 0:
        raise UsageError(f"graph file {args.graph!r} lists no nodes; write one 'u v' per line.")
    if graph.num_nodes > MAX_PRINTED_NODES:
        largest = graph.num_nodes - 1 + (1 if args.one_indexed else 0)
        raise UsageError(
            f"graph file {args.graph!r} has {graph.num_nodes} nodes (the largest id is {largest}); "
            f"matrices prints N x N matrices and stops at {MAX_PRINTED_NODES} nodes, so check "
            "the ids or use gnnkit.adjacency(..., sparse=True) in Python."
        )
    return graph, args.graph, 1 if args.one_indexed else 0


def _line_with_id_0(args) -> int | None:
    """The first line with node id 0 when the file reads without ``--one-indexed`` (then that
    id is what the one-indexed reading refused), else None."""
    try:
        load_graph(args.graph, directed=args.directed)
        with open(args.graph, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if 0 in (int(token) for token in line.split("#", 1)[0].split()[:2]):
                    return number
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return None


def _load_answers(path: str) -> dict:
    """The answers file as a non-empty JSON object; anything unreadable is a UsageError."""
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
    example = '{"A": [[0, 1], [1, 0]]}'
    if not isinstance(answers, dict):
        raise UsageError(f"answers file {path!r} must hold a JSON object such as {example}, "
                         f"not a JSON {type(answers).__name__}.")
    if not answers:
        raise UsageError(f"answers file {path!r} holds an empty JSON object {{}}; write at least "
                         f"one answer in it, such as {example}.")
    return answers


def _load_features(text: str):
    """X from ``--apply``: a JSON file (a list of numbers or of rows) or inline numbers, ``,``
    between the features of a node and ``;`` between nodes."""
    if text.endswith(".json") or os.path.isfile(text):
        try:
            with open(text, encoding="utf-8") as handle:
                value = json.load(handle)
        except FileNotFoundError:
            raise UsageError(f"--apply: file {text!r} not found.") from None
        except json.JSONDecodeError as error:
            raise UsageError(f"--apply: {text!r} is not valid JSON (line {error.lineno}, column "
                             f"{error.colno}: {error.msg}).") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--apply: cannot read {text!r}: {error}") from None
        if isinstance(value, dict) and set(value) == {"X"}:
            value = value["X"]
        if not isinstance(value, list) or not value:
            raise UsageError(f"--apply: {text!r} must hold a JSON list with one value (or one "
                             "row of features) per node, such as [1, 0, 2].")
        return value
    rows = [row.strip() for row in text.split(";")]
    try:
        values = [[_number(item) for item in row.split(",")] for row in rows]
    except ValueError:
        raise UsageError(f"--apply takes numbers such as \"1,0,2,0,1\" (one per node), "
                         f"\"1,0; 0,1; ...\" (one row per node) or a JSON file, got {text!r}."
                         ) from None
    return values if ";" in text else values[0]


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _as_rows(values) -> list:
    return [row if isinstance(row, list) else [row] for row in values]


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"the power must be >= 0, got {value}")
    return value
