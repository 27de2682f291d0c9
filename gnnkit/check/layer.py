"""``check_layer``: is a student's mean-GCN or GAT layer right, and if not, what is the mistake?

The layer is run on small directed graphs (see :mod:`.layer_cases`) with its parameters set to
known random values, and compared in float64 with an independent reference
(:mod:`.layer_reference`). When it differs, the same reference with the usual mistakes switched
on is computed on the same weights; a variant that equals the layer's output names the
mistakes, so every sentence printed has been checked. Otherwise the report says which nodes
differ and by how much.

The comparison's tolerance fits the precision the layer computed in: float64 when it stays in
float64, float32 when forward makes float32 tensors (or runs only in float32), and so on.
Parameters that are not in the formula are left as they are; one that the output depends on
(an extra bias, even one that is 0) is named. Every call into the layer has a time limit (see
:mod:`.layer_run`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .._validate import check_real
from .layer_behaviour import BehaviourChecks
from .layer_cases import CLASS_SIZES, GRAPHS, Case, cases, parameter_shapes
from .layer_reference import variants
from .layer_run import (
    PARAMS_OPTION,
    TIME_LIMIT,
    TOLERANCE,
    Built,
    Outcome,
    ParameterError,
    TimedOut,
    build,
    dtype_name,
    find_parameters,
    forward,
    layer_name,
    least_precise,
    student_error,
)
from .report import CheckReport

__all__ = ["KINDS", "TIME_LIMIT", "check_layer"]

#: kind -> the parameter names of the course template.
KINDS = {"mean-gcn": ("W", "B"), "median-gcn": ("W", "B"), "gat": ("W", "a")}
_NO_INCOMING = {
    "mean-gcn": "the mean over no neighbours divides by 0; a node without incoming edges must "
                "aggregate to 0 (divide by the degree only where it is > 0), so its output is "
                "H B^T",
    "median-gcn": "the median over no neighbours is undefined; a node without incoming edges "
                  "must aggregate to 0, so its output is B h_i",
    "gat": "the softmax over no edges divides by 0; add one self-loop per node first, so every "
           "node attends at least to itself",
}


def check_layer(layer, kind: str, *, params: Mapping[str, str] | None = None,
                time_limit: float | None = TIME_LIMIT, against=None,
                against_params: Mapping[str, str] | None = None) -> CheckReport:
    """Check a mean-GCN, median-GCN or GAT layer against the course's formulas and name its
    mistakes.

    Args:
        layer: an ``nn.Module`` class, built as ``layer(in_features, out_features)`` at the
            sizes ``CLASS_SIZES`` (in == out, in > out, in < out), or an instance, checked at
            its own size (a copy is used; the instance is not changed). ``forward(x,
            edge_index)`` takes x [N, in] and edge_index [2, E] (row 0 the source j, row 1 the
            target i of an edge j -> i; an edge given twice counts twice) and returns [N, out]
            or a tuple whose first item is it.
        kind: ``"mean-gcn"``: ``H' = D^-1 A H W^T + H B^T`` (D the in-degree; a node without
            incoming edges aggregates to 0), parameters ``W``, ``B`` [out, in].
            ``"median-gcn"``: ``h'_i = W median_{j -> i} h_j + B h_i`` per feature (the lower
            middle for an even count, 0 without incoming edges), ``W``, ``B`` [out, in];
            ``median_j (W h_j) + B h_i`` is accepted too and the report says which form it is.
            ``"gat"``: one
            head with a self-loop per node, ``e_ij = LeakyReLU_0.2(a^T [W h_i || W h_j])``,
            ``alpha_ij`` the softmax over the incoming edges of i, ``h'_i = sum_j alpha_ij W
            h_j``, parameters ``W`` [out, in] and ``a`` [2 * out].
        params: where the parameters are when they have other names, e.g.
            ``{"W": "lin.weight", "B": "root.weight"}`` (dotted attribute paths).
        time_limit: seconds each call of the constructor, forward or backward may take (None:
            no limit). A call that does not return in time is reported and the check stops.
        against: a second form of the same layer (a class or an instance, e.g. the message form
            of a matrix-form ``layer``). Both are checked as above, built at the same sizes, run
            with the same weights on the same graphs and compared with each other; the report
            gains that section (see :mod:`gnnkit.check.layer_against`).
        against_params: parameter paths of ``against``; ``params`` applies to both, these
            override it.

    Returns:
        A :class:`CheckReport`: ``ok`` when the layer is right; otherwise one problem per
        mistake found. ``report.notes`` lists every check and whether it passed, failed or could
        not run. With ``against``, a :class:`~gnnkit.check.layer_against.PairReport`: ``ok``
        when both are right and agree.

    Raises:
        TypeError: ``layer`` is not an ``nn.Module`` class or instance, or a class whose
            constructor cannot be called as ``layer(in_features, out_features)``.
        ValueError: an unknown ``kind``, a parameter that cannot be found, or a ``time_limit``
            that is not a positive number.
    """
    time_limit = _settings(kind, time_limit)
    roles = _roles(kind, params)
    name, is_class = layer_name(layer, "layer")
    if against is not None or against_params is not None:
        from .layer_against import check_pair  # it builds on _Check

        return check_pair(layer, against, kind, params=params, against_params=against_params,
                          time_limit=time_limit)
    return _Check(layer, name, kind, roles, is_class, time_limit).run()


def _settings(kind: str, time_limit: float | None) -> float | None:
    """The time limit as a float, once ``kind`` and ``time_limit`` are known to be usable."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}.")
    if time_limit is not None:
        time_limit = check_real(time_limit, "time_limit", low=0, open_low=True)
    return time_limit


