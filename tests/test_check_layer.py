"""Tests for gnnkit.check_layer: right layers pass, and each usual mistake, made on purpose in a
layer written here, is named (and nothing is claimed that did not run)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gnnkit
from gnnkit.check.layer_cases import CLASS_SIZES, cases
from gnnkit.check.layer_reference import GATVariant, MeanGCNVariant, variants


# ---------------------------------------------------------------------- mean-GCN layers
class MeanGCN(nn.Module):
    """A right mean-GCN in message form: H' = D^-1 A H W^T + H B^T."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.B = nn.Parameter(torch.randn(out_features, in_features))

    def ends(self, edge_index):
        return edge_index[0], edge_index[1]  # (source j, target i)

    def degree(self, edge_index, num_nodes, dtype):
        _, target = self.ends(edge_index)
        return torch.zeros(num_nodes, dtype=dtype).index_add(
            0, target, torch.ones(target.numel(), dtype=dtype))

    def aggregate(self, x, edge_index):
        source, target = self.ends(edge_index)
        summed = torch.zeros_like(x).index_add(0, target, x[source])
        return summed / self.degree(edge_index, x.size(0), x.dtype).clamp(min=1)[:, None]

    def forward(self, x, edge_index):
        return self.aggregate(x, edge_index) @ self.W.T + x @ self.B.T


class MatrixMeanGCN(MeanGCN):
    """The same layer in matrix form."""

    def forward(self, x, edge_index):
        n = x.size(0)
        A = torch.zeros(n, n, dtype=x.dtype).index_put(
            (edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=x.dtype),
            accumulate=True)  # A[i, j] = the number of edges j -> i
        degree = A.sum(dim=1)
        D_inv = torch.diag(torch.where(degree > 0, 1 / degree.clamp(min=1), 0.0))
        return D_inv @ A @ x @ self.W.T + x @ self.B.T


class Transposed(MeanGCN):
    def ends(self, edge_index):
        return edge_index[1], edge_index[0]


class Sum(MeanGCN):
    def aggregate(self, x, edge_index):
        source, target = self.ends(edge_index)
        return torch.zeros_like(x).index_add(0, target, x[source])


class SourceInDegree(MeanGCN):
    def aggregate(self, x, edge_index):
        source, target = self.ends(edge_index)
        degree = self.degree(edge_index, x.size(0), x.dtype).clamp(min=1)
        return torch.zeros_like(x).index_add(0, target, x[source] / degree[source, None])


class SourceOutDegree(MeanGCN):
    def aggregate(self, x, edge_index):
        source, target = self.ends(edge_index)
        out_degree = torch.bincount(source, minlength=x.size(0)).to(x.dtype).clamp(min=1)
        return torch.zeros_like(x).index_add(0, target, x[source] / out_degree[source, None])


class NoRoot(MeanGCN):
    def forward(self, x, edge_index):
        return self.aggregate(x, edge_index) @ self.W.T


class Swapped(MeanGCN):
    def forward(self, x, edge_index):
        return self.aggregate(x, edge_index) @ self.B.T + x @ self.W.T


class SelfLoops(MeanGCN):
    def forward(self, x, edge_index):
        loops = torch.arange(x.size(0)).repeat(2, 1)
        return super().forward(x, torch.cat([edge_index, loops], dim=1))


class NaNWithoutNeighbours(MeanGCN):
    def aggregate(self, x, edge_index):
        source, target = self.ends(edge_index)
        summed = torch.zeros_like(x).index_add(0, target, x[source])
        return summed / self.degree(edge_index, x.size(0), x.dtype)[:, None]


class Untransposed(MeanGCN):
    def forward(self, x, edge_index):
        return self.aggregate(x, edge_index) @ self.W + x @ self.B


class Doubled(MeanGCN):
    def forward(self, x, edge_index):
        return 2 * super().forward(x, edge_index)


class SumWithoutRoot(Sum, NoRoot):
    pass


