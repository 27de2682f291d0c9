"""check_layer(..., against=Other) and ``gnnkit check-layer --against``: two forms of one layer
(the homework's matrix form, eq. 6, and message / update form, eq. 7) run with the same weights
on the same graphs; where they differ the nodes are named, and a named mistake only when the
reference with that mistake gives the layer's output."""

import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gnnkit
from gnnkit.check.layer_against import PairReport
from gnnkit.cli import main
from gnnkit.nn import MessagePassing


# ---------------------------------------------------------------------- student-style pairs
class MatrixMeanGCN(nn.Module):
    """Eq. 6: H' = D^-1 A H W^T + H B^T with dense matrices."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def adjacency(self, x, edge_index):
        n = x.size(0)
        return torch.zeros(n, n, dtype=x.dtype).index_put(
            (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=x.dtype),
            accumulate=True)  # A[i, j] = the number of edges j -> i

    def inverse_degree(self, degree):
        return torch.where(degree > 0, 1 / degree.clamp(min=1), 0.0)

    def forward(self, x, edge_index):
        A = self.adjacency(x, edge_index)
        D_inv = torch.diag(self.inverse_degree(A.sum(dim=1)))
        return D_inv @ A @ x @ self.W.T + x @ self.B.T


class MessageMeanGCN(MessagePassing):
    """Eq. 7 with gnnkit's MessagePassing: the mean of the messages W h_j, plus B h_i."""

    def __init__(self, in_features, out_features):
        super().__init__(aggr="mean")
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x, h=x @ self.W.T)

    def message(self, h_j):
        return h_j

    def update(self, aggr_out, x):
        return aggr_out + x @ self.B.T


class LinearMessageMeanGCN(MessagePassing):
    """The README's message form, with nn.Linear (its parameters are W.weight and B.weight)."""

    fused_message = "x_j"

    def __init__(self, in_features, out_features):
        super().__init__(aggr="mean")
        self.W = nn.Linear(in_features, out_features, bias=False)
        self.B = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x, h=self.W(x))

    def message(self, h_j):
        return h_j

    def update(self, aggr_out, x):
        return aggr_out + self.B(x)


