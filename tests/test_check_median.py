"""check_layer(kind="median-gcn"): both right forms accepted and named, the usual mistakes
named only when the reference with that mistake gives the layer's output."""

import pytest
import torch
from torch import nn

import gnnkit
from gnnkit.nn import MedianGCNConv


class StudentMedian(nn.Module):
    """A per-node loop with switches for the usual mistakes."""

    inside = False
    mean = False
    with_self = False
    by_first = False
    upper = False

    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x, edge_index):
        values = x @ self.W.T if self.inside else x
        rows = []
        for i in range(x.size(0)):
            chosen = values[edge_index[0][edge_index[1] == i]]
            if self.with_self:
                chosen = torch.cat([chosen, values[i:i + 1]])
            k = chosen.size(0)
            if k == 0:
                rows.append(values.new_zeros(values.size(1)))
            elif self.mean:
                rows.append(chosen.mean(0))
            elif self.by_first:
                rows.append(chosen[chosen[:, 0].argsort()[(k - 1) // 2]])
            else:
                rows.append(chosen.sort(0).values[k // 2 if self.upper else (k - 1) // 2])
        aggregated = torch.stack(rows)
        out = aggregated if self.inside else aggregated @ self.W.T
        return out + x @ self.B.T


def variant(**switches):
    return type("Median", (StudentMedian,), switches)


def test_right_outside_form_and_gnnkit_layer():
    report = gnnkit.check_layer(StudentMedian, "median-gcn")
    assert report.ok, str(report)
    assert any("the form: W median_{j -> i} h_j + B h_i" in note for note in report.notes)
    assert gnnkit.check_layer(MedianGCNConv, "median-gcn").ok


def test_inside_form_is_accepted_and_named():
    report = gnnkit.check_layer(variant(inside=True), "median-gcn")
    assert report.ok, str(report)
    assert any("median_{j -> i} (W h_j) + B h_i" in note for note in report.notes)


@pytest.mark.parametrize("switches, words", [
    ({"mean": True}, "It averages the neighbours (a mean)"),
    ({"with_self": True}, "The node's own row h_i is inside the median"),
    ({"by_first": True}, "sorts whole neighbour vectors by one key (first feature)"),
    ({"upper": True}, "upper middle value"),
    ({"inside": True, "upper": True}, "upper middle value"),
])
def test_usual_mistakes_are_named(switches, words):
    report = gnnkit.check_layer(variant(**switches), "median-gcn")
    assert not report.ok
    assert len(report.problems) == 1 and words in report.problems[0], str(report)


def test_unexplained_output_is_not_given_a_mistake():
    report = gnnkit.check_layer(variant(forward=lambda self, x, e: x @ self.W.T * 2),
                                "median-gcn")
    assert not report.ok
    assert any(p.startswith("The output differs from the reference") for p in report.problems)
    assert not any("median" in p for p in report.problems)


def test_cli_kind_median_gcn(capsys, tmp_path):
    import inspect

    from gnnkit.cli import main

    path = tmp_path / "median.py"
    path.write_text("import torch\nfrom torch import nn\n\n\n"
                    + inspect.getsource(StudentMedian).replace("upper = False", "upper = True"))
    code = main(["check-layer", f"{path}:StudentMedian", "--kind", "median-gcn"])
    out = capsys.readouterr().out
    assert code == 1 and "upper middle value" in out
