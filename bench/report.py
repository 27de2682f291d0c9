"""Markdown reports: the layer rows' header (machine, command) and tables, and the helpers every
benchmark's report uses (:func:`cpu_model`, :func:`git_revision`, :func:`table`, :func:`write`)."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .cases import LIB_NAMES, LIBS
from .suite import Results, Row

COLUMNS = (
    "case", "size", "N", "E", "F in -> out", "gnnkit ms (Graph)", "gnnkit ms (edge_index)",
    "PyG ms", "speed-up Graph", "speed-up edge_index", "gnnkit peak MB (Graph)",
    "gnnkit peak MB (edge_index)", "PyG peak MB", "memory ratio Graph",
    "memory ratio edge_index", "CSR build ms", "CSR cache MB", "repeats (gnnkit / PyG)",
    "max abs diff",
)


# ---------------------------------------------------------------------------------- header
def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit(root: str | Path | None = None) -> tuple[str, bool]:
    """(short commit of HEAD or ``"unknown"``, whether tracked files have changes) of the
    checkout at ``root`` (default: this repository)."""
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)

    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=root, check=False,
                              capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        revision = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return revision or "unknown", bool(changed)


def git_revision(root: str | Path | None = None) -> str:
    """``<commit>`` or ``<commit> + uncommitted changes``, for report headers."""
    revision, changed = git_commit(root)
    return revision + (" + uncommitted changes" if changed else "")



def device_label(args, results: Results) -> str:
    """``CPU`` or ``CUDA: <device name>`` (the name as a worker reported it)."""
    if args.device == "cpu":
        return "CPU"
    return f"CUDA: {results.device_name or 'device name not reported'}"


def machine_header(args, results: Results, argv: list[str]) -> list[str]:
    """Bullet lines: command, date, machine, software, settings, memory method."""
    import psutil

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    threads = (f" ({results.threads} torch thread{'s' if results.threads > 1 else ''})"
               if results.threads else "")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = (f"{cpu_model()}, {cores} logical cores ({usable} usable), "
           f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; load average at start {load}")
    root = Path(__file__).resolve().parent.parent
    gnnkit_dir = Path(results.gnnkit_file).parent.parent if results.gnnkit_file else root
    if gnnkit_dir == root:
        gnnkit = f"gnnkit {_version('gnnkit')} (git {git_revision()})"
    else:  # --gnnkit-path
        gnnkit = (f"gnnkit from `{gnnkit_dir}` (git {git_revision(gnnkit_dir)}), benchmark "
                  f"code git {git_revision()}")
    software = (f"Python {platform.python_version()}, torch {_version('torch')}{threads}, "
                f"torch_geometric {_version('torch_geometric')}, {gnnkit}")
    settings = (f"seed {args.seed}, warm-up {args.warmup}, up to {args.repeats} repeats (fewer "
                f"when a row's repeats would pass {args.budget:g} s), timeout "
                f"{args.timeout:g} s per worker, memory cap {args.mem_limit_gb:g} GB")
    return [
        f"- Command: `{shlex.join(['python', '-m', 'bench', *argv])}`",
        f"- Date: {now}",
        f"- CPU: {cpu}",
        f"- Device: {device_label(args, results)}",
        f"- Software: {software}",
        f"- Settings: {settings}",
        f"- Peak memory measured by: {results.memory_method or 'n/a'}",
    ]


# ---------------------------------------------------------------------------------- cells
def fmt(value, digits: int = 3) -> str:
    """A number with about ``digits`` significant digits; strings (failures) pass through."""
    if value is None:
        return ""
    if isinstance(value, str):
        return f"**{value}**"
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - int(f"{abs(value):e}".split("e")[1]))
    return f"{value:.{decimals}f}"


def ratio(numerator, denominator, suffix: str = "") -> str:
    if isinstance(numerator, float) and isinstance(denominator, float) and denominator > 0:
        return fmt(numerator / denominator) + suffix
    return ""


def table(header: tuple[str, ...] | list[str], lines: list[list[str]]) -> list[str]:
    """A Markdown table; columns whose cells all start with a digit are right-aligned."""

    def numeric(column: int) -> bool:
        cells = [line[column].strip("*") for line in lines if line[column]]
        return bool(cells) and all(cell[:1].isdigit() for cell in cells)

    align = ["---:" if numeric(k) else "---" for k in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return out


def row_cells(row: Row) -> list[str]:
    g, p, r = (row.time_ms.get(lib) for lib in (*LIBS, "gnnkit-raw"))
    gm, pm, rm = (row.memory_mb.get(lib) for lib in (*LIBS, "gnnkit-raw"))
    return [
        row.case, row.size, fmt(row.num_nodes, 1) if row.num_nodes else "",
        fmt(row.num_edges, 1) if row.num_edges else "", row.features,
        fmt(g), fmt(r), fmt(p), ratio(p, g, "x"), ratio(p, r, "x"), fmt(gm), fmt(rm), fmt(pm),
        ratio(gm, pm), ratio(rm, pm),
        fmt(row.csr_ms), fmt(row.csr_mb),
        " / ".join(str(row.repeats.get(lib, "")) for lib in LIBS) if row.repeats else "",
        "" if row.max_diff is None else f"{row.max_diff:.1e}",
    ]


# ---------------------------------------------------------------------------------- sections
def median_vs_mean(results: Results) -> list[str]:
    """Median layer time over mean layer time, per library, on every size with a median row.
    gnnkit's mean is the one timed in the median row's own rounds (``gnnkit-mean``); PyG's is
    its mean row on the same size, from a separate run."""
    by_key = {(row.case, row.size): row for row in results.rows}
    lines = []
    for (case, size), median_row in by_key.items():
        if case != "median":
            continue
        mean_row = by_key.get(("mean", size))
        g_med, g_mean = median_row.time_ms.get("gnnkit"), median_row.time_ms.get("gnnkit-mean")
        p_med = median_row.time_ms.get("pyg")
        p_mean = mean_row.time_ms.get("pyg") if mean_row else None
        lines.append([size, fmt(g_med), fmt(g_mean), ratio(g_med, g_mean, "x"),
                      ratio(p_med, p_mean, "x")])
    if not lines:
        return []
    return ["", "### Median cost relative to the mean on the same graph", "",
            *table(["size", "gnnkit MedianGCN ms", "gnnkit MeanGCN ms (same rounds)",
                    "gnnkit median/mean", "PyG median/mean"], lines)]


def message_passing_vs_conv(results: Results) -> list[str]:
    """The README's MessagePassing MeanGCN subclass against MeanGCNConv, same rounds."""
    lines = [[row.size, fmt(row.time_ms.get("gnnkit")), fmt(row.time_ms.get("gnnkit-mp")),
              ratio(row.time_ms.get("gnnkit-mp"), row.time_ms.get("gnnkit"), "x")]
             for row in results.rows if row.case == "mean" and "gnnkit-mp" in row.time_ms]
    if not lines:
        return []
    return ["", "### The README's MessagePassing MeanGCN (fused path) vs MeanGCNConv", "",
            *table(["size", "MeanGCNConv ms", "MessagePassing MeanGCN ms", "ratio"], lines)]