def _roles(kind: str, params, via: tuple[str, str] = PARAMS_OPTION) -> dict[str, str]:
    roles = {role: role for role in KINDS[kind]}
    python, cli = via
    for role, path in dict(params or {}).items():
        if role not in roles:
            names = ", ".join(KINDS[kind])
            raise ParameterError(
                f"{python} maps {role!r}, but a {kind} layer has the parameters {names}.",
                f"{cli} {role}=...: a {kind} layer has the parameters {names}.")
        if not isinstance(path, str) or not path:
            raise TypeError(f"{python}[{role!r}] must be an attribute path such as 'lin.weight', "
                            f"got {path!r}.")
        roles[role] = path
    return roles


@dataclass
class _Run:
    """One forward call whose output can be compared: its case, build, output (float64) and the
    least precise floating dtype the layer computed it in."""

    case: Case
    built: Built
    out: Tensor
    precision: torch.dtype

    @property
    def rows(self) -> Tensor:
        """The nodes whose output is finite (the others are reported on their own)."""
        return torch.isfinite(self.out).all(dim=1)


class _Check(BehaviourChecks):
    """One run of ``check_layer``: collects problems (mistakes) and notes (checks run)."""

    def __init__(self, layer, name: str, kind: str, roles: dict[str, str], is_class: bool,
                 time_limit: float | None, *, sizes=None, via=PARAMS_OPTION, prepare=None,
                 paired: bool = False):
        self.layer, self.name, self.kind, self.roles = layer, name, kind, roles
        self.is_class, self.time_limit = is_class, time_limit
        self.sizes = sizes or (CLASS_SIZES if is_class else [None])  # an instance: its own
        self.via = via  # how a parameter is mapped, for the messages
        self.prepare = prepare  # called with each Built once it is in float64 (or None)
        self.paired = paired  # compared with a second form by check.layer_against
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.runs: list[_Run] = []  # calls whose output can be compared
        self.output_right = False
        self.hung = False  # a call did not return in time: nothing more is called
        self.random = False  # two calls in a row differ: comparisons between calls mean nothing
        self.no_float64 = ""  # why the layer ran in float32, if it did
        self.used_extras: list[str] = []  # parameters not in the formula that the output uses
        self.matched = None  # the variant of the reference that gave the output, if any

    def run(self) -> CheckReport:
        builds = self._builds()
        self._outputs(builds)
        if self.runs:
            self._extra_parameters(self.runs[0])
            self._compare()
            finite = [run for run in self.runs if run.rows.all()]
            if self.hung:
                self.notes.append("not run: the order of the edges and the gradients (a call "
                                  "did not return in time).")
            elif self.random:
                self.notes.append("not run: the order of the edges and the gradients (the "
                                  "output is random).")
            elif finite:
                self._edge_order(finite[0])
                self._gradients(finite[0])
            else:
                self.notes.append("not run: the order of the edges and the gradients (no run "
                                  "gave a finite output).")
        if not self.paired:
            self.notes.append(
                "not run: the matrix and message forms agreeing - check_layer sees one forward("
                "x, edge_index); pass the other form as against= (on the command line --against "
                "FILE.py:Class) to run both with the same weights on the same graphs."
            )
        sizes = max(len({(r.built.in_features, r.built.out_features) for r in self.runs}), 1)
        correct = (f"{self.name} is a correct {self.kind} layer: it equals the reference on "
                   f"{len(self.runs)} runs ({len(GRAPHS)} graphs x {sizes} "
                   f"size{'s' if sizes > 1 else ''}).")
        return CheckReport(self.name, self.problems, correct=correct, notes=self.notes)

    def _add(self, problem: str) -> None:
        """Add a problem once."""
        if problem not in self.problems:
            self.problems.append(problem)

    # ------------------------------------------------------------------ calling the layer
    def _call(self, built: Built, case: Case, edge_index: Tensor | None = None) -> Outcome | None:
        """forward on the case, or None once a call has not returned in time (said once)."""
        if self.hung:
            return None
        outcome = forward(built, case, edge_index, self.time_limit)
        if outcome.timed_out:
            self.hung = True
            self.problems.append(f"forward {outcome.error} on {case.describe()} (an endless "
                                 "loop?); the check stopped there.")
            return None
        return outcome

    def _build(self, size: tuple[int, int] | None) -> nn.Module | str | None:
        """The layer at ``size``, the student's error as text, or None when it hung."""
        try:
            return build(self.layer, size, self.time_limit)
        except TimedOut as error:
            self.hung = True
            self.problems.append(f"{self.name}{size or ''} {error} (an endless loop in "
                                 "__init__?); the check stopped there.")
            return None
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the student's constructor
            return student_error(error)

    # ------------------------------------------------------------------ building
    def _builds(self) -> list[Built]:
        """The layer at each size, with its parameters found and checked against the template."""
        builds, failed = [], {}
        for size in self.sizes:
            module = None if self.hung else self._build(size)
            if module is None:
                break
            if isinstance(module, str):  # the same error at every size is said once
                failed.setdefault(module, []).append(size)
                continue
            params = find_parameters(module, self.roles, self.name, self.via)
            in_features, out_features = size or _size_of(params["W"], self.name)
            if self._shapes_wrong(params, in_features, out_features):
                continue
            builds.append(Built(module, in_features, out_features, params))
        for error, where in failed.items():
            calls = " and ".join(f"{self.name}{size}" for size in where)
            self.problems.append(f"{calls} raised {error}.")
        self.notes.append(self._built_note(builds, failed))
        return builds

    def _built_note(self, builds: list[Built], failed: dict) -> str:
        """What the checks ran on (only what was really built)."""
        read = ", ".join(f"{role} = {path!r}" for role, path in self.roles.items())
        if not builds:
            return (f"not run: the checks (no {self.name} could be built and used); parameters "
                    f"read: {read}.")
        if not self.is_class:
            where = (f"the instance given (a copy), at in={builds[0].in_features}, "
                     f"out={builds[0].out_features}")
        else:
            done = ", ".join(str((b.in_features, b.out_features)) for b in builds)
            where = f"built as {self.name}(in, out) at (in, out) = {done}"
            broken = [str(size) for sizes in failed.values() for size in sizes]
            if broken:
                where += f" (not at {', '.join(broken)}: the constructor raised)"
        return f"ran: {where}, in eval mode; parameters read: {read}."

    def _shapes_wrong(self, params: dict[str, Tensor], in_features: int, out_features: int) -> bool:
        wrong = False
        for role, want in parameter_shapes(self.kind, in_features, out_features).items():
            tensor = params[role]
            path = self.roles[role]
            if not isinstance(tensor, nn.Parameter):
                self._add(f"{path} is a plain tensor, not an nn.Parameter: it is not in "
                          "layer.parameters(), so no optimiser trains it.")
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
        errors, shapes, finite, history_checked = {}, [], True, False
        for built in builds:
            built.module.double()
            built.params = find_parameters(built.module, self.roles, self.name, self.via)
            if self.prepare is not None:
                self.prepare(built)
            all_cases = cases(self.kind, [(built.in_features, built.out_features)])
            first = self._call(built, all_cases[0])
            if first is not None and (first.error is not None
                                      or first.output.dtype != torch.float64):
                self._try_float32(built, all_cases[0], first)
            complete = True
            for case in all_cases:
                outcome = self._call(built, case)
                if outcome is None:
                    return
                if outcome.error is not None:  # the same error at the same line: said once
                    key = re.sub(r":.*\(", "(", outcome.error)
                    errors.setdefault(key, (outcome.error, []))[1].append(case.describe())
                    complete = False
                    continue
                out = outcome.output.detach().double()
                if tuple(out.shape) != (case.num_nodes, built.out_features):
                    shapes.append(f"{list(out.shape)} instead of [N, out] = "
                                  f"[{case.num_nodes}, {built.out_features}] ({case.describe()})")
                    complete = False
                    continue
                self._output_dtype(built, outcome.output)
                finite = self._finite(case, out) and finite
                self._unchanged(case, outcome)
                self.runs.append(_Run(case, built, out, outcome.precision))
            if complete and not history_checked:  # once, on the first size that ran throughout
                history_checked = self._history(built, all_cases)
        self._say_errors(errors, shapes)
        self._precision_note()
        ran = bool(self.runs)
        self.notes.append(f"{'passed' if not shapes else 'FAILED'}: output shape [N, out]."
                          if ran or shapes else "not run: output shape (no output).")
        self.notes.append(f"{'passed' if finite else 'FAILED'}: output finite (no NaN or inf)."
                          if ran else "not run: output finite (no output).")

    def _say_errors(self, errors: dict, shapes: list[str]) -> None:
        for first, where in errors.values():
            more = f" (and {len(where) - 1} more run{'s' if len(where) > 2 else ''})"
            self.problems.append(f"forward {first} on {where[0]}{more if len(where) > 1 else ''}.")
        if shapes:
            self.problems.append(f"The output has shape {shapes[0]}"
                                 f"{f' and {len(shapes) - 1} more' if len(shapes) > 1 else ''}.")

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


    # ------------------------------------------------------------------ comparison
    def _close(self, precision: torch.dtype, got: Tensor, want: Tensor | None,
               rows: Tensor) -> bool:
        if want is None:
            return False
        rtol, atol = TOLERANCE[precision]
        return torch.allclose(got[rows], want.detach()[rows], rtol=rtol, atol=atol)

    def _explaining(self, outputs: list[Tensor]):
        """The simplest variant of the reference that gives ``outputs`` on every run, or None."""
        for variant in variants(self.kind):
            if all(self._close(run.precision, out, variant(run.case.x, run.case.edge_index,
                                                           run.case.params), run.rows)
                   for run, out in zip(self.runs, outputs)):
                return variant
        return None

    def _compare(self) -> None:
        """Right, or the simplest variant that explains every run, or the largest difference;
        when extra parameters are used, also with them set to 0."""
        if not any(run.rows.any() for run in self.runs):
            self.notes.append("not run: equal to the reference (no finite output to compare).")
            return
        variant = self._explaining([run.out for run in self.runs])
        zeroed = ""
        if variant is None and self.used_extras:
            outputs = self._outputs_without_extras()
            variant = self._explaining(outputs) if outputs else None
            zeroed = f" with {', '.join(self.used_extras)} set to 0" if variant else ""
        if variant is None:
            self.problems.append(self._largest_difference())
            self.notes.append(f"FAILED: equal to the reference in {_dtype(self.runs)}; no "
                              "variant with the usual mistakes explains the output either.")
            return
        mistakes = variant.mistakes()
        self.matched = variant
        if hasattr(variant, "form") and not mistakes:
            self.notes.append(variant.form())
        self.problems += mistakes
        self.output_right = not mistakes and not zeroed
        verdict = "passed" if not mistakes else "FAILED"
        finite = "" if all(run.rows.all() for run in self.runs) else (
            " (on the rows that are finite)")
        self.notes.append(f"{verdict}: equal to the reference in {_dtype(self.runs)} on "
                          f"{len(self.runs)} runs{zeroed}{finite}."
                          + ("" if not mistakes else " Each mistake above was checked: the "
                             "reference with exactly these mistakes gives your output on every "
                             "run."))

    def _outputs_without_extras(self) -> list[Tensor] | None:
        """Every run again with the extra parameters the output uses set to 0."""
        outputs = []
        for run in self.runs:
            extras = [p for n, p in self._extras(run.built) if n in self.used_extras]
            saved = [p.detach().clone() for p in extras]
            with torch.no_grad():
                for parameter in extras:
                    parameter.zero_()
            outcome = self._call(run.built, run.case)
            with torch.no_grad():
                for parameter, value in zip(extras, saved):
                    parameter.copy_(value)
            if outcome is None or outcome.error is not None or (
                    outcome.output.shape != run.out.shape):
                return None
            outputs.append(outcome.output.detach().double())
        return outputs

    def _largest_difference(self) -> str:
        """The node that differs most (among those outside the tolerance) and every node that
        differs in its run."""
        right = variants(self.kind)[0]
        worst = None
        differing_kinds = set()
        for run in self.runs:
            want = right(run.case.x, run.case.edge_index, run.case.params).detach()
            rtol, atol = TOLERANCE[run.precision]
            outside = ((run.out - want).abs() > atol + rtol * want.abs()) & run.rows[:, None]
            differs = outside.any(dim=1)
            if not differs.any():
                continue
            for node in torch.nonzero(differs).flatten().tolist():
                differing_kinds.add(int(run.case.in_degree[node]) == 0)
            gap = (run.out - want).abs().amax(dim=1).masked_fill(~differs, 0)
            node = int(gap.argmax())
            if worst is None or gap[node] > worst[0]:
                worst = (float(gap[node]), run, node, want, differs)
        if worst is None:  # cannot happen: the right reference did not fit some run
            return "The output differs from the reference."
        gap, run, node, want, differs = worst
        others = torch.nonzero(differs).flatten().tolist()
        text = (f"The output differs from the reference: most at node {node} "
                f"(in-degree {int(run.case.in_degree[node])}) of {run.case.describe()}: yours "
                f"{_vector(run.out[node])}, the reference {_vector(want[node])} (by up to "
                f"{gap:.3g}); nodes that differ in that run: {', '.join(map(str, others))}.")
        if differing_kinds == {True} and self.kind in ("mean-gcn", "median-gcn"):
            text += (" Only nodes without incoming edges differ: such a node aggregates to 0, so "
                     "its output is H B^T.")
        return text

def _size_of(W: Tensor, name: str) -> tuple[int, int]:
    if W.dim() != 2:
        raise ValueError(f"{name}'s W has shape {list(W.shape)}; the template's W is a matrix "
                         "[out, in].")
    return W.size(1), W.size(0)


def _dtype(runs: list[_Run]) -> str:
    return dtype_name(least_precise({run.precision for run in runs}))


def _vector(values: Tensor) -> str:
    shown = ", ".join(f"{float(v):.4g}" for v in values[:4])
    return f"[{shown}{', ...' if values.numel() > 4 else ''}]"
