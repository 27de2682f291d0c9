"""The ``gnnkit`` command line: ``gnnkit COMMAND ...`` (also ``python -m gnnkit``).

Each command lives in its own module ``gnnkit.commands.<module>`` that exposes ``NAME`` (the
command as typed, e.g. ``check-layer``), ``add_parser(subparsers)`` (adds the sub-parser named
``NAME``) and ``run(args) -> int`` (the exit status). To add a command, write that module and
list it in :data:`COMMANDS`.

No traceback reaches the user: unusable input is one line and exit 2 (argparse's usage errors:
the usage's first line and one line), Ctrl-C is one line and exit 130, and a closed pipe
(``gnnkit matrices | head``) ends quietly with exit 141. Under ``torchrun`` every process
parses the same arguments and fails alike, so only rank 0 prints those errors (the others wait
for it, :func:`_leave_it_to_rank_0`); a process whose torchrun group failed
(:class:`gnnkit.distributed.ProcessGroupError`: a peer died or stalled) prints its own one
line and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from .commands import UsageError
from .distributed import ProcessGroupError
from .train.workers import WorkerError

#: The command modules under ``gnnkit.commands``, in the order ``--help`` lists them.
COMMANDS = ("matrices", "check_layer", "train")
#: Exit statuses a shell gives for Ctrl-C (128 + SIGINT) and a closed pipe (128 + SIGPIPE).
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
#: Longest a process other than rank 0 waits for rank 0 to report an error they share.
RANK_0_REPORT_WAIT_S = 10.0


class Parser(argparse.ArgumentParser):
    """argparse's parser, except that a usage error is two lines (the first line of the usage,
    then ``PROG: error: MESSAGE`` pointing at ``--help``) and that under ``torchrun`` only rank
    0 prints it (each process parses the same arguments; the others exit with the same
    status)."""

    def error(self, message: str):
        if _is_rank_0():
            usage = self.format_usage().strip().splitlines()
            first = usage[0] + (" ..." if len(usage) > 1 else "") if usage else ""
            self.exit(2, f"{first}\n{self.prog}: error: {message} ({self.prog} --help lists "
                         "the options)\n")
        _leave_it_to_rank_0()
        self.exit(2)


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The top-level parser and ``{command as typed: its module}``."""
    from . import __version__

    parser = Parser(
        prog="gnnkit", description="Graph neural network toolkit: homework matrices and more."
    )
    parser.add_argument("--version", action="version", version=f"gnnkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.commands.{name}")
        module.add_parser(subparsers)
        modules[module.NAME] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    """Run ``gnnkit`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status:
    0 success, 1 a check found wrong answers, 2 unusable input or a usage error, 130 Ctrl-C,
    141 the reader of the output went away."""
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
        status = int(modules[args.command].run(args))
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return status
    except UsageError as error:
        _say(f"gnnkit {args.command}: error: {error}")
        if not _is_rank_0():
            _leave_it_to_rank_0()
        return 2
    except (ProcessGroupError, WorkerError) as error:
        print(f"gnnkit {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _say(f"gnnkit {args.command}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The standard recipe: point stdout at devnull so that the flush at exit is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _say(message: str) -> None:
    """One line on stderr; under ``torchrun`` only from rank 0 (every process fails alike)."""
    if _is_rank_0():
        print(message, file=sys.stderr)


def _leave_it_to_rank_0() -> None:
    """Let rank 0 report first: torchrun stops the whole group at the first process that
    exits, so a quiet rank that left at once could stop rank 0 before it printed. Rank 0
    exits right after printing and torchrun then ends this process (SIGTERM) while it waits;
    the wait only runs out (:data:`RANK_0_REPORT_WAIT_S`) if rank 0 did not fail."""
    time.sleep(RANK_0_REPORT_WAIT_S)


def _is_rank_0() -> bool:
    """True unless ``torchrun`` started this process with a ``RANK`` other than 0."""
    return os.environ.get("RANK", "0") == "0"


if __name__ == "__main__":
    sys.exit(main())