# ---------------------------------------------------------------------- GAT layers
class GAT(nn.Module):
    """A right one-head GAT: self-loops, LeakyReLU 0.2, softmax over the incoming edges."""

    slope = 0.2

    def __init__(self, in_features, out_features):
        super().__init__()
        self.W = nn.Parameter(torch.randn(out_features, in_features))
        self.a = nn.Parameter(torch.randn(2 * out_features))

    def edges(self, edge_index, n):
        loops = torch.arange(n)
        return torch.cat([edge_index[0], loops]), torch.cat([edge_index[1], loops])

    def scores(self, h, source, target):
        half = h.size(1)
        return F.leaky_relu(h[target] @ self.a[:half] + h[source] @ self.a[half:], self.slope)

    def weights(self, e, group, n):
        top = torch.full((n,), float("-inf"), dtype=e.dtype).scatter_reduce(0, group, e, "amax")
        w = (e - top[group]).exp()
        return w / torch.zeros(n, dtype=e.dtype).index_add(0, group, w)[group]

    def forward(self, x, edge_index):
        n = x.size(0)
        h = x @ self.W.T
        source, target = self.edges(edge_index, n)
        alpha = self.weights(self.scores(h, source, target), target, n)
        return torch.zeros_like(h).index_add(0, target, alpha[:, None] * h[source]), alpha


class GATOverSources(GAT):
    def forward(self, x, edge_index):
        n = x.size(0)
        h = x @ self.W.T
        source, target = self.edges(edge_index, n)
        alpha = self.weights(self.scores(h, source, target), source, n)
        return torch.zeros_like(h).index_add(0, target, alpha[:, None] * h[source])


class GATNoSelfLoops(GAT):
    def edges(self, edge_index, n):
        return edge_index[0], edge_index[1]


class GATHalvesSwapped(GAT):
    def scores(self, h, source, target):
        return super().scores(h, target, source)


class GATNoLeakyReLU(GAT):
    def scores(self, h, source, target):
        half = h.size(1)
        return h[target] @ self.a[:half] + h[source] @ self.a[half:]


class GATDefaultSlope(GAT):
    slope = 0.01


class GATNotNormalised(GAT):
    def weights(self, e, group, n):
        return e.exp()


# ---------------------------------------------------------------------- right layers
@pytest.mark.parametrize("layer", [MeanGCN, MatrixMeanGCN, MeanGCN(3, 4)],
                         ids=["message form", "matrix form", "instance"])
def test_right_mean_gcn_passes(layer):
    report = gnnkit.check_layer(layer, "mean-gcn")
    assert report.ok, str(report)
    assert str(report).startswith(f"{report.name} is a correct mean-gcn layer: it equals the "
                                  "reference on")
    notes = "\n".join(report.notes)
    for check in ("passed: output shape", "passed: output finite", ("passed: equal to the "
                  "reference in float64"), "passed: same output with the edges shuffled",
                  "passed: gradients reach x and W, B and equal the reference's",
                  "not run: the matrix and message forms agreeing"):
        assert check in notes


def test_right_gat_passes_with_a_tuple_output():
    report = gnnkit.check_layer(GAT, "gat")
    assert report.ok, str(report)
    assert "runs (3 graphs x 3 sizes)" in report.verdict


def test_attention_vector_as_a_column_and_a_gat_instance():
    class ColumnA(GAT):
        def __init__(self, in_features, out_features):
            super().__init__(in_features, out_features)
            self.a = nn.Parameter(torch.randn(2 * out_features, 1))

        def scores(self, h, source, target):
            pairs = torch.cat([h[target], h[source]], dim=1)
            return F.leaky_relu((pairs @ self.a).squeeze(1), 0.2)

    assert gnnkit.check_layer(ColumnA, "gat").ok
    assert gnnkit.check_layer(ColumnA(3, 2), "gat").ok


def test_an_instance_is_checked_at_its_size_and_left_unchanged():
    layer = MeanGCN(4, 2)
    before = {name: p.detach().clone() for name, p in layer.named_parameters()}
    report = gnnkit.check_layer(layer, "mean-gcn")
    assert report.ok and "at in=4, out=2" in report.notes[0]
    assert all(torch.equal(before[name], p) for name, p in layer.named_parameters())
    assert layer.W.dtype == torch.float32 and layer.W.grad is None


def test_parameters_under_other_names():
    class Linears(nn.Module):
        def __init__(self, in_features, out_features):
            super().__init__()
            self.lin = nn.Linear(in_features, out_features, bias=False)
            self.root = nn.Linear(in_features, out_features, bias=False)

        def forward(self, x, edge_index):
            mean = MeanGCN.aggregate(MeanGCN(1, 1), x, edge_index)
            return self.lin(mean) + self.root(x)

    params = {"W": "lin.weight", "B": "root.weight"}
    assert gnnkit.check_layer(Linears, "mean-gcn", params=params).ok
    with pytest.raises(ValueError, match=r"no tensor 'W' .*lin.weight \[2, 3\].*params="):
        gnnkit.check_layer(Linears(3, 2), "mean-gcn")


