"""Tests for gnnkit.laplacian_step (L X with the reasons), its checker, the whole-matrix
mistakes of a Laplacian answer, the 1-indexed hint and ``gnnkit matrices --apply``."""

import json

import pytest
import torch
from homework_answers import A1, L1

import gnnkit
from gnnkit import check_laplacian_step, laplacian, laplacian_step
from gnnkit.check import check_answers
from gnnkit.cli import main

X1 = [1, 0, 2, 0, 1]
LX1 = [0, -3, 5, -2, 0]  # by hand: node 1: (1-0)+(1-2)+(1-1); node 3: (2-1)+(2-0)+(2-0)


def rounded(M, places=4):
    return [[round(float(v), places) for v in row] for row in M.tolist()]


# ---------------------------------------------------------------------- laplacian_step
def test_values_are_exact_integers_and_ranking_by_size():
    step = laplacian_step(A1, X1)
    assert step.values.dtype == torch.long and step.values.tolist() == LX1
    assert step.ranking == [2, 1, 3, 0, 4]  # |5|, |-3|, |-2|, then 0, 0 by id


def test_explains_the_node_that_changes_most():
    text = str(laplacian_step(A1, X1, one_indexed=True))
    assert "sum_{j in N(i)} (x_i - x_j)" in text
    assert "node 3 changes most: degree 3, and its value differs from its neighbours' by 1, 2 " \
           "and 2." in text
    assert "node 3: 5 = (2 - 1) + (2 - 0) + (2 - 0)" in text
    assert "node 1: 0 = (1 - 0) + (1 - 2) + (1 - 1) (the differences cancel)" in text


def test_several_columns_and_weights_and_isolated_node():
    X = [[1, 0], [0, 1], [2, 2], [0, 0], [1, 1]]
    step = laplacian_step(A1, X)
    assert step.values.tolist() == (torch.tensor(L1) @ torch.tensor(X)).tolist()
    assert step.ranking[0] == 2  # [5, 5] is the longest row
    weighted = [[0, 2, 0], [2, 0, 0], [0, 0, 0]]
    step = laplacian_step(weighted, [3, 1, 7])
    assert step.values.tolist() == [4, -4, 0]
    assert "node 0: 4 = 2 x (3 - 1)" in str(step)
    assert "node 2: 0 (no neighbours" in str(step)


@pytest.mark.parametrize("kind", ["sym", "rw"])
def test_normalised_kinds_equal_the_matrix_product(kind):
    step = laplacian_step(A1, X1, kind)
    want = laplacian(torch.tensor(A1, dtype=torch.float64), kind) @ torch.tensor(
        X1, dtype=torch.float64)
    torch.testing.assert_close(step.values, want)


def test_constant_x_does_not_change_and_bad_input():
    assert "No node changes" in str(laplacian_step(A1, [4] * 5))
    with pytest.raises(ValueError, match="X has 4 rows but A has 5 nodes"):
        laplacian_step(A1, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="kind must be"):
        laplacian_step(A1, X1, "normalised")


# ---------------------------------------------------------------------- check_laplacian_step
def test_checker_right_and_wrong_entries():
    assert check_laplacian_step(LX1, A1, X1).ok
    assert check_laplacian_step([[v] for v in LX1], A1, X1).ok  # a column is fine too
    report = check_laplacian_step([0, -3, 5, -2, 1], A1, X1, one_indexed=True)
    assert report.problems == ["LX[5] = 1 but should be 0: node 5: 0 = (1 - 1)."]


@pytest.mark.parametrize("answer, words", [
    ([-v for v in LX1], "(A - D) X: the sign is flipped"),
    ([3, 3, 1, 2, 1], "A X (the sum of the neighbours' values)"),
    ([3, 0, 6, 0, 1], "D X (deg(i) x_i)"),
    ([0, -1.5, 1.67, -2, 0], "L X for the random-walk L = I - D^-1 A"),
])
def test_checker_names_whole_answer_mistakes_in_one_line(answer, words):
    report = check_laplacian_step(answer, A1, X1)
    assert len(report.problems) == 1 and words in report.problems[0]


def test_checker_normalised_answers_to_the_decimals_written():
    assert check_laplacian_step([0, -1.5, 1.67, -2, 0], A1, X1, "rw").ok
    report = check_laplacian_step([0, -1.5, 1.66, -2, 0], A1, X1, "rw")
    assert not report.ok and "LX[2] = 1.66 but should be 1.67" in report.problems[0]
    report = check_laplacian_step(LX1, A1, X1, "rw")
    assert "check with --laplacian none (kind='plain' in Python)" in report.problems[0]
    report = check_laplacian_step([0, -3], A1, X1)
    assert "LX has 2 values but L X has 5 values" in report.problems[0]


