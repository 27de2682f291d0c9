"""``check_layer``: is a student's mean-GCN or GAT layer right, and if not, what is the mistake?

The layer is run on small directed graphs (see :mod:`.layer_cases`) with its parameters set to
known random values, and compared in float64 with an independent reference
(:mod:`.layer_reference`). When it differs, the same reference with the usual mistakes switched
on is computed on the same weights; a variant that equals the layer's output names the
mistakes, so every sentence printed has been checked. Otherwise the report says which node
differs and by how much.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .layer_cases import CLASS_SIZES, GRAPHS, Case, cases, parameter_shapes, shuffled
from .layer_reference import variants
from .layer_run import Built, build, find_parameters, forward, student_error
from .report import CheckReport

__all__ = ["KINDS", "check_layer"]

#: kind -> the parameter names of the course template.
KINDS = {"mean-gcn": ("W", "B"), "gat": ("W", "a")}
#: (relative, absolute) tolerance of a comparison in the dtype the layer ran in.
TOLERANCE = {torch.float64: (1e-7, 1e-9), torch.float32: (1e-4, 1e-5)}

_NO_INCOMING = {
    "mean-gcn": "the mean over no neighbours divides by 0; a node without incoming edges must "
                "aggregate to 0 (divide by the degree only where it is > 0), so its output is "
                "H B^T",
    "gat": "the softmax over no edges divides by 0; add one self-loop per node first, so every "
           "node attends at least to itself",
}


def check_layer(layer, kind: str, *, params: Mapping[str, str] | None = None) -> CheckReport:
    """Check a mean-GCN or GAT layer against the course's formulas and name its mistakes.

    Args:
        layer: an ``nn.Module`` class, built as ``layer(in_features, out_features)`` at the
            sizes ``CLASS_SIZES`` (in == out, in > out, in < out), or an instance, checked at
            its own size (a copy is used; the instance is not changed). ``forward(x,
            edge_index)`` takes x [N, in] and edge_index [2, E] (row 0 the source j, row 1 the
            target i of an edge j -> i) and returns [N, out] or a tuple whose first item is it.
        kind: ``"mean-gcn"``: ``H' = D^-1 A H W^T + H B^T`` (D the in-degree; a node without
            incoming edges aggregates to 0), parameters ``W``, ``B`` [out, in]. ``"gat"``: one
            head with a self-loop per node, ``e_ij = LeakyReLU_0.2(a^T [W h_i || W h_j])``,
            ``alpha_ij`` the softmax over the incoming edges of i, ``h'_i = sum_j alpha_ij W
            h_j``, parameters ``W`` [out, in] and ``a`` [2 * out].
        params: where the parameters are when they have other names, e.g.
            ``{"W": "lin.weight", "B": "root.weight"}`` (dotted attribute paths).

    Returns:
        A :class:`CheckReport`: ``ok`` when the layer is right; otherwise one problem per
        mistake found. ``report.notes`` lists every check and whether it passed, failed or could
        not run.

    Raises:
        TypeError: ``layer`` is not an ``nn.Module`` class or instance.
        ValueError: an unknown ``kind``, or a parameter that cannot be found.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}.")
    roles = _roles(kind, params)
    is_class = inspect.isclass(layer)
    if not (is_class and issubclass(layer, nn.Module)) and not isinstance(layer, nn.Module):
        raise TypeError(
            f"layer must be an nn.Module class or instance, got {type(layer).__name__}; pass "
            "the class itself (MyLayer, not MyLayer())."
            if not is_class else f"layer must be an nn.Module class, got {layer.__name__}."
        )
    name = layer.__name__ if is_class else type(layer).__name__
    return _Check(layer, name, kind, roles, is_class).run()


