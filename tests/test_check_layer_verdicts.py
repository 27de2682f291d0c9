"""check_layer never passes a wrong layer nor fails a right one: state kept between calls,
SystemExit, files that need to be a registered module, extra biases, layers that never return,
the precision a layer computes in, constructors that do not take (in, out), repeated edges."""

import signal
import sys
import textwrap
import threading
import time
import typing

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gnnkit
from gnnkit.check.layer_reference import GATVariant, MeanGCNVariant
from gnnkit.cli import main
from gnnkit.commands import check_layer as check_layer_command


def mean(x, edge_index):
    """The mean over the incoming edges, one term per column of edge_index (0 without any)."""
    source, target = edge_index
    total = torch.zeros_like(x).index_add(0, target, x[source])
    degree = torch.zeros(x.size(0), dtype=x.dtype).index_add(
        0, target, torch.ones(target.numel(), dtype=x.dtype))
    return total / degree.clamp(min=1)[:, None]


class Layer(nn.Module):
    """A right mean-GCN that the layers below change in one place."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x, edge_index):
        return mean(x, edge_index) @ self.W.T + x @ self.B.T


def problems(layer, kind="mean-gcn", **options):
    return gnnkit.check_layer(layer, kind, **options).problems


# ---------------------------------------------------------------------- state
class DegreeCachedPerSize(Layer):
    """Keeps 1 / in-degree in self and recomputes it only when the number of nodes changes."""

    def forward(self, x, edge_index):
        if getattr(self, "scale", None) is None or self.scale.numel() != x.size(0):
            degree = torch.bincount(edge_index[1], minlength=x.size(0)).clamp(min=1)
            self.scale = 1 / degree.to(x.dtype)
        total = torch.zeros_like(x).index_add(0, edge_index[1], x[edge_index[0]])
        return (total * self.scale[:, None]) @ self.W.T + x @ self.B.T


class EdgesCachedInClass(Layer):
    """Keeps the edges in the class, shared by every instance, until the number of nodes
    changes."""

    kept = None  # (number of nodes, edge_index)

    def forward(self, x, edge_index):
        kept = EdgesCachedInClass.kept
        if kept is None or kept[0] != x.size(0):
            EdgesCachedInClass.kept = kept = (x.size(0), edge_index)
        return super().forward(x, kept[1])


class EdgesKeptPerSize(Layer):
    """Keeps the first edges of each number of nodes for good, in a dict of the class."""

    seen: typing.ClassVar[dict] = {}

    def forward(self, x, edge_index):
        return super().forward(x, self.seen.setdefault(x.size(0), edge_index))


@pytest.mark.parametrize("layer", [DegreeCachedPerSize, EdgesCachedInClass])
def test_a_cache_kept_until_the_size_changes_is_named(layer):
    said = problems(layer)
    assert said[0].startswith("The layer keeps state between calls: its output on graph 2")
    assert "is a matrix kept until the number of nodes changes" in said[0]


def test_edges_kept_for_good_are_named():
    said = problems(EdgesKeptPerSize)
    assert said[0].startswith("The output does not depend on the edges it is given: with the "
                              "same x, the edges of graph 2 and of graph 1")


def test_random_output_is_not_called_state():
    class AlwaysDropout(Layer):
        def forward(self, x, edge_index):
            return F.dropout(super().forward(x, edge_index), 0.5, training=True)

    said = problems(AlwaysDropout)
    assert said[0].startswith("The output is random: two calls in a row on graph")
    assert not any("keeps state" in p for p in said)


# ---------------------------------------------------------------------- SystemExit
def test_system_exit_in_the_constructor_or_forward_is_a_reported_error():
    class ExitsInInit(Layer):
        def __init__(self, in_features, out_features):
            sys.exit(0)

    class ExitsInForward(Layer):
        def forward(self, x, edge_index):
            raise SystemExit("bye")

    said = problems(ExitsInInit)
    assert len(said) == 1 and "raised SystemExit: 0 - the layer ends the program" in said[0]
    said = problems(ExitsInForward)
    assert said[0].startswith("forward raised SystemExit: bye - the layer ends the program")


# ---------------------------------------------------------------------- extra parameters
class LinearWithBias(nn.Module):
    """Right but for nn.Linear's default bias on the neighbours' term."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.lin = nn.Linear(in_features, out_features)
        self.root = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x, edge_index):
        return self.lin(mean(x, edge_index)) + self.root(x)


def test_a_linear_default_bias_is_an_extra_bias_not_state():
    said = problems(LinearWithBias, params={"W": "lin.weight", "B": "root.weight"})
    assert said == [(
        "lin.bias [3] is an extra bias that is not in the mean-gcn formula H' = D^-1 A H W^T + "
        "H B^T, and the output depends on it. Remove it (nn.Linear(in, out, bias=False) has none)."
    )]
    report = gnnkit.check_layer(LinearWithBias, "mean-gcn",
                                params={"W": "lin.weight", "B": "root.weight"})
    assert any(note.startswith("passed: equal to the reference in float64 on 9 runs with "
                               "lin.bias set to 0") for note in report.notes)


