"""``check_layer(layer, kind, against=Other)``: do two forms of one layer agree?

The homework writes the mean GCN twice, as a matrix product (eq. 6) and as message / update
(eq. 7); the two must give the same output. Here both are checked on their own, exactly as
``check_layer`` checks one layer (so the report says which of them is wrong, if any), and
compared with each other run by run:

- both are built at the same sizes (``CLASS_SIZES``; an instance at its own size, and a class
  compared with it at that size too), and run on the same graphs (:mod:`.layer_cases`) with
  the same x;
- on each run both get the same values of the formula's parameters, set by role (``W``, ``B``
  or ``W``, ``a``, found by name or by ``params``; ``against_params`` overrides ``params`` for
  the second); a parameter outside the formula with the same name and shape in both (an
  ``nn.Linear`` bias, say) gets the first layer's value;
- the outputs are compared at the precision the two computed in, to three times the tolerance
  each is compared with the reference at, so that two right layers always agree.

Where they differ, the report names the nodes (with their in-degree: a node without incoming
edges, a node of the highest in-degree) and the largest difference; when a layer's output is
exactly the reference with some of the usual mistakes (checked again on the compared runs), it
says those mistakes. Nothing is claimed that was not computed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import torch
from torch import Tensor

from .layer import KINDS, _Check, _roles, _Run, _settings, _size_of, _vector
from .layer_cases import CLASS_SIZES, GRAPHS
from .layer_run import (
    AGAINST_OPTION,
    PARAMS_OPTION,
    TIME_LIMIT,
    TOLERANCE,
    dtype_name,
    find_parameters,
    layer_name,
    least_precise,
)
from .report import CheckReport

__all__ = ["AGREEMENT_FACTOR", "PairReport", "check_pair"]

#: The two outputs agree when they differ by at most this many times the tolerance of one
#: against the reference (two outputs each within it of the reference are within twice it of
#: each other, plus rounding of the relative part).
AGREEMENT_FACTOR = 3

_EMPTY = {
    "mean-gcn": "such a node aggregates to 0, so its output is H B^T; look at how each form "
                "divides by a degree of 0 (a division by 0, a clamp, a self-loop)",
    "median-gcn": "such a node aggregates to 0, so its output is B h_i; look at how each form "
                  "handles an empty neighbourhood",
    "gat": "such a node attends only to itself through its self-loop, so its output is W h_i",
}


class PairReport(CheckReport):
    """The report of ``check_layer(layer, kind, against=Other)``: the agreement of the two
    layers, then each layer's own report.

    ``ok`` when both layers are right and agree. ``problems`` holds the agreement's problems,
    then each layer's, prefixed with its label; ``notes`` the agreement's notes.

    Attributes:
        first: the :class:`CheckReport` of ``layer``.
        second: the :class:`CheckReport` of ``against``.
        agreement: the agreement's own problems (one line each).
        agree: True when the outputs agree on every run compared, False when they differ on
            one, None when nothing could be compared.
        labels: how the two are named here (the class names; "(layer)" and "(against)" are
            added when they are the same).
    """

    def __init__(self, labels: tuple[str, str], kind: str, agreement: list[str],
                 notes: list[str], first: CheckReport, second: CheckReport,
                 agree: bool | None, runs: str):
        problems = agreement + [f"{label}: {problem}" for label, report in
                                zip(labels, (first, second)) for problem in report.problems]
        a, b = labels
        super().__init__(f"{a} against {b}", problems, notes=notes, correct=(
            f"{a} and {b} agree, and both are correct {kind} layers: equal to each other and to "
            f"the reference on {runs}."))
        self.first, self.second, self.agreement = first, second, list(agreement)
        self.agree, self.labels = agree, labels

    @property
    def verdict(self) -> str:
        """The first line: whether the two agree and which of them is wrong."""
        if self.ok:
            return super().verdict
        a, b = self.labels
        wrong = [label for label, report in zip(self.labels, (self.first, self.second))
                 if not report.ok]
        state = {True: "agree", False: "do not agree", None: "could not be compared"}[self.agree]
        joint = ", but" if self.agree else ", and"
        who = {0: " both are correct", 1: f" {wrong[0]} is wrong", 2: " both are wrong"}
        count = len(self.problems)
        return (f"{a} and {b} {state}{joint}{who[len(wrong)]}: {count} "
                f"problem{'s' if count != 1 else ''}:")

    def __str__(self) -> str:
        lines = [self.verdict] + [f"  - {line}" for line in self.agreement]
        lines += [f"  * {note}" for note in self.notes]
        for role, report in zip(("layer", "against"), (self.first, self.second)):
            lines += ["", f"{role}: {report}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.ok else "#c62828"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.agreement)
        notes = "".join(f"<br><small>{html.escape(note)}</small>" for note in self.notes)
        head = (f"<div style='border-left:4px solid {colour};padding:4px 8px'><b style='color:"
                f"{colour}'>{html.escape(self.verdict)}</b>"
                f"{f'<ul>{items}</ul>' if items else ''}{notes}</div>")
        parts = [head]
        for role, report in zip(("layer", "against"), (self.first, self.second)):
            parts.append(f"<div style='margin-left:16px'><small>{role}</small>"
                         f"{report._repr_html_()}</div>")
        return "".join(parts)


def check_pair(layer, against, kind: str, *, params: Mapping[str, str] | None = None,
               against_params: Mapping[str, str] | None = None,
               time_limit: float | None = TIME_LIMIT,
               labels: tuple[str, str] | None = None) -> PairReport:
    """Check ``layer`` and ``against`` each against the reference and against each other (see
    the module docstring; called by :func:`gnnkit.check_layer` with ``against``).

    ``labels`` name the two in the comparison (default: their class names, with "(layer)" and
    "(against)" added when they are the same); ``gnnkit check-layer`` passes ``FILE.py:Class``
    when two files hold classes of one name.

    Raises:
        TypeError: either is not an ``nn.Module`` class or instance, or a class that cannot be
            built as ``Class(in_features, out_features)``.
        ValueError: an unknown ``kind``, a ``time_limit`` that is not a positive number, two
            instances of different sizes, an unknown parameter mapping, or a parameter that
            cannot be found (the message names ``params`` or ``against_params``).
    """
    if against is None:
        raise TypeError("against_params was given without against: pass the second layer as "
                        "against=OtherLayer.")
    time_limit = _settings(kind, time_limit)
    name_a, class_a = layer_name(layer, "layer")
    name_b, class_b = layer_name(against, "against")
    roles_a = _roles(kind, params)
    roles_b = _roles(kind, {**dict(params or {}), **dict(against_params or {})}, AGAINST_OPTION)
    size_a = None if class_a else _instance_size(layer, roles_a, name_a, PARAMS_OPTION)
    size_b = None if class_b else _instance_size(against, roles_b, name_b, AGAINST_OPTION)
    if size_a and size_b and size_a != size_b:
        raise ValueError(f"layer is an instance at (in, out) = {size_a} and against one at "
                         f"{size_b}: they can only be compared at one size; build both at the "
                         "same size, or pass the classes.")
    sizes = tuple(CLASS_SIZES)
    if (size_a or size_b) and (size_a or size_b) not in sizes:
        sizes += (size_a or size_b,)
    if labels is None:
        labels = ((name_a, name_b) if name_a != name_b
                  else (f"{name_a} (layer)", f"{name_b} (against)"))
    first = _Check(layer, name_a, kind, roles_a, class_a, time_limit, sizes=sizes if class_a
                   else None, paired=True)
    first_report = first.run()
    copied: set[str] = set()
    second = _Check(against, name_b, kind, roles_b, class_b, time_limit, sizes=sizes if class_b
                    else None, via=AGAINST_OPTION, prepare=_copier(first, copied), paired=True)
    second_report = second.run()
    return _Pair(kind, labels, first, second, copied).report(first_report, second_report)


def _instance_size(layer, roles: dict[str, str], name: str, via) -> tuple[int, int]:
    """(in, out) of an instance, from its W [out, in]."""
    return _size_of(find_parameters(layer, roles, name, via)["W"], name)


def _copier(first: _Check, copied: set[str]):
    """A ``prepare`` hook for the second layer: its parameters outside the formula get the
    values of the first layer's parameters of the same name and shape, at the same size."""

    def prepare(built) -> None:
        donors = {(run.built.in_features, run.built.out_features): run.built
                  for run in first.runs}
        donor = donors.get((built.in_features, built.out_features))
        if donor is None:
            return
        own = _extras(built)
        with torch.no_grad():
            for name, tensor in _extras(donor).items():
                if name in own and own[name].shape == tensor.shape:
                    own[name].copy_(tensor.to(own[name].dtype))
                    copied.add(name)

    return prepare


