"""Check a hand-computed adjacency matrix, Laplacian or any matrix, and explain the mistakes.

Each ``check_*`` function returns a :class:`CheckReport`: ``report.ok`` (also ``bool(report)``)
tells whether the matrix is right, ``report.problems`` lists what is wrong, one line each, and
``print(report)`` (or showing it in Jupyter) gives a verdict and a bullet list.

Entries are written like Python indexing, ``A[2, 0]`` = row 2, column 0, and rows and columns
are counted from 0 (row 0 is node 1 of a figure numbered from 1). Pass ``one_indexed=True`` to
count them from 1 instead, as in the figure; the report says which numbering it uses.

Convention: ``A[i, j] = 1`` for an edge j -> i (rows are receivers); for an undirected graph
A is symmetric. Floats are compared with a tolerance of ``1e-6 * max(1, largest |entry|)``, so a
student's ``0.5`` and ``1/2`` (or ``0.333333`` and ``1/3``) are the same.
"""

from __future__ import annotations

import html

import torch
from torch import Tensor

from ._validate import as_matrix

__all__ = ["CheckReport", "check_adjacency", "check_laplacian", "check_matrix"]

MAX_SHOWN = 20
RELATIVE_TOLERANCE = 1e-6


class CheckReport:
    """The result of a check: ``ok``, ``problems`` (list of one-line str) and a readable text.

    ``str(report)`` is a verdict line followed by one bullet per problem (the first
    ``MAX_SHOWN``, then "... and K more"); ``_repr_html_`` shows the same in Jupyter.
    ``bool(report)`` is ``report.ok``.
    """

    def __init__(self, name: str, problems: list[str], *, one_indexed: bool = False):
        self.name = name
        self.problems = list(problems)
        self.one_indexed = one_indexed

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    @property
    def verdict(self) -> str:
        if self.ok:
            return f"{self.name} is correct."
        count = len(self.problems)
        base = 1 if self.one_indexed else 0
        return (
            f"{self.name} is wrong: {count} problem{'s' if count != 1 else ''} "
            f"(rows and columns counted from {base}):"
        )

    def _shown(self) -> list[str]:
        shown = self.problems[:MAX_SHOWN]
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_SHOWN} more")
        return shown

    def __str__(self) -> str:
        return "\n".join([self.verdict] + [f"  - {line}" for line in self._shown()])

    def __repr__(self) -> str:
        return f"CheckReport(name={self.name!r}, ok={self.ok}, problems={len(self.problems)})"

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.ok else "#c62828"
        mark = "&#10004;" if self.ok else "&#10008;"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self._shown())
        body = f"<ul style='margin:4px 0'>{items}</ul>" if items else ""
        return (
            f"<div style='border-left:4px solid {colour};padding:4px 8px'>"
            f"<b style='color:{colour}'>{mark} {html.escape(self.verdict)}</b>{body}</div>"
        )


def check_adjacency(
    M, *, undirected: bool = True, expected=None, name: str = "A", one_indexed: bool = False
) -> CheckReport:
    """Check an adjacency matrix [N, N] and explain what is wrong.

    Finds: a matrix that is not square or not numbers; entries other than 0/1; self-loops
    (non-zero diagonal, naming the node); for ``undirected=True`` a missing symmetric entry
    (each unordered pair reported once); and, when ``expected`` is given, a wrong shape and every
    entry that differs from it (a missing or an extra edge). A property the expected matrix
    itself lacks (a self-loop there, a directed edge, a weight) is not reported as a mistake.
    """
    problems: list[str] = []
    A, early = _parse(M, name, problems, square=True)
    if early:
        return CheckReport(name, problems, one_indexed=one_indexed)
    E = None if expected is None else as_matrix(expected, "expected")
    tol = _tolerance(A, E)
    at = _indexer(name, one_indexed)
    node = _node_namer(one_indexed)
    size = A.size(0)
    same_shape = E is not None and E.shape == A.shape

    if E is None or _is_binary(E, tol):
        for i, j in _nonzero(~(_close(A, 0, tol) | _close(A, 1, tol))):
            problems.append(
                f"{at(i, j)} = {_fmt(A[i, j])}: an adjacency matrix holds only 0 (no edge) "
                "and 1 (edge)."
            )
    loops = set()
    for i in range(size):
        if not _close(A[i, i], 0, tol) and not (same_shape and not _close(E[i, i], 0, tol)):
            loops.add((i, i))
            problems.append(
                f"{at(i, i)} = {_fmt(A[i, i])}: {node(i)} has a self-loop; the diagonal must be 0 "
                "(a node is not its own neighbour)."
            )
    if undirected and (E is None or _is_symmetric(E, tol)):
        asymmetric = torch.triu(~_close(A, A.t(), tol), diagonal=1)
        for i, j in _nonzero(asymmetric):
            problems.append(
                f"{name} is not symmetric: {at(i, j)} = {_fmt(A[i, j])} but {at(j, i)} = "
                f"{_fmt(A[j, i])} (an undirected edge appears in both rows)."
            )
    if E is not None:
        if not same_shape:
            problems.append(_shape_problem(name, A, E))
        else:
            for i, j in _nonzero(~_close(A, E, tol)):
                if (i, j) in loops:  # already explained as a self-loop
                    continue
                problems.append(_adjacency_difference(at, node, i, j, A, E, tol, undirected))
    return CheckReport(name, problems, one_indexed=one_indexed)