def test_a_bias_that_is_zero_is_still_named():
    class ZeroBias(Layer):
        def __init__(self, in_features, out_features):
            super().__init__(in_features, out_features)
            self.bias = nn.Parameter(torch.zeros(out_features))

        def forward(self, x, edge_index):
            return super().forward(x, edge_index) + self.bias

    said = problems(ZeroBias)
    assert len(said) == 1 and said[0].startswith("bias [3] is an extra bias")
    assert "It is 0 now, so the output still fits the formula" in said[0]


def test_an_extra_parameter_the_output_ignores_is_not_called_a_bias():
    class Unused(Layer):
        def __init__(self, in_features, out_features):
            super().__init__(in_features, out_features)
            self.bias = nn.Parameter(torch.zeros(out_features))

    report = gnnkit.check_layer(Unused, "mean-gcn")
    assert not any("extra bias" in p for p in report.problems)
    assert any("the output does not depend on them): bias [3]" in n for n in report.notes)


# ---------------------------------------------------------------------- time limit
class Endless(Layer):
    def forward(self, x, edge_index):
        while True:
            pass


def test_a_forward_that_never_returns_gets_a_verdict_in_time():
    start = time.monotonic()
    report = gnnkit.check_layer(Endless, "mean-gcn", time_limit=0.3)
    assert time.monotonic() - start < 5
    assert not report.ok
    assert report.problems == [(
        "forward did not return within 0.3 s on graph 1 (5 nodes; node 0 has no incoming edge), "
        "in=3, out=3 (an endless loop?); the check stopped there.")]


def test_the_callers_alarm_is_left_in_place():
    def outer(signum, frame):
        raise AssertionError("the outer alarm fired")

    previous = signal.signal(signal.SIGALRM, outer)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        gnnkit.check_layer(Endless, "mean-gcn", time_limit=0.2)
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 50 < signal.getitimer(signal.ITIMER_REAL)[0] < 60
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_off_the_main_thread_the_checker_stops_waiting():
    stop = threading.Event()

    class SpinsUntilStopped(Layer):
        def forward(self, x, edge_index):
            while not stop.is_set():
                time.sleep(0.01)

    found = []
    thread = threading.Thread(target=lambda: found.append(
        gnnkit.check_layer(SpinsUntilStopped, "mean-gcn", time_limit=0.3)))
    thread.start()
    thread.join(20)
    stop.set()  # end the call the checker stopped waiting for
    assert found and "forward did not return within 0.3 s" in found[0].problems[0]


def test_a_bad_time_limit_is_refused():
    with pytest.raises(ValueError, match="time_limit must be > 0"):
        gnnkit.check_layer(Layer, "mean-gcn", time_limit=0)


# ---------------------------------------------------------------------- precision
def test_sums_in_float32_returned_as_float64_are_compared_at_float32_precision():
    class SumsInFloat32(Layer):
        def forward(self, x, edge_index):
            small = x.float()
            out = mean(small, edge_index) @ self.W.float().T + small @ self.B.float().T
            return out.double()

    report = gnnkit.check_layer(SumsInFloat32, "mean-gcn")
    assert report.ok, str(report)
    assert any(note.startswith("compared at float32 precision (to 0.0001): forward computes in "
                               "float32 although x is float64") for note in report.notes)


def test_the_differing_nodes_are_listed_even_when_the_difference_is_small():
    class ShiftedALittle(Layer):
        def forward(self, x, edge_index):
            return super().forward(x, edge_index) + 1e-8

    said = problems(ShiftedALittle)
    assert len(said) == 1
    listed = said[0].split("nodes that differ in that run: ")[1].rstrip(".")
    assert listed and all(node.strip().isdigit() for node in listed.split(","))


def test_half_precision_output_is_named_and_compared_at_its_precision():
    class Half(Layer):
        def forward(self, x, edge_index):
            return super().forward(x, edge_index).half()

    said = problems(Half)
    assert said == [("forward returns torch.float16 for torch.float32 input: return the dtype "
                     "of x (no .half(), .float() or .double() on the output).")]


# ---------------------------------------------------------------------- repeated edges
class DenseMean(Layer):
    """A matrix-form mean-GCN whose A[i, j] = 1 keeps one copy of a repeated edge."""

    def forward(self, x, edge_index):
        A = torch.zeros(x.size(0), x.size(0), dtype=x.dtype)
        A[edge_index[1], edge_index[0]] = 1
        return (A / A.sum(1, keepdim=True).clamp(min=1)) @ x @ self.W.T + x @ self.B.T


