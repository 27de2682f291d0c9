"""Tests for the ``gnnkit`` command line: output, checks and exit codes 0/1/2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from homework_answers import A1, A1_SQUARED, D1, L1

from gnnkit.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]

RIGHT = {"A": A1, "A^2": A1_SQUARED, "D": D1, "L": L1}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_json(tmp_path, value, name="answers.json"):
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


def test_commands_are_listed_in_one_tuple():
    assert "matrices" in COMMANDS


def test_default_prints_homework_graph_1(capsys):
    code, out, err = run(capsys, "matrices")
    assert code == 0 and err == ""
    assert "homework graph 1 (built in" in out
    assert "numbered from 1, as in the figure" in out
    expected_A = (
        "     1 2 3 4 5\n"
        "  1  0 1 1 0 1\n"
        "  2  1 0 1 0 0\n"
        "  3  1 1 0 1 0\n"
        "  4  0 0 1 0 0\n"
        "  5  1 0 0 0 0"
    )
    assert expected_A in out
    expected_L = (
        "      1  2  3  4  5\n"
        "  1   3 -1 -1  0 -1\n"
        "  2  -1  2 -1  0  0\n"
        "  3  -1 -1  3 -1  0\n"
        "  4   0  0 -1  1  0\n"
        "  5  -1  0  0  0  1"
    )
    assert expected_L in out
    for title in ("A (adjacency", "A^2 (", "D (degree", "L = D - A"):
        assert title in out
    assert "\n  1  3 1 1 1 0" in out  # first row of A^2


def test_power_laplacian_and_homework_2(capsys):
    code, out, _ = run(capsys, "matrices", "--homework", "2", "--power", "3", "--laplacian", "sym")
    assert code == 0
    assert "homework graph 2" in out and "A^3 (" in out
    assert "\n  2  3 0 5 1 6 2" in out  # row 2 of A^3 of graph 2
    assert "symmetric normalised Laplacian" in out and "-0.5774" in out
    code, out, _ = run(capsys, "matrices", "--laplacian", "rw")
    assert "random-walk" in out and "-0.3333" in out


def test_graph_file_numbering(capsys, tmp_path):
    path = tmp_path / "path.txt"
    path.write_text("# a path\n0 1\n\n1 2  # middle\n")
    code, out, _ = run(capsys, "matrices", str(path))
    assert code == 0 and "numbered from 0" in out
    assert "     0 1 2\n  0  0 1 0" in out
    one = tmp_path / "one.txt"
    one.write_text("1 2\n2 3\n")
    code, out, _ = run(capsys, "matrices", str(one), "--one-indexed")
    assert code == 0 and "     1 2 3\n  1  0 1 0" in out
    code, out, _ = run(capsys, "matrices", str(one), "--one-indexed", "--directed")
    assert code == 0 and "directed" in out
    assert "  1  0 0 0\n  2  1 0 0\n  3  0 1 0" in out  # edge 1 -> 2 at A[2, 1]


def test_check_right_answers_exit_0(capsys, tmp_path):
    code, out, err = run(capsys, "matrices", "--check", write_json(tmp_path, RIGHT))
    assert code == 0, out + err
    for name in ("A", "A^2", "D", "L"):
        assert f"{name} is correct." in out
    assert "Verdict: all 4 answers are correct." in out


def test_check_wrong_answers_exit_1(capsys, tmp_path):
    wrong_A = [row[:] for row in A1]
    wrong_A[2][0] = 0
    wrong_L = [row[:] for row in L1]
    wrong_L[2][2] = 2
    answers = {"A": wrong_A, "A^2": A1_SQUARED, "D": D1, "L": wrong_L, "A^3": A1}
    code, out, _ = run(capsys, "matrices", "--check", write_json(tmp_path, answers))
    assert code == 1
    assert "A is wrong" in out and "A is not symmetric: A[1, 3] = 1 but A[3, 1] = 0" in out
    assert "row 3 of L sums to -1, not 0" in out
    assert "A^2 is correct." in out and "A^3 is wrong" in out
    assert "Verdict: 3 of 5 answers wrong." in out


def test_check_normalised_laplacian(capsys, tmp_path):
    from gnnkit import laplacian

    right = laplacian(A1, "sym").tolist()
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": right}))
    assert code == 0 and "L is correct." in out
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": L1}))
    assert code == 1 and "L[1, 1] = 3 but expected 1." in out
    code, _, _ = run(capsys, "matrices", "--laplacian", "rw",
                     "--check", write_json(tmp_path, {"L": laplacian(A1, "rw").tolist()}))
    assert code == 0


def test_malformed_answer_matrix_is_a_wrong_answer(capsys, tmp_path):
    code, out, _ = run(capsys, "matrices", "--check", write_json(tmp_path, {"A": [[0, 1], [1]]}))
    assert code == 1 and "ragged" in out


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda tmp: ["matrices", str(tmp / "missing.txt")], "not found"),
        (lambda tmp: ["matrices", "--check", str(tmp / "missing.json")], "not found"),
        (lambda tmp: ["matrices", "--check", _write(tmp, "bad.json", "{\"A\": [[0, 1]")],
         "not valid JSON"),
        (lambda tmp: ["matrices", "--check", _write(tmp, "key.json", '{"B": [[0]]}')],
         "unknown answer 'B'"),
        (lambda tmp: ["matrices", "--check", _write(tmp, "list.json", "[[0, 1]]")],
         "JSON object"),
        (lambda tmp: ["matrices", _write(tmp, "g.txt", "1 2\n2 x\n")], "g.txt:2"),
        (lambda tmp: ["matrices", _write(tmp, "g.txt", "0 1\n"), "--one-indexed"], "g.txt:1"),
        (lambda tmp: ["matrices", _write(tmp, "g.txt", "1 2 3\n")], "two node ids"),
        (lambda tmp: ["matrices", _write(tmp, "g.txt", "0 1\n"), "--homework", "2"], "not both"),
        (lambda tmp: ["matrices", _write(tmp, "g.txt", "# nothing\n")], "lists no nodes"),
    ],
)
def test_unusable_input_exit_2(capsys, tmp_path, setup, words):
    code, out, err = run(capsys, *setup(tmp_path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert err.startswith("gnnkit matrices: error: ")


def _write(tmp, name, text):
    path = tmp / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "argv", [["matrices", "--power", "-1"], ["matrices", "--power", "two"],
             ["matrices", "--laplacian", "normal"], ["nonsense"], []],
)
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "usage: gnnkit" in err and "Traceback" not in err


def test_help_exits_0(capsys):
    code, out, _ = run(capsys, "matrices", "--help")
    assert code == 0 and "--check ANSWERS" in out


def test_python_m_gnnkit(tmp_path):
    answers = write_json(tmp_path, {"A": A1, "D": [[3]]})
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-m", "gnnkit", "matrices", "--check", answers],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "A is correct." in result.stdout and "D is wrong" in result.stdout
    assert "D has shape 1 x 1 but expected is 5 x 5" in result.stdout
