"""Layer rows, ``python -m bench [options]`` (or ``python -m bench.layers``): gnnkit and
PyTorch Geometric layers side by side on the same graphs and seed.

Prints a Markdown report and writes it to ``--out`` (default ``bench/results/<device>.md``;
``<device>-quick.md`` with ``--quick``, ``<device>-limit.md`` with ``--find-limit``).
See bench/README.md for what every column means.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import report
from .cases import ALL_CASES, EPOCH_CASES, FULL_PLAN, QUICK_PLAN
from .graphs import CORA_ROOT, SIZES, parse_size
from .suite import Results, Suite, log

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds allowed for one row's timed repeats; slower rows get "
                             "fewer repeats (default 60)")
    parser.add_argument("--timeout", type=float,
                        help="seconds before a worker is killed and its row marked 'timeout' "
                             "(default 600)")
    parser.add_argument("--mem-limit-gb", type=float, default=24.0,
                        help="RSS cap per worker; over it the worker is killed and marked "
                             "'OOM' (default 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int,
                        help="torch threads in the workers (default: torch's default; 1 with "
                             "--quick)")
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
    parser.add_argument("--verbose", action="store_true", help="print each worker command")
    args = parser.parse_args(argv)

    quick = args.quick
    defaults = {"repeats": 2 if quick else 10, "warmup": 1 if quick else 2,
                "timeout": 60.0 if quick else 600.0, "copy_mb": 32 if quick else 256,
                "limit_start": 2_000 if quick else 100_000,
                "limit_max": 32_000 if quick else 128_000_000, "threads": 1 if quick else 0}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
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
        args.out = RESULTS_DIR / f"{args.device}{suffix}.md"
    return args


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

    def save() -> None:
        report.write(args.out, report.render(args, results, argv))

    if args.find_limit:
        suite.find_limit(save)
    else:
        suite.run_all(plan(args), save)
    save()
    log(f"written to {args.out}")
    report.stdout(report.render(args, results, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
