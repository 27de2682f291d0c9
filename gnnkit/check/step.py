"""Check a hand-computed Laplacian step ``L X`` and explain what is wrong.

The right value is :func:`gnnkit.laplacian_step`'s: ``(L X)_i = sum_{j in N(i)}
(x_i - x_j)`` for ``L = D - A``, compared exactly when A and X are whole numbers, and to the
decimals written otherwise (as the matrix checker does). A whole answer computed the wrong way
(another Laplacian than the one asked for, ``A X``, ``D X``, or the sign flipped, ``(A - D)
X``) is said in one line; otherwise each wrong entry is named with its node's sum written out.
"""

from __future__ import annotations

import torch

from .._validate import as_matrix
from ..laplacian_step import as_features, laplacian_step, step_kind
from ..matrices import degree_matrix
from .entries import Rows, agrees, decimals_used, fmt, is_whole, read_matrix, reference_slack
from .report import CheckReport

__all__ = ["check_laplacian_step"]

_KIND_WORDS = {
    "plain": ("L = D - A", "none"),
    "sym": ("the symmetric normalised L = I - D^-1/2 A D^-1/2", "sym"),
    "rw": ("the random-walk L = I - D^-1 A", "rw"),
}


def check_laplacian_step(answer, adjacency, X, kind: str | None = "plain", *, name: str = "LX",
                         one_indexed: bool = False) -> CheckReport:
    """Check ``answer`` = ``L X`` for the Laplacian of ``adjacency`` of ``kind``.

    Args:
        answer: the student's ``L X``: a vector [N] when X is one (a column [N, 1] is accepted
            too) or a matrix [N, F].
        adjacency: the right A [N, N] (``A[i, j] = 1`` for an edge j -> i).
        X: the features the Laplacian was applied to, [N] or [N, F].
        kind: ``"plain"`` (``L = D - A``; also ``None``/``"none"``), ``"sym"`` or ``"rw"``.
        name: what the answer is called in messages.
        one_indexed: count nodes and rows from 1 in every message, as in the figure.

    Returns:
        A :class:`CheckReport`; an answer computed as a whole the wrong way (another Laplacian,
        ``A X``, ``D X``, ``(A - D) X``) gets one line, otherwise one line per wrong entry.

    Raises:
        MalformedAnswerError: ``answer`` is not a vector or matrix of numbers.
        ValueError: a bad ``kind``, or X without one value per node of ``adjacency``.
    """
    kind = step_kind(kind)
    A = as_matrix(adjacency, "adjacency")
    step = laplacian_step(A, X, kind, one_indexed=one_indexed)
    want = _rows(step.values)
    got = read_matrix(as_column(answer), name, one_indexed=one_indexed)
    base = 1 if one_indexed else 0
    vector = step.values.dim() == 1
    exact = is_whole(want)
    slack = reference_slack(torch.zeros(1, dtype=torch.float64))

    def same(rows: Rows, reference: Rows) -> bool:
        whole = is_whole(reference)
        return all(agrees(g, w, exact=whole, slack=slack)
                   for grow, wrow in zip(rows, reference) for g, w in zip(grow, wrow))

    shape = _shape_problem(got, want, name, vector)
    if shape:
        return _report(name, [shape], base, got, exact)
    if same(got, want):
        return _report(name, [], base, got, exact)
    for rows, words in _whole_mistakes(A, X, kind, step):
        if not same(want, rows) and same(got, rows):
            return _report(name, [f"{name} is {words}."], base, got, exact)
    problems = []
    for i, (grow, wrow) in enumerate(zip(got, want)):
        for f, (g, w) in enumerate(zip(grow, wrow)):
            if agrees(g, w, exact=exact, slack=slack):
                continue
            at = f"{name}[{i + base}]" if vector else f"{name}[{i + base}, {f + base}]"
            right = fmt(w) if exact else f"{w:.{decimals_used(g)}f}"
            problems.append(f"{at} = {fmt(g)} but should be {right}: {step.explain(i)}.")
    return _report(name, problems, base, got, exact)


def as_column(answer):
    """A flat list of numbers as one column (a vector answer); anything else unchanged."""
    if isinstance(answer, torch.Tensor) and answer.dim() == 1:
        return answer.reshape(-1, 1)
    if hasattr(answer, "ndim") and getattr(answer, "ndim", 0) == 1:
        return answer.reshape(-1, 1)
    if isinstance(answer, (list, tuple)) and answer and all(
            not isinstance(v, (list, tuple)) and not hasattr(v, "__len__") for v in answer):
        return [[v] for v in answer]
    return answer


def _rows(values: torch.Tensor) -> Rows:
    return (values.reshape(-1, 1) if values.dim() == 1 else values).tolist()


def _shape_problem(got: Rows, want: Rows, name: str, vector: bool) -> str | None:
    rows, cols = len(got), len(got[0]) if got else 0
    if (rows, cols) == (len(want), len(want[0])):
        return None
    written = f"{rows} values" if cols == 1 else f"{rows} x {cols}"
    right = f"{len(want)} values (one per node)" if vector else (
        f"{len(want)} x {len(want[0])} (one row per node, one column per feature of X)")
    return f"{name} has {written} but L X has {right}: L X has the shape of X."


def _whole_mistakes(A, X, kind: str, step) -> list[tuple[Rows, str]]:
    """(values, words) for each whole-answer mistake, computed on the same A and X."""
    features, _ = as_features(X, A.size(0))
    exact = step.values.dtype == torch.long
    A_, F = (A, features) if exact else (A.double(), features.double())
    right_words, _ = _KIND_WORDS[kind]
    found = []
    for other in ("plain", "sym", "rw"):
        if other != kind:
            words, flag = _KIND_WORDS[other]
            found.append((_rows(laplacian_step(A, X, other).values),
                          (f"L X for {words}, but the Laplacian asked for is {right_words}; "
                          f"check with --laplacian {flag} (kind={other!r} in Python) if that "
                          "is the one you meant")))
    if kind == "plain":
        found += [
            (_rows(-step.values), ("(A - D) X: the sign is flipped; L X = D X - A X = "
                                  "sum_{j in N(i)} (x_i - x_j), positive where x_i is larger "
                                  "than its neighbours")),
            ((A_ @ F).tolist(), ("A X (the sum of the neighbours' values); L X = D X - A X "
                                "subtracts it from deg(i) x_i")),
            ((degree_matrix(A_) @ F).tolist(), ("D X (deg(i) x_i); the term - A X (minus "
                                               "the sum of the neighbours' values) is missing")),
        ]
    return found


def _report(name: str, problems: list[str], base: int, got: Rows, exact: bool) -> CheckReport:
    correct = f"{name} is correct."
    if not exact:
        used = sorted({decimals_used(x) for row in got for x in row})
        shown = str(used[0]) if len(used) == 1 else f"{used[0]} to {used[-1]}"
        correct = (f"{name} is correct to the precision written ({shown} decimals; at least 2 "
                   "are needed).")
    return CheckReport(name, problems, correct=correct, scope=f" (nodes counted from {base})")
