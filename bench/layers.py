"""Layer rows, ``python -m bench [options]`` (or ``python -m bench.layers``): gnnkit and
PyTorch Geometric layers side by side on the same graphs and seed.

Prints a Markdown report and writes it to ``--out`` (default ``bench/results/<device>.md``;
``<device>-quick.md`` with ``--quick``, ``<device>-limit.md`` with ``--find-limit``,
``planetoid-epochs.md`` with ``--epochs``). See bench/README.md for what every column means.

``--epochs`` runs, instead of the suite, full-batch training epochs (forward, loss, backward,
Adam step, evaluation forward) of 2-layer mean-GCN, median-GCN and GAT models on Cora and
CiteSeer- and PubMed-sized graphs, gnnkit in several input forms against PyG, one table per
thread count of ``--threads`` (default 1 2). ``--gnnkit-path DIR`` measures the gnnkit in
``DIR/gnnkit`` (e.g. ``git worktree add /tmp/gnnkit-before <commit>``) with this benchmark code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import report, runner
from .cases import (
    ALL_CASES,
    EPOCH_CASES,
    EPOCH_MODELS,
    EPOCH_VARIANTS,
    FULL_PLAN,
    QUICK_PLAN,
    SPARSE_X_LIBS,
)
from .graphs import CORA_ROOT, EPOCH_DATASETS, SIZES, parse_size
from .suite import Results, Suite, log

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: --epochs: the libraries measured unless --libs says otherwise (see cases.EPOCH_VARIANTS).
DEFAULT_EPOCH_LIBS = ("pyg", "gnnkit", "gnnkit-raw", "gnnkit-dense")
#: --epochs defaults: 20 rounds after one warm-up (PyG's median takes tens of seconds a step on
#: these graphs, so its rows get fewer, within the budget), thread counts 1 and 2.
EPOCH_DEFAULTS = {"repeats": 20, "warmup": 1, "threads": [1, 2]}
EPOCH_BUDGET = 30.0


def _names(values: list[str] | None) -> list[str] | None:
    """``--cases a b`` and ``--cases a,b`` alike."""
    if values is None:
        return None
    return [name for value in values for name in value.split(",") if name]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny graph, 2 repeats, 1 warm-up, 1 torch thread: checks the "
                             "suite in < 1 min")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--cases", nargs="+", metavar="CASE",
                        help=f"subset of {', '.join(ALL_CASES)} (default: all)")
    parser.add_argument("--sizes", nargs="+", metavar="SIZE",
                        help=f"run the layer cases on these sizes instead of each case's "
                             f"defaults: {', '.join(SIZES)} or <nodes>x<edges>")
    parser.add_argument("--repeats", type=int, help="timed repeats per library (default 10)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 2)")
    parser.add_argument("--budget", type=float,
                        help="seconds allowed for one row's timed repeats; slower rows get "
                             f"fewer repeats (default 60; {EPOCH_BUDGET:g} with --epochs)")
    parser.add_argument("--timeout", type=float,
                        help="seconds before a worker is killed and its row marked 'timeout' "
                             "(default 600)")
    parser.add_argument("--mem-limit-gb", type=float, default=24.0,
                        help="RSS cap per worker; over it the worker is killed and marked "
                             "'OOM' (default 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, nargs="+", metavar="T",
                        help="torch threads in the workers (default: torch's default; 1 with "
                             "--quick); --epochs takes several counts, one table each "
                             "(default 1 2)")
    parser.add_argument("--copy-mb", type=int,
                        help="size of the copied tensor for the copy bandwidth (default 256)")
    parser.add_argument("--cora-root", default=str(CORA_ROOT),
                        help=f"folder holding Cora/raw/ (default {CORA_ROOT})")
    parser.add_argument("--out", type=Path, help="report file")
    parser.add_argument("--find-limit", action="store_true",
                        help="instead of the suite: double N (E = 10 N) for a GAT training "
                             "step until each library fails")
    parser.add_argument("--limit-start", type=int,
                        help="first N for --find-limit (default 100000)")
    parser.add_argument("--limit-max", type=int,
                        help="stop --find-limit above this N (default 128000000)")
    parser.add_argument("--epochs", action="store_true",
                        help="instead of the suite: full-batch epochs on Cora, CiteSeer- and "
                             "PubMed-sized graphs, one table per thread count")
    parser.add_argument("--datasets", nargs="+", metavar="NAME",
                        help=f"--epochs: subset of {', '.join(EPOCH_DATASETS)} (default: all)")
    parser.add_argument("--models", nargs="+", metavar="MODEL",
                        help=f"--epochs: subset of {', '.join(EPOCH_MODELS)} (default: all)")
    parser.add_argument("--libs", nargs="+", metavar="LIB",
                        help=f"--epochs: libraries and gnnkit forms, from "
                             f"{', '.join(EPOCH_VARIANTS)} (default: "
                             f"{' '.join(DEFAULT_EPOCH_LIBS)})")
    parser.add_argument("--gnnkit-path", metavar="DIR",
                        help="workers import gnnkit from DIR/gnnkit (e.g. a git worktree of an "
                             "older commit); the benchmark code stays this one")
    parser.add_argument("--verbose", action="store_true", help="print each worker command")
    args = parser.parse_args(argv)

    quick = args.quick
    defaults = {"repeats": 2 if quick else 10, "warmup": 1 if quick else 2,
                "timeout": 60.0 if quick else 600.0, "copy_mb": 32 if quick else 256,
                "limit_start": 2_000 if quick else 100_000,
                "limit_max": 32_000 if quick else 128_000_000,
                "threads": [1] if quick else [0]}
    if args.epochs:
        defaults.update(EPOCH_DEFAULTS if not quick else {"threads": [1]})
        if args.budget is None and not quick:
            args.budget = EPOCH_BUDGET
    if args.budget is None:
        args.budget = 60.0
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    check_epoch_options(parser, args)
    args.cora_root = str(Path(args.cora_root).resolve())
    args.cases = _names(args.cases) or list(ALL_CASES)
    args.sizes = _names(args.sizes)
    for case in args.cases:
        if case not in ALL_CASES:
            parser.error(f"unknown case {case!r}; choose from {', '.join(ALL_CASES)}")
    for size in args.sizes or []:
        try:
            parse_size(size)
        except ValueError as error:
            parser.error(str(error))
    if args.out is None:
        suffix = "-limit" if args.find_limit else "-quick" if quick else ""
        stem = "planetoid-epochs" if args.epochs else args.device
        args.out = RESULTS_DIR / f"{stem}{suffix}.md"
    return args


def check_epoch_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill in and check ``--datasets``, ``--models``, ``--libs``, ``--threads`` and
    ``--gnnkit-path``."""
    epoch_only = [name for name in ("datasets", "models", "libs") if getattr(args, name)]
    if epoch_only and not args.epochs:
        parser.error(f"--{epoch_only[0]} needs --epochs")
    if args.epochs and (args.cases or args.sizes or args.find_limit):
        parser.error("--epochs runs its own rows: leave out --cases, --sizes, --find-limit")
    if len(args.threads) > 1 and not args.epochs:
        parser.error("several --threads counts need --epochs (the suite takes one)")
    args.datasets = _names(args.datasets) or list(EPOCH_DATASETS)
    args.models = _names(args.models) or list(EPOCH_MODELS)
    args.libs = _names(args.libs) or list(DEFAULT_EPOCH_LIBS)
    for option, values, choices in (("--datasets", args.datasets, EPOCH_DATASETS),
                                    ("--models", args.models, EPOCH_MODELS),
                                    ("--libs", args.libs, tuple(EPOCH_VARIANTS))):
        for value in values:
            if value not in choices:
                parser.error(f"{option}: unknown {value!r}; choose from {', '.join(choices)}")
    if args.gnnkit_path:
        path = Path(args.gnnkit_path).resolve()
        if not (path / "gnnkit" / "__init__.py").is_file():
            parser.error(f"--gnnkit-path {args.gnnkit_path}: no gnnkit/__init__.py in it")
        args.gnnkit_path = str(path)