# ---------------------------------------------------------------------- each mistake named
MEAN_GCN_MISTAKES = [
    (Transposed, "aggregates over the out-neighbours (A transposed)"),
    (Sum, "sums the neighbours' features instead of averaging them"),
    (SourceInDegree, "divides each neighbour j's features by the degree of j (A D^-1 H)"),
    (SourceOutDegree, "divides each message h_j by the out-degree of its source j"),
    (NoRoot, "The term H B^T (each node's own features times B) is missing."),
    (Swapped, "W and B are swapped"),
    (SelfLoops, "It adds self-loops (A + I)"),
]


@pytest.mark.parametrize("layer, words", MEAN_GCN_MISTAKES,
                         ids=[layer.__name__ for layer, _ in MEAN_GCN_MISTAKES])
def test_each_mean_gcn_mistake_is_named(layer, words):
    report = gnnkit.check_layer(layer, "mean-gcn")
    assert not report.ok
    assert len(report.problems) == 1 and words in report.problems[0], str(report)
    assert "Each mistake above was checked" in "\n".join(report.notes)


def test_two_mistakes_at_once_are_both_named():
    report = gnnkit.check_layer(SumWithoutRoot, "mean-gcn")
    assert len(report.problems) == 2
    assert "sums the neighbours" in report.problems[0] and "H B^T" in report.problems[1]


def test_nan_at_nodes_without_incoming_edges():
    report = gnnkit.check_layer(NaNWithoutNeighbours, "mean-gcn")
    problem = report.problems[0]
    assert problem.startswith("The output is NaN or inf at node 0 (graph 1")
    assert "exactly the nodes without incoming edges: the mean over no neighbours divides by 0" in (
        problem)
    assert len(report.problems) == 3  # graph 2 has its own node 4, graph 3 its nodes 3 and 6
    assert "FAILED: output finite" in "\n".join(report.notes)
    assert "passed: equal to the reference" in "\n".join(report.notes)  # on the finite rows


def test_untransposed_weights_fail_where_in_differs_from_out():
    report = gnnkit.check_layer(Untransposed, "mean-gcn")
    text = str(report)
    assert "It multiplies by W and B instead of their transposes" in text
    assert "forward raised RuntimeError" in text and "test_check_layer.py, line" in text
    assert "x @ self.B" in text  # the student's own line


def test_an_unknown_mistake_names_the_node_and_the_size_of_the_difference():
    report = gnnkit.check_layer(Doubled, "mean-gcn")
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.startswith("The output differs from the reference: most at node ")
    assert "(by up to " in problem and "nodes that differ in that run" in problem
    assert "no variant with the usual mistakes explains" in "\n".join(report.notes)


def test_only_nodes_without_incoming_edges_differ():
    class OneAtIsolated(MeanGCN):
        def aggregate(self, x, edge_index):
            mean = super().aggregate(x, edge_index)
            isolated = self.degree(edge_index, x.size(0), x.dtype) == 0
            return torch.where(isolated[:, None], x, mean)  # "mean of itself"

    report = gnnkit.check_layer(OneAtIsolated, "mean-gcn")
    assert "Only nodes without incoming edges differ" in report.problems[0]


GAT_MISTAKES = [
    (GATOverSources, "normalises the attention over the wrong end of the edge"),
    (GATNoSelfLoops, "The self-loops are missing"),
    (GATHalvesSwapped, "The halves of a are swapped"),
    (GATNoLeakyReLU, "The LeakyReLU is missing"),
    (GATDefaultSlope, "slope 0.01"),
    (GATNotNormalised, "The attention weights are not normalised"),
]


@pytest.mark.parametrize("layer, words", GAT_MISTAKES,
                         ids=[layer.__name__ for layer, _ in GAT_MISTAKES])
def test_each_gat_mistake_is_named(layer, words):
    report = gnnkit.check_layer(layer, "gat")
    assert not report.ok
    assert len(report.problems) == 1 and words in report.problems[0], str(report)