# ---------------------------------------------------------------------- check_answers
def test_answers_lx_key():
    assert check_answers({"LX": LX1}, A1, features=X1).ok
    with pytest.raises(ValueError, match="needs the features X"):
        check_answers({"LX": LX1}, A1)


@pytest.mark.parametrize("answer, kind, words", [
    (rounded(laplacian(torch.tensor(A1).double(), "sym")), None,
     ("L is the symmetric normalised Laplacian I - D^-1/2 A D^-1/2, but the Laplacian asked for "
     "is D - A: check with --laplacian sym")),
    (L1, "sym", "L is D - A, but the Laplacian asked for is the symmetric normalised"),
    ([[-v for v in row] for row in L1], None, "L is A - D: the sign is flipped"),
    (A1, None, "L holds A, the adjacency matrix: are A and L swapped?"),
    ((torch.tensor(A1) + torch.diag(torch.tensor(A1).sum(1))).tolist(), None, "L is D + A"),
])
def test_whole_laplacian_mistakes_in_one_line(answer, kind, words):
    report = check_answers({"L": answer}, A1, laplacian_kind=kind).reports["L"]
    assert len(report.problems) == 1 and words in report.problems[0]


def test_adjacency_answer_holding_the_laplacian():
    report = check_answers({"A": L1}, A1).reports["A"]
    assert report.problems == [("A holds the Laplacian L = D - A, not the adjacency matrix: are A "
                               "and L swapped? A[i, j] = 1 for an edge, 0 elsewhere.")]


def test_one_indexed_file_read_from_0_is_named_in_the_shape_message():
    A = gnnkit.adjacency([(1, 2), (1, 3), (1, 5), (2, 3), (3, 4)])  # 6 x 6, node 0 isolated
    report = check_answers({"L": L1, "A": A1, "LX": LX1}, A, features=[0, *X1])
    for key in ("L", "A", "LX"):
        assert "the file looks 1-indexed" in report.reports[key].problems[0]
        assert "--one-indexed" in report.reports[key].problems[0]
    assert not check_answers({"L": L1}, A1).reports["L"].problems


# ---------------------------------------------------------------------- CLI
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def graph_file(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("1 2\n1 3\n1 5\n2 3\n3 4\n")
    return str(path)


def test_cli_apply_inline_and_json(capsys, tmp_path):
    code, out, err = run(capsys, "matrices", "--apply", "1,0,2,0,1")
    assert code == 0 and err == ""
    assert "node 3 changes most: degree 3" in out and "node 3: 5 = (2 - 1)" in out
    path = tmp_path / "x.json"
    path.write_text(json.dumps([[1, 0], [0, 1], [2, 2], [0, 0], [1, 1]]))
    code, out, _ = run(capsys, "matrices", "--apply", str(path))
    assert code == 0 and "node 3: [5, 5]" in out
    code, out, _ = run(capsys, "matrices", "--apply", "1,0; 0,1; 2,2; 0,0; 1,1")
    assert code == 0 and "node 3: [5, 5]" in out


def test_cli_check_lx(capsys, tmp_path):
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"LX": [0, -3, 5, -2, 1]}))
    code, out, _ = run(capsys, "matrices", "--apply", "1,0,2,0,1", "--check", str(answers))
    assert code == 1 and "LX[5] = 1 but should be 0" in out
    code, _, err = run(capsys, "matrices", "--check", str(answers))
    assert code == 2 and "--apply" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["1,x,2", "1,0,2", "nan,0,2,0,1"])
def test_cli_bad_apply_exit_2(capsys, value):
    code, _, err = run(capsys, "matrices", "--apply", value)
    assert code == 2 and "--apply" in err and len(err.strip().splitlines()) == 1


def test_cli_notes_a_file_that_looks_one_indexed(capsys, graph_file, tmp_path):
    code, out, _ = run(capsys, "matrices", graph_file)
    assert code == 0 and "looks 1-indexed" in out and "--one-indexed" in out
    code, out, _ = run(capsys, "matrices", graph_file, "--one-indexed")
    assert "looks 1-indexed" not in out
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({"L": L1}))
    code, out, _ = run(capsys, "matrices", graph_file, "--check", str(answers))
    assert code == 1 and "the file looks 1-indexed" in out
    code, _, err = run(capsys, "matrices", graph_file, "--apply", "1,0,2,0,1")
    assert code == 2 and "looks 1-indexed; add --one-indexed" in err
