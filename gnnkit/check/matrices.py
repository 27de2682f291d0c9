"""Check a hand-computed adjacency matrix, Laplacian or any matrix, and explain the mistakes.

Each ``check_*`` function returns a :class:`CheckReport`: ``report.ok`` (also ``bool(report)``)
tells whether the matrix is right, ``report.problems`` lists what is wrong, one line each, and
``print(report)`` (or showing it in Jupyter) gives a verdict and a bullet list.

Entries are written like Python indexing, ``A[2, 0]`` = row 2, column 0, and rows and columns
are counted from 0 (row 0 is node 1 of a figure numbered from 1). Pass ``one_indexed=True`` to
count them from 1 instead, as in the figure; every message, including the ones about malformed
input, uses the same numbering.

Convention: ``A[i, j] = 1`` for an edge j -> i (rows are receivers); for an undirected graph
A is symmetric. Whole-number answers (A, A^n, D, L = D - A) are compared exactly. A decimal
answer (a normalised Laplacian) is right when it agrees with the right value to the decimals it
was written with, at least 2 (``-0.4082`` and ``-0.41`` for ``-1/sqrt(6)``); the verdict says
which precision was used.

A matrix that is not a matrix of numbers (text, ragged rows, NaN, a single number, a dict)
raises :class:`MalformedAnswerError` (a ``ValueError``): it is bad input, not a wrong answer.
"""

from __future__ import annotations

from .._validate import as_matrix
from ..matrices import laplacian
from .entries import (
    Rows,
    agrees,
    decimals_used,
    fmt,
    is_whole,
    read_matrix,
    reference_slack,
)
from .report import CheckReport

__all__ = ["check_adjacency", "check_laplacian", "check_matrix"]

TRANSPOSE_HINT = (
    "A[i, j] = 1 for an edge j -> i (rows are receivers), so row i lists the edges that "
    "arrive at node i"
)


def check_matrix(M, expected, name: str = "M", *, one_indexed: bool = False) -> CheckReport:
    """Compare any matrix with the expected one: a wrong shape, a transposed matrix, or every
    entry that differs (row, column, what it is and what it should be).

    Whole-number ``expected`` is compared exactly (Python integers, any size); decimals to the
    precision each answer entry was written with (see the module docstring).
    """
    got = read_matrix(M, name, one_indexed=one_indexed)
    want = read_matrix(expected, "expected")
    cmp = _Comparison(name, one_indexed, got, want, reference_slack(expected))
    problems = cmp.unusable(square=False)
    if problems:
        return cmp.report(problems)
    wrong = cmp.wrong_entries(want)
    if wrong and cmp.is_transpose():
        return cmp.report([cmp.transpose_problem()])
    for i, j in wrong:
        problems.append(cmp.difference(i, j, want))
    return cmp.report(problems)


def check_adjacency(
    M, *, undirected: bool = True, expected=None, name: str = "A", one_indexed: bool = False
) -> CheckReport:
    """Check an adjacency matrix [N, N] and explain what is wrong.

    Finds: a matrix that is not square; entries other than 0/1; self-loops (non-zero diagonal,
    naming the node); for ``undirected=True`` a missing symmetric entry (each unordered pair
    once). With ``expected``: a wrong shape, a matrix written in the transposed convention
    (said once), and every entry that differs from it as a missing or an extra edge (an
    undirected edge missing in both places is one problem). A property the expected matrix
    itself has (a self-loop there, a directed edge, a weight) is not reported as a mistake.
    """
    got = read_matrix(M, name, one_indexed=one_indexed)
    want = None if expected is None else _square_reference(expected, "expected")
    slack = reference_slack(expected)
    cmp = _Comparison(name, one_indexed, got, want, slack)
    problems = cmp.unusable(square=True)
    if problems:
        return cmp.report(problems)
    size = len(got)
    binary = want is None or all(x in (0, 1) for row in want for x in row)
    same_shape = want is not None and len(want) == size
    if same_shape and cmp.wrong_entries(want) and cmp.is_transpose():
        return cmp.report([cmp.transpose_problem()])
    explained = set()
    for i in range(size):
        if got[i][i] != 0 and not (same_shape and want[i][i] != 0):
            explained.add((i, i))
            problems.append(
                f"{cmp.at(i, i)} = {fmt(got[i][i])}: {cmp.node(i)} has a self-loop; the "
                "diagonal must be 0 (a node is not its own neighbour)."
            )
    if want is None:
        if binary:
            for i, j in _positions(size, size):
                if got[i][j] not in (0, 1) and (i, j) not in explained:
                    problems.append(f"{cmp.at(i, j)} = {fmt(got[i][j])}: an adjacency matrix "
                                    "holds only 0 (no edge) and 1 (edge).")
        if undirected:
            problems += _asymmetric_pairs(cmp, "an undirected edge appears in both rows")
        return cmp.report(problems)
    wrong = [pos for pos in cmp.wrong_entries(want) if pos not in explained]
    edges = _EdgeWords(cmp, undirected=undirected and _symmetric(want), binary=binary)
    problems += edges.explain(wrong, want, value_of_edge=1)
    return cmp.report(problems)


