"""``gnnkit check-layer``: is the layer in my file right? (see :func:`gnnkit.check_layer`)

    gnnkit check-layer FILE.py:ClassName --kind {mean-gcn,median-gcn,gat} [--param ROLE=PATH ...]
        [--against OTHER.py:ClassName [--against-param ROLE=PATH ...]]

Imports FILE.py (its folder first on the import path, so its own imports work), takes the class
and prints the report. With ``--against`` a second form of the layer (the message form of a
matrix-form layer, say) is checked too, and the two are run with the same weights on the same
graphs and compared (see :mod:`gnnkit.check.layer_against`); ``--param`` applies to both,
``--against-param`` to the second only. Exit status: 0 the layer is right (with ``--against``:
both are right and agree), 1 it is wrong (or they differ), 2 unusable input: no such file or
class, a file that fails to import (its error is shown in a few lines) or takes longer than
``IMPORT_TIME_LIMIT`` seconds, a class whose constructor does not take ``(in_features,
out_features)``, a parameter that cannot be found.

While the file is imported and checked it is registered in ``sys.modules`` under a name of its
own (so dataclasses, pickle and ``typing.get_type_hints`` find its classes), and its folder is
first on ``sys.path``; both are removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
import uuid

from torch import nn

from ..check import check_layer
from ..check.layer import KINDS, TIME_LIMIT
from ..check.layer_against import check_pair
from ..check.layer_run import ParameterError, TimedOut, run_limited
from . import UsageError

NAME = "check-layer"
#: How many lines of the student's import error are shown.
SHOWN_ERROR_LINES = 6
#: Seconds the import of the student's file may take (importing torch-based packages included).
IMPORT_TIME_LIMIT = 20.0


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        NAME,
        help="check your own mean-GCN or GAT layer against the reference",
        description="Run the layer class in FILE on small directed graphs, compare it with the "
        "reference formula in float64 and name the mistakes.",
    )
    parser.add_argument("target", metavar="FILE.py:ClassName",
                        help="the Python file and the layer class in it")
    parser.add_argument("--kind", required=True, choices=tuple(KINDS),
                        help="mean-gcn: H' = D^-1 A H W^T + H B^T; median-gcn: h'_i = W median_j h_j "
                        "+ B h_i; gat: one-head attention")
    parser.add_argument(
        "--param", action="append", default=[], metavar="ROLE=PATH",
        help="where a parameter is when it is not named W, B or a, e.g. --param W=lin.weight",
    )
    parser.add_argument(
        "--against", metavar="FILE.py:ClassName",
        help="a second form of the same layer (e.g. the message form of a matrix-form layer): "
        "both are checked, run with the same weights on the same graphs and compared",
    )
    parser.add_argument(
        "--against-param", action="append", default=[], metavar="ROLE=PATH",
        help="where a parameter of the --against layer is, e.g. --against-param W=lin.weight "
        "(--param applies to both; this overrides it)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=TIME_LIMIT, metavar="SECONDS",
        help=f"seconds each call of the constructor, forward or backward may take (default "
        f"{TIME_LIMIT:g}); a layer that takes longer is reported as wrong",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    path, class_name = _target(args.target, "the layer")
    params = _mappings(args.param, "--param")
    against_params = _mappings(args.against_param, "--against-param")
    if against_params and not args.against:
        raise UsageError("--against-param maps the parameters of the --against layer; give "
                         "that layer with --against OTHER.py:ClassName.")
    options = {}
    with contextlib.ExitStack() as stack:
        module = stack.enter_context(_their_module(path))
        layer = _load_class(module, path, class_name)
        if args.against:
            other_path, other_class = _target(args.against, "--against")
            same_file = os.path.abspath(other_path) == os.path.abspath(path)
            other = module if same_file else stack.enter_context(_their_module(other_path))
            options = {"against": _load_class(other, other_path, other_class),
                       "against_params": against_params}
            if class_name == other_class and not same_file:  # name them by their files
                options["labels"] = (f"{os.path.basename(path)}:{class_name}",
                                     f"{os.path.basename(other_path)}:{other_class}")
        try:
            if "labels" in options:
                report = check_pair(layer, options.pop("against"), args.kind, params=params,
                                    time_limit=args.time_limit, **options)
            else:
                report = check_layer(layer, args.kind, params=params,
                                     time_limit=args.time_limit, **options)
        except ParameterError as error:
            raise UsageError(error.cli) from None
        except (TypeError, ValueError) as error:
            raise UsageError(str(error)) from None
    print(report)
    return 0 if report.ok else 1


def _target(text: str, what: str) -> tuple[str, str]:
    """(path, class name) of ``FILE.py:ClassName``."""
    path, _, class_name = text.rpartition(":")
    if not path or not class_name:
        option = "" if what == "the layer" else f"{what} "
        raise UsageError(f"write {option or 'the layer as '}FILE.py:ClassName, got {text!r}.")
    return path, class_name


def _mappings(items: list[str], option: str) -> dict[str, str]:
    """``{"W": "lin.weight"}`` from ``["W=lin.weight"]``."""
    found = {}
    for item in items:
        role, equals, attribute = item.partition("=")
        if not equals or not role or not attribute:
            raise UsageError(f"{option} takes ROLE=PATH such as W=lin.weight, got {item!r}.")
        found[role] = attribute
    return found


@contextlib.contextmanager
def _their_module(path: str):
    """The student's file, imported as a module registered in ``sys.modules`` under a unique
    name, with its folder first on ``sys.path``; both are undone on leaving."""
    if not os.path.isfile(path):
        raise UsageError(f"file {path!r} not found.")
    folder = os.path.dirname(os.path.abspath(path))
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module_name = f"gnnkit_checked_{stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path!r} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, folder)
    try:
        _import(spec, module, path)
        yield module
    finally:
        if folder in sys.path:  # the file may have changed sys.path itself
            sys.path.remove(folder)
        sys.modules.pop(module_name, None)


def _import(spec, module, path: str) -> None:
    """Run the file, within ``IMPORT_TIME_LIMIT`` seconds; its own errors become one message."""
    try:
        run_limited(lambda: spec.loader.exec_module(module), IMPORT_TIME_LIMIT)
    except TimedOut:
        raise UsageError(f"{path} did not finish importing within {IMPORT_TIME_LIMIT:g} s (an "
                         "endless loop or a long computation at the top level of the file?); "
                         "put that work inside a function.") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the student's file: show its error
        raise UsageError(f"{path} failed to import:\n{_their_error(error, path)}") from None


def _load_class(module, path: str, class_name: str):
    """The object named ``class_name`` in the file (check_layer says if it is no layer)."""
    module_name = module.__name__
    layer = getattr(module, class_name, None)
    if layer is None:
        classes = sorted(name for name, value in vars(module).items()
                         if inspect.isclass(value) and issubclass(value, nn.Module)
                         and value.__module__ == module_name)
        there = f"its nn.Module classes: {', '.join(classes)}" if classes else "it has none"
        raise UsageError(f"{path} has no class {class_name!r} ({there}).")
    return layer


def _their_error(error: BaseException, path: str) -> str:
    """The traceback lines that are in the student's file, and the error itself."""
    chunks = traceback.format_exception(error)
    own = [chunk for chunk in chunks if not chunk.startswith(("Traceback", '  File "'))
           or os.path.abspath(path) in chunk]
    text = "".join(own).rstrip().splitlines()
    return "\n".join(text[-SHOWN_ERROR_LINES:])
