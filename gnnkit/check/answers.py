"""Check a set of homework answers (A, A^n, D, L) about one graph at once.

:func:`check_answers` picks the right check for each answer key, computes the right matrix
from the adjacency matrix, and returns one :class:`AnswersReport`; ``gnnkit matrices --check``
prints it, and a notebook can show it the same way.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from .._validate import as_matrix
from ..matrices import degree_matrix, exact_matrix_power, laplacian
from .entries import MalformedAnswerError
from .matrices import check_adjacency, check_laplacian, check_matrix
from .report import CheckReport

__all__ = ["ANSWER_KEYS", "AnswersReport", "check_answers"]

#: The answer keys: the adjacency matrix, any power of it, the degree matrix, the Laplacian.
ANSWER_KEYS = ('"A"', '"A^n" (e.g. "A^2")', '"D"', '"L"')
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
                  source: str | None = None) -> AnswersReport:
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

    Raises:
        ValueError: an unknown key, or :class:`MalformedAnswerError` for an answer that is not
            a matrix of numbers (naming the key, and ``source`` when given).
    """
    if not isinstance(answers, Mapping) or not answers:
        raise ValueError(f"answers must be a non-empty mapping of {', '.join(ANSWER_KEYS)} to "
                         "matrices, such as {\"A\": [[0, 1], [1, 0]]}.")
    A = as_matrix(adjacency, "adjacency")
    reports = {}
    for key, answer in answers.items():
        where = f"answer {key!r}" + (f" in {source!r}" if source else "")
        try:
            reports[key] = _check_one(key, answer, A, laplacian_kind, directed, one_indexed)
        except MalformedAnswerError as error:
            base = 1 if one_indexed else 0
            raise MalformedAnswerError(
                f"{where} (rows and columns counted from {base}): {error}") from None
        except _UnknownKey:
            raise ValueError(f"unknown {where}; use the keys {', '.join(ANSWER_KEYS)}.") from None
    return AnswersReport(reports)


class _UnknownKey(Exception):
    pass


def _check_one(key: str, answer, A, laplacian_kind, directed: bool,
               one_indexed: bool) -> CheckReport:
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