def check_laplacian(
    M, *, adjacency=None, name: str = "L", one_indexed: bool = False
) -> CheckReport:
    """Check a Laplacian ``L = D - A`` [N, N] (the unnormalised one) and explain what is wrong.

    With ``adjacency`` A, L is compared exactly with ``D - A`` (D the row sums of A): a wrong
    shape, a transposed L (said once), each off-diagonal entry that differs from ``-A`` as a
    missing or an extra edge (an undirected one once), each diagonal entry that is not the
    degree of its node.

    Without it: off-diagonal entries other than 0 and -1; an entry that breaks the symmetry
    and makes its row not sum to 0 (that entry is named); a row that does not sum to 0, with
    both possible causes (the diagonal is not the degree, or an edge is missing or extra).
    For the normalised Laplacians use :func:`check_matrix` with ``gnnkit.laplacian(A, "sym")``.
    """
    got = read_matrix(M, name, one_indexed=one_indexed)
    A = None if adjacency is None else _square_reference(adjacency, "adjacency")
    want = None if A is None else read_matrix(laplacian(as_matrix(adjacency, "adjacency")),
                                              "expected")
    cmp = _Comparison(name, one_indexed, got, want, reference_slack(adjacency))
    problems = cmp.unusable(square=True, what="the adjacency matrix")
    if problems:
        return cmp.report(problems)
    if want is None:
        return cmp.report(_laplacian_alone(cmp, got))
    wrong = cmp.wrong_entries(want)
    if wrong and cmp.is_transpose():
        return cmp.report([cmp.transpose_problem()])
    off_diagonal = [(i, j) for i, j in wrong if i != j]
    edges = _EdgeWords(cmp, undirected=_symmetric(A), binary=True)
    problems += edges.explain(off_diagonal, want, value_of_edge=-1)
    for i, j in wrong:
        if i == j:
            degree = sum(A[i])
            loop = "" if A[i][i] == 0 else f" minus its self-loop {fmt(A[i][i])}"
            problems.append(
                f"{cmp.at(i, i)} = {fmt(got[i][i])} but should be {fmt(want[i][i])}: "
                f"{cmp.node(i)} has degree {fmt(degree)} (row {cmp.label(i)} of A sums to "
                f"{fmt(degree)}), and the diagonal of L = D - A is the degree{loop}."
            )
    return cmp.report(problems)


# ---------------------------------------------------------------------- helpers
def _square_reference(matrix, name: str) -> Rows:
    """The right matrix the caller passes: it must be square (an answer of the wrong shape
    is a mistake to explain, a reference of the wrong shape is a wrong argument)."""
    rows = read_matrix(matrix, name)
    if any(len(row) != len(rows) for row in rows):
        raise ValueError(f"{name} must be a square N x N matrix, got {len(rows)} rows of "
                         f"{len(rows[0]) if rows else 0} entries.")
    return rows


