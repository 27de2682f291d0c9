"""The reference mean-GCN, median-GCN and GAT layers of the course, and their usual wrong
variants.

Both are written here with dense float64 matrices, independently of ``gnnkit.nn``: they are
the oracle ``check_layer`` compares a student's layer with. ``edge_index[0]`` is the source j,
``edge_index[1]`` the target i of an edge j -> i, and ``A[i, j] = 1`` for it.

- mean-GCN: ``H' = D^-1 A H W^T + H B^T`` with D the in-degree; a node without incoming edges
  aggregates to 0, so its output is ``H B^T``. W and B are [out, in].
- median-GCN: ``h'_i = W median_{j -> i} h_j + B h_i``, per feature, the lower middle for an
  even count, 0 for a node without incoming edges (as ``gnnkit.nn.MedianGCNConv``); the form
  ``median_j (W h_j) + B h_i`` is accepted too (:class:`MedianGCNVariant`).
- Each column of edge_index is one edge: ``A[i, j]`` is the number of edges j -> i, so an edge
  given twice counts twice (in the mean-GCN's sum and degree, in the GAT's softmax).
- GAT (one head): add one self-loop per node; for each edge j -> i
  ``e_ij = LeakyReLU_0.2(a^T [W h_i || W h_j])`` (first half of a on the target i),
  ``alpha_ij = softmax of e_ij over the incoming edges of i`` and ``h'_i = sum_j alpha_ij W h_j``.
  W is [out, in], a is [2 * out].

A *variant* is the same computation with some mistakes switched on (each a field of
:class:`MeanGCNVariant` or :class:`GATVariant`); ``mistakes()`` gives one sentence per mistake.
Because every variant is computed on the student's own weights and graph, a variant that equals
the student's output proves the sentences it prints.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import torch
from torch import Tensor

__all__ = ["GATVariant", "MeanGCNVariant", "MedianGCNVariant", "variants"]

GAT_SLOPE = 0.2
_MERGED = ("It counts a repeated edge only once: each column of edge_index is one edge, so an "
           "edge j -> i given twice counts twice")


@dataclass(frozen=True)
class MeanGCNVariant:
    """``H' = D^-1 A H W^T + H B^T`` with the listed mistakes (all off: the right layer).

    Args:
        reversed: A^T instead of A (node i gathers its out-neighbours).
        normalisation: ``"in-degree of i"`` (right), ``"none"`` (a sum), ``"in-degree of j"``
            (``A D^-1``), ``"out-degree of j"``, ``"out-degree of i"``.
        self_loops: A + I (and the degrees counted with them).
        root: the ``H B^T`` term is there.
        swapped: W and B exchanged (``D^-1 A H B^T + H W^T``).
        untransposed: ``H W`` and ``H B`` instead of ``H W^T`` and ``H B^T`` (only defined
            when in == out).
        merged: an edge given twice counted once (A[i, j] = 1 instead of the number of edges).
    """

    reversed: bool = False
    normalisation: str = "in-degree of i"
    self_loops: bool = False
    root: bool = True
    swapped: bool = False
    untransposed: bool = False
    merged: bool = False

    def __call__(self, x: Tensor, edge_index: Tensor, params: dict[str, Tensor]) -> Tensor | None:
        """The output [N, out] for x [N, in], or None where the variant is undefined."""
        W, B = params["W"], params["B"]
        if self.swapped:
            W, B = B, W
        if self.untransposed:
            if W.size(0) != W.size(1):
                return None
            W, B = W.t(), B.t()
        A = _dense(edge_index, x.size(0), self_loops=self.self_loops, x=x, merged=self.merged)
        if self.reversed:
            A = A.t()
        in_degree, out_degree = A.sum(dim=1), A.sum(dim=0)
        scale = {
            "in-degree of i": (_inverse(in_degree), None),
            "none": (None, None),
            "in-degree of j": (None, _inverse(in_degree)),
            "out-degree of j": (None, _inverse(out_degree)),
            "out-degree of i": (_inverse(out_degree), None),
        }[self.normalisation]
        weights = A
        if scale[0] is not None:
            weights = scale[0][:, None] * weights
        if scale[1] is not None:
            weights = weights * scale[1][None, :]
        out = weights @ x @ W.t()
        return out + x @ B.t() if self.root else out

    def mistakes(self) -> list[str]:
        said = []
        if self.reversed:
            said.append(
                "It aggregates over the out-neighbours (A transposed): node i must gather the "
                "nodes j of the edges j -> i, where edge_index[0] is the source j and "
                "edge_index[1] the target i."
            )
        said += {
            "in-degree of i": [],
            "none": [("It sums the neighbours' features instead of averaging them: divide the "
                     "sum at node i by its in-degree (D^-1 A H).")],
            "in-degree of j": [("It divides each neighbour j's features by the degree of j "
                               "(A D^-1 H) instead of dividing the sum at node i by the degree "
                               "of i (D^-1 A H): D^-1 goes on the left of A.")],
            "out-degree of j": [("It divides each message h_j by the out-degree of its source j "
                                "(edges with edge_index[0] == j) instead of dividing the sum at "
                                "node i by the in-degree of i (edges with edge_index[1] == i).")],
            "out-degree of i": [("It divides the sum at node i by the out-degree of i (edges with "
                                "edge_index[0] == i) instead of its in-degree (edges with "
                                "edge_index[1] == i).")],
        }[self.normalisation]
        if self.self_loops:
            said.append("It adds self-loops (A + I): the mean is over the in-neighbours only; "
                        "the node's own features enter through the term H B^T.")
        if not self.root:
            said.append("The term H B^T (each node's own features times B) is missing.")
        if self.swapped:
            said.append("W and B are swapped: W multiplies the mean of the neighbours "
                        "(D^-1 A H W^T) and B the node's own features (H B^T).")
        if self.untransposed:
            said.append("It multiplies by W and B instead of their transposes: with W and B of "
                        "shape [out, in] the layer is H' = D^-1 A H W^T + H B^T (x @ W.T).")
        if self.merged:
            said.append(_MERGED + " in the sum and in the in-degree of i (A[i, j] = 2 there); "
                        "setting A[i, j] = 1 loses the repeat: add the edges up (index_add_, or "
                        "index_put_ with accumulate=True).")
        return said


@dataclass(frozen=True)
class GATVariant:
    """One-head GAT with the listed mistakes (all off: the right layer).

    Args:
        reversed: every edge read backwards (node i attends to its out-neighbours).
        normalise_over: ``"target"`` (right: softmax over the incoming edges of i) or
            ``"source"`` (over the outgoing edges of j).
        self_loops: one self-loop per node is added first.
        halves_swapped: the first half of a on the source j, the second on the target i.
        activation: ``"leaky 0.2"`` (right), ``"none"``, ``"leaky 0.01"`` (torch's default
            slope).
        weights: ``"softmax"`` (right), ``"exp"`` (exp(e) not divided by its sum) or ``"raw"``
            (e itself).
        merged: an edge given twice counted once (a 0/1 mask instead of one term per edge).
    """

    reversed: bool = False
    normalise_over: str = "target"
    self_loops: bool = True
    halves_swapped: bool = False
    activation: str = "leaky 0.2"
    weights: str = "softmax"
    merged: bool = False

    def __call__(self, x: Tensor, edge_index: Tensor, params: dict[str, Tensor]) -> Tensor:
        W, a = params["W"], params["a"]
        out_features = W.size(0)
        Wh = x @ W.t()
        counts = _dense(edge_index, x.size(0), self_loops=self.self_loops, x=x,
                        merged=self.merged)  # [i, j]: the number of edges j -> i
        if self.reversed:
            counts = counts.t()
        first, second = a[:out_features], a[out_features:]
        if self.halves_swapped:
            first, second = second, first
        scores = (Wh @ first)[:, None] + (Wh @ second)[None, :]  # [i, j]: a^T [Wh_i || Wh_j]
        slope = {"leaky 0.2": GAT_SLOPE, "leaky 0.01": 0.01, "none": 1.0}[self.activation]
        scores = torch.where(scores >= 0, scores, slope * scores)
        if self.weights == "raw":
            alpha = counts * scores
        elif self.weights == "exp":
            alpha = counts * scores.exp()
        else:
            alpha = _counted_softmax(scores, counts,
                                     dim=1 if self.normalise_over == "target" else 0)
        return alpha @ Wh

    def mistakes(self) -> list[str]:
        said = []
        if self.reversed:
            said.append("It attends over the out-neighbours (every edge read backwards): node i "
                        "must gather the nodes j of the edges j -> i, where edge_index[0] is the "
                        "source j and edge_index[1] the target i.")
        if self.normalise_over == "source":
            said.append("It normalises the attention over the wrong end of the edge: the softmax "
                        "must run over the incoming edges of each target i (edges with the same "
                        "edge_index[1]), not over the outgoing edges of each source j.")
        if not self.self_loops:
            said.append("The self-loops are missing: add one edge i -> i per node before "
                        "computing the attention, so each node also attends to itself.")
        if self.halves_swapped:
            said.append("The halves of a are swapped: the first half multiplies W h_i of the "
                        "target i and the second W h_j of the source j (a^T [W h_i || W h_j]).")
        said += {
            "leaky 0.2": [],
            "none": [("The LeakyReLU is missing: e_ij = LeakyReLU(a^T [W h_i || W h_j]) with "
                     "negative slope 0.2.")],
            "leaky 0.01": [("The LeakyReLU has slope 0.01 (the default of F.leaky_relu and "
                           "nn.LeakyReLU) instead of 0.2: pass negative_slope=0.2.")],
        }[self.activation]
        said += {
            "softmax": [],
            "exp": [("The attention weights are not normalised: exp(e_ij) must be divided by its "
                    "sum over the incoming edges of i (a softmax), so they sum to 1.")],
            "raw": [("The attention weights are not normalised: alpha_ij is the softmax of e_ij "
                    "over the incoming edges of i, not e_ij itself.")],
        }[self.weights]
        if self.merged:
            said.append(_MERGED + " in the softmax over the incoming edges of i, each with its "
                        "own weight; a 0/1 mask A[i, j] loses the repeat: compute the attention "
                        "per column of edge_index.")
        return said


@dataclass(frozen=True)
class MedianGCNVariant:
    """``h'_i = W median_{j -> i} h_j + B h_i`` (per feature, the lower middle for an even
    count, 0 without incoming edges; an edge given twice counts twice) with the listed mistakes.

    Args:
        inside: ``median_j (W h_j) + B h_i``, W applied before the median: another layer (the
            median does not commute with W), but a legitimate one, so not a mistake.
        aggregation: ``"median"`` (right) or ``"mean"``.
        with_self: the node's own row h_i is inside the median.
        sort_key: ``"per feature"`` (right), or whole rows sorted by ``"first feature"``,
            ``"sum"`` or ``"norm"`` and the middle row taken.
        upper: the upper middle for an even count.
    """

    inside: bool = False
    aggregation: str = "median"
    with_self: bool = False
    sort_key: str = "per feature"
    upper: bool = False

    def __call__(self, x: Tensor, edge_index: Tensor, params: dict[str, Tensor]) -> Tensor:
        W, B = params["W"], params["B"]
        values = x @ W.t() if self.inside else x
        rows = []
        for i in range(x.size(0)):
            chosen = values[edge_index[0][edge_index[1] == i]]
            if self.with_self:
                chosen = torch.cat([chosen, values[i:i + 1]])
            rows.append(self._aggregate(chosen, values.size(1), values.dtype))
        aggregated = torch.stack(rows)
        out = aggregated if self.inside else aggregated @ W.t()
        return out + x @ B.t()

    def _aggregate(self, chosen: Tensor, width: int, dtype) -> Tensor:
        count = chosen.size(0)
        if count == 0:
            return torch.zeros(width, dtype=dtype)
        if self.aggregation == "mean":
            return chosen.mean(dim=0)
        middle = count // 2 if self.upper else (count - 1) // 2
        if self.sort_key == "per feature":
            return chosen.sort(dim=0).values[middle]
        key = {"first feature": chosen[:, 0], "sum": chosen.sum(dim=1),
               "norm": chosen.norm(dim=1)}[self.sort_key]
        return chosen[key.argsort(stable=True)[middle]]

    def form(self) -> str:
        """Which of the two right forms this is."""
        if self.inside:
            return ("the form: median_{j -> i} (W h_j) + B h_i (W applied before the median; "
                    "the median does not commute with W, so this is another layer than "
                    "W median_j h_j + B h_i, and both are accepted).")
        return "the form: W median_{j -> i} h_j + B h_i (the median of the inputs, then W)."

    def mistakes(self) -> list[str]:
        said = []
        if self.aggregation == "mean":
            said.append("It averages the neighbours (a mean) instead of taking their median, "
                        "feature by feature.")
        if self.with_self:
            said.append("The node's own row h_i is inside the median: the median runs over the "
                        "in-neighbours j only; h_i enters through the term B h_i.")
        if self.sort_key != "per feature":
            said.append(f"It sorts whole neighbour vectors by one key ({self.sort_key}) and takes "
                        "the middle one: the median is taken per feature, each column sorted "
                        "on its own (torch.median(..., dim=0)), so the result can mix "
                        "neighbours.")
        if self.upper:
            said.append("For an even number of neighbours it takes the upper middle value; the "
                        "median here is the lower one (index (k - 1) // 2 of k sorted values, as "
                        "torch.median).")
        return said


def variants(kind: str) -> list[MeanGCNVariant] | list[GATVariant] | list[MedianGCNVariant]:
    """Every variant of the reference of ``kind``, the right one first, then by the number of
    mistakes (so the first match is the simplest explanation)."""
    if kind == "mean-gcn":
        found = [
            MeanGCNVariant(*values)
            for values in itertools.product(
                (False, True),
                ("in-degree of i", "none", "in-degree of j", "out-degree of j", "out-degree of i"),
                (False, True), (True, False), (False, True), (False, True), (False, True),
            )
            if not (values[4] and not values[3])  # a swap needs both terms
            and not (values[0] and values[1] not in ("in-degree of i", "none"))
        ]
    elif kind == "median-gcn":
        found = [
            MedianGCNVariant(*values)
            for values in itertools.product(
                (False, True), ("median", "mean"), (False, True),
                ("per feature", "first feature", "sum", "norm"), (False, True),
            )
            if not (values[1] == "mean" and (values[3] != "per feature" or values[4]))
        ]
    else:
        found = [
            GATVariant(*values)
            for values in itertools.product(
                (False, True), ("target", "source"), (True, False), (False, True),
                ("leaky 0.2", "none", "leaky 0.01"), ("softmax", "exp", "raw"), (False, True),
            )
            if not (values[1] == "source" and values[5] != "softmax")  # no softmax, no end
        ]
    return sorted(found, key=_mistake_count)


def _mistake_count(variant) -> int:
    """How many mistakes a variant has (the other right form of a median is none)."""
    default = type(variant)()
    return sum(getattr(variant, f.name) != getattr(default, f.name) for f in fields(variant)
               if f.name != "inside")


def _dense(edge_index: Tensor, num_nodes: int, *, self_loops: bool, x: Tensor,
           merged: bool = False) -> Tensor:
    """A [N, N] with ``A[i, j]`` = the number of edges j -> i (1 where there is any, with
    ``merged``), + I with ``self_loops``."""
    A = torch.zeros(num_nodes, num_nodes, dtype=x.dtype)
    A.index_put_((edge_index[1], edge_index[0]), torch.ones(edge_index.size(1), dtype=x.dtype),
                 accumulate=True)
    if merged:
        A = (A != 0).to(x.dtype)
    return A + torch.eye(num_nodes, dtype=x.dtype) if self_loops else A


def _inverse(degrees: Tensor) -> Tensor:
    """1 / max(degree, 1): a mean over nothing is 0 (the sum is 0), and a wrong degree that is
    0 is taken as 1, as ``degree.clamp(min=1)`` does."""
    return 1 / degrees.clamp(min=1)


def _counted_softmax(scores: Tensor, counts: Tensor, dim: int) -> Tensor:
    """Softmax of ``scores`` along ``dim``, each entry taken ``counts`` times (one term per
    edge; 0 where a row/column has no edge)."""
    mask = counts != 0
    filled = scores.masked_fill(~mask, float("-inf"))
    top = filled.amax(dim=dim, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    exp = (filled - top).exp() * counts
    total = exp.sum(dim=dim, keepdim=True)
    return exp / torch.where(total > 0, total, torch.ones_like(total))
