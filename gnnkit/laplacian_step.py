"""``L X``: the Laplacian of a graph applied once to node features, with the reasons.

``(L X)_i = deg(i) x_i - sum_{j in N(i)} x_j = sum_{j in N(i)} (x_i - x_j)``: a node changes a
lot where it differs from its neighbours, and every neighbour adds a term. :func:`laplacian_step`
computes it (exactly for integers) and explains each node; :func:`gnnkit.check_laplacian_step`
checks a hand-computed answer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._validate import as_matrix
from .matrices import as_exact_matrix, check_int64, combinatorial_laplacian, laplacian

__all__ = ["STEP_KINDS", "LaplacianStep", "as_features", "laplacian_step", "step_kind"]

#: The kinds ``laplacian_step`` takes: "plain" is ``L = D - A`` (``None`` and "none" too).
STEP_KINDS = ("plain", "sym", "rw")


class LaplacianStep:
    """``L X`` with the reasons: what :func:`laplacian_step` returns.

    Attributes:
        values: ``L X``, the shape of X ([N] or [N, F]); ``torch.long`` when A and X are
            integers (exact), else float64.
        ranking: the nodes (0-based rows) by how much they change, largest first, ties by id.
            The change of a node is ``|(L X)_i|`` for one column, the Euclidean length of row i
            of ``L X`` for several.
        kind: ``"plain"`` (``L = D - A``), ``"sym"`` or ``"rw"``.
        degrees: the degree (row sum of A) of each node, as Python numbers.
        lines: one line per node (in ranking order) that writes its change out term by term.

    ``str(step)`` is the formula, the node that changes most and why, and ``lines``.
    """

    def __init__(self, values: Tensor, ranking: list[int], kind: str, degrees: list,
                 by_node: list[str], headline: str, formula: str):
        self.values, self.ranking, self.kind = values, ranking, kind
        self.degrees, self._by_node = degrees, by_node
        self.lines = [by_node[i] for i in ranking]
        self.headline, self.formula = headline, formula

    def explain(self, node: int) -> str:
        """The line of one node (0-based row), e.g. ``"node 3: 5 = (2 - 1) + (2 - 0)"``."""
        return self._by_node[node]

    def __repr__(self) -> str:
        return f"LaplacianStep(kind={self.kind!r}, ranking={self.ranking})"

    def __str__(self) -> str:
        return "\n".join([self.formula, self.headline, *(f"  {line}" for line in self.lines)])

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


def laplacian_step(A, X, kind: str | None = "plain", *, one_indexed: bool = False
                   ) -> LaplacianStep:
    """Apply the Laplacian of A to features X once, and say which nodes change most and why.

    - ``"plain"``: ``(L X)_i = deg(i) x_i - sum_{j in N(i)} x_j = sum_{j in N(i)} (x_i - x_j)``:
      large where a node differs from its neighbours, and every neighbour adds a term, so a
      high degree amplifies it.
    - ``"rw"``: ``(L X)_i = x_i - mean_{j in N(i)} x_j = (1/deg(i)) sum_j (x_i - x_j)``: the
      same differences averaged, so the degree does not amplify them.
    - ``"sym"``: ``(L X)_i = (1/sqrt(deg i)) sum_j (x_i/sqrt(deg i) - x_j/sqrt(deg j))``.

    N(i) are the j with ``A[i, j] != 0`` (the in-neighbours under the convention; an entry w
    other than 1 weights its term by w); deg(i) is the row sum of A. A node without neighbours
    does not change (0).

    Args:
        A: the adjacency matrix [N, N] (any form :func:`adjacency` returns or accepts as a
            matrix).
        X: the features: a vector [N] (one value per node) or a matrix [N, F] (one row per node).
        kind: ``"plain"`` (also ``None`` or ``"none"``), ``"sym"`` or ``"rw"``, as in
            :func:`laplacian`.
        one_indexed: number the nodes from 1 in the text (``ranking`` stays 0-based).

    Returns:
        A :class:`LaplacianStep`: ``.values`` is ``L X`` (exact integers when A and X are
        integers and ``kind="plain"``), ``.ranking`` the nodes by change, ``str()`` the reasons.

    Raises:
        ValueError: an unknown kind, or X without one value (or row) per node of A.
        TypeError: X does not hold real numbers.
    """
    kind = step_kind(kind)
    A = as_exact_matrix(A)
    features, vector = as_features(X, A.size(0))
    exact = kind == "plain" and not A.is_floating_point() and not features.is_floating_point()
    if exact:
        values = _exact_product(combinatorial_laplacian(A), features)
    else:
        normalization = None if kind == "plain" else kind
        values = laplacian(A.double(), normalization) @ features.double()
    rows, x, weights = values.tolist(), features.tolist(), A.tolist()
    degrees = [_plain(sum(row)) for row in weights]
    sizes = [sum(v * v for v in row) for row in rows]
    ranking = sorted(range(len(rows)), key=lambda i: (-sizes[i], i))
    words = _StepWords(kind, weights, x, degrees, one_indexed)
    by_node = [words.line(i, row) for i, row in enumerate(rows)]
    headline = words.headline(ranking[0], rows[ranking[0]], sizes)
    return LaplacianStep(values[:, 0] if vector else values, ranking, kind, degrees, by_node,
                         headline, _STEP_FORMULAS[kind])


_STEP_FORMULAS = {
    "plain": "L X with L = D - A: (L X)_i = deg(i) x_i - sum_{j in N(i)} x_j = "
             "sum_{j in N(i)} (x_i - x_j).",
    "rw": "L X with L = I - D^-1 A: (L X)_i = x_i - mean_{j in N(i)} x_j = "
          "(1/deg(i)) sum_{j in N(i)} (x_i - x_j).",
    "sym": "L X with L = I - D^-1/2 A D^-1/2: (L X)_i = (1/sqrt(deg i)) sum_{j in N(i)} "
           "(x_i/sqrt(deg i) - x_j/sqrt(deg j)).",
}


def step_kind(kind) -> str:
    """The checked kind: one of ``STEP_KINDS`` (``None`` and ``"none"`` mean ``"plain"``)."""
    if kind is None or kind == "none":
        return "plain"
    if kind not in STEP_KINDS:
        raise ValueError(f"kind must be 'plain' (L = D - A), 'sym' or 'rw', got {kind!r}.")
    return kind


def as_features(X, size: int) -> tuple[Tensor, bool]:
    """X as a matrix [N, F] (integer or floating) and whether it was a vector [N]."""
    if isinstance(X, (Tensor, np.ndarray)):
        vector = X.ndim == 1
        X = X.reshape(-1, 1) if vector else X
    elif isinstance(X, (list, tuple)):
        vector = bool(X) and not isinstance(X[0], (list, tuple, np.ndarray, Tensor))
        X = [[value] for value in X] if vector else X
    else:
        raise TypeError(f"X must be a vector [N] or a matrix [N, F] of numbers (a list, numpy "
                        f"array or tensor), got {type(X).__name__}.")
    X = as_matrix(X, "X", square=False)
    if X.size(0) != size:
        raise ValueError(f"X has {X.size(0)} rows but A has {size} nodes: give one value (or "
                         "one row of features) per node, in the order of A's rows.")
    return X, vector


def _exact_product(L: Tensor, X: Tensor) -> Tensor:
    """L X of integer matrices, exact (an entry beyond int64 raises ``ValueError``)."""
    bound = float((L.double().abs() @ X.double().abs()).max()) if X.numel() else 0.0
    if bound < 2.0**62:
        return L @ X
    rows, cols = L.tolist(), X.t().tolist()
    exact = [[sum(a * b for a, b in zip(row, col)) for col in cols] for row in rows]
    check_int64((((i, f), v) for i, row in enumerate(exact) for f, v in enumerate(row)),
                 "(L X)[{0[0]}, {0[1]}] = {1}")
    return torch.tensor(exact, dtype=torch.long)


def _plain(value):
    """An integer-valued float as int (so it prints as 3, not 3.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _number(value) -> str:
    value = _plain(value)
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _vector_text(row: list) -> str:
    return _number(row[0]) if len(row) == 1 else f"[{', '.join(map(_number, row))}]"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class _StepWords:
    """The sentences of one Laplacian step: each node's change written term by term."""

    def __init__(self, kind: str, A: list, x: list, degrees: list, one_indexed: bool):
        self.kind, self.A, self.x, self.degrees = kind, A, x, degrees
        self.base = 1 if one_indexed else 0

    def node(self, i: int) -> str:
        return f"node {i + self.base}"

    def neighbours(self, i: int) -> list[int]:
        return [j for j, w in enumerate(self.A[i]) if w != 0 and j != i]

    def differences(self, i: int) -> list[list]:
        """``x_i - x_j`` for each neighbour j (a row of F numbers each)."""
        return [[_plain(a - b) for a, b in zip(self.x[i], self.x[j])] for j in self.neighbours(i)]

    def term(self, i: int, j: int) -> str:
        weight = self.A[i][j]
        if len(self.x[i]) == 1:
            text = f"({_number(self.x[i][0])} - {_number(self.x[j][0])})"
        else:
            text = f"(x_{i + self.base} - x_{j + self.base})"
        if self.kind == "sym":
            di, dj = self.degrees[i], self.degrees[j]
            text = (f"({_number(self.x[i][0])}/sqrt({_number(di)}) - "
                    f"{_number(self.x[j][0])}/sqrt({_number(dj)}))" if len(self.x[i]) == 1
                    else f"(x_{i + self.base}/sqrt({_number(di)}) - "
                    f"x_{j + self.base}/sqrt({_number(dj)}))")
        return text if weight == 1 else f"{_number(weight)} x {text}"

    def line(self, i: int, change: list) -> str:
        """``node 3: 4 = (2 - 1) + (2 - 1) + (2 - 0)`` (and what cancels)."""
        neighbours = self.neighbours(i)
        start = f"{self.node(i)}: {_vector_text(change)}"
        if not neighbours:
            return f"{start} (no neighbours: nothing to compare with)"
        terms = " + ".join(self.term(i, j) for j in neighbours)
        degree = _number(self.degrees[i])
        if self.kind != "plain" and degree != "1":
            scale = f"1/{degree}" if self.kind == "rw" else f"1/sqrt({degree})"
            terms = f"({scale}) x {f'({terms})' if len(neighbours) > 1 else terms}"
        text = f"{start} = {terms}"
        if len(change) > 1:
            text += f" = sum of {', '.join(map(_vector_text, self.differences(i)))}"
        if all(v == 0 for v in change) and any(v != 0 for d in self.differences(i) for v in d):
            text += " (the differences cancel)"
        return text

    def headline(self, i: int, change: list, sizes: list) -> str:
        """Why the node that changes most does."""
        if sizes[i] == 0:
            return ("No node changes: every node's value equals its neighbours' (L X = 0; "
                    "X is constant on each connected part).")
        ties = [k for k, size in enumerate(sizes) if size == sizes[i] and k != i]
        tied = (f" (as much as {_listed([self.node(k) for k in ties])})" if ties else "")
        differences = _listed([_vector_text(d) for d in self.differences(i)])
        degree = _number(self.degrees[i])
        value = "value differs" if len(change) == 1 else "features differ"
        if self.kind == "plain":
            why = f"degree {degree}, and its {value} from its neighbours' by {differences}"
        elif self.kind == "rw":
            why = (f"its {value} from the mean of its neighbours' by {_vector_text(change)} "
                   f"(degree {degree}: the differences {differences} averaged, so the degree "
                   "does not amplify them)")
        else:
            why = (f"degree {degree}; its {value} from its neighbours' by {differences} before "
                   "each is scaled by 1/sqrt(degree)")
        return f"{self.node(i)} changes most{tied}: {why}."