def _roles(kind: str, params) -> dict[str, str]:
    roles = {role: role for role in KINDS[kind]}
    for role, path in dict(params or {}).items():
        if role not in roles:
            raise ValueError(f"params maps {role!r}, but a {kind} layer has the parameters "
                             f"{', '.join(KINDS[kind])}.")
        if not isinstance(path, str) or not path:
            raise TypeError(f"params[{role!r}] must be an attribute path such as 'lin.weight', "
                            f"got {path!r}.")
        roles[role] = path
    return roles


class _Check:
    """One run of ``check_layer``: collects problems (mistakes) and notes (checks run)."""

    def __init__(self, layer, name: str, kind: str, roles: dict[str, str], is_class: bool):
        self.layer, self.name, self.kind, self.roles = layer, name, kind, roles
        self.is_class = is_class
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.runs: list[tuple[Case, Built, Tensor]] = []  # cases whose output can be compared
        self.output_right = False

    def run(self) -> CheckReport:
        builds = self._builds()
        self._outputs(builds)
        if self.runs:
            self._compare()
            finite = [run for run in self.runs if torch.isfinite(run[2]).all()]
            if finite:
                self._edge_order(*finite[0])
                self._gradients(*finite[0])
            else:
                self.notes.append("not run: the order of the edges and the gradients (no run "
                                  "gave a finite output).")
        self.notes.append(
            "not run: the matrix and message forms agreeing - check_layer sees one forward(x, "
            "edge_index); check each form with it: both are compared with the same reference, "
            "so two correct verdicts mean the forms agree."
        )
        correct = (f"{self.name} is a correct {self.kind} layer: it equals the reference on "
                   f"{len(self.runs)} runs ({len(GRAPHS)} graphs x {len(self.runs) // len(GRAPHS)}"
                   " sizes).")
        return CheckReport(self.name, self.problems, correct=correct, notes=self.notes)

    # ------------------------------------------------------------------ building
    def _builds(self) -> list[Built]:
        """The layer at each size, with its parameters found and checked against the template."""
        sizes = CLASS_SIZES if self.is_class else [None]
        builds = []
        for size in sizes:
            try:
                module = build(self.layer, size)
            except Exception as error:  # noqa: BLE001 - the student's constructor
                self.problems.append(f"{self.name}{size} raised {student_error(error)}.")
                continue
            params = find_parameters(module, self.roles, self.name)
            in_features, out_features = size or _size_of(params["W"], self.name)
            if self._shapes_wrong(params, in_features, out_features):
                continue
            builds.append(Built(module, in_features, out_features, params))
        where = (f"built as {self.name}(in, out) at (in, out) = "
                 f"{', '.join(map(str, CLASS_SIZES))}" if self.is_class
                 else f"the instance given (a copy), at in={builds[0].in_features}, "
                      f"out={builds[0].out_features}" if builds else "the instance given")
        self.notes.append(f"ran: {where}, in eval mode; parameters read: "
                          f"{', '.join(f'{r} = {p!r}' for r, p in self.roles.items())}.")
        for built in builds[:1]:
            mapped = {id(t) for t in built.params.values()}
            extra = [f"{n} {list(p.shape)}" for n, p in built.module.named_parameters()
                     if id(p) not in mapped]
            if extra:
                self.notes.append(f"parameters not in the {self.kind} formula, left as they are: "
                                  f"{', '.join(extra)}.")
        return builds

    def _shapes_wrong(self, params: dict[str, Tensor], in_features: int, out_features: int) -> bool:
        wrong = False
        for role, want in parameter_shapes(self.kind, in_features, out_features).items():
            tensor = params[role]
            path = self.roles[role]
            plain = (f"{path} is a plain tensor, not an nn.Parameter: it is not in "
                     "layer.parameters(), so no optimiser trains it.")
            if not isinstance(tensor, nn.Parameter) and plain not in self.problems:
                self.problems.append(plain)
            fits = tuple(tensor.shape) == want or (role == "a" and tensor.numel() == want[0])
            if not fits:
                wrong = True
                hint = (" (transposed: the template's W is [out, in])"
                        if tuple(tensor.shape) == want[::-1] else "")
                self.problems.append(
                    f"{path} has shape {list(tensor.shape)} for in={in_features}, "
                    f"out={out_features}, but the template's {role} is {list(want)}{hint}."
                )
        return wrong

    # ------------------------------------------------------------------ forward
    def _outputs(self, builds: list[Built]) -> None:
        errors, shapes, finite = {}, [], True
        for built in builds:
            built.module.double()
            built.params = find_parameters(built.module, self.roles, self.name)
            all_cases = cases(self.kind, [(built.in_features, built.out_features)])
            first = forward(built, all_cases[0])
            if first.error is not None or first.output.dtype != torch.float64:
                self._try_float32(built, all_cases[0], first)
            for case in all_cases:
                outcome = forward(built, case)
                if outcome.error is not None:  # the same error at the same line: said once
                    key = re.sub(r":.*\(", "(", outcome.error)
                    errors.setdefault(key, (outcome.error, []))[1].append(case.describe())
                    continue
                out = outcome.output.detach().double()
                if tuple(out.shape) != (case.num_nodes, built.out_features):
                    shapes.append(f"{list(out.shape)} instead of [N, out] = "
                                  f"[{case.num_nodes}, {built.out_features}] ({case.describe()})")
                    continue
                finite = self._finite(case, out) and finite
                self._unchanged(case, outcome)
                self.runs.append((case, built, out))
            if self.runs and self.runs[-1][1] is built:
                self._keeps_state(*self.runs[-1])
        for first, where in errors.values():
            more = f" (and {len(where) - 1} more run{'s' if len(where) > 2 else ''})"
            self.problems.append(f"forward {first} on {where[0]}{more if len(where) > 1 else ''}.")
        if shapes:
            self.problems.append(f"The output has shape {shapes[0]}"
                                 f"{f' and {len(shapes) - 1} more' if len(shapes) > 1 else ''}.")
        ran = bool(self.runs)
        self.notes.append(f"{'passed' if not shapes else 'FAILED'}: output shape [N, out]."
                          if ran or shapes else "not run: output shape (no output).")
        self.notes.append(f"{'passed' if finite else 'FAILED'}: output finite (no NaN or inf)."
                          if ran else "not run: output finite (no output).")

    def _try_float32(self, built: Built, case: Case, first) -> None:
        """Run in float32 when the layer cannot run in float64 (and say so)."""
        built.module.float()
        built.params = find_parameters(built.module, self.roles, self.name)
        built.dtype = torch.float32
        second = forward(built, case)
        if second.error is None:
            why = first.error or f"it returned {first.output.dtype} for float64 input"
            note = (f"compared in float32 (to 1e-4): the layer does not run in float64 (forward "
                    f"{why}); create new tensors with dtype=x.dtype and keep weights in nn.Parameter.")
            if not any(n.startswith("compared in float32") for n in self.notes):
                self.notes.append(note)
            return
        built.module.double()
        built.params = find_parameters(built.module, self.roles, self.name)
        built.dtype = torch.float64

    def _finite(self, case: Case, out: Tensor) -> bool:
        bad = (~torch.isfinite(out)).any(dim=1)
        if not bad.any():
            return True
        nodes = torch.nonzero(bad).flatten().tolist()
        isolated = torch.nonzero(case.in_degree == 0).flatten().tolist()
        text = (f"The output is NaN or inf at node{'s' if len(nodes) > 1 else ''} "
                f"{', '.join(map(str, nodes))} ({case.describe()})")
        if nodes == isolated:
            text += f", exactly the nodes without incoming edges: {_NO_INCOMING[self.kind]}"
        problem = text + "."
        key = problem.split(" (")[0]
        if not any(p.startswith(key) for p in self.problems):
            self.problems.append(problem)
        return False

    def _keeps_state(self, case: Case, built: Built, out: Tensor) -> None:
        """A freshly built layer gives the same output as one that has run on other graphs."""
        size = (built.in_features, built.out_features) if self.is_class else None
        fresh = build(self.layer, size).to(built.dtype)
        again = Built(fresh, *size or (built.in_features, built.out_features),
                      find_parameters(fresh, self.roles, self.name), built.dtype)
        outcome = forward(again, case)
        rows = torch.isfinite(out).all(dim=1)
        same = outcome.output is not None and outcome.output.shape == out.shape and self._close(
            built, outcome.output.detach().double(), out, rows)
        problem = ("The layer keeps state between calls: a freshly built one gives another output "
                   f"on {case.graph} than the one that ran on other graphs before (a cached "
                   "matrix?); compute everything from x and edge_index in forward.")
        if not same and problem not in self.problems:
            self.problems.append(problem)

    def _unchanged(self, case: Case, outcome) -> None:
        problem = None
        if not torch.equal(outcome.x.detach(), case.x.to(outcome.x.dtype)):
            problem = "forward changes its input x in place; compute new tensors instead."
        elif not torch.equal(outcome.edge_index, case.edge_index):
            problem = "forward changes edge_index in place; leave the caller's edges as they are."
        if problem and problem not in self.problems:
            self.problems.append(problem)

    # ------------------------------------------------------------------ comparison
    def _close(self, built: Built, got: Tensor, want: Tensor | None, rows: Tensor) -> bool:
        if want is None:
            return False
        rtol, atol = TOLERANCE[built.dtype]
        return torch.allclose(got[rows], want.detach()[rows], rtol=rtol, atol=atol)

    def _compare(self) -> None:
        """Right, or the simplest variant that explains every run, or the largest difference."""
        rows = [torch.isfinite(out).all(dim=1) for _, _, out in self.runs]
        if not any(ok.any() for ok in rows):
            self.notes.append("not run: equal to the reference (no finite output to compare).")
            return
        for variant in variants(self.kind):
            if all(self._close(built, out, variant(case.x, case.edge_index, case.params), ok)
                   for (case, built, out), ok in zip(self.runs, rows)):
                mistakes = variant.mistakes()
                self.problems += mistakes
                self.output_right = not mistakes
                verdict = "passed" if not mistakes else "FAILED"
                finite = "" if all(r.all() for r in rows) else " (on the rows that are finite)"
                self.notes.append(f"{verdict}: equal to the reference in {_dtype(self.runs)} on "
                                  f"{len(self.runs)} runs{finite}."
                                  + ("" if not mistakes else " Each mistake above was checked: "
                                     "the reference with exactly these mistakes gives your "
                                     "output on every run."))
                return
        self.problems.append(self._largest_difference(rows))
        self.notes.append(f"FAILED: equal to the reference in {_dtype(self.runs)}; no variant "
                          "with the usual mistakes explains the output either.")

    def _largest_difference(self, rows: list[Tensor]) -> str:
        right = variants(self.kind)[0]
        worst = None
        differing_kinds = set()
        for (case, built, out), ok in zip(self.runs, rows):
            want = right(case.x, case.edge_index, case.params).detach()
            gap = (out - want).abs().amax(dim=1).masked_fill(~ok, 0)
            rtol, atol = TOLERANCE[built.dtype]
            differs = gap > atol + rtol * want.abs().amax(dim=1)
            for node in torch.nonzero(differs).flatten().tolist():
                differing_kinds.add(int(case.in_degree[node]) == 0)
            node = int(gap.argmax())
            if worst is None or gap[node] > worst[0]:
                worst = (float(gap[node]), case, node, out[node], want[node], differs)
        gap, case, node, got, want, differs = worst
        others = torch.nonzero(differs).flatten().tolist()
        text = (f"The output differs from the reference: most at node {node} "
                f"(in-degree {int(case.in_degree[node])}) of {case.describe()}: yours "
                f"{_vector(got)}, the reference {_vector(want)} (by up to {gap:.3g}); nodes that "
                f"differ in that run: {', '.join(map(str, others))}.")
        if differing_kinds == {True} and self.kind == "mean-gcn":
            text += (" Only nodes without incoming edges differ: such a node aggregates to 0, so "
                     "its output is H B^T.")
        return text

    # ------------------------------------------------------------------ other checks
    def _edge_order(self, case: Case, built: Built, out: Tensor) -> None:
        outcome = forward(built, case, shuffled(case.edge_index, case.seed))
        ok = outcome.error is None and outcome.output.shape == out.shape and self._close(
            built, outcome.output.detach().double(), out, torch.isfinite(out).all(dim=1))
        if not ok:
            self.problems.append("The output changes when the columns of edge_index are put in "
                                 "another order: the layer must not depend on the order of the "
                                 "edges (e.g. assume they are sorted).")
        self.notes.append(f"{'passed' if ok else 'FAILED'}: same output with the edges shuffled.")

    def _gradients(self, case: Case, built: Built, out: Tensor) -> None:
        """Gradients reach x and every parameter, and equal the reference's."""
        for parameter in built.module.parameters():
            parameter.grad = None
        outcome = forward(built, case)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(7),
                             dtype=torch.float64)
        try:
            if outcome.output.requires_grad:  # else nothing reaches anything: said below
                (outcome.output * weight.to(outcome.output.dtype)).sum().backward()
        except Exception as error:  # noqa: BLE001 - the student's backward
            self.problems.append(f"backward raised {student_error(error)}.")
            self.notes.append("FAILED: gradients reach x and every parameter.")
            return
        got = {"x": outcome.x.grad} | {role: t.grad for role, t in built.params.items()}
        missing = [name for name, grad in got.items() if grad is None]
        missing += [n for n, p in built.module.named_parameters() if p.grad is None
                    and all(p is not t for t in built.params.values())]
        for name in missing if self.output_right else ():  # else the output says more
            self.problems.append(
                f"No gradient reaches {name}: the output does not depend on it through autograd "
                "(is it used, or cut off by .detach(), .data, .item() or torch.no_grad()?)."
            )
        right = self._reference_gradients(case)
        differ = [name for name, grad in got.items() if grad is not None and name in right
                  and self.output_right and not self._close(
                      built, grad.double().reshape(right[name].shape), right[name],
                      slice(None))]
        for name in differ:
            self.problems.append(f"The gradient with respect to {name} differs from the "
                                 "reference's although the output is right: part of forward is "
                                 "not tracked by autograd (.data, .detach(), .item(), numpy).")
        verdict = "passed" if not missing and not differ else "FAILED"
        compared = " and equal the reference's" if self.output_right else ""
        none = f" (none reaches {', '.join(missing)})" if missing else ""
        self.notes.append(f"{verdict}: gradients reach x and {', '.join(built.params)}{compared}"
                          f"{none}.")

    def _reference_gradients(self, case: Case) -> dict[str, Tensor]:
        x = case.x.clone().requires_grad_(True)
        params = {role: value.clone().requires_grad_(True) for role, value in case.params.items()}
        out = variants(self.kind)[0](x, case.edge_index, params)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(7),
                             dtype=torch.float64)
        (out * weight).sum().backward()
        return {"x": x.grad} | {role: value.grad for role, value in params.items()}


def _size_of(W: Tensor, name: str) -> tuple[int, int]:
    if W.dim() != 2:
        raise ValueError(f"{name}'s W has shape {list(W.shape)}; the template's W is a matrix "
                         "[out, in].")
    return W.size(1), W.size(0)


def _dtype(runs) -> str:
    return "float32" if any(built.dtype == torch.float32 for _, built, _ in runs) else "float64"


def _vector(values: Tensor) -> str:
    shown = ", ".join(f"{float(v):.4g}" for v in values[:4])
    return f"[{shown}{', ...' if values.numel() > 4 else ''}]"