class DenseGAT(nn.Module):
    """A one-head GAT over a 0/1 mask (with self-loops), so a repeated edge counts once."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.a = nn.Parameter(torch.randn(2 * out_features))

    def forward(self, x, edge_index):
        n, h = x.size(0), x @ self.W.T
        mask = torch.eye(n, dtype=torch.bool)
        mask[edge_index[1], edge_index[0]] = True
        half = h.size(1)
        e = F.leaky_relu((h @ self.a[:half])[:, None] + (h @ self.a[half:])[None, :], 0.2)
        return torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1) @ h


@pytest.mark.parametrize("layer, kind, words", [
    (DenseMean, "mean-gcn", "in the sum and in the in-degree of i"),
    (DenseGAT, "gat", "in the softmax over the incoming edges of i"),
])
def test_a_layer_that_counts_a_repeated_edge_once_is_named(layer, kind, words):
    said = problems(layer, kind)
    assert len(said) == 1, said
    assert said[0].startswith("It counts a repeated edge only once: each column of edge_index is "
                              "one edge, so an edge j -> i given twice counts twice")
    assert words in said[0]


def test_the_references_count_a_repeated_edge_twice():
    # edges 0 -> 1 twice and 2 -> 1 once: node 1 averages 1, 1 and 4
    x = torch.tensor([[1.0], [10.0], [4.0]], dtype=torch.float64)
    edge_index = torch.tensor([[0, 0, 2], [1, 1, 1]])
    params = {"W": torch.tensor([[3.0]], dtype=torch.float64),
              "B": torch.tensor([[0.0]], dtype=torch.float64)}
    assert MeanGCNVariant()(x, edge_index, params).flatten().tolist() == [0, 6, 0]
    assert MeanGCNVariant(merged=True)(x, edge_index, params)[1].item() == pytest.approx(7.5)
    # a = 0: equal scores, so node 1 weighs itself, node 0 twice and node 2 once: (10 + 2 + 4) / 4
    gat = {"W": torch.tensor([[1.0]], dtype=torch.float64),
           "a": torch.zeros(2, dtype=torch.float64)}
    assert GATVariant()(x, edge_index, gat)[1].item() == pytest.approx(4.0)
    assert GATVariant(merged=True)(x, edge_index, gat)[1].item() == pytest.approx(5.0)


# ---------------------------------------------------------------------- the command line
def run(capsys, tmp_path, text, target="L", *options, name="layer.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    code = main(["check-layer", f"{path}:{target}", "--kind", "mean-gcn", *options])
    out, err = capsys.readouterr()
    return code, out, err


LAYER = '''
import torch
from torch import nn


class L(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def forward(self, x, edge_index):
        source, target = edge_index
        total = torch.zeros_like(x).index_add(0, target, x[source])
        degree = torch.bincount(target, minlength=x.size(0)).clamp(min=1).to(x.dtype)
        return (total / degree[:, None]) @ self.W.T + x @ self.B.T
'''


def test_cli_system_exit_in_forward_exits_1_with_the_report(capsys, tmp_path):
    text = LAYER + "\n    def forward(self, x, edge_index):\n        import sys; sys.exit(0)\n"
    code, out, err = run(capsys, tmp_path, text)
    assert code == 1 and err == ""
    assert "forward raised SystemExit: 0 - the layer ends the program" in out


def test_cli_file_with_a_dataclass_and_pickle_is_a_module_while_checked(capsys, tmp_path):
    text = ("from __future__ import annotations\nimport pickle\n"
            "from dataclasses import dataclass\n" + LAYER
            + "\n\n@dataclass\nclass Settings:\n    hidden: int = 3\n\n\n"
            "pickle.loads(pickle.dumps(Settings()))\n")
    before = set(sys.modules)
    code, out, err = run(capsys, tmp_path, text)
    assert code == 0, err
    assert out.startswith("L is a correct mean-gcn layer")
    assert set(sys.modules) - before == set()  # registered only while checked
    assert str(tmp_path) not in sys.path


def test_cli_constructor_without_in_and_out_exits_2_with_a_hint(capsys, tmp_path):
    text = LAYER.replace("def __init__(self, in_features, out_features):",
                         "def __init__(self, in_features, out_features, heads):")
    code, out, err = run(capsys, tmp_path, text)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "its constructor is L(in_features, out_features, heads)" in err
    assert "on the command line a module-level instance" in err


def test_cli_a_module_level_instance_is_checked(capsys, tmp_path):
    text = LAYER.replace("def __init__(self, in_features, out_features):",
                         "def __init__(self, in_features, out_features, heads):")
    code, out, _ = run(capsys, tmp_path, text + "\nlayer = L(3, 2, heads=1)\n", "layer")
    assert code == 0 and out.startswith("L is a correct mean-gcn layer")


def test_cli_endless_forward_exits_1_and_endless_import_exits_2(capsys, tmp_path, monkeypatch):
    text = LAYER + "\n    def forward(self, x, edge_index):\n        while True:\n            pass\n"
    code, out, _ = run(capsys, tmp_path, text, "L", "--time-limit", "0.3")
    assert code == 1 and "forward did not return within 0.3 s" in out
    monkeypatch.setattr(check_layer_command, "IMPORT_TIME_LIMIT", 0.3)
    code, out, err = run(capsys, tmp_path, "while True:\n    pass\n", name="loop.py")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "did not finish importing within 0.3 s" in err