class MessageSumGCN(MessageMeanGCN):
    """The message form with the sum instead of the mean."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features)
        self.aggr_module = MessagePassing(aggr="sum").aggr_module


class MatrixDividesByZero(MatrixMeanGCN):
    """D^-1 as 1 / degree: 0 / 0 at a node without incoming edges."""

    def inverse_degree(self, degree):
        return 1 / degree


class MatrixSelfLoopWhenAlone(MatrixMeanGCN):
    """Gives a node without incoming edges a self-loop, so its mean is its own features."""

    def adjacency(self, x, edge_index):
        A = super().adjacency(x, edge_index)
        return A + torch.diag((A.sum(dim=1) == 0).to(x.dtype))


def check(layer, against, kind="mean-gcn", **options):
    report = gnnkit.check_layer(layer, kind, against=against, **options)
    assert isinstance(report, PairReport)
    return report


# ---------------------------------------------------------------------- agreeing
def test_matrix_and_message_forms_agree():
    report = check(MatrixMeanGCN, MessageMeanGCN)
    assert report.ok and report.agree, str(report)
    assert str(report).startswith(
        "MatrixMeanGCN and MessageMeanGCN agree, and both are correct mean-gcn layers: equal to "
        "each other and to the reference on 9 runs (3 graphs x 3 sizes).")
    assert any(n.startswith("passed: MatrixMeanGCN and MessageMeanGCN give the same output on 9 "
                            "runs, compared in float64") for n in report.notes)
    text = str(report)
    assert "\nlayer: MatrixMeanGCN is a correct mean-gcn layer" in text
    assert "\nagainst: MessageMeanGCN is a correct mean-gcn layer" in text
    assert "not run: the matrix and message forms agreeing" not in text


def test_linear_message_form_with_against_params():
    with pytest.raises(ValueError, match=r"no tensor 'W'.*against_params=\{'W'"):
        check(MatrixMeanGCN, LinearMessageMeanGCN)
    report = check(MatrixMeanGCN, LinearMessageMeanGCN,
                   against_params={"W": "W.weight", "B": "B.weight"})
    assert report.ok, str(report)
    assert "W = 'W.weight', B = 'B.weight' in LinearMessageMeanGCN" in report.notes[0]


def test_an_instance_and_a_class_are_compared_at_the_instance_size():
    report = check(MessageMeanGCN(3, 4), MatrixMeanGCN)
    assert report.ok, str(report)
    assert "on 3 runs (3 graphs x 1 size)" in report.verdict
    assert "(2, 5), (3, 3), (4, 2) ran only in MatrixMeanGCN (an instance runs at its own size " \
           "only)" in "\n".join(report.notes)
    with pytest.raises(ValueError, match=r"instance at \(in, out\) = \(3, 4\) and against one "
                                         r"at \(2, 2\)"):
        check(MessageMeanGCN(3, 4), MatrixMeanGCN(2, 2))


def test_same_class_names_get_labels():
    class MeanGCN(MatrixMeanGCN):
        pass

    report = check(MeanGCN, MeanGCN)
    assert report.ok
    assert report.verdict.startswith("MeanGCN (layer) and MeanGCN (against) agree")


# ---------------------------------------------------------------------- differing
def test_sum_instead_of_mean_is_named():
    report = check(MatrixMeanGCN, MessageSumGCN)
    assert not report.ok and report.agree is False
    assert report.verdict == ("MatrixMeanGCN and MessageSumGCN do not agree, and MessageSumGCN "
                              "is wrong: 3 problems:")
    where, named = report.agreement
    assert where.startswith("MatrixMeanGCN and MessageSumGCN differ on 9 of 9 runs, at graph 1: "
                            "nodes 1 (in-degree 2), 2 (in-degree 3, the highest)")
    assert "node 0" not in where.split(";")[0]  # the node without incoming edges sums to 0 too
    assert named.startswith("The difference is a named mistake of MessageSumGCN (the reference "
                            "with exactly this mistake gives MessageSumGCN's output on every "
                            "run compared; MatrixMeanGCN equals the reference): It sums the "
                            "neighbours' features instead of averaging them")
    assert report.problems[-1].startswith("MessageSumGCN: It sums the neighbours' features")


def test_division_by_zero_differs_only_at_nodes_without_incoming_edges():
    report = check(MatrixDividesByZero, MessageMeanGCN)
    assert not report.ok
    where = report.agreement[0]
    assert ("differ on 9 of 9 runs, at graph 1: node 0 (no incoming edge); graph 2: node 4 (no "
            "incoming edge); graph 3: nodes 3 (no incoming edge), 6 (no incoming edge).") in where
    assert "Only nodes without incoming edges differ: such a node aggregates to 0" in where
    assert "MatrixDividesByZero's output is NaN or inf at every one of these nodes." in where
    assert len(report.agreement) == 1  # nothing named: no variant gives NaN
    assert report.verdict.startswith("MatrixDividesByZero and MessageMeanGCN do not agree, and "
                                     "MatrixDividesByZero is wrong")


def test_a_self_loop_only_where_there_is_no_neighbour_differs_only_there():
    report = check(MessageMeanGCN, MatrixSelfLoopWhenAlone)
    where = report.agreement[0]
    assert "graph 1: node 0 (no incoming edge);" in where
    assert "Only nodes without incoming edges differ" in where and "NaN" not in where
    assert "against: MatrixSelfLoopWhenAlone is wrong" in str(report)


def test_both_wrong_the_same_way_agree_but_fail():
    class Sum(MatrixMeanGCN):
        def inverse_degree(self, degree):
            return torch.ones_like(degree)

    report = check(Sum, MessageSumGCN)
    assert report.agree and not report.ok and report.agreement == []
    assert report.verdict.startswith("Sum and MessageSumGCN agree, but both are wrong")


def test_extra_parameters_of_the_same_name_are_copied():
    class MatrixLinear(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.lin = nn.Linear(in_features, out_features)  # with its bias
            self.B = nn.Parameter(torch.randn(out_features, in_features))

        def forward(self, x, edge_index):
            A = MatrixMeanGCN.adjacency(self, x, edge_index)
            mean = A / A.sum(dim=1, keepdim=True).clamp(min=1)
            return self.lin(mean @ x) + x @ self.B.T

    class MessageLinear(MessagePassing):
        def __init__(self, in_features, out_features):
            super().__init__(aggr="mean")
            self.lin = nn.Linear(in_features, out_features)
            self.B = nn.Parameter(torch.randn(out_features, in_features))

        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=x) @ self.lin.weight.T + self.lin.bias \
                + x @ self.B.T

    report = check(MatrixLinear, MessageLinear, params={"W": "lin.weight"})
    assert report.agree, str(report)
    assert "MessageLinear's lin.bias copied from MatrixLinear's of the same name" in (
        report.notes[0])
    assert not report.ok and "lin.bias [" in report.first.problems[0]  # the bias is named


def test_two_right_median_forms_are_different_layers():
    class Median(nn.Module):
        inside = False

        def __init__(self, in_features, out_features):
            super().__init__()
            self.W = nn.Parameter(torch.randn(out_features, in_features))
            self.B = nn.Parameter(torch.randn(out_features, in_features))

        def forward(self, x, edge_index):
            values = x @ self.W.T if self.inside else x
            rows = []
            for i in range(x.size(0)):
                chosen = values[edge_index[0][edge_index[1] == i]]
                rows.append(chosen.median(dim=0).values if len(chosen)
                            else torch.zeros(values.size(1), dtype=x.dtype))
            out = torch.stack(rows)
            return (out if self.inside else out @ self.W.T) + x @ self.B.T

    class Inside(Median):
        inside = True

    report = check(Median, Inside, "median-gcn")
    assert report.first.ok and report.second.ok and not report.ok
    assert report.agreement[-1].startswith("Both are right median-gcn layers, but not the same "
                                           "one: Median has the form: W median")


def test_gat_pair_agrees():
    class EdgeGAT(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.W = nn.Parameter(torch.randn(out_features, in_features))
            self.a = nn.Parameter(torch.randn(2 * out_features))

        def forward(self, x, edge_index):
            n, h = x.size(0), x @ self.W.T
            loops = torch.arange(n)
            source = torch.cat([edge_index[0], loops])
            target = torch.cat([edge_index[1], loops])
            half = h.size(1)
            e = F.leaky_relu(h[target] @ self.a[:half] + h[source] @ self.a[half:], 0.2)
            w = (e - e.max()).exp()
            total = torch.zeros(n, dtype=x.dtype).index_add(0, target, w)
            return torch.zeros_like(h).index_add(0, target, (w / total[target])[:, None]
                                                 * h[source])

    class DenseGAT(EdgeGAT):
        def forward(self, x, edge_index):
            n, h = x.size(0), x @ self.W.T
            counts = torch.eye(n, dtype=x.dtype).index_put(
                (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=x.dtype),
                accumulate=True)
            half = h.size(1)
            e = F.leaky_relu((h @ self.a[:half])[:, None] + (h @ self.a[half:])[None, :], 0.2)
            w = counts * (e - e.max()).exp()
            return (w / w.sum(dim=1, keepdim=True)) @ h

    report = check(EdgeGAT, DenseGAT, "gat")
    assert report.ok, str(report)


def test_a_float32_form_is_compared_in_float32():
    class Float32Message(MessageMeanGCN):
        def forward(self, x, edge_index):
            return super().forward(x.float(), edge_index).to(x.dtype)

    report = check(MatrixMeanGCN, Float32Message)
    assert report.ok, str(report)
    assert any(n.startswith("passed: MatrixMeanGCN and Float32Message give the same output on 9 "
                            "runs, compared in float32") for n in report.notes)


def test_a_layer_that_never_runs_cannot_be_compared():
    class Broken(MessageMeanGCN):
        def forward(self, x, edge_index):
            raise RuntimeError("not yet")

    report = check(MatrixMeanGCN, Broken)
    assert report.agree is None and not report.ok
    assert report.verdict.startswith("MatrixMeanGCN and Broken could not be compared, and Broken "
                                     "is wrong: 1 problem:")
    assert "not run: the two agreeing (no run in which both gave an output [N, out])." in (
        report.notes)
    assert report.problems[0].startswith("Broken: forward raised RuntimeError: not yet")


def test_bad_against_arguments():
    with pytest.raises(TypeError, match="against must be an nn.Module class or instance"):
        check(MatrixMeanGCN, 3)
    with pytest.raises(TypeError, match="against_params was given without against"):
        gnnkit.check_layer(MatrixMeanGCN, "mean-gcn", against_params={"W": "W"})
    with pytest.raises(ValueError, match="against_params maps 'X'"):
        check(MatrixMeanGCN, MessageMeanGCN, against_params={"X": "W"})


def test_html_shows_both_reports():
    html = check(MatrixMeanGCN, MessageSumGCN)._repr_html_()
    assert html.count("border-left") == 3 and "do not agree" in html


# ---------------------------------------------------------------------- the command line
MATRIX = '''
import torch
from torch import nn


class MeanGCN(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x, edge_index):
        n = x.size(0)
        A = torch.zeros(n, n, dtype=x.dtype)
        A.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.size(1),
                     dtype=x.dtype), accumulate=True)
        D_inv = torch.diag(1 / A.sum(dim=1).clamp(min=1))
        return D_inv @ A @ x @ self.W.T + x @ self.B.T
'''

MESSAGE = '''
import torch
from gnnkit.nn import MessagePassing


class MeanGCN(MessagePassing):
    def __init__(self, in_features, out_features):
        super().__init__(aggr="{aggr}")
        self.W = torch.nn.Linear(in_features, out_features, bias=False)
        self.B = torch.nn.Linear(in_features, out_features, bias=False)

    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x, h=self.W(x))

    def message(self, h_j):
        return h_j

    def update(self, aggr_out, x):
        return aggr_out + self.B(x)
'''

WEIGHTS = ["--against-param", "W=W.weight", "--against-param", "B=B.weight"]


def run(capsys, tmp_path, aggr="mean", *options):
    (tmp_path / "matrix.py").write_text(textwrap.dedent(MATRIX))
    (tmp_path / "message.py").write_text(MESSAGE.format(aggr=aggr))
    code = main(["check-layer", f"{tmp_path}/matrix.py:MeanGCN", "--kind", "mean-gcn",
                 "--against", f"{tmp_path}/message.py:MeanGCN", *options])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_two_files_that_agree_exit_0(capsys, tmp_path):
    code, out, err = run(capsys, tmp_path, "mean", *WEIGHTS)
    assert code == 0 and err == "", out
    assert out.startswith("matrix.py:MeanGCN and message.py:MeanGCN agree, and both are correct")
    assert "\nagainst: MeanGCN is a correct mean-gcn layer" in out


def test_cli_sum_instead_of_mean_exits_1_and_is_named(capsys, tmp_path):
    code, out, _ = run(capsys, tmp_path, "sum", *WEIGHTS)
    assert code == 1
    assert out.startswith("matrix.py:MeanGCN and message.py:MeanGCN do not agree, and "
                          "message.py:MeanGCN is wrong")
    assert "The difference is a named mistake of message.py:MeanGCN" in out
    assert "It sums the neighbours' features instead of averaging them" in out


def test_cli_unusable_against_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, tmp_path, "mean")
    assert code == 2 and out == ""
    assert "no tensor 'W'" in err and "--against-param W=attribute.path" in err
    code, _, err = run(capsys, tmp_path, "mean", "--against-param", "X=W.weight")
    assert code == 2 and "--against-param X=...: a mean-gcn layer has the parameters" in err
    code, _, err = run(capsys, tmp_path, "mean", *WEIGHTS, "--time-limit", "0")
    assert code == 2 and "time_limit must be > 0" in err
    (tmp_path / "matrix.py").write_text(MATRIX)
    code = main(["check-layer", f"{tmp_path}/matrix.py:MeanGCN", "--kind", "mean-gcn",
                 "--against", f"{tmp_path}/matrix.py:Other"])
    _, err = capsys.readouterr()
    assert code == 2 and "has no class 'Other' (its nn.Module classes: MeanGCN)" in err
    code = main(["check-layer", f"{tmp_path}/matrix.py:MeanGCN", "--kind", "mean-gcn",
                 "--against-param", "W=W"])
    _, err = capsys.readouterr()
    assert code == 2 and "give that layer with --against" in err
    code = main(["check-layer", f"{tmp_path}/matrix.py:MeanGCN", "--kind", "mean-gcn",
                 "--against", "message.py"])
    _, err = capsys.readouterr()
    assert code == 2 and "write --against FILE.py:ClassName, got 'message.py'" in err


def test_cli_two_classes_of_one_file(capsys, tmp_path):
    path = tmp_path / "forms.py"
    path.write_text(textwrap.dedent(MATRIX) + "\n\nclass Again(MeanGCN):\n    pass\n")
    code = main(["check-layer", f"{path}:MeanGCN", "--kind", "mean-gcn",
                 "--against", f"{path}:Again"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.startswith("MeanGCN and Again agree"), out