BANDWIDTH_NOTE = (
    "spmm bytes = E x (index + value bytes) + E x F x 4 (gathered rows) + N x F x 4 (output) "
    "+ (N + 1) x 8 (row pointer); copy bytes = 2 x tensor size. spmm and the copy run in "
    "alternation; spmm/copy is the median over rounds of the two bandwidths' ratio, range its "
    "lowest and highest. Rows of x that stay in cache are counted as moved again, so a ratio "
    "above 1 is possible on a graph whose features fit in cache."
)


def bandwidth_section(results: Results) -> list[str]:
    if not results.bandwidth:
        return []
    lines = [[b["size"], fmt(float(b["num_nodes"]), 1), fmt(float(b["num_edges"]), 1),
              str(b["features"]), fmt(b["spmm_ms"]), fmt(b["spmm_bytes"] / 1e6),
              fmt(b["spmm_gbps"]), fmt(b["copy_bytes"] / 1e6), fmt(b["copy_gbps"]),
              f"{b['ratio']:.3f}", f"{b['ratio_low']:.2f} - {b['ratio_high']:.2f}",
              str(b["rounds"])] for b in results.bandwidth]
    return ["", "### Aggregation bandwidth: gnnkit `spmm` forward vs a plain copy", "",
            *table(["size", "N", "E", "F", "spmm ms", "spmm MB moved", "spmm GB/s",
                    "copy MB moved", "copy GB/s", "spmm/copy", "range", "rounds"], lines),
            "", BANDWIDTH_NOTE]


