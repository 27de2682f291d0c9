"""Tests for gnnkit.check (matrices): a wrong answer never passes, a right one never fails, and
every mistake is explained once, naming the entry that is wrong."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from homework_answers import A1, L1
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gnnkit import (
    CheckReport,
    adjacency,
    check_adjacency,
    check_laplacian,
    check_matrix,
    laplacian,
    matrix_power,
)
from gnnkit.check import MalformedAnswerError
from gnnkit.check.entries import decimals_written


def changed(matrix, *edits):
    """A copy of a nested list with ``(row, column, value)`` edits."""
    copy = [list(row) for row in matrix]
    for r, c, value in edits:
        copy[r][c] = value
    return copy


def only(report: CheckReport, words: str) -> str:
    """The single problem containing ``words``."""
    hits = [p for p in report.problems if words in p]
    assert len(hits) == 1, report.problems
    return hits[0]


# ---------------------------------------------------------------------- right answers
@pytest.mark.parametrize(
    "matrix",
    [A1, np.array(A1), torch.tensor(A1), torch.tensor(A1).float(), torch.tensor(A1).to_sparse(),
     sp.csr_matrix(np.array(A1)), np.array(A1, dtype=np.uint64), np.array(A1, dtype=bool)],
    ids=["list", "numpy", "long", "float", "sparse", "scipy", "uint64", "bool"],
)
def test_right_matrices_pass(matrix):
    report = check_adjacency(matrix, expected=A1)
    assert report.ok and bool(report) and report.problems == []
    assert str(report) == "A is correct."
    assert "correct" in report._repr_html_()
    assert check_adjacency(matrix).ok
    assert check_laplacian(L1, adjacency=matrix).ok
    assert check_laplacian(L1).ok
    assert check_matrix(matrix, A1, name="A").ok


# ---------------------------------------------------------------------- exact integers
def test_integer_answers_are_compared_exactly():
    K20 = [[int(i != j) for j in range(20)] for i in range(20)]
    power = matrix_power(K20, 6)
    mine = power.clone()
    mine[0, 1] += 2
    assert only(check_matrix(mine, power, "A^6"), "A^6[0, 1]") == (
        f"A^6[0, 1] = {int(power[0, 1]) + 2} but expected {int(power[0, 1])}."
    )
    report = check_matrix([[10**9, 5], [5, 10**9]], [[10**9, 3], [3, 10**9]])
    assert len(report.problems) == 2 and not report
    assert not check_matrix([[3.000001]], [[3]]).ok
    assert check_matrix([[3.0]], [[3]]).ok
    huge = 413838864706440099  # beyond float precision: off by one is still wrong
    assert not check_matrix([[huge + 1]], [[huge]]).ok
    assert not check_matrix([[float(huge)]], [[huge]]).ok
    assert check_matrix([[10**30]], [[10**30]]).ok  # Python integers of any size


def test_one_huge_entry_does_not_hide_a_missing_edge():
    wrong = torch.tensor(A1)
    wrong[0, 1] = wrong[1, 0] = 0
    wrong[3, 4] = 10**7
    report = check_adjacency(wrong, expected=A1)
    assert "the edge between node 0 and node 1 is missing" in only(report, "A[0, 1] and A[1, 0]")
    assert "only 0 (no edge) and 1 (edge)" in only(report, "A[3, 4] = 10000000")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.data())
def test_any_changed_integer_entry_is_caught(size, data):
    entry = st.integers(-(2**70), 2**70)
    expected = data.draw(st.lists(st.lists(entry, min_size=size, max_size=size),
                                  min_size=size, max_size=size))
    assert check_matrix(expected, expected).ok
    i, j = data.draw(st.integers(0, size - 1)), data.draw(st.integers(0, size - 1))
    delta = data.draw(st.integers(1, 2**70) | st.integers(-(2**70), -1))
    report = check_matrix(changed(expected, (i, j, expected[i][j] + delta)), expected)
    assert f"M[{i}, {j}] = {expected[i][j] + delta} but expected {expected[i][j]}." in (
        report.problems
    )


# ---------------------------------------------------------------------- decimals
def test_printed_decimals_of_a_normalised_laplacian_are_right():
    exact = laplacian(torch.tensor(A1, dtype=torch.float64), "sym")
    four = [[round(v, 4) for v in row] for row in exact.tolist()]
    report = check_matrix(four, exact, "L")
    assert report.ok
    assert str(report) == (
        "L is correct to the precision written (2 to 4 decimals; at least 2 are needed)."
    )
    two = [[round(v, 2) for v in row] for row in exact.tolist()]
    assert "(2 decimals;" in str(check_matrix(two, exact, "L"))
    assert check_matrix(laplacian(A1, "sym"), exact, "L").ok  # a float32 computation
    assert check_matrix(exact, laplacian(A1, "sym"), "L").ok  # against a float32 reference
    assert check_matrix([[0.5, 1 / 3]], [[1 / 2, 0.333333333]]).ok


def test_decimals_wrong_at_the_precision_written_are_wrong():
    exact = laplacian(torch.tensor(A1, dtype=torch.float64), "sym")
    four = [[round(v, 4) for v in row] for row in exact.tolist()]
    report = check_matrix(changed(four, (0, 1, -0.4083)), exact, "L")
    assert report.problems == [
        "L[0, 1] = -0.4083 but expected -0.4082 at 4 decimals (exactly -0.408248)."
    ]
    too_short = check_matrix(changed(four, (0, 1, -0.4)), exact, "L", one_indexed=True)
    assert too_short.problems == [
        "L[1, 2] = -0.4 but expected -0.41 at 2 decimals (exactly -0.408248)."
    ]
    assert not check_matrix([[0.5, 0.34]], [[1 / 2, 1 / 3]]).ok
    assert check_matrix([[0.5, 0.33]], [[1 / 2, 1 / 3]]).ok


@settings(max_examples=100, deadline=None)
@given(st.floats(-50, 50, allow_nan=False), st.integers(2, 6))
def test_rounded_values_pass_and_one_unit_off_fails(value, places):
    rounded = round(value, places)
    assume(abs(rounded - value) < 0.4 * 10.0**-places)
    assert check_matrix([[rounded]], [[value]]).ok or float(value).is_integer()
    off = round(rounded + 10.0**-places, places)
    assume(decimals_written(off) == places)  # 1.59208 (from 1.592080) has 5 decimals
    assert not check_matrix([[off]], [[value]]).ok


# ---------------------------------------------------------------------- adjacency mistakes
def test_missing_symmetric_entry_is_named_once():
    wrong = changed(A1, (2, 0, 0))
    report = check_adjacency(wrong)
    assert not report.ok and not report
    assert report.problems == [
        "A is not symmetric: A[0, 2] = 1 but A[2, 0] = 0 (an undirected edge appears in both rows)."
    ]
    assert check_adjacency(wrong, undirected=False).ok  # directed graphs need no symmetry
    against = check_adjacency(wrong, expected=A1)
    assert against.problems == [
        ("A[2, 0] = 0 but should be 1: the edge between node 0 and node 2 is missing (A[0, 2] = 1 "
        "is right: an undirected edge appears in both rows).")
    ]
    both = check_adjacency(changed(A1, (2, 0, 0), (0, 2, 0)), expected=A1, one_indexed=True)
    assert both.problems == [
        "A[1, 3] and A[3, 1] = 0 but should be 1: the edge between node 1 and node 3 is missing."
    ]


def test_transposed_directed_matrix_is_said_once():
    A = adjacency([(0, 1), (1, 2), (2, 0), (0, 3)], directed=True)
    hint = "A[i, j] = 1 for an edge j -> i"
    report = check_adjacency(A.t(), undirected=False, expected=A)
    assert len(report.problems) == 1 and "transpose of the expected matrix" in report.problems[0]
    assert hint in report.problems[0]
    power = matrix_power(A, 2)
    assert "transpose" in only(check_matrix(power.t(), power, "A^2"), hint)
    assert "transpose" in only(check_laplacian(laplacian(A).t(), adjacency=A), hint)
    assert len(check_adjacency(changed(A.t().tolist(), (0, 0, 1)), expected=A,
                               undirected=False).problems) > 1  # not a plain transpose


def test_self_loop_names_the_node():
    report = check_adjacency(changed(A1, (4, 4, 1)))
    assert "node 4 has a self-loop" in only(report, "A[4, 4] = 1")
    report = check_adjacency(changed(A1, (4, 4, 1)), one_indexed=True)
    assert "node 5 has a self-loop" in only(report, "A[5, 5] = 1")
    assert "counted from 1" in str(report)
    assert len(check_adjacency(changed(A1, (4, 4, 1)), expected=A1).problems) == 1


def test_entries_other_than_zero_one():
    report = check_adjacency(changed(A1, (0, 1, 2), (1, 0, 2)))
    problem = only(report, "A[0, 1] = 2")
    assert "only 0 (no edge) and 1 (edge)" in problem
    assert "A[1, 0] = 2" in str(report)
    assert "A[0, 1] = 0.5" in str(check_adjacency(changed(A1, (0, 1, 0.5), (1, 0, 0.5))))


def test_differences_from_expected_are_missing_or_extra_edges():
    report = check_adjacency(changed(A1, (0, 1, 0), (1, 0, 0), (3, 4, 1), (4, 3, 1)),
                             expected=A1)
    assert "the edge between node 0 and node 1 is missing" in only(report, "A[0, 1] and A[1, 0]")
    assert "there is no edge between node 3 and node 4" in only(report, "A[3, 4] and A[4, 3]")
    assert len(report.problems) == 2
    directed = check_adjacency([[0, 0], [0, 0]], undirected=False, expected=[[0, 0], [1, 0]])
    assert directed.problems == ["A[1, 0] = 0 but should be 1: the edge node 0 -> node 1 is missing."]


def test_wrong_shape_is_a_wrong_answer():
    report = check_adjacency([row[:4] for row in A1[:4]], expected=A1)
    assert only(report, "shape").startswith("A has shape 4 x 4 but expected is 5 x 5")
    assert "square" in only(check_adjacency([[0, 1, 0], [1, 0, 0]]), "2 rows and 3 columns")


def test_expected_properties_are_not_mistakes():
    # a graph that really has a self-loop and a weight: matching them is right
    expected = [[1, 2], [2, 0]]
    assert check_adjacency(expected, expected=expected).ok


# ---------------------------------------------------------------------- malformed answers
@pytest.mark.parametrize(
    "answer, message",
    [
        ("abc", "A is the text 'abc', not a matrix"),
        ([[0, 1], [1]], "A is ragged: row 2 has 1 entry but row 1 has 2 entries"),
        ([[0, float("nan")], [1, 0]], "A[1, 2] = nan is not a finite number"),
        ([[0, 1], [float("inf"), 0]], "A[2, 1] = inf is not a finite number"),
        (3, "A is the single number 3, not a matrix"),
        ({}, "A is a JSON object (a dict), not a matrix"),
        ([0, 1], "row 1 of A is 0, not a list of numbers"),
        ([[0, "1"], [1, 0]], "A[1, 2] = '1' is not a number"),
        ([[0, True], [1, 0]], "A[1, 2] = True is not a number"),
        (np.array([["a"]]), "must hold numbers"),
        (torch.zeros(2, 2, dtype=torch.complex64), "real numbers"),
    ],
)
def test_malformed_answers_raise_with_the_reports_numbering(answer, message):
    with pytest.raises(MalformedAnswerError) as info:
        check_adjacency(answer, one_indexed=True)
    assert message in str(info.value)
    with pytest.raises(ValueError):  # MalformedAnswerError is a ValueError
        check_matrix(answer, A1)


def test_malformed_numbering_counts_from_zero_by_default():
    with pytest.raises(MalformedAnswerError, match=r"A\[0, 1\] = 'x'"):
        check_laplacian([[0, "x"], [0, 0]], name="A")


# ---------------------------------------------------------------------- Laplacian mistakes
def test_wrong_off_diagonal_entry_is_named_not_the_diagonal():
    report = check_laplacian(changed(L1, (2, 3, 0)), adjacency=A1)
    assert report.problems == [
        ("L[2, 3] = 0 but should be -1: the edge between node 2 and node 3 is missing (L[3, 2] = "
        "-1 is right: an undirected edge appears in both rows).")
    ]
    alone = check_laplacian(changed(L1, (2, 3, 0)))
    assert alone.problems == [
        ("L[2, 3] = 0 but should be -1 like L[3, 2]: with it row 2 sums to 1 instead of 0 (a "
        "missing edge between node 2 and node 3 in row 2).")
    ]
    extra = check_laplacian(changed(L1, (0, 3, -1), (3, 0, -1)), adjacency=A1)
    assert extra.problems == [
        "L[0, 3] and L[3, 0] = -1 but should be 0: there is no edge between node 0 and node 3."
    ]


def test_wrong_diagonal_against_the_degree():
    report = check_laplacian(changed(L1, (2, 2, 2)), adjacency=A1)
    assert report.problems == [
        ("L[2, 2] = 2 but should be 3: node 2 has degree 3 (row 2 of A sums to 3), and the "
        "diagonal of L = D - A is the degree.")
    ]
    alone = check_laplacian(changed(L1, (2, 2, 2)))
    assert only(alone, "row 2 of L sums to -1, not 0").startswith(
        "row 2 of L sums to -1, not 0: either L[2, 2] = 2 should be 3 (the degree: the row has 3 "
        "entries -1), or"
    )


def test_symmetric_missing_edge_without_adjacency_gives_both_causes():
    report = check_laplacian(changed(L1, (2, 3, 0), (3, 2, 0)))
    assert len(report.problems) == 2
    assert "either L[2, 2] = 3 should be 2" in report.problems[0]
    assert "a missing edge" in report.problems[0]


def test_non_symmetric_laplacian_without_a_culprit():
    report = check_laplacian(changed(L1, (0, 3, -1), (0, 0, 4), (1, 1, 3)))
    assert only(report, "not symmetric") == (
        "L is not symmetric: L[0, 3] = -1 but L[3, 0] = 0 (an undirected edge gives -1 in both "
        "places)."
    )


def test_off_diagonal_entries_other_than_0_and_minus_1():
    report = check_laplacian(changed(L1, (0, 1, 1), (1, 0, 1), (0, 0, 1), (1, 1, 0)))
    assert "off-diagonal entry of L = D - A is -1 (edge) or 0 (no edge)" in only(
        report, "L[0, 1] = 1:"
    )
    assert "whole number" in only(check_laplacian(changed(L1, (0, 0, 2.5))), "L[0, 0] = 2.5")


def test_laplacian_shape_against_adjacency():
    report = check_laplacian([[1, -1], [-1, 1]], adjacency=A1)
    assert "the adjacency matrix is 5 x 5" in only(report, "shape")
    assert not check_laplacian([[1, -1, 0]]).ok


def test_directed_laplacian_needs_no_symmetry():
    A = adjacency([(0, 1), (1, 2)], directed=True)
    assert check_laplacian(laplacian(A), adjacency=A).ok
    report = check_laplacian(changed(laplacian(A).tolist(), (1, 0, 0)), adjacency=A)
    assert "the edge node 0 -> node 1 is missing" in only(report, "L[1, 0] = 0")


# ---------------------------------------------------------------------- any matrix
def test_check_matrix_names_each_entry():
    expected = matrix_power(A1, 2)
    wrong = changed(expected.tolist(), (0, 0, 2), (3, 1, 0))
    report = check_matrix(wrong, expected, name="A^2")
    assert report.problems == ["A^2[0, 0] = 2 but expected 3.", "A^2[3, 1] = 0 but expected 1."]
    one_based = check_matrix(wrong, expected, name="A^2", one_indexed=True)
    assert one_based.problems[0] == "A^2[1, 1] = 2 but expected 3."
    assert "has shape 2 x 2 but expected is 5 x 5" in check_matrix([[1, 0], [0, 1]], expected).problems[0]
    assert check_matrix([[1, 2, 3]], [[1, 2, 3]]).ok  # need not be square


# ---------------------------------------------------------------------- the report
def test_report_text_and_html():
    report = check_adjacency(changed(A1, (2, 0, 0), (4, 4, 1)))
    text = str(report)
    lines = text.splitlines()
    assert lines[0] == "A is wrong: 2 problems (rows and columns counted from 0):"
    assert all(line.startswith("  - ") for line in lines[1:]) and len(lines) == 3
    html = report._repr_html_()
    assert html.count("<li>") == 2 and "A is wrong" in html
    assert "&lt;" in check_matrix([[1]], [[2]], name="<M>")._repr_html_()
    assert repr(report) == "CheckReport(name='A', ok=False, problems=2)"
    noted = CheckReport("X", [], notes=["checked twice"])
    assert str(noted) == "X is correct.\n  * checked twice" and "checked twice" in (
        noted._repr_html_()
    )


def test_long_lists_are_capped():
    report = check_matrix(np.zeros((6, 6)), np.ones((6, 6)))
    assert len(report.problems) == 36
    lines = str(report).splitlines()
    assert len(lines) == 1 + 20 + 1
    assert lines[-1] == "  - ... and 16 more"
    assert report._repr_html_().count("<li>") == 21


def test_bad_reference_raises():
    with pytest.raises(ValueError, match="ragged"):
        check_matrix(A1, [[0, 1], [1]])
    with pytest.raises(ValueError, match="expected is the text"):
        check_adjacency(A1, expected="A")


def test_an_empty_matrix_is_a_problem():
    report = check_adjacency([])
    assert not report.ok and "empty" in report.problems[0]
    assert not check_laplacian([[]]).ok


# ---------------------------------------------------------------- check_answers (issue 15, 6)
def test_check_answers_picks_each_check_and_gives_one_verdict():
    import gnnkit
    from gnnkit.check import MalformedAnswerError, check_answers

    A = gnnkit.adjacency([(0, 1), (1, 2), (2, 0), (2, 3)])
    right = {"A": A.tolist(), "A^3": gnnkit.matrix_power(A, 3).tolist(),
             "D": gnnkit.degree_matrix(A).tolist(), "L": gnnkit.laplacian(A).tolist()}
    report = check_answers(right, A)
    assert report.ok and report.verdict == "Verdict: all 4 answers are correct."
    wrong = dict(right, L=(gnnkit.laplacian(A) + torch.eye(4, dtype=torch.long)).tolist())
    report = check_answers(wrong, A, one_indexed=True)
    assert not report.ok and report.wrong == 1
    assert "L[1, 1]" in str(report) and str(report).endswith("Verdict: 1 of 4 answers wrong.")
    sym = gnnkit.laplacian(A.double(), "sym")
    assert check_answers({"L": [[round(v, 3) for v in row] for row in sym.tolist()]}, A,
                         laplacian_kind="sym").verdict == "Verdict: the answer is correct."
    with pytest.raises(ValueError, match="unknown answer 'B' in 'mine.json'"):
        check_answers({"B": [[0]]}, A, source="mine.json")
    with pytest.raises(MalformedAnswerError, match="answer 'D'.*counted from 1"):
        check_answers({"D": [[1, 2], [3]]}, A, one_indexed=True)
