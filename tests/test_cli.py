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
    wrong_L[2][3] = 0
    answers = {"A": wrong_A, "A^2": A1_SQUARED, "D": D1, "L": wrong_L, "A^3": A1}
    code, out, _ = run(capsys, "matrices", "--check", write_json(tmp_path, answers))
    assert code == 1
    assert "A is wrong: 1 problem (rows and columns counted from 1):" in out
    assert "A[3, 1] = 0 but should be 1: the edge between node 1 and node 3 is missing" in out
    assert "L[3, 4] = 0 but should be -1: the edge between node 3 and node 4 is missing" in out
    assert "L[3, 3]" not in out  # the right diagonal is not blamed
    assert "A^2 is correct." in out and "A^3 is wrong" in out
    assert "Verdict: 3 of 5 answers wrong." in out


def test_check_exact_walk_counts_beyond_float(capsys, tmp_path):
    code, out, _ = run(capsys, "matrices", "--power", "50")
    assert code == 0 and "413838864706440099" in out and ".0000" not in out
    power = [[int(x) for x in line.split()[1:]]
             for line in out.split("A^50 (")[1].split("\n\n")[0].splitlines()[2:]]
    assert power[0][0] == 413838864706440099
    assert run(capsys, "matrices", "--check", write_json(tmp_path, {"A^50": power}))[0] == 0
    power[0][1] += 2  # off by 2 in an entry of 18 digits
    code, out, _ = run(capsys, "matrices", "--check", write_json(tmp_path, {"A^50": power}))
    assert code == 1 and "A^50[1, 2] = 359426118413557443 but expected 359426118413557441." in out
    by_hand = A1
    for _ in range(79):  # Python integers, row by column
        by_hand = [[sum(r[k] * A1[k][c] for k in range(5)) for c in range(5)] for r in by_hand]
    assert by_hand[0][0] > 2**63
    code, out, _ = run(capsys, "matrices", "--power", "80")  # beyond int64, still exact
    assert code == 0 and f"\n  1  {by_hand[0][0]} " in out


def test_power_too_long_to_print_exit_2(capsys):
    code, out, err = run(capsys, "matrices", "--power", "200")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "A^200 has entries of 72 digits" in err


def test_check_accepts_the_printed_normalised_laplacian(capsys, tmp_path):
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym")
    printed = out.split("symmetric normalised Laplacian):\n")[1].splitlines()[1:]
    right = [[float(x) for x in line.split()[1:]] for line in printed]
    assert right[1][2] == -0.4082
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": right}))
    assert code == 0, out
    assert "L is correct to the precision written (1 to 4 decimals" not in out
    assert "L is correct to the precision written (2 to 4 decimals; at least 2 are needed)." in out
    right[1][2] = -0.4083
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": right}))
    assert code == 1
    assert "L[2, 3] = -0.4083 but expected -0.4082 at 4 decimals" in out


def test_check_normalised_laplacian(capsys, tmp_path):
    from gnnkit import laplacian

    right = laplacian(A1, "sym").tolist()
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": right}))
    assert code == 0 and "L is correct" in out
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": L1}))
    assert code == 1 and "L is D - A, but the Laplacian asked for is the symmetric" in out
    assert "check with --laplacian none" in out and "L[1, 1]" not in out
    wrong = [row[:] for row in L1]
    wrong[0][0] = 2
    code, out, _ = run(capsys, "matrices", "--laplacian", "sym",
                       "--check", write_json(tmp_path, {"L": wrong}))
    assert code == 1 and "L[1, 1] = 2 but expected 1." in out
    code, _, _ = run(capsys, "matrices", "--laplacian", "rw",
                     "--check", write_json(tmp_path, {"L": laplacian(A1, "rw").tolist()}))
    assert code == 0


@pytest.mark.parametrize(
    "answers, words",
    [
        ({"A": [[0, 1], [1]]}, "answer 'A' in"),
        ({"A": [[0, 1], [1]]}, "A is ragged: row 2 has 1 entry but row 1 has 2 entries"),
        ({"A": [[0, "1"], [1, 0]]}, "A[1, 2] = '1' is not a number"),
        ({"D": 3}, "D is the single number 3"),
        ({"L": {}}, "L is a JSON object (a dict), not a matrix"),
        ({"A^2": "[[1]]"}, "A^2 is the text '[[1]]'"),
        ({"A": [[0, 1], [1, 0]]}, "(rows and columns counted from 1)"),
        ({}, "holds an empty JSON object {}"),
    ],
)
def test_malformed_answers_exit_2(capsys, tmp_path, answers, words):
    code, out, err = run(capsys, "matrices", "--check", write_json(tmp_path, answers))
    if answers == {"A": [[0, 1], [1, 0]]}:  # well formed, only wrong: exit 1, numbered from 1
        assert code == 1 and words in out
        return
    assert code == 2 and out == "", out
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_nan_answer_exit_2_numbered_from_0_for_a_zero_based_file(capsys, tmp_path):
    graph = _write(tmp_path, "g.txt", "0 1\n")
    path = tmp_path / "nan.json"
    path.write_text('{"A": [[0, NaN], [1, 0]]}')
    code, _, err = run(capsys, "matrices", graph, "--check", str(path))
    assert code == 2 and "A[0, 1] = nan is not a finite number" in err
    assert "counted from 0" in err