def limit_section(results: Results) -> list[str]:
    if not results.limit:
        return []

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, tuple):
            return f"{value[0]:.2f} s, {value[1] / 1024:.2f} GB"
        return f"**{value}**"

    lines = [[fmt(float(s.num_nodes), 1), fmt(float(s.num_edges), 1),
              *(cell(s.results.get(lib)) for lib in LIBS)] for s in results.limit]
    largest = []
    for lib in LIBS:
        ok = [s.num_nodes for s in results.limit if isinstance(s.results.get(lib), tuple)]
        largest.append(f"{LIB_NAMES[lib]} {max(ok):,} nodes" if ok else
                       f"{LIB_NAMES[lib]} none tried succeeded")
    title = ("### Largest GAT that trains (8 heads, 128 -> 64, E = 10 N, one step: forward, "
             "backward, SGD)")
    return ["", title, "",
            *table(["N", "E", "gnnkit (time, whole-process peak)", "PyG (time, peak)"],
                   lines),
            "", "Largest size that finished: " + "; ".join(largest) + "."]


# ---------------------------------------------------------------------------------- --epochs
#: Column labels and meaning of the epoch rows' libraries (bench.cases.EPOCH_VARIANTS).
EPOCH_LABELS = {"pyg": "PyG", "gnnkit": "gnnkit Graph", "gnnkit-raw": "gnnkit raw",
                "gnnkit-dense": "gnnkit dense-x", "gnnkit-raw-dense": "gnnkit raw dense-x"}
EPOCH_LEGEND = {
    "pyg": "PyG: dense x, the raw edge_index (converted on every call), `F.dropout`",
    "gnnkit": "gnnkit Graph: a `gnnkit.Graph` built once (its CSR layouts cached by the "
              "warm-up step), x as a sparse CSR tensor (`x.to_sparse_csr()`), input dropout "
              "`gnnkit.ops.feature_dropout` (on the stored values)",
    "gnnkit-raw": "gnnkit raw: the raw edge_index on every call, sparse CSR x, "
                  "`gnnkit.ops.feature_dropout`",
    "gnnkit-dense": "gnnkit dense-x: a `gnnkit.Graph` built once, the dense x PyG gets, "
                    "`F.dropout`",
    "gnnkit-raw-dense": "gnnkit raw dense-x: the raw edge_index on every call, dense x, "
                        "`F.dropout`",
}
EPOCH_MODEL_NAMES = {"epoch-mean": "mean-GCN", "epoch-median": "median-GCN", "epoch-gat": "GAT"}
EPOCH_NOTE = (
    "One epoch: forward in training mode, cross-entropy on the training nodes, backward, "
    "Adam step (lr 0.005, weight decay 5e-4), then a forward of all nodes in eval mode without "
    "gradients. Models (hidden 64, the same weights in every library): mean-GCN = "
    "MeanGCNConv(F -> 64) -> ReLU -> dropout 0.5 -> MeanGCNConv(64 -> C), PyG "
    "`SAGEConv(aggr=\"mean\")`; median-GCN the same with MedianGCNConv and "
    "`SAGEConv(aggr=\"median\")`; GAT = dropout 0.6 -> GATConv(F -> 8 heads x 8) -> ELU -> "
    "dropout 0.6 -> GATConv(64 -> C, 1 head), attention dropout 0.6. ms: median over the "
    "timed repeats, the libraries interleaved round by round in one process; PyG / X: PyG ms "
    "over X ms, above 1 means that gnnkit form is faster; peak MB: the extra memory one epoch "
    "needs at its peak, each library in its own process, measured at the first thread count; "
    "max abs diff: the largest difference of any gnnkit form's eval output from PyG's."
)