class _Comparison:
    """An answer ``got`` and the right matrix ``want`` (or None), with the numbering used in
    messages and the comparison rule (exact for whole numbers, else to the decimals written)."""

    def __init__(self, name: str, one_indexed: bool, got: Rows, want: Rows | None, slack: float):
        self.name, self.one_indexed = name, one_indexed
        self.got, self.want, self.slack = got, want, slack
        self.exact = want is None or is_whole(want)

    def label(self, i: int) -> int:
        return i + 1 if self.one_indexed else i

    def at(self, i: int, j: int) -> str:
        return f"{self.name}[{self.label(i)}, {self.label(j)}]"

    def node(self, i: int) -> str:
        return f"node {self.label(i)}"

    def report(self, problems: list[str]) -> CheckReport:
        correct = f"{self.name} is correct."
        if not self.exact:
            used = sorted({decimals_used(x) for row in self.got for x in row})
            shown = str(used[0]) if len(used) == 1 else f"{used[0]} to {used[-1]}"
            correct = (f"{self.name} is correct to the precision written ({shown} decimals; "
                       "at least 2 are needed).")
        base = 1 if self.one_indexed else 0
        return CheckReport(self.name, problems, correct=correct,
                           scope=f" (rows and columns counted from {base})")

    def unusable(self, *, square: bool, what: str = "expected") -> list[str]:
        """Why ``got`` cannot be compared at all (empty, not square, wrong shape), or []."""
        rows = len(self.got)
        cols = len(self.got[0]) if rows else 0
        if rows == 0 or cols == 0:
            return [f"{self.name} is empty: write one row per node, e.g. [[0, 1], [1, 0]]."]
        if square and rows != cols:
            return [(f"{self.name} has {rows} rows and {cols} columns but must be square: one "
                    "row and one column per node.")]
        if self.want is not None and (rows, cols) != (len(self.want), len(self.want[0])):
            return [(f"{self.name} has shape {rows} x {cols} but {what} is {len(self.want)} x "
                    f"{len(self.want[0])} (one row and one column per node: check the number "
                    "of nodes).")]
        return []

    def agrees(self, got, want) -> bool:
        return agrees(got, want, exact=self.exact, slack=self.slack)

    def wrong_entries(self, want: Rows) -> list[tuple[int, int]]:
        return [(i, j) for i, j in _positions(len(want), len(want[0]))
                if not self.agrees(self.got[i][j], want[i][j])]

    def is_transpose(self) -> bool:
        """``got`` is the transpose of a non-symmetric ``want`` (the other convention)."""
        size = len(self.want)
        if size != len(self.want[0]) or _symmetric(self.want):
            return False
        return all(self.agrees(self.got[i][j], self.want[j][i]) for i, j in _positions(size, size))

    def transpose_problem(self) -> str:
        return (f"{self.name} is the transpose of the expected matrix (row i written as column "
                f"i): {TRANSPOSE_HINT}.")

    def difference(self, i: int, j: int, want: Rows) -> str:
        got, right = self.got[i][j], want[i][j]
        if self.exact:
            return f"{self.at(i, j)} = {fmt(got)} but expected {fmt(right)}."
        places = decimals_used(got)
        return (f"{self.at(i, j)} = {fmt(got)} but expected {right:.{places}f} at {places} "
                f"decimals (exactly {right:.6g}).")


class _EdgeWords:
    """Explain wrong entries of A (an edge is 1) or of L = D - A (an edge is -1) as missing
    or extra edges; for an undirected graph a pair wrong in both places is one problem."""

    def __init__(self, cmp: _Comparison, *, undirected: bool, binary: bool):
        self.cmp, self.undirected, self.binary = cmp, undirected, binary

    def edge(self, i: int, j: int) -> str:
        node = self.cmp.node
        if self.undirected:
            return f"edge between {node(min(i, j))} and {node(max(i, j))}"
        return f"edge {node(j)} -> {node(i)}"

    def explain(self, wrong: list[tuple[int, int]], want: Rows, value_of_edge: int) -> list[str]:
        cmp, got = self.cmp, self.cmp.got
        wrong_set = set(wrong)
        problems = []
        for i, j in wrong:
            pair = self.undirected and (j, i) in wrong_set and got[i][j] == got[j][i]
            if pair and i > j:
                continue  # told with (j, i)
            where = f"{cmp.at(i, j)} and {cmp.at(j, i)}" if pair else cmp.at(i, j)
            is_, right = got[i][j], want[i][j]
            if right == value_of_edge and is_ == 0:
                meaning = f"the {self.edge(i, j)} is missing"
            elif right == 0 and is_ == value_of_edge:
                meaning = f"there is no {self.edge(i, j)}"
            elif self.binary and value_of_edge == 1:
                meaning = "an adjacency matrix holds only 0 (no edge) and 1 (edge)"
            else:
                meaning = "an off-diagonal entry of L = D - A is -A[i, j]"
            if self.undirected and not pair and got[j][i] == right and is_ in (0, value_of_edge):
                meaning += (f" ({cmp.at(j, i)} = {fmt(got[j][i])} is right: an undirected edge "
                            "appears in both rows)")
            problems.append(f"{where} = {fmt(is_)} but should be {fmt(right)}: {meaning}.")
        return problems