def test_self_loops_in_a_file_are_reported(capsys, tmp_path):
    code, out, _ = run(capsys, "matrices", _write(tmp_path, "g.txt", "1 2\n3 3\n2 2\n"),
                       "--one-indexed")
    assert code == 0
    assert "2 self-loops read (node 2, 3): each puts a 1 on the diagonal of A" in out
    code, out, _ = run(capsys, "matrices", _write(tmp_path, "h.txt", "1 2\n"))
    assert "self-loop" not in out


def test_huge_node_id_is_refused_before_allocating(capsys, tmp_path):
    code, out, err = run(capsys, "matrices", _write(tmp_path, "g.txt", "1 50000\n"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "has 50001 nodes (the largest id is 50000)" in err and "stops at 100 nodes" in err


def test_ctrl_c_is_one_line_exit_130(capsys, monkeypatch):
    import gnnkit.commands.matrices as command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run", interrupted)
    code, _, err = run(capsys, "matrices")
    assert code == 130 and err == "gnnkit matrices: interrupted\n"


def test_closed_pipe_ends_quietly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-m", "gnnkit", "matrices", "--power", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
    )
    process.stdout.close()  # like "| head" that has already exited
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert err == ""


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
    if argv:  # two lines: the usage's first line, the error pointing at --help
        assert err.count("\n") == 2 and "--help lists the options" in err


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


# ---------------------------------------------------------------------- check-layer
STUDENT_LAYER = '''
import torch
from torch import nn


class MeanGCN(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x, edge_index):
        source, target = edge_index[{source}], edge_index[{target}]
        total = torch.zeros_like(x).index_add(0, target, x[source])
        degree = torch.bincount(target, minlength=x.size(0)).clamp(min=1).to(x.dtype)
        return (total / degree[:, None]) @ self.W.T + x @ self.B.T
'''


def student_file(tmp_path, text, name="layer.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_layer_right_exit_0(capsys, tmp_path):
    path = student_file(tmp_path, STUDENT_LAYER.format(source=0, target=1))
    code, out, err = run(capsys, "check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn")
    assert code == 0 and err == ""
    assert out.startswith("MeanGCN is a correct mean-gcn layer")


def test_check_layer_wrong_exit_1(capsys, tmp_path):
    path = student_file(tmp_path, STUDENT_LAYER.format(source=1, target=0))
    code, out, _ = run(capsys, "check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn")
    assert code == 1
    assert "MeanGCN is wrong: 1 problem:" in out
    assert "It aggregates over the out-neighbours (A transposed)" in out


def test_check_layer_parameter_names(capsys, tmp_path):
    text = STUDENT_LAYER.format(source=0, target=1).replace("self.W", "self.weight")
    path = student_file(tmp_path, text)
    code, _, err = run(capsys, "check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn")
    assert code == 2 and "no tensor 'W'" in err and err.count("\n") == 1
    assert "--param W=attribute.path" in err and "params=" not in err
    code, _, err = run(capsys, "check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn",
                       "--param", "X=weight")
    assert code == 2 and "--param X=...: a mean-gcn layer has the parameters W, B" in err
    assert "params" not in err
    code, out, _ = run(capsys, "check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn",
                       "--param", "W=weight")
    assert code == 0, out


@pytest.mark.parametrize(
    "text, target, words",
    [
        ("import torch_scatterr\n", "Layer", ["failed to import:", "line 1, in <module>",
                                             "No module named 'torch_scatterr'"]),
        ("def f(:\n    pass\n", "Layer", ["failed to import:", "SyntaxError"]),
        ("import torch\nclass Other(torch.nn.Module):\n    pass\n", "Layer",
         ["has no class 'Layer' (its nn.Module classes: Other)"]),
        ("x = 1\n", "", ["write the layer as FILE.py:ClassName"]),
        ("x = 1\n", "x", ["layer must be an nn.Module class or instance, got int"]),
    ],
)
def test_check_layer_bad_input_exit_2(capsys, tmp_path, text, target, words):
    path = student_file(tmp_path, text)
    code, out, err = run(capsys, "check-layer", f"{path}:{target}", "--kind", "gat")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("gnnkit check-layer: error: ")
    assert len(err.splitlines()) <= 8
    for word in words:
        assert word in err


def test_check_layer_missing_file_and_bad_param(capsys, tmp_path):
    code, _, err = run(capsys, "check-layer", f"{tmp_path}/none.py:X", "--kind", "gat")
    assert code == 2 and "not found" in err
    path = student_file(tmp_path, STUDENT_LAYER.format(source=0, target=1))
    code, _, err = run(capsys, "check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn",
                       "--param", "W")
    assert code == 2 and "ROLE=PATH" in err


def test_one_indexed_flag_on_a_file_with_id_0_names_the_flag(capsys, tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("0 1\n1 2\n")
    code, _, err = run(capsys, "matrices", str(path), "--one-indexed")
    assert code == 2 and "g.txt:1: node id 0" in err and "leave out --one-indexed" in err
    assert "one_indexed=" not in err
    path.write_text("1 2\nx 3\n")
    code, _, err = run(capsys, "matrices", str(path), "--one-indexed")
    assert code == 2 and "is not an integer" in err
