"""Fail when a public name of gnnkit has no docstring.

    python docs/check_docstrings.py

Imports the public modules (the ones the API reference documents), takes each module's
``__all__`` (or, without one, the public names it defines itself), and checks that every
module, class and function among them has a docstring, and so does every public method or
property a public class defines. Prints one line per name without a docstring (with the file
that defines it) and exits 1; exits 0 when there is none.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types

# The modules of the API reference (mkdocs.yml, docs/api/*.md), in that order.
PUBLIC_MODULES = [
    "gnnkit",
    "gnnkit.nn",
    "gnnkit.nn.aggr",
    "gnnkit.ops",
    "gnnkit.data",
    "gnnkit.link",
    "gnnkit.sampling",
    "gnnkit.train",
    "gnnkit.check",
    "gnnkit.data.store",
    "gnnkit.data.snap",
    "gnnkit.data.synthetic",
    "gnnkit.data.datasets",
    "gnnkit.data.node_data",
    "gnnkit.distributed",
    "gnnkit.models",
    "gnnkit.convert",
    "gnnkit.laplacian_step",
]


def public_names(module: types.ModuleType) -> list[str]:
    """The module's ``__all__``, or the public names it defines itself."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    ]


def has_doc(obj: object) -> bool:
    """Whether the object carries a docstring of its own (not inherited from a base)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return bool(doc and doc.strip())


def where(obj: object) -> str:
    """The file (relative to the package's parent) that defines the object."""
    try:
        path = inspect.getsourcefile(inspect.unwrap(obj))
    except TypeError:
        return "?"
    if path is None:
        return "?"
    cut = path.rfind("gnnkit/")
    return path[cut:] if cut >= 0 else path


def class_members(cls: type) -> list[tuple[str, object]]:
    """The public methods and properties that the class itself defines."""
    members = []
    for name, raw in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            members.append((name, raw.__func__))
        elif isinstance(raw, property) or inspect.isfunction(raw):
            members.append((name, raw))
    return members


def missing() -> list[str]:
    """``module.name  (file)`` for every public name without a docstring, each listed once."""
    seen: set[int] = set()
    lines = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not has_doc(module):
            lines.append(f"{module_name}  (module docstring, {where(module)})")
        for name in public_names(module):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.ismodule(obj):
                if not has_doc(obj):
                    lines.append(f"{obj.__name__}  (module docstring, {where(obj)})")
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants carry no docstring of their own
            label = f"{obj.__module__}.{obj.__qualname__}"
            if not has_doc(obj):
                lines.append(f"{label}  ({where(obj)})")
            if inspect.isclass(obj):
                for member_name, member in class_members(obj):
                    if not has_doc(member):
                        target = member.fget if isinstance(member, property) else member
                        lines.append(f"{label}.{member_name}  ({where(target)})")
    return lines


def main() -> int:
    """Print the names without a docstring; 1 if there are any, else 0."""
    lines = missing()
    for line in lines:
        print(line)
    if lines:
        print(f"{len(lines)} public name(s) without a docstring", file=sys.stderr)
        return 1
    print("every public name has a docstring")
    return 0


if __name__ == "__main__":
    sys.exit(main())
