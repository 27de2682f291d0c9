"""CheckReport: the verdict of a check, what is wrong (one line each) and what was checked."""

from __future__ import annotations

import html

__all__ = ["MAX_SHOWN", "CheckReport"]

MAX_SHOWN = 20


class CheckReport:
    """The result of a check: ``ok``, ``problems`` (list of one-line str) and a readable text.

    Args:
        name: what was checked (``"A"``, ``"L"``, a layer's class name).
        problems: one line per mistake; no problems means the answer is right.
        correct: the verdict line when it is right (default ``"<name> is correct."``).
        scope: added to the verdict line when it is wrong, e.g. how rows are numbered.
        notes: lines shown after the problems whatever the verdict (what was checked and what
            could not be).

    ``str(report)`` is the verdict line, one bullet per problem (the first ``MAX_SHOWN``, then
    "... and K more") and one ``*`` line per note; ``_repr_html_`` shows the same in Jupyter.
    ``bool(report)`` is ``report.ok``.
    """

    def __init__(
        self,
        name: str,
        problems: list[str],
        *,
        correct: str | None = None,
        scope: str = "",
        notes: list[str] | tuple[str, ...] = (),
    ):
        self.name = name
        self.problems = list(problems)
        self.notes = list(notes)
        self._correct = correct if correct is not None else f"{name} is correct."
        self._scope = scope

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    @property
    def verdict(self) -> str:
        """The first line of the report: correct, or wrong with the number of problems."""
        if self.ok:
            return self._correct
        count = len(self.problems)
        return f"{self.name} is wrong: {count} problem{'s' if count != 1 else ''}{self._scope}:"

    def _shown(self) -> list[str]:
        shown = self.problems[:MAX_SHOWN]
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_SHOWN} more")
        return shown

    def __str__(self) -> str:
        lines = [self.verdict] + [f"  - {line}" for line in self._shown()]
        return "\n".join(lines + [f"  * {note}" for note in self.notes])

    def __repr__(self) -> str:
        return f"CheckReport(name={self.name!r}, ok={self.ok}, problems={len(self.problems)})"

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.ok else "#c62828"
        mark = "&#10004;" if self.ok else "&#10008;"
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self._shown())
        body = f"<ul style='margin:4px 0'>{items}</ul>" if items else ""
        notes = "".join(f"<br><small>{html.escape(note)}</small>" for note in self.notes)
        return (
            f"<div style='border-left:4px solid {colour};padding:4px 8px'>"
            f"<b style='color:{colour}'>{mark} {html.escape(self.verdict)}</b>{body}{notes}</div>"
        )