# ---------------------------------------------------------------------- the course's checks
def test_no_gradient_reaching_a_parameter_or_the_input():
    class DetachedB(MeanGCN):
        def forward(self, x, edge_index):
            return self.aggregate(x, edge_index) @ self.W.T + x @ self.B.detach().T

    report = gnnkit.check_layer(DetachedB, "mean-gcn")
    assert report.problems == [
        ("No gradient reaches B: the output does not depend on it through autograd (is it used, "
        "or cut off by .detach(), .data, .item() or torch.no_grad()?).")
    ]

    class DetachedInput(MeanGCN):
        def forward(self, x, edge_index):
            return super().forward(x.detach(), edge_index)

    assert "No gradient reaches x" in gnnkit.check_layer(DetachedInput, "mean-gcn").problems[0]

    class NoGraph(MeanGCN):
        def forward(self, x, edge_index):
            with torch.no_grad():
                return super().forward(x, edge_index)

    report = gnnkit.check_layer(NoGraph, "mean-gcn")
    assert [p.split(":")[0] for p in report.problems] == [
        "No gradient reaches x", "No gradient reaches W", "No gradient reaches B"]


def test_wrong_gradient_with_a_right_output():
    class Frozen(torch.autograd.Function):
        @staticmethod
        def forward(ctx, value):
            return value.clone()

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    class BadBackward(MeanGCN):
        def forward(self, x, edge_index):
            return Frozen.apply(super().forward(x, edge_index))

    report = gnnkit.check_layer(BadBackward, "mean-gcn")
    assert any("The gradient with respect to x differs" in p for p in report.problems)


def test_output_shape_and_non_tensor_output():
    class Transposed_output(MeanGCN):
        def forward(self, x, edge_index):
            return super().forward(x, edge_index).T

    report = gnnkit.check_layer(Transposed_output, "mean-gcn")
    assert "The output has shape [3, 5] instead of [N, out] = [5, 3]" in report.problems[0]
    assert "FAILED: output shape" in "\n".join(report.notes)

    class Nothing(MeanGCN):
        def forward(self, x, edge_index):
            return None

    report = gnnkit.check_layer(Nothing, "mean-gcn")
    assert "forward returned NoneType, not a tensor [N, out] on graph 1" in report.problems[0]
    assert "not run: output shape (no output)." in report.notes
    assert "not run: output finite" in "\n".join(report.notes)


def test_order_of_the_edges_must_not_matter():
    class FirstEdgeOnly(MeanGCN):
        def aggregate(self, x, edge_index):
            out = torch.zeros_like(x)
            seen = set()
            for k, (j, i) in enumerate(edge_index.t().tolist()):
                if i not in seen:
                    seen.add(i)
                    out = out.index_add(0, edge_index[1, k:k + 1], x[j:j + 1])
            return out

    report = gnnkit.check_layer(FirstEdgeOnly, "mean-gcn")
    assert any("put in another order" in p for p in report.problems)


def test_state_kept_between_calls_is_named():
    class Cached(MeanGCN):
        def forward(self, x, edge_index):
            if not hasattr(self, "cached"):
                self.cached = edge_index  # the first graph, kept for every later call
            return super().forward(x, self.cached)

    report = gnnkit.check_layer(Cached, "mean-gcn")
    assert any(p.startswith("The layer keeps state between calls") for p in report.problems)
    assert not any("keeps state" in p for p in gnnkit.check_layer(MeanGCN, "mean-gcn").problems)


def test_changing_the_input_in_place_is_named():
    class InPlace(MeanGCN):
        def forward(self, x, edge_index):
            out = super().forward(x, edge_index)
            with torch.no_grad():
                x.mul_(0)
            return out

    assert "forward changes its input x in place" in str(gnnkit.check_layer(InPlace, "mean-gcn"))


def test_float32_only_layer_is_compared_in_float32():
    class Float32(MeanGCN):
        def aggregate(self, x, edge_index):
            source, target = self.ends(edge_index)
            summed = torch.zeros(x.size(0), x.size(1)).index_add(0, target, x[source])
            return summed / self.degree(edge_index, x.size(0), x.dtype).clamp(min=1)[:, None]

    report = gnnkit.check_layer(Float32, "mean-gcn")
    assert report.ok, str(report)
    assert any(note.startswith("compared at float32 precision (to 0.0001): the layer does not "
                               "run in float64 (forward raised RuntimeError") for note in report.notes)


def test_wrong_parameter_shapes_and_plain_tensors():
    class WrongShape(MeanGCN):
        def __init__(self, in_features, out_features):
            super().__init__(in_features, out_features)
            self.W = nn.Parameter(torch.randn(in_features, out_features))

    report = gnnkit.check_layer(WrongShape, "mean-gcn")
    assert ("W has shape [4, 2] for in=4, out=2, but the template's W is [2, 4] (transposed: "
            "the template's W is [out, in]).") in report.problems

    class Plain(MeanGCN):
        def __init__(self, in_features, out_features):
            super().__init__(in_features, out_features)
            del self.B
            self.B = torch.randn(out_features, in_features)

    report = gnnkit.check_layer(Plain, "mean-gcn")
    assert "B is a plain tensor, not an nn.Parameter" in report.problems[0]