def _extras(built) -> dict[str, Tensor]:
    """The layer's parameters outside the formula, by name."""
    mapped = {id(tensor) for tensor in built.params.values()}
    return {name: p for name, p in built.module.named_parameters() if id(p) not in mapped}


def _key(run: _Run) -> tuple[str, int, int]:
    return run.case.graph, run.built.in_features, run.built.out_features


def _differing(a: Tensor, b: Tensor, precision: torch.dtype) -> Tensor:
    """[N] True where the rows of a and b differ at ``precision`` (times AGREEMENT_FACTOR); the
    same inf, or NaN in both, counts as equal."""
    rtol, atol = (AGREEMENT_FACTOR * t for t in TOLERANCE[precision])
    finite = torch.isfinite(a) & torch.isfinite(b)
    near = (a - b).abs() <= atol + rtol * torch.maximum(a.abs(), b.abs())
    same = (a == b) | (a.isnan() & b.isnan()) | (finite & near)
    return ~same.all(dim=1)


class _Pair:
    """The comparison of two checked layers, run by run."""

    def __init__(self, kind: str, labels: tuple[str, str], first: _Check, second: _Check,
                 copied: set[str]):
        self.kind, self.labels, self.first, self.second = kind, labels, first, second
        self.copied = copied
        runs_b = {_key(run): run for run in second.runs}
        self.pairs = [(run, runs_b[_key(run)]) for run in first.runs if _key(run) in runs_b
                      and torch.equal(run.case.x, runs_b[_key(run)].case.x)]
        self.problems: list[str] = []
        self.notes: list[str] = []

    def report(self, first: CheckReport, second: CheckReport) -> PairReport:
        agree = self._compare()
        sizes = sorted({(a.built.in_features, a.built.out_features) for a, _ in self.pairs})
        graphs = len({a.case.graph for a, _ in self.pairs}) or len(GRAPHS)
        runs = (f"{len(self.pairs)} runs ({graphs} graphs x {len(sizes)} "
                f"size{'s' if len(sizes) != 1 else ''})")
        return PairReport(self.labels, self.kind, self.problems, self.notes, first, second,
                          agree, runs)

    def _compare(self) -> bool | None:
        a, b = self.labels
        self.notes.append(self._ran_note())
        unpaired = self._unpaired()
        if unpaired:
            self.notes.append(unpaired)
        random = [label for label, check in zip(self.labels, (self.first, self.second))
                  if check.random]
        if random:
            self.notes.append(f"not run: the two agreeing ({' and '.join(random)} gives a random "
                              "output).")
            return None
        if not self.pairs:
            self.notes.append("not run: the two agreeing (no run in which both gave an output "
                              "[N, out]).")
            return None
        differing = []
        for run_a, run_b in self.pairs:
            precision = least_precise({run_a.precision, run_b.precision})
            differs = _differing(run_a.out, run_b.out, precision)
            if differs.any():
                differing.append((run_a, run_b, differs))
        precision = least_precise({r.precision for pair in self.pairs for r in pair})
        rtol, atol = TOLERANCE[precision]
        tolerance = (f"in {dtype_name(precision)}, to {AGREEMENT_FACTOR * rtol:g} relative and "
                     f"{AGREEMENT_FACTOR * atol:g} absolute ({AGREEMENT_FACTOR} times the "
                     "tolerance of each against the reference)")
        verdict = "FAILED" if differing else "passed"
        self.notes.append(f"{verdict}: {a} and {b} give the same output on {len(self.pairs)} "
                          f"runs, compared {tolerance}.")
        if not differing:
            return True
        self.problems.append(self._where(differing))
        self.problems += self._named()
        return False

    def _ran_note(self) -> str:
        a, b = self.labels
        roles = ", ".join(KINDS[self.kind])
        read = "; ".join(
            f"{', '.join(f'{role} = {path!r}' for role, path in check.roles.items())} in {label}"
            for label, check in zip(self.labels, (self.first, self.second)))
        text = (f"ran: {a} and {b} on the same graphs and x, with the same {roles} on each run "
                f"(set by role: {read})")
        if self.copied:
            text += (f"; {b}'s {', '.join(sorted(self.copied))} copied from {a}'s of the same "
                     "name")
        return text + "."

    def _unpaired(self) -> str:
        """The sizes at which only one of the two gave outputs, and why."""
        checks = (self.first, self.second)
        keys = [{(r.built.in_features, r.built.out_features) for r in check.runs}
                for check in checks]
        said = []
        for label, mine, other, check in zip(self.labels, keys, keys[::-1], checks[::-1]):
            if mine - other:
                why = ("an instance runs at its own size only" if not check.is_class
                       else "the other gave no output there")
                sizes = ", ".join(map(str, sorted(mine - other)))
                said.append(f"{sizes} ran only in {label} ({why})")
        return f"not compared: the runs at (in, out) = {'; '.join(said)}." if said else ""

    def _where(self, differing: list) -> str:
        """Which nodes differ, by graph, with their in-degrees, and the largest difference."""
        a, b = self.labels
        by_graph: dict[str, dict[int, tuple[int, int]]] = {}
        runs_per_graph: dict[str, int] = {}
        for run_a, _ in self.pairs:
            runs_per_graph[run_a.case.graph] = runs_per_graph.get(run_a.case.graph, 0) + 1
        sets: dict[str, list[frozenset]] = {}
        worst = None
        for run_a, run_b, differs in differing:
            degree = run_a.case.in_degree
            nodes = torch.nonzero(differs).flatten().tolist()
            sets.setdefault(run_a.case.graph, []).append(frozenset(nodes))
            for node in nodes:
                by_graph.setdefault(run_a.case.graph, {})[node] = (int(degree[node]),
                                                                   int(degree.max()))
            gap = (run_a.out - run_b.out).abs().nan_to_num(nan=float("inf")).amax(dim=1)
            gap = gap.masked_fill(~differs, -1)
            node = int(gap.argmax())
            if worst is None or gap[node] > worst[0]:
                worst = (float(gap[node]), run_a, run_b, node)
        parts = []
        for graph, nodes in by_graph.items():
            listed = ", ".join(f"{node} ({_degree(*nodes[node])})" for node in sorted(nodes))
            some = (len(sets[graph]) < runs_per_graph[graph] or len(set(sets[graph])) > 1)
            parts.append(f"{graph.split(' (')[0]}: node{'s' if len(nodes) > 1 else ''} {listed}"
                         + (" (not at every size)" if some else ""))
        gap, run_a, run_b, node = worst
        text = (f"{a} and {b} differ on {len(differing)} of {len(self.pairs)} runs, at "
                f"{'; '.join(parts)}. Most at node {node} of {run_a.case.describe()}: {a} "
                f"{_vector(run_a.out[node])}, {b} {_vector(run_b.out[node])} (by up to "
                f"{gap:.3g}).")
        if all(degree == 0 for nodes in by_graph.values() for degree, _ in nodes.values()):
            text += f" Only nodes without incoming edges differ: {_EMPTY[self.kind]}."
        rows = sum(int(pair[2].sum()) for pair in differing)
        for label, index in ((a, 0), (b, 1)):
            bad = sum(int((~torch.isfinite(pair[index].out[pair[2]])).any(dim=1).sum())
                      for pair in differing)
            if bad:
                where = ("every one of these nodes" if bad == rows
                         else f"{bad} of the {rows} differing rows (a node in one run each)")
                text += f" {label}'s output is NaN or inf at {where}."
        return text

    def _named(self) -> list[str]:
        """For each layer whose output is exactly the reference with some usual mistakes on
        every run compared, those mistakes (the variant is checked again here on these runs)."""
        found = {}  # label -> (variant, " (on its finite rows)" or "")
        for index, (label, check) in enumerate(zip(self.labels, (self.first, self.second))):
            variant = check.matched
            runs = [pair[index] for pair in self.pairs]
            if variant is not None and all(
                    check._close(run.precision, run.out,
                                 variant(run.case.x, run.case.edge_index, run.case.params),
                                 run.rows) for run in runs):
                finite = "" if all(run.rows.all() for run in runs) else " (on its finite rows)"
                found[label] = (variant, finite)
        said = []
        for label, other in (self.labels, self.labels[::-1]):
            if label not in found or not found[label][0].mistakes():
                continue
            variant, finite = found[label]
            mistakes = variant.mistakes()
            count = len(mistakes)
            which = "this mistake" if count == 1 else f"these {count} mistakes"
            checked = (f"the reference with exactly {which} gives {label}'s output on every run "
                       f"compared{finite}")
            if other in found and not found[other][0].mistakes():
                named = "a named mistake" if count == 1 else f"{count} named mistakes"
                said.append(f"The difference is {named} of {label} ({checked}; {other} equals "
                            f"the reference{found[other][1]}): {' '.join(mistakes)}")
            else:
                said.append(f"{label} has {which} ({checked}): {' '.join(mistakes)}")
        forms = [(label, found[label][0]) for label in self.labels if label in found
                 and not found[label][0].mistakes() and hasattr(found[label][0], "form")]
        if len(forms) == 2 and forms[0][1] != forms[1][1]:
            said.append(f"Both are right {self.kind} layers, but not the same one: "
                        f"{forms[0][0]} has {forms[0][1].form()} {forms[1][0]} has "
                        f"{forms[1][1].form()}")
        return said


def _degree(degree: int, highest: int) -> str:
    if degree == 0:
        return "no incoming edge"
    return f"in-degree {degree}{', the highest' if degree == highest else ''}"