def epoch_datasets_table(results: Results, seed: int) -> list[str]:
    """One line per dataset of the epoch rows: its size and where it comes from."""
    lines, seen = [], set()
    for row in results.rows:
        if row.size in seen or not row.inputs:
            continue
        seen.add(row.size)
        i = row.inputs
        if row.size == "cora":
            source = "Cora raw files (`gnnkit.data.planetoid`, public split), rows normalised"
        else:
            source = f"synthetic, seed {seed} (`bench.graphs.planetoid_sized`)"
        lines.append([row.size, f"{i['num_nodes']:,}", f"{i['num_edges']:,}",
                      f"{i['in_features']:,}", f"{100 * i['density']:.2f}%",
                      str(i["num_classes"]), source])
    return table(["dataset", "N", "E (directed)", "features", "non-zero", "classes", "data"],
                 lines)


def epoch_table(rows: list[Row], libs: list[str]) -> list[str]:
    """Times, PyG / gnnkit ratios and peak memory of the epoch rows of one thread count."""
    others = [lib for lib in libs if lib != "pyg"] if "pyg" in libs else []
    header = ["dataset", "model",
              *(f"{EPOCH_LABELS[lib]} ms" for lib in libs),
              *(f"PyG / {EPOCH_LABELS[lib]}" for lib in others),
              *(f"{EPOCH_LABELS[lib]} peak MB" for lib in libs),
              "repeats (" + " / ".join(EPOCH_LABELS[lib] for lib in libs) + ")",
              "max abs diff"]
    lines = []
    for row in rows:
        pyg = row.time_ms.get("pyg")
        lines.append([
            row.size, EPOCH_MODEL_NAMES.get(row.case, row.case),
            *(fmt(row.time_ms.get(lib)) for lib in libs),
            *(ratio(pyg, row.time_ms.get(lib), "x") for lib in others),
            *(fmt(row.memory_mb.get(lib)) for lib in libs),
            " / ".join(str(row.repeats.get(lib, "")) for lib in libs) if row.repeats else "",
            "" if row.max_diff is None else f"{row.max_diff:.1e}",
        ])
    return table(header, lines)


def render_epochs(args, results: Results, argv: list[str]) -> str:
    """The ``--epochs`` report: header, datasets, one table per thread count, legend, notes."""
    results.threads = None  # one count per table, not one for the run
    counts = ", ".join(map(str, args.threads))
    lines = [
        f"## Full-batch epochs: gnnkit vs PyTorch Geometric on {device_label(args, results)}",
        "", *machine_header(args, results, argv),
        (f"- Threads: {counts}, one table each; each worker sets OMP_NUM_THREADS and "
         "MKL_NUM_THREADS to the count and calls `torch.set_num_threads` before computing"),
        "", "### Datasets", "", *epoch_datasets_table(results, args.seed),
    ]
    for threads in args.threads:
        rows = [row for row in results.rows if row.threads == threads]
        if rows:
            label = "torch's default thread count" if threads == 0 else (
                f"{threads} thread{'s' if threads > 1 else ''}")
            lines += ["", f"### {label}", "", *epoch_table(rows, list(args.libs))]
    lines += ["", EPOCH_NOTE, "", *(f"- {EPOCH_LEGEND[lib]}" for lib in args.libs)]
    if results.notes:
        lines += ["", "### Notes", "", *(f"- {note}" for note in results.notes)]
    return "\n".join(lines) + "\n"


def render(args, results: Results, argv: list[str]) -> str:
    """The whole report as Markdown text."""
    if getattr(args, "epochs", False):
        return render_epochs(args, results, argv)
    title = f"## gnnkit vs PyTorch Geometric on {device_label(args, results)}"
    lines = [title, "", *machine_header(args, results, argv)]
    if results.rows:
        lines += ["", "### Layers (forward + backward) and Cora training epochs", "",
                  *table(COLUMNS, [row_cells(row) for row in results.rows])]
    lines += median_vs_mean(results) + message_passing_vs_conv(results)
    lines += bandwidth_section(results) + limit_section(results)
    if results.notes:
        lines += ["", "### Notes", "", *(f"- {note}" for note in results.notes)]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Write atomically (``<path>.tmp`` then rename), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
