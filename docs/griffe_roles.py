"""Griffe extension: the docstrings' cross-references (``:class:`Graph```, ``:func:`~a.b```)
become links in the API reference, and one that names nothing fails the build.

gnnkit's docstrings write references as roles: ``:class:``, ``:func:``, ``:meth:``,
``:attr:``, ``:mod:``, ``:data:``, ``:exc:``, with an absolute path (``gnnkit.ops.spmm``), a
path relative to the package (``.layer``) or a name seen from where the docstring sits (a
method of the same class, a name of the same module or of a module above it). Each is looked
up in the loaded package:

* found: it becomes an autorefs link (``optional``: plain code where that object has no page
  of its own, e.g. a private module);
* not found: a warning names the docstring and the reference, and ``mkdocs build --strict``
  fails;
* outside gnnkit (``torch.Tensor``): left as code.
"""

from __future__ import annotations

import html
import re

import griffe

ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(?P<target>[^`]+)`")
ROOT = "gnnkit"


def _member(obj, name: str):
    """``obj.name`` in griffe's tree, following aliases; None when there is none."""
    try:
        if obj.is_alias:
            obj = obj.final_target
        return obj.members.get(name)
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _lookup(pkg, path: str):
    """The object at the dotted ``path`` (starting with the root package), or None."""
    parts = path.split(".")
    if parts[0] != pkg.name:
        return None
    obj = pkg
    for part in parts[1:]:
        obj = _member(obj, part)
        if obj is None:
            return None
    return obj


def _scopes(obj):
    """``obj`` and its parents, innermost first."""
    while obj is not None:
        yield obj
        obj = obj.parent


def _resolve(pkg, obj, target: str) -> str | None:
    """The absolute path ``target`` names as seen from ``obj``'s docstring, or None."""
    if target.startswith("."):
        base = obj.module  # as in a relative import: the package of an __init__.py is itself
        if not base.is_init_module:
            base = base.parent
        path = base.path + target
        return path if _lookup(pkg, path) is not None else None
    if _lookup(pkg, target) is not None:
        return target
    for scope in _scopes(obj):
        path = f"{scope.path}.{target}"
        if _lookup(pkg, path) is not None:
            return path
    return None


class RoleCrossReferences(griffe.Extension):
    """Turn Sphinx-style roles in gnnkit's docstrings into checked autorefs links."""

    def on_package(self, *, pkg, loader, **kwargs) -> None:
        """Rewrite every docstring of the package once it is loaded."""
        if pkg.name != ROOT:
            return
        for obj in self._objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(pkg, obj, obj.docstring.value)

    def _objects(self, obj):
        yield obj
        for member in obj.members.values():
            if not member.is_alias:
                yield from self._objects(member)

    def _rewrite(self, pkg, obj, text: str) -> str:
        def replace(match: re.Match) -> str:
            target = match["target"].strip()
            short = target.startswith("~")
            target = target.lstrip("~")
            shown = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
            path = _resolve(pkg, obj, target)
            dotted_outside = "." in target and target.split(".")[0] not in (ROOT, "")
            if path is None and dotted_outside:
                return f"`{shown}`"  # a path outside gnnkit, such as torch.Tensor
            if path is None:
                griffe.logger.warning(
                    "%s: broken cross-reference %s in the docstring of %s",
                    obj.relative_filepath if obj.is_module else obj.module.relative_filepath,
                    match[0],
                    obj.path,
                )
                return f"`{shown}`"
            return (f'<autoref identifier="{html.escape(path)}" optional>'
                    f"<code>{html.escape(shown)}</code></autoref>")

        return ROLE.sub(replace, text)