def check_laplacian(
    M, *, adjacency=None, name: str = "L", one_indexed: bool = False
) -> CheckReport:
    """Check a Laplacian ``L = D - A`` [N, N] (the unnormalised one) and explain what is wrong.

    Finds: a matrix that is not square or not numbers; a non-symmetric L (each pair once; only
    checked when ``adjacency`` is not given or is symmetric); a row that does not sum to 0,
    with its sum and what the diagonal ``L[i, i]`` should be (minus the sum of the
    off-diagonal entries of row i); off-diagonal entries other than 0 and -1. With
    ``adjacency`` A also: a wrong shape, a diagonal that is not the degree of the node in A
    (row sum of A), and off-diagonal entries that differ from ``-A``. For the normalised
    Laplacians use :func:`check_matrix` with ``gnnkit.laplacian(A, "sym")`` or ``"rw"``.
    """
    problems: list[str] = []
    L, early = _parse(M, name, problems, square=True)
    if early:
        return CheckReport(name, problems, one_indexed=one_indexed)
    A = None if adjacency is None else as_matrix(adjacency, "adjacency")
    if A is not None and A.shape != L.shape:
        problems.append(_shape_problem(name, L, A, what="the adjacency matrix"))
        A = None
    tol = _tolerance(L, A)
    at = _indexer(name, one_indexed)
    node = _node_namer(one_indexed)
    size = L.size(0)
    off_diagonal = ~torch.eye(size, dtype=torch.bool)

    if A is None or _is_symmetric(A, tol):
        asymmetric = torch.triu(~_close(L, L.t(), tol), diagonal=1)
        for i, j in _nonzero(asymmetric):
            problems.append(
                f"{name} is not symmetric: {at(i, j)} = {_fmt(L[i, j])} but {at(j, i)} = "
                f"{_fmt(L[j, i])} (an undirected edge gives -1 in both places)."
            )
    row_sums = L.sum(dim=1)
    for i in range(size):
        if not _close(row_sums[i], 0, tol * max(size, 1)):
            others = row_sums[i] - L[i, i]
            problems.append(
                f"row {_label(i, one_indexed)} of {name} sums to {_fmt(row_sums[i])}, not 0: the "
                f"diagonal {at(i, i)} = {_fmt(L[i, i])} should be minus the sum of the other "
                f"entries of the row, i.e. {_fmt(-others)} (the degree)."
            )
    if A is None:
        wrong = off_diagonal & ~(_close(L, 0, tol) | _close(L, -1, tol))
        for i, j in _nonzero(wrong):
            problems.append(
                f"{at(i, j)} = {_fmt(L[i, j])}: an off-diagonal entry of L = D - A is -1 (edge) "
                "or 0 (no edge)."
            )
    else:
        a_at = _indexer("A", one_indexed)
        for i, j in _nonzero(off_diagonal & ~_close(L, -A, tol)):
            problems.append(
                f"{at(i, j)} = {_fmt(L[i, j])} but {a_at(i, j)} = {_fmt(A[i, j])}, so "
                f"{at(i, j)} should be {_fmt(-A[i, j])} (L = D - A)."
            )
        degrees = A.sum(dim=1)
        for i in range(size):
            want = degrees[i] - A[i, i]
            if not _close(L[i, i], want, tol):
                loop = "" if _close(A[i, i], 0, tol) else f" minus its self-loop {_fmt(A[i, i])}"
                problems.append(
                    f"{at(i, i)} = {_fmt(L[i, i])} but {node(i)} has degree {_fmt(degrees[i])} in "
                    f"A (row {_label(i, one_indexed)} of A sums to {_fmt(degrees[i])}), so "
                    f"{at(i, i)} should be {_fmt(want)} (the degree{loop})."
                )
    return CheckReport(name, problems, one_indexed=one_indexed)