def plan(args) -> list[tuple[str, str]]:
    """(case, size) pairs in run order: layers by size, then Cora epochs, then bandwidth."""
    defaults = QUICK_PLAN if args.quick else FULL_PLAN
    pairs = []
    for case in args.cases:
        if case in EPOCH_CASES:
            pairs.append((case, "Cora"))
        else:
            for size in args.sizes or defaults[case]:
                pairs.append((case, size))
    order = {name: k for k, name in enumerate(SIZES)}
    return sorted(pairs, key=lambda p: (p[0] == "bandwidth", p[0] in EPOCH_CASES,
                                        order.get(p[1], len(order)), ALL_CASES.index(p[0])))


def check_device(device: str) -> None:
    """Fail early when CUDA is asked for but absent. Only asks whether a device exists (no
    CUDA context is created here, so this process holds no GPU memory)."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available to this torch build")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    check_device(args.device)
    import psutil

    if args.mem_limit_gb * 2**30 > psutil.virtual_memory().total:
        log(f"warning: --mem-limit-gb {args.mem_limit_gb:g} is above this machine's RAM; a "
            "worker may meet the kernel's out-of-memory killer first (reported as OOM too)")
    results = Results()
    suite = Suite(args, results)
    if args.gnnkit_path:
        runner.preload_without_gnnkit()
    if args.epochs or args.gnnkit_path:
        probe = suite.probe()
        log(f"gnnkit from {Path(probe['gnnkit_file']).parent}")
        sparse = [lib for lib in args.libs if lib in SPARSE_X_LIBS] if args.epochs else []
        if sparse and not probe["sparse_features"]:
            raise SystemExit(
                f"--libs {' '.join(sparse)}: the gnnkit at {Path(probe['gnnkit_file']).parent} "
                "has no gnnkit.ops.feature_dropout (sparse node features); measure the dense "
                "forms only, e.g. --libs pyg gnnkit-dense gnnkit-raw-dense")

    def save() -> None:
        report.write(args.out, report.render(args, results, argv))

    if args.find_limit:
        suite.find_limit(save)
    elif args.epochs:
        suite.run_epochs(save)
    else:
        suite.run_all(plan(args), save)
    save()
    log(f"written to {args.out}")
    report.stdout(report.render(args, results, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
