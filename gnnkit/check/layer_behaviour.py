"""The behaviour checks of ``check_layer`` beyond the output: state kept between calls,
parameters outside the formula, the order of the edges, in-place edits of the inputs and the
gradients. A mixin of ``check.layer._Check``, which holds the layer, the runs and the report."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from .layer_cases import Case, history_cases, shuffled
from .layer_reference import variants
from .layer_run import (
    TOLERANCE,
    Built,
    Outcome,
    TimedOut,
    dtype_name,
    find_parameters,
    least_precise,
    run_limited,
    student_error,
)

if TYPE_CHECKING:
    from .layer import _Run


class BehaviourChecks:
    """What a correct layer does besides giving the right output (see the module docstring)."""

    def _history(self, built: Built, all_cases: list[Case]) -> bool:
        """The output on a graph does not depend on the calls before it: a fresh layer, the
        layer after a graph of the same size with other edges, and after a graph of another
        size, all give the same output (and two calls in a row too); the same x on other edges
        gives another output. True when the check could run."""
        found = history_cases(all_cases)
        fresh = self._fresh(built)
        if found is None or fresh is None:
            return False
        target, twin, other = found
        outputs = []
        for before in (twin, other, None):
            if before is not None:
                self._call(built, before)
            outputs.append(self._call(built, target))
        outputs.append(self._call(built, target, twin.edge_index))  # target's x, twin's edges
        outputs.append(self._call(fresh, target))  # last: it may fill a cache of the class
        if any(o is None or o.error is not None or o.output.shape != outputs[0].output.shape
               for o in outputs):
            return False  # an error or a hang is reported by the other checks
        tolerance = least_precise({o.precision for o in outputs})
        after_twin, after_other, again, other_edges, fresh_out = (
            o.output.detach().double() for o in outputs)
        rows = torch.isfinite(fresh_out).all(dim=1) & torch.isfinite(other_edges).all(dim=1)
        right = variants(self.kind)[0]
        edges_matter = not self._close(tolerance, right(target.x, twin.edge_index, target.params),
                                       right(target.x, target.edge_index, target.params), rows)
        same = [self._close(tolerance, a, b, rows) for a, b in
                ((after_other, again), (after_twin, after_other), (fresh_out, after_other),
                 (again, other_edges))]
        problem = None
        if not same[0]:
            self.random = True
            problem = (f"The output is random: two calls in a row on {target.graph} with the "
                       "same x, weights and edges differ (dropout with training=True, or "
                       "random numbers in forward?); in eval mode a layer is a function of its "
                       "input.")
        elif not same[1]:
            problem = (f"The layer keeps state between calls: its output on {target.graph} "
                       f"after a call on {_short(twin.graph)} (as many nodes, other edges) "
                       f"differs from its output after a call on {_short(other.graph)} (another "
                       "number of nodes): is a matrix "
                       "kept until the number of nodes changes (a cache in self or in the "
                       "class)? Compute everything from x and edge_index in forward.")
        elif not same[2]:
            problem = ("The layer keeps state between calls: a freshly built one gives another "
                       f"output on {target.graph} than the one that ran on other graphs before "
                       "(a cached matrix?); compute everything from x and edge_index in forward.")
        elif same[3] and edges_matter:
            problem = (f"The output does not depend on the edges it is given: with the same x, "
                       f"the edges of {_short(target.graph)} and of {_short(twin.graph)} (as many "
                       "nodes, other edges) give the same output. Does the layer keep the graph "
                       "of an earlier call (a cache in self or in the class), or not use "
                       "edge_index at all? Compute everything from x and edge_index in forward.")
        if problem:
            self._add(problem)
        self.notes.append(f"{'FAILED' if problem else 'passed'}: the same output on the same "
                          "graph whatever ran before (a fresh layer, after a graph of the same "
                          "size with other edges, after one of another size, twice in a row), "
                          "and another one on other edges.")
        return True

    def _fresh(self, built: Built) -> Built | None:
        """A newly built layer of the same size and dtype, with the same parameter values."""
        size = (built.in_features, built.out_features) if self.is_class else None
        module = self._build(size)
        if not isinstance(module, nn.Module):
            return None
        module = module.to(built.dtype)
        own = dict(built.module.named_parameters())
        with torch.no_grad():
            for name, parameter in module.named_parameters():
                if name in own and own[name].shape == parameter.shape:
                    parameter.copy_(own[name])
        return Built(module, built.in_features, built.out_features,
                     find_parameters(module, self.roles, self.name, self.via), built.dtype)

    def _extras(self, built: Built) -> list[tuple[str, nn.Parameter]]:
        """The layer's parameters that are not one of the formula's."""
        mapped = {id(tensor) for tensor in built.params.values()}
        return [(name, p) for name, p in built.module.named_parameters() if id(p) not in mapped]

    def _extra_parameters(self, run: _Run) -> None:
        """Name every parameter outside the formula that the output depends on (changing it
        changes the output), even when its value happens to be 0."""
        extras = self._extras(run.built)
        if not extras or self.random:  # a random output changes anyway
            return
        generator = torch.Generator().manual_seed(11)
        for name, parameter in extras:
            saved = parameter.detach().clone()
            before = self._call(run.built, run.case)  # just before: state does not count
            with torch.no_grad():
                parameter.add_(1 + torch.rand(parameter.shape, generator=generator,
                                              dtype=torch.float64).to(parameter.dtype))
            outcome = self._call(run.built, run.case)
            with torch.no_grad():
                parameter.copy_(saved)
            if before is None or outcome is None:
                return
            if before.error is not None or outcome.error is None and (
                    outcome.output.shape == before.output.shape and self._close(
                        run.precision, outcome.output.detach().double(),
                        before.output.detach().double(), run.rows)):
                continue
            self.used_extras.append(name)
            self.problems.append(self._extra_sentence(name, saved))
        unused = [f"{n} {list(p.shape)}" for n, p in extras if n not in self.used_extras]
        if unused:
            self.notes.append(f"parameters not in the {self.kind} formula, left as they are "
                              f"(the output does not depend on them): {', '.join(unused)}.")

    def _extra_sentence(self, name: str, value: Tensor) -> str:
        bias = name == "bias" or name.endswith(".bias")
        what = "an extra bias" if bias else "an extra parameter"
        zero = (" It is 0 now, so the output still fits the formula, but training changes it."
                if not value.any() else "")
        fix = (" Remove it (nn.Linear(in, out, bias=False) has none)." if bias
               else " Remove it, or use only W and the other parameters of the formula.")
        formula = {"mean-gcn": "H' = D^-1 A H W^T + H B^T",
                   "median-gcn": "h'_i = W median_j h_j + B h_i",
                   "gat": "h'_i = sum_j alpha_ij W h_j"}[self.kind]
        return (f"{name} {list(value.shape)} is {what} that is not in the {self.kind} formula "
                f"{formula}, and the output depends on it.{zero}{fix}")

    def _edge_order(self, run: _Run) -> None:
        """Two calls in a row, the edges in their order and shuffled, give the same output (in a
        row, so that state kept between calls, said on its own, does not count here)."""
        plain = self._call(run.built, run.case)
        outcome = self._call(run.built, run.case, shuffled(run.case.edge_index, run.case.seed))
        if plain is None or outcome is None or plain.error is not None:
            return
        ok = outcome.error is None and outcome.output.shape == plain.output.shape and self._close(
            least_precise({plain.precision, outcome.precision}), outcome.output.detach().double(),
            plain.output.detach().double(), run.rows)
        if not ok:
            self.problems.append("The output changes when the columns of edge_index are put in "
                                 "another order: the layer must not depend on the order of the "
                                 "edges (e.g. assume they are sorted).")
        self.notes.append(f"{'passed' if ok else 'FAILED'}: same output with the edges shuffled.")

    def _gradients(self, run: _Run) -> None:
        """Gradients reach x and every parameter, and equal the reference's."""
        built = run.built
        for parameter in built.module.parameters():
            parameter.grad = None
        outcome = self._call(built, run.case)
        if outcome is None or outcome.error is not None:
            return
        weight = torch.randn(run.out.shape, generator=torch.Generator().manual_seed(7),
                             dtype=torch.float64)
        try:
            if outcome.output.requires_grad:  # else nothing reaches anything: said below
                loss = (outcome.output * weight.to(outcome.output.dtype)).sum()
                run_limited(loss.backward, self.time_limit)
        except TimedOut as error:
            self.hung = True
            self.problems.append(f"backward {error} (an endless loop in a backward of your "
                                 "own?); the check stopped there.")
            return
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the student's backward
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
        right = self._reference_gradients(run.case)
        precision = least_precise({run.precision, outcome.precision})
        differ = [name for name, grad in got.items() if grad is not None and name in right
                  and self.output_right and not self._close(
                      precision, grad.double().reshape(right[name].shape), right[name],
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
        out = (self.matched or variants(self.kind)[0])(x, case.edge_index, params)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(7),
                             dtype=torch.float64)
        (out * weight).sum().backward()
        return {"x": x.grad} | {role: value.grad for role, value in params.items()}

    def _unchanged(self, case: Case, outcome: Outcome) -> None:
        if not torch.equal(outcome.x.detach(), case.x.to(outcome.x.dtype)):
            self._add("forward changes its input x in place; compute new tensors instead.")
        elif not torch.equal(outcome.edge_index, case.edge_index):
            self._add("forward changes edge_index in place; leave the caller's edges as they are.")


    def _try_float32(self, built: Built, case: Case, first: Outcome) -> None:
        """Run in float32 when the layer cannot run in float64 (and say so)."""
        built.module.float()
        built.params = find_parameters(built.module, self.roles, self.name, self.via)
        built.dtype = torch.float32
        second = self._call(built, case)
        if second is not None and second.error is None:
            self.no_float64 = self.no_float64 or (
                f"forward {first.error}" if first.error
                else f"forward returned {dtype_name(first.output.dtype)} for float64 input")
            return
        built.module.double()
        built.params = find_parameters(built.module, self.roles, self.name, self.via)
        built.dtype = torch.float64

    def _output_dtype(self, built: Built, output: Tensor) -> None:
        if output.dtype != built.dtype:
            self._add(f"forward returns {output.dtype} for {built.dtype} input: return the dtype "
                      "of x (no .half(), .float() or .double() on the output).")

    def _precision_note(self) -> None:
        """Say when the comparison was less strict than float64, and why."""
        if not self.runs:
            return
        used = least_precise({run.precision for run in self.runs})
        if used == torch.float64:
            return
        why = []
        if self.no_float64:
            why.append(f"the layer does not run in float64 ({self.no_float64}), so it ran in "
                       "float32")
        lower = [run for run in self.runs if run.precision != run.built.dtype]
        if lower:
            why.append(f"forward computes in {dtype_name(used)} although x is "
                       f"{dtype_name(lower[0].built.dtype)} (it makes {dtype_name(used)} "
                       "tensors)")
        rtol, _ = TOLERANCE[used]
        self.notes.append(f"compared at {dtype_name(used)} precision (to {rtol:g}): "
                          f"{'; '.join(why)}; create new tensors with dtype=x.dtype and keep weights in "
                          "nn.Parameter to be checked in float64.")


def _short(graph: str) -> str:
    """``"graph 2"`` for the full name of graph 2."""
    return graph.split(" (")[0]