def _laplacian_alone(cmp: _Comparison, L: Rows) -> list[str]:
    """What can be said about a 0/1-graph Laplacian without the adjacency matrix."""
    size = len(L)
    problems = []
    for i, j in _positions(size, size):
        if i != j and L[i][j] not in (0, -1):
            problems.append(f"{cmp.at(i, j)} = {fmt(L[i][j])}: an off-diagonal entry of "
                            "L = D - A is -1 (edge) or 0 (no edge).")
        elif i == j and not float(L[i][i]).is_integer():
            problems.append(f"{cmp.at(i, i)} = {fmt(L[i][i])}: the diagonal of L = D - A is a "
                            "degree, a whole number.")
    if problems:
        return problems
    sums = [sum(row) for row in L]
    explained = set()
    for i, j in _positions(size, size):
        if i >= j or L[i][j] == L[j][i]:
            continue
        for a, b in ((i, j), (j, i)):  # is L[a, b] the one entry that breaks row a?
            if sums[a] - L[a][b] + L[b][a] == 0 and sums[b] == 0:
                explained.add(a)
                problems.append(
                    f"{cmp.at(a, b)} = {fmt(L[a][b])} but should be {fmt(L[b][a])} like "
                    f"{cmp.at(b, a)}: with it row {cmp.label(a)} sums to {fmt(sums[a])} instead "
                    f"of 0 ({'a missing' if L[a][b] == 0 else 'an extra'} edge between "
                    f"{cmp.node(min(a, b))} and {cmp.node(max(a, b))} in row {cmp.label(a)})."
                )
                break
        else:
            problems.append(f"{cmp.name} is not symmetric: {cmp.at(i, j)} = {fmt(L[i][j])} but "
                            f"{cmp.at(j, i)} = {fmt(L[j][i])} (an undirected edge gives -1 in "
                            "both places).")
    for i in range(size):
        if sums[i] == 0 or i in explained:
            continue
        minus_ones = sum(1 for j in range(size) if j != i and L[i][j] == -1)
        cause = ("an entry -1 of the row is written as 0 (a missing edge)" if sums[i] > 0
                 else "the row has a -1 for an edge that is not in the graph")
        problems.append(
            f"row {cmp.label(i)} of {cmp.name} sums to {fmt(sums[i])}, not 0: either "
            f"{cmp.at(i, i)} = {fmt(L[i][i])} should be {minus_ones} (the degree: the row has "
            f"{minus_ones} entries -1), or {cause}."
        )
    return problems


def _asymmetric_pairs(cmp: _Comparison, why: str) -> list[str]:
    got = cmp.got
    return [f"{cmp.name} is not symmetric: {cmp.at(i, j)} = {fmt(got[i][j])} but "
            f"{cmp.at(j, i)} = {fmt(got[j][i])} ({why})."
            for i, j in _positions(len(got), len(got)) if i < j and got[i][j] != got[j][i]]


def _symmetric(M: Rows) -> bool:
    return all(M[i][j] == M[j][i] for i, j in _positions(len(M), len(M)))


def _positions(rows: int, cols: int):
    return ((i, j) for i in range(rows) for j in range(cols))
