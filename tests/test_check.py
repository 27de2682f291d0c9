"""Tests for gnnkit.check: every mistake is caught and explained, right matrices pass."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from homework_answers import A1, L1

from gnnkit import (
    CheckReport,
    adjacency,
    check_adjacency,
    check_laplacian,
    check_matrix,
    laplacian,
    matrix_power,
)


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
     sp.csr_matrix(np.array(A1))],
    ids=["list", "numpy", "long", "float", "sparse", "scipy"],
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


def test_fractions_and_decimals_are_equal():
    expected = laplacian(A1, "rw")
    student = [[round(float(v), 7) for v in row] for row in expected]
    assert check_matrix(student, expected, "L").ok
    assert check_matrix([[0.5, 1 / 3]], [[1 / 2, 0.333333333]]).ok
    assert not check_matrix([[0.5, 0.33]], [[1 / 2, 1 / 3]]).ok


# ---------------------------------------------------------------------- adjacency mistakes
def test_missing_symmetric_entry_is_named_once():
    wrong = changed(A1, (2, 0, 0))
    report = check_adjacency(wrong)
    assert not report.ok and not report
    assert report.problems == [
        "A is not symmetric: A[0, 2] = 1 but A[2, 0] = 0 (an undirected edge appears in both rows)."
    ]
    assert check_adjacency(wrong, undirected=False).ok  # directed graphs need no symmetry


def test_self_loop_names_the_node():
    report = check_adjacency(changed(A1, (4, 4, 1)))
    assert "node 4 has a self-loop" in only(report, "A[4, 4] = 1")
    report = check_adjacency(changed(A1, (4, 4, 1)), one_indexed=True)
    assert "node 5 has a self-loop" in only(report, "A[5, 5] = 1")
    assert "counted from 1" in str(report)


def test_entries_other_than_zero_one():
    report = check_adjacency(changed(A1, (0, 1, 2), (1, 0, 2)))
    problem = only(report, "A[0, 1] = 2")
    assert "only 0 (no edge) and 1 (edge)" in problem
    assert "A[1, 0] = 2" in str(report)
    assert "A[0, 1] = 0.5" in str(check_adjacency(changed(A1, (0, 1, 0.5), (1, 0, 0.5))))


def test_differences_from_expected_are_missing_or_extra_edges():
    report = check_adjacency(changed(A1, (0, 1, 0), (1, 0, 0), (3, 4, 1), (4, 3, 1)),
                             expected=A1)
    assert "the edge between node 1 and node 0 is missing" in only(report, "A[0, 1] = 0")
    assert "there is no edge between node 3 and node 4" in only(report, "A[4, 3] = 1")
    assert len(report.problems) == 4
    directed = check_adjacency([[0, 0], [0, 0]], undirected=False, expected=[[0, 0], [1, 0]])
    assert directed.problems == ["A[1, 0] = 0 but should be 1: the edge node 0 -> node 1 is missing."]


def test_wrong_shape_and_unusable_matrices():
    report = check_adjacency([row[:4] for row in A1[:4]], expected=A1)
    assert only(report, "shape").startswith("A has shape 4 x 4 but expected is 5 x 5")
    assert "square" in only(check_adjacency([[0, 1, 0], [1, 0, 0]]), "2 rows and 3 columns")
    assert "ragged" in check_adjacency([[0, 1], [1]]).problems[0]
    assert "not a number" in check_adjacency([[0, "1"], [1, 0]]).problems[0]
    assert "NaN" in check_adjacency([[0, float("nan")], [1, 0]]).problems[0]


def test_expected_properties_are_not_mistakes():
    # a graph that really has a self-loop and a weight: matching them is right
    expected = [[1, 2], [2, 0]]
    assert check_adjacency(expected, expected=expected).ok


# ---------------------------------------------------------------------- Laplacian mistakes
def test_row_that_does_not_sum_to_zero():
    report = check_laplacian(changed(L1, (2, 2, 2)))
    problem = only(report, "row 2 of L sums to -1, not 0")
    assert "L[2, 2] = 2 should be minus the sum of the other entries of the row, i.e. 3" in problem
    assert len(report.problems) == 1


def test_diagonal_against_the_degree_in_the_adjacency():
    report = check_laplacian(changed(L1, (2, 2, 2)), adjacency=A1)
    problem = only(report, "node 2 has degree 3")
    assert problem.startswith("L[2, 2] = 2") and "should be 3" in problem


def test_non_symmetric_laplacian():
    report = check_laplacian(changed(L1, (0, 3, -1), (0, 0, 4)))
    assert only(report, "not symmetric") == (
        "L is not symmetric: L[0, 3] = -1 but L[3, 0] = 0 (an undirected edge gives -1 in both "
        "places)."
    )


def test_off_diagonal_entries():
    report = check_laplacian(changed(L1, (0, 1, 1), (1, 0, 1), (0, 0, 1), (1, 1, 0)))
    assert "off-diagonal entry of L = D - A is -1 (edge) or 0 (no edge)" in only(
        report, "L[0, 1] = 1:"
    )
    against_A = check_laplacian(changed(L1, (0, 3, -1), (3, 0, -1), (0, 0, 4), (3, 3, 2)),
                                adjacency=A1)
    assert "L[0, 3] = -1 but A[0, 3] = 0, so L[0, 3] should be 0" in only(against_A, "L[0, 3]")


def test_laplacian_shape_against_adjacency_and_unusable_input():
    report = check_laplacian([[1, -1], [-1, 1]], adjacency=A1)
    assert "the adjacency matrix is 5 x 5" in only(report, "shape")
    assert not check_laplacian([[1, -1, 0]]).ok
    assert "ragged" in check_laplacian([[1, -1], [0]]).problems[0]


def test_directed_laplacian_needs_no_symmetry():
    A = adjacency([(0, 1), (1, 2)], directed=True)
    assert check_laplacian(laplacian(A), adjacency=A).ok


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
    with pytest.raises(TypeError):
        check_adjacency(A1, expected="A")


def test_an_empty_matrix_is_a_problem():
    report = check_adjacency([])
    assert not report.ok and "empty" in report.problems[0]
    assert not check_laplacian([[]]).ok
