"""The ``gnnkit`` command line: ``gnnkit COMMAND ...`` (also ``python -m gnnkit``).

Each command lives in its own module ``gnnkit.commands.<name>`` that exposes
``add_parser(subparsers)`` (adds the sub-parser named ``<name>``) and ``run(args) -> int`` (the
exit status). To add a command, write that module and list its name in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import UsageError

#: Names of the command modules under ``gnnkit.commands``, in the order ``--help`` lists them.
COMMANDS = ("matrices", "train")


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The top-level parser and ``{command name: its module}``."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="gnnkit", description="Graph neural network toolkit: homework matrices and more."
    )
    parser.add_argument("--version", action="version", version=f"gnnkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.commands.{name}")
        module.add_parser(subparsers)
        modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    """Run ``gnnkit`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status:
    0 success, 1 a check found wrong answers, 2 unusable input or a usage error."""
    parser, modules = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version or a usage error: keep it in-process
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(modules[args.command].run(args))
    except UsageError as error:
        print(f"gnnkit {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