def test_a_constructor_that_fails_is_reported_once_with_the_sizes_built():
    class Boom(MeanGCN):
        def __init__(self, in_features, out_features):
            super().__init__(in_features, out_features)
            if in_features > out_features:
                raise ValueError("shrinking is not supported")

    report = gnnkit.check_layer(Boom, "mean-gcn")
    line = Boom.__init__.__code__.co_firstlineno + 3
    assert report.problems == [(
        "Boom(4, 2) raised ValueError: shrinking is not supported (test_check_layer.py, line "
        f"{line}, in __init__: raise ValueError(\"shrinking is not supported\")).")]
    assert report.notes[0].startswith("ran: built as Boom(in, out) at (in, out) = (3, 3), (2, 5) "
                                      "(not at (4, 2): the constructor raised)")

    class AlwaysBoom(MeanGCN):
        def __init__(self, in_features, out_features):
            raise RuntimeError("boom")

    report = gnnkit.check_layer(AlwaysBoom, "mean-gcn")
    assert len(report.problems) == 1
    assert report.problems[0].startswith("AlwaysBoom(3, 3) and AlwaysBoom(4, 2) and "
                                         "AlwaysBoom(2, 5) raised RuntimeError: boom")
    assert report.notes[0].startswith("not run: the checks (no AlwaysBoom could be built")


def test_a_constructor_that_does_not_take_in_and_out_is_refused_with_a_hint():
    class NeedsHeads(MeanGCN):
        def __init__(self, in_features, out_features, heads):
            super().__init__(in_features, out_features)

    with pytest.raises(TypeError, match=r"NeedsHeads cannot be built as NeedsHeads\(in_features, "
                       r"out_features\): its constructor is NeedsHeads\(in_features, "
                       r"out_features, heads\).*pass an instance"):
        gnnkit.check_layer(NeedsHeads, "mean-gcn")
    assert gnnkit.check_layer(NeedsHeads(3, 2, heads=1), "mean-gcn").ok


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="kind must be one of 'mean-gcn', 'median-gcn', 'gat'"):
        gnnkit.check_layer(MeanGCN, "gcn")
    with pytest.raises(TypeError, match="nn.Module"):
        gnnkit.check_layer(lambda x, e: x, "mean-gcn")
    with pytest.raises(TypeError, match="nn.Module class"):
        gnnkit.check_layer(int, "gat")
    with pytest.raises(ValueError, match="params maps 'B'"):
        gnnkit.check_layer(GAT, "gat", params={"B": "W"})


# ---------------------------------------------------------------------- the oracle itself
def test_every_variant_is_told_apart_on_the_test_graphs():
    for kind in ("mean-gcn", "gat"):
        runs = cases(kind, CLASS_SIZES)
        outputs = [[variant(c.x, c.edge_index, c.params) for c in runs]
                   for variant in variants(kind)]
        for a in range(len(outputs)):
            for b in range(a + 1, len(outputs)):
                assert any(
                    x is not None and y is not None and not torch.allclose(x, y, atol=1e-3)
                    for x, y in zip(outputs[a], outputs[b])
                ) or all(x is None or y is None for x, y in zip(outputs[a], outputs[b]))


def test_references_by_hand_on_a_tiny_graph():
    # edges 0 -> 1 and 2 -> 1: node 1 averages nodes 0 and 2; nodes 0 and 2 get H B^T only
    x = torch.tensor([[1.0], [10.0], [3.0]], dtype=torch.float64)
    edge_index = torch.tensor([[0, 2], [1, 1]])
    params = {"W": torch.tensor([[2.0]], dtype=torch.float64),
              "B": torch.tensor([[1.0]], dtype=torch.float64)}
    assert MeanGCNVariant()(x, edge_index, params).flatten().tolist() == [1, 14, 3]
    # GAT with a = 0: uniform attention over {self, in-neighbours}
    gat = {"W": torch.tensor([[1.0]], dtype=torch.float64),
           "a": torch.zeros(2, dtype=torch.float64)}
    assert GATVariant()(x, edge_index, gat).flatten().tolist() == pytest.approx([1, 14 / 3, 3])