def check_matrix(M, expected, name: str = "M", *, one_indexed: bool = False) -> CheckReport:
    """Compare any matrix with the expected one: a wrong shape, or every entry that differs
    (row, column, what it is and what it should be)."""
    problems: list[str] = []
    got, early = _parse(M, name, problems, square=False)
    if early:
        return CheckReport(name, problems, one_indexed=one_indexed)
    E = as_matrix(expected, "expected", square=False)
    if got.shape != E.shape:
        problems.append(_shape_problem(name, got, E))
        return CheckReport(name, problems, one_indexed=one_indexed)
    at = _indexer(name, one_indexed)
    for i, j in _nonzero(~_close(got, E, _tolerance(got, E))):
        problems.append(f"{at(i, j)} = {_fmt(got[i, j])} but expected {_fmt(E[i, j])}.")
    return CheckReport(name, problems, one_indexed=one_indexed)


# ---------------------------------------------------------------------- helpers
def _parse(M, name: str, problems: list[str], *, square: bool) -> tuple[Tensor | None, bool]:
    """M as a float tensor, or record why it is not a usable matrix (then early=True)."""
    try:
        matrix = as_matrix(M, name, square=False)
    except (TypeError, ValueError) as error:
        problems.append(str(error))
        return None, True
    if matrix.numel() == 0:
        problems.append(f"{name} is empty: write one row per node, e.g. [[0, 1], [1, 0]].")
        return None, True
    if square and matrix.size(0) != matrix.size(1):
        rows, cols = matrix.shape
        problems.append(
            f"{name} has {rows} rows and {cols} columns but must be square: one row and one "
            "column per node."
        )
        return None, True
    return matrix.double(), False


def _tolerance(M: Tensor, other: Tensor | None) -> float:
    scale = float(M.abs().max()) if M.numel() else 0.0
    if other is not None and other.numel():
        scale = max(scale, float(other.abs().max()))
    return RELATIVE_TOLERANCE * max(1.0, scale)


def _close(a, b, tol: float):
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return (a - b.to(a.dtype)).abs() <= tol
    return abs(a - b) <= tol


def _is_binary(M: Tensor, tol: float) -> bool:
    M = M.double()
    return bool((_close(M, 0, tol) | _close(M, 1, tol)).all())


def _is_symmetric(M: Tensor, tol: float) -> bool:
    M = M.double()
    return bool(_close(M, M.t(), tol).all())


def _nonzero(mask: Tensor) -> list[tuple[int, int]]:
    return [tuple(pair) for pair in torch.nonzero(mask).tolist()]


def _fmt(value) -> str:
    value = float(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _label(i: int, one_indexed: bool) -> int:
    return i + 1 if one_indexed else i


def _indexer(name: str, one_indexed: bool):
    return lambda i, j: f"{name}[{_label(i, one_indexed)}, {_label(j, one_indexed)}]"


def _node_namer(one_indexed: bool):
    return lambda i: f"node {_label(i, one_indexed)}"


def _shape_problem(name: str, got: Tensor, want: Tensor, what: str = "expected") -> str:
    return (
        f"{name} has shape {got.size(0)} x {got.size(1)} but {what} is {want.size(0)} x "
        f"{want.size(1)} (one row and one column per node: check the number of nodes)."
    )


def _adjacency_difference(at, node, i, j, A, E, tol, undirected) -> str:
    """Explain one entry of A that differs from the expected one as a missing/extra edge."""
    edge = (
        f"the edge between {node(j)} and {node(i)}" if undirected
        else f"the edge {node(j)} -> {node(i)}"
    )
    got, want = _fmt(A[i, j]), _fmt(E[i, j])
    if _close(E[i, j], 1, tol) and _close(A[i, j], 0, tol):
        return f"{at(i, j)} = 0 but should be 1: {edge} is missing."
    if _close(E[i, j], 0, tol) and _close(A[i, j], 1, tol):
        return f"{at(i, j)} = 1 but should be 0: there is no {edge.removeprefix('the ')}."
    return f"{at(i, j)} = {got} but expected {want}."
