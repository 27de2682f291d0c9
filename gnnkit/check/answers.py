"""Check a set of homework answers (A, A^n, D, L) about one graph at once.

:func:`check_answers` picks the right check for each answer key, computes the right matrix
from the adjacency matrix, and returns one :class:`AnswersReport`; ``gnnkit matrices --check``
prints it, and a notebook can show it the same way.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from torch import Tensor

from .._validate import as_matrix
from ..matrices import degree_matrix, exact_matrix_power, laplacian
from .entries import MalformedAnswerError, agrees, is_whole, read_matrix, reference_slack
from .matrices import check_adjacency, check_laplacian, check_matrix
from .report import CheckReport
from .step import as_column, check_laplacian_step

__all__ = ["ANSWER_KEYS", "AnswersReport", "check_answers", "looks_one_indexed"]

#: The answer keys: the adjacency matrix, any power of it, the degree matrix, the Laplacian.
ANSWER_KEYS = ('"A"', '"A^n" (e.g. "A^2")', '"D"', '"L"', '"LX"')
_POWER_KEY = re.compile(r"^A\^(\d+)$")


class AnswersReport:
    """The reports of several answers: ``reports`` {key: :class:`CheckReport`}, ``ok`` (all
    right; also ``bool(report)``), ``wrong`` (how many are wrong) and ``str()`` with a verdict
    line at the end."""

    def __init__(self, reports: dict[str, CheckReport]):
        self.reports = dict(reports)
        self.wrong = sum(not report.ok for report in self.reports.values())
        self.ok = self.wrong == 0

    def __bool__(self) -> bool:
        return self.ok

    @property
    def verdict(self) -> str:
        """One line: how many answers are right or wrong."""
        total = len(self.reports)
        if self.ok:
            return "Verdict: the answer is correct." if total == 1 else (
                f"Verdict: all {total} answers are correct.")
        if total == 1:
            return "Verdict: the answer is wrong."
        return f"Verdict: {self.wrong} of {total} answers wrong."

    def __str__(self) -> str:
        return "\n".join([*(str(report) for report in self.reports.values()), "", self.verdict])

    def _repr_html_(self) -> str:
        parts = [report._repr_html_() for report in self.reports.values()]
        return "".join(parts) + f"<p><b>{html.escape(self.verdict)}</b></p>"


def check_answers(answers: Mapping[str, object], adjacency, *, laplacian_kind: str | None = None,
                  directed: bool = False, one_indexed: bool = False,
                  source: str | None = None, features=None) -> AnswersReport:
    """Check each answer against the matrix it names, computed from ``adjacency``.

    Args:
        answers: {key: matrix} with keys ``"A"``, ``"A^n"`` (any n >= 0), ``"D"`` and ``"L"``;
            each matrix a list of rows (or a numpy array or tensor).
        adjacency: the right A [N, N] (``A[i, j] = 1`` for an edge j -> i), e.g.
            ``gnnkit.adjacency(edges)``.
        laplacian_kind: which Laplacian ``"L"`` is: None for ``D - A`` (checked exactly, its
            mistakes named as missing or extra edges), ``"sym"`` or ``"rw"`` for the normalised
            ones (compared to the decimals written).
        directed: the graph is directed (A need not be symmetric).
        one_indexed: count rows and columns from 1 in every message, as in the figure.
        source: where the answers come from (a file name), named in errors.
        features: X [N] or [N, F], needed by the key ``"LX"`` (the Laplacian applied to X,
            checked by :func:`check_laplacian_step` with ``laplacian_kind``).

    Raises:
        ValueError: an unknown key, ``"LX"`` without ``features``, or
            :class:`MalformedAnswerError` for an answer that is not a matrix of numbers (naming
            the key, and ``source`` when given).
    """
    if not isinstance(answers, Mapping) or not answers:
        raise ValueError(f"answers must be a non-empty mapping of {', '.join(ANSWER_KEYS)} to "
                         "matrices, such as {\"A\": [[0, 1], [1, 0]]}.")
    A = as_matrix(adjacency, "adjacency")
    reports = {}
    for key, answer in answers.items():
        where = f"answer {key!r}" + (f" in {source!r}" if source else "")
        try:
            if key == "LX" and features is None:
                raise ValueError(f"{where} is L X, which needs the features X: pass them with "
                                 "--apply X.json (features=X in Python).")
            shifted = None if one_indexed else _one_indexed_shape(key, answer, A)
            reports[key] = shifted if shifted is not None else _check_one(
                key, answer, A, laplacian_kind, directed, one_indexed, features)
        except MalformedAnswerError as error:
            base = 1 if one_indexed else 0
            raise MalformedAnswerError(
                f"{where} (rows and columns counted from {base}): {error}") from None
        except _UnknownKey:
            raise ValueError(f"unknown {where}; use the keys {', '.join(ANSWER_KEYS)}.") from None
    return AnswersReport(reports)


class _UnknownKey(Exception):
    pass


_LAPLACIANS = {
    None: ("D - A", "none"),
    "sym": ("the symmetric normalised Laplacian I - D^-1/2 A D^-1/2", "sym"),
    "rw": ("the random-walk Laplacian I - D^-1 A", "rw"),
}


def _whole_matrix_mistakes(key: str, A, kind: str | None) -> list[tuple[Tensor, str]]:
    """(matrix, sentence) for each whole-matrix mistake an answer ``key`` can make: another
    Laplacian than the one asked for, the sign flipped, A and L swapped, D + A."""
    if key == "A":
        return [(laplacian(A), ("A holds the Laplacian L = D - A, not the adjacency matrix: are "
                               "A and L swapped? A[i, j] = 1 for an edge, 0 elsewhere"))]
    asked, _ = _LAPLACIANS[kind]
    found = []
    for other, (words, flag) in _LAPLACIANS.items():
        if other != kind:
            found.append((laplacian(A.double(), other), (
                f"L is {words}, but the Laplacian asked for is {asked}: check with --laplacian "
                f"{flag} (laplacian_kind={other!r} in Python) if that is the one you meant")))
    flipped = ("L is A - D: the sign is flipped; L = D - A has the degrees on the diagonal and "
               "-1 for each edge" if kind is None else
               f"L is minus {asked}: the sign is flipped; its diagonal holds 1 (0 for an "
               "isolated node) and an edge gives a negative entry")
    found += [
        (-laplacian(A.double(), kind), flipped),
        (A, "L holds A, the adjacency matrix: are A and L swapped? L = D - A"),
        (degree_matrix(A) + A, ("L is D + A: an edge gives -1 in L = D - A (the off-diagonal "
                                "entries are -A[i, j])")),
    ]
    return found


def _whole_matrix_mistake(key: str, answer, A, kind: str | None,
                          one_indexed: bool) -> CheckReport | None:
    """One line when the whole answer is a known other matrix (checked entry by entry, at the
    decimals written), else None."""
    got = read_matrix(answer, key, one_indexed=one_indexed)
    right = A if key == "A" else laplacian(A.double(), kind)
    for matrix, sentence in _whole_matrix_mistakes(key, A, kind):
        if _same(got, matrix) and not _same(read_matrix(right, "expected"), matrix):
            base = 1 if one_indexed else 0
            return CheckReport(key, [sentence + "."],
                               scope=f" (rows and columns counted from {base})")
    return None


def _same(got, matrix) -> bool:
    """``got`` (rows) equals ``matrix`` exactly when it is whole, else to the decimals written."""
    want = read_matrix(matrix, "expected")
    if len(got) != len(want) or any(len(row) != len(want[0]) for row in got):
        return False
    exact = is_whole(want)
    slack = reference_slack(matrix)
    return all(agrees(g, w, exact=exact, slack=slack)
               for grow, wrow in zip(got, want) for g, w in zip(grow, wrow))


def looks_one_indexed(A) -> bool:
    """Whether a graph read with 0-based ids looks numbered from 1: node 0 has no edges at
    all (row 0 and column 0 of A are zero) and there are other nodes, so its largest id is
    its number of real nodes."""
    A = as_matrix(A, "A")
    return A.size(0) >= 2 and not A[0].any() and not A[:, 0].any()


def _one_indexed_shape(key: str, answer, A) -> CheckReport | None:
    """The report for an answer one node smaller than A when the graph looks 1-indexed (the
    file was read from 0, so node 0 is an extra isolated node), else None."""
    size = A.size(0)
    known = key in ("A", "D", "L", "LX") or (isinstance(key, str) and _POWER_KEY.match(key))
    if not known or not looks_one_indexed(A):
        return None
    rows = read_matrix(as_column(answer) if key == "LX" else answer, key)
    cols = len(rows[0]) if rows else 0
    if len(rows) != size - 1 or (key != "LX" and cols != size - 1):
        return None
    written = (f"{len(rows)} values" if cols == 1 else f"{len(rows)} rows") if key == "LX" else (
        f"shape {len(rows)} x {cols}")
    return CheckReport(key, [
        (f"{key} has {written} but the graph read has {size} nodes (0..{size - 1}): its node 0 "
         f"has no edges and its ids run 1..{size - 1}, so the file looks 1-indexed (numbered "
         "from 1); read it with --one-indexed (one_indexed=True in Python) and check again.")
    ])


def _check_one(key: str, answer, A, laplacian_kind, directed: bool,
               one_indexed: bool, features) -> CheckReport:
    if key == "LX":
        return check_laplacian_step(answer, A, features, laplacian_kind, name=key,
                                    one_indexed=one_indexed)
    if key in ("A", "L"):
        mistake = _whole_matrix_mistake(key, answer, A, laplacian_kind, one_indexed)
        if mistake is not None:
            return mistake
    if key == "A":
        return check_adjacency(answer, undirected=not directed, expected=A,
                               one_indexed=one_indexed)
    if key == "D":
        return check_matrix(answer, degree_matrix(A), key, one_indexed=one_indexed)
    if key == "L" and laplacian_kind is None:
        return check_laplacian(answer, adjacency=A, one_indexed=one_indexed)
    if key == "L":
        expected = laplacian(A.double(), laplacian_kind)
        return check_matrix(answer, expected, key, one_indexed=one_indexed)
    power = _POWER_KEY.match(key) if isinstance(key, str) else None
    if power is None:
        raise _UnknownKey
    expected = exact_matrix_power(A, int(power.group(1)))
    return check_matrix(answer, expected, key, one_indexed=one_indexed)
