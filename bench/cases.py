"""What the layer rows measure: default sizes per case, seeded random inputs, matched gnnkit /
PyG layers and models (the graph sizes themselves are in :mod:`bench.graphs`).

Every measured unit is a *case* on a *size*:

* layer cases ``mean``, ``median``, ``gat``: one layer's forward + backward on a random graph;
* epoch cases ``cora-gat``, ``cora-mean``: one training epoch of a 2-layer model on Cora;
* ``bandwidth``: gnnkit's ``spmm`` forward alone, next to a plain memory copy;
* the epoch rows of ``--epochs`` (:data:`MATRIX_CASES` ``epoch-mean``, ``epoch-median``,
  ``epoch-gat``, whose "size" is a dataset of :data:`bench.graphs.EPOCH_DATASETS`): one
  training epoch and an evaluation forward of a 2-layer model, with gnnkit given its node
  features as a sparse CSR tensor or as the dense tensor PyG gets (:data:`EPOCH_VARIANTS`).

Both libraries always get the same ``x`` values, ``edge_index`` and upstream gradient, and the
PyG module gets gnnkit's weights copied in, so both compute the same numbers (the suite reports
the largest difference of their outputs as a check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .graphs import Size, cora, epoch_dataset

LIBS = ("gnnkit", "pyg")
#: gnnkit run more ways in the same rounds: given the raw ``edge_index`` (converted on every
#: call) instead of a Graph built once; (mean case) as the README's 10-line ``MessagePassing``
#: subclass; (epoch rows) with dense node features, on a Graph or on the raw ``edge_index``.
VARIANTS = ("gnnkit-raw", "gnnkit-mp", "gnnkit-dense", "gnnkit-raw-dense")
LIB_NAMES = {"gnnkit": "gnnkit", "pyg": "PyG", "gnnkit-raw": "gnnkit (edge_index)",
             "gnnkit-mp": "gnnkit MessagePassing MeanGCN",
             "gnnkit-dense": "gnnkit (Graph, dense x)",
             "gnnkit-raw-dense": "gnnkit (edge_index, dense x)"}
#: Libraries given a :class:`gnnkit.Graph` built once; every other one gets the raw edge_index.
GRAPH_LIBS = ("gnnkit", "gnnkit-mp", "gnnkit-dense")
LAYER_CASES = ("mean", "median", "gat")
EPOCH_CASES = ("cora-gat", "cora-mean")
ALL_CASES = (*LAYER_CASES, *EPOCH_CASES, "bandwidth")

#: The epoch rows of ``--epochs``: one case per model, run on each dataset.
EPOCH_MODELS = ("mean", "median", "gat")
MATRIX_CASES = tuple(f"epoch-{model}" for model in EPOCH_MODELS)
#: What each library of the epoch rows gets: (graph form, node feature form). In the matrix,
#: ``gnnkit`` and ``gnnkit-raw`` get x as a sparse CSR tensor and drop out its stored values
#: with ``gnnkit.ops.feature_dropout``; the dense ones get PyG's x and ``F.dropout``.
EPOCH_VARIANTS = {
    "pyg": ("edge_index", "dense"),
    "gnnkit": ("Graph", "sparse"),
    "gnnkit-raw": ("edge_index", "sparse"),
    "gnnkit-dense": ("Graph", "dense"),
    "gnnkit-raw-dense": ("edge_index", "dense"),
}
SPARSE_X_LIBS = tuple(lib for lib, (_, x) in EPOCH_VARIANTS.items() if x == "sparse")

GAT_HEADS = 8
CORA_HIDDEN = 64  # hidden width of both Cora models (GAT: 8 heads x 8 channels)
BANDWIDTH_FEATURES = 64

# Which sizes (bench.graphs.SIZES) each case runs on when --sizes is not given.
FULL_PLAN = {
    "mean": ("cora-sized", "50k-500k", "100k-1M", "large"),
    "median": ("cora-sized", "50k-500k"),
    "gat": ("cora-sized", "100k-1M", "large"),
    "bandwidth": ("100k-1M", "large"),
}
QUICK_PLAN = {case: ("tiny",) for case in ("mean", "median", "gat", "bandwidth")}


# ---------------------------------------------------------------------------------- inputs
@dataclass
class Inputs:
    """Tensors shared by both libraries. ``grad_out`` is the upstream gradient of a layer's
    output (layer cases); ``y`` and ``train_mask`` the labels (epoch cases)."""

    x: Tensor
    edge_index: Tensor
    grad_out: Tensor | None = None
    y: Tensor | None = None
    train_mask: Tensor | None = None
    num_classes: int = 0
    x_sparse: Tensor | None = None  # x as a sparse CSR tensor (epoch rows), built once

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)


def random_inputs(size: Size, seed: int, device: str) -> Inputs:
    """Seeded uniform random graph (duplicates and self-loops allowed, as they come), normal
    features and upstream gradient. ``x`` requires a gradient, as a hidden layer's input does,
    so the backward pass includes the aggregation's transpose."""
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, size.num_nodes, (2, size.num_edges), generator=generator)
    x = torch.randn(size.num_nodes, size.in_features, generator=generator)
    grad_out = torch.randn(size.num_nodes, size.out_features, generator=generator)
    return Inputs(
        x=x.to(device).requires_grad_(),
        edge_index=edge_index.to(device),
        grad_out=grad_out.to(device),
    )


def cora_inputs(root: str | Path, device: str) -> Inputs:
    """Cora (:func:`bench.graphs.cora`) on ``device``, public split."""
    data = cora(root)
    return Inputs(
        x=data.x.to(device),
        edge_index=data.edge_index.to(device),
        y=data.y.to(device),
        train_mask=data.train_mask.to(device),
        num_classes=data.num_classes,
    )


def epoch_inputs(dataset: str, root: str | Path, seed: int, device: str) -> Inputs:
    """A dataset of the epoch rows (:func:`bench.graphs.epoch_dataset`) on ``device``, with
    its features also as a sparse CSR tensor (built once, outside the timing)."""
    data = epoch_dataset(dataset, root, seed)
    x = data.x.to(device)
    return Inputs(x=x, edge_index=data.edge_index.to(device), y=data.y.to(device),
                  train_mask=data.train_mask.to(device), num_classes=data.num_classes,
                  x_sparse=x.to_sparse_csr())


def make_inputs(case: str, size: str | Size | None, seed: int, device: str,
                cora_root: str) -> Inputs:
    """The inputs of ``case``: the size is ignored for the Cora cases and names the dataset
    for the epoch rows."""
    if case in EPOCH_CASES:
        return cora_inputs(cora_root, device)
    if case in MATRIX_CASES:
        return epoch_inputs(size, cora_root, seed, device)
    return random_inputs(size, seed, device)


# ---------------------------------------------------------------------------------- modules
def make_layer(case: str, lib: str, size: Size) -> nn.Module:
    """gnnkit ``MeanGCNConv`` / ``MedianGCNConv`` / ``GATConv`` or the matching PyG layer.

    ``MeanGCNConv`` and ``MedianGCNConv`` get ``bias=True`` to match ``SAGEConv``'s default
    (its ``lin_l`` carries a bias); GAT uses 8 heads of ``out // 8`` channels, concatenated.
    """
    fin, fout = size.in_features, size.out_features
    if lib == "gnnkit-mp" and case == "mean":
        return message_passing_mean_gcn(fin, fout)
    if lib in ("gnnkit", "gnnkit-raw"):
        from gnnkit import nn as gnn

        if case == "mean":
            return gnn.MeanGCNConv(fin, fout, bias=True)
        if case == "median":
            return gnn.MedianGCNConv(fin, fout, bias=True)
        if case == "gat":
            return gnn.GATConv(fin, fout // GAT_HEADS, heads=GAT_HEADS)
    elif lib == "pyg":
        from torch_geometric import nn as pyg

        if case in ("mean", "median"):
            return pyg.SAGEConv(fin, fout, aggr=case)
        if case == "gat":
            return pyg.GATConv(fin, fout // GAT_HEADS, heads=GAT_HEADS)
    raise ValueError(f"no layer for case {case!r} and library {lib!r}")


def message_passing_mean_gcn(in_features: int, out_features: int) -> nn.Module:
    """The README's 10-line ``MeanGCN`` on :class:`gnnkit.nn.MessagePassing`; ``B`` carries
    the bias that SAGEConv and the bench's ``MeanGCNConv(bias=True)`` have."""
    from gnnkit.nn import MessagePassing

    class MeanGCN(MessagePassing):
        fused_message = "x_j"

        def __init__(self, in_features, out_features):
            super().__init__(aggr="mean")
            self.W = nn.Linear(in_features, out_features, bias=False)
            self.B = nn.Linear(in_features, out_features, bias=True)

        def forward(self, x, graph):
            return self.propagate(graph, x=x, h=self.W(x))

        def message(self, h_j):
            return h_j

        def update(self, aggr_out, x):
            return aggr_out + self.B(x)

    return MeanGCN(in_features, out_features)


class TwoLayerGNN(nn.Module):
    """conv1 -> activation -> dropout -> conv2, with optional dropout on the input too
    (``input_dropout(x, p, training)``: ``F.dropout``, or ``gnnkit.ops.feature_dropout`` for
    sparse x)."""

    def __init__(self, conv1: nn.Module, conv2: nn.Module, activation: Callable,
                 dropout: float, input_dropout: Callable | None):
        super().__init__()
        self.conv1, self.conv2 = conv1, conv2
        self.activation, self.dropout, self.input_dropout = activation, dropout, input_dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if self.input_dropout is not None:
            x = self.input_dropout(x, self.dropout, self.training)
        x = self.activation(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


def epoch_model_name(case: str) -> str:
    """``mean``, ``median`` or ``gat``: the model of an epoch case (``cora-gat``,
    ``epoch-median``, ...)."""
    model = case.removeprefix("cora-").removeprefix("epoch-")
    if model not in EPOCH_MODELS or case not in (*EPOCH_CASES, *MATRIX_CASES):
        raise ValueError(f"no model for case {case!r}")
    return model


def sparse_feature_dropout() -> Callable:
    """``gnnkit.ops.feature_dropout``, or a clear error where this gnnkit predates sparse node
    features."""
    import gnnkit.ops

    if not hasattr(gnnkit.ops, "feature_dropout"):
        raise RuntimeError(
            f"the gnnkit imported from {Path(gnnkit.ops.__file__).parent.parent} has no "
            "gnnkit.ops.feature_dropout (sparse node features): run the dense variants only, "
            "e.g. --libs pyg gnnkit-dense gnnkit-raw-dense")
    return gnnkit.ops.feature_dropout


def make_model(case: str, lib: str, num_features: int, num_classes: int,
               sparse_x: bool = False) -> TwoLayerGNN:
    """The 2-layer models of the epoch cases, hidden width 64, the same recipe for both
    libraries:

    * GAT (``cora-gat``, ``epoch-gat``): GAT(F -> 8 heads x 8, concatenated) -> ELU ->
      GAT(64 -> C, 1 head), dropout 0.6 on the input, the hidden layer and the attention
      coefficients (Velickovic et al. 2018).
    * mean (``cora-mean``, ``epoch-mean``): MeanGCN(F -> 64) -> ReLU -> dropout 0.5 ->
      MeanGCN(64 -> C); PyG uses ``SAGEConv(aggr="mean")``, the same formula.
    * median (``epoch-median``): the same with ``MedianGCNConv`` and
      ``SAGEConv(aggr="median")``, as the ``median`` layer case pairs them.

    ``sparse_x`` (gnnkit only): the input dropout is ``gnnkit.ops.feature_dropout`` (on the
    stored values of a sparse x) instead of ``F.dropout``.
    """
    model = epoch_model_name(case)
    if lib == "pyg":
        from torch_geometric import nn as pyg

        def conv(fin, fout, **kwargs):
            if model == "gat":
                return pyg.GATConv(fin, fout, **kwargs)
            return pyg.SAGEConv(fin, fout, aggr=model)
    else:
        from gnnkit import nn as gnn

        def conv(fin, fout, **kwargs):
            if model == "gat":
                return gnn.GATConv(fin, fout, **kwargs)
            layer = gnn.MeanGCNConv if model == "mean" else gnn.MedianGCNConv
            return layer(fin, fout, bias=True)
    if model == "gat":
        heads, channels = GAT_HEADS, CORA_HIDDEN // GAT_HEADS
        return TwoLayerGNN(
            conv(num_features, channels, heads=heads, dropout=0.6),
            conv(heads * channels, num_classes, heads=1, concat=False, dropout=0.6),
            F.elu, dropout=0.6,
            input_dropout=sparse_feature_dropout() if sparse_x else F.dropout,
        )
    return TwoLayerGNN(conv(num_features, CORA_HIDDEN), conv(CORA_HIDDEN, num_classes),
                       F.relu, dropout=0.5, input_dropout=None)


@torch.no_grad()
def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy a gnnkit layer's (or TwoLayerGNN's) parameters into its PyG counterpart.

    MeanGCN/MedianGCN ``W``, ``B``, ``bias`` -> SAGEConv ``lin_l.weight``, ``lin_r.weight``,
    ``lin_l.bias``; GAT ``W``, ``att_src``, ``att_dst``, ``bias`` -> ``lin.weight``,
    ``att_src``, ``att_dst``, ``bias`` (PyG's attention vectors are [1, heads, C]).
    """
    from gnnkit import nn as gnn

    if isinstance(source, TwoLayerGNN):
        copy_weights(source.conv1, target.conv1)
        copy_weights(source.conv2, target.conv2)
    elif type(source) is type(target):
        target.load_state_dict(source.state_dict())
    elif isinstance(source, gnn.GATConv):
        target.lin.weight.copy_(source.W)
        target.att_src.copy_(source.att_src.view_as(target.att_src))
        target.att_dst.copy_(source.att_dst.view_as(target.att_dst))
        target.bias.copy_(source.bias)
    elif isinstance(source, gnn.MeanGCNConv) and not hasattr(target, "lin_l"):
        target.W.weight.copy_(source.W)
        target.B.weight.copy_(source.B)
        target.B.bias.copy_(source.bias)
    elif isinstance(source, (gnn.MeanGCNConv, gnn.MedianGCNConv)):
        target.lin_l.weight.copy_(source.W)
        target.lin_r.weight.copy_(source.B)
        target.lin_l.bias.copy_(source.bias)
    else:
        raise TypeError(f"cannot copy weights from {type(source).__name__}")


# ---------------------------------------------------------------------------------- steps
@dataclass
class Prepared:
    """A library's module with the measured ``step`` and an eval-mode ``output`` (no grad)."""

    module: nn.Module
    step: Callable[[], None]
    output: Callable[[], Tensor]


def graph_argument(lib: str, inputs: Inputs):
    """What a library's module is called with: PyG and the ``-raw`` variants get the raw
    ``edge_index`` (converted on every call), the others a :class:`gnnkit.Graph` built once
    (its CSR layouts are cached in it by the first, warm-up, step)."""
    if lib in GRAPH_LIBS:
        from gnnkit import Graph

        return Graph(inputs.edge_index, inputs.num_nodes)
    return inputs.edge_index


def features(case: str, lib: str, inputs: Inputs) -> Tensor:
    """The node features a library's module gets: the sparse CSR ``x`` for ``gnnkit`` and
    ``gnnkit-raw`` in the epoch rows of ``--epochs``, the dense ``x`` everywhere else."""
    if case in MATRIX_CASES and lib in SPARSE_X_LIBS:
        return inputs.x_sparse
    return inputs.x


def _eval_output(module: nn.Module, x: Tensor, graph) -> Callable[[], Tensor]:
    def output() -> Tensor:
        module.eval()
        with torch.no_grad():
            out = module(x, graph)
        module.train()
        return out

    return output


def prepare_layer(layer: nn.Module, inputs: Inputs, graph, x: Tensor) -> Prepared:
    """One step = forward + ``backward(grad_out)``, gradients cleared (set to None) first so
    that every step allocates them afresh."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x, graph).backward(inputs.grad_out)

    return Prepared(layer, step, _eval_output(layer, x, graph))


def prepare_epoch(model: nn.Module, inputs: Inputs, graph, x: Tensor) -> Prepared:
    """One step = one full-batch epoch: forward in training mode, cross-entropy on the
    training nodes, backward, Adam step (lr 0.005, weight decay 5e-4), then an evaluation
    forward of all nodes (eval mode, no gradient), as a training loop that tracks accuracy
    does."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    mask = inputs.train_mask
    evaluate = _eval_output(model, x, graph)

    def step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        out = model(x, graph)
        F.cross_entropy(out[mask], inputs.y[mask]).backward()
        optimizer.step()
        evaluate()

    return Prepared(model, step, evaluate)


BUILD_ORDER = ("gnnkit", "gnnkit-raw", "gnnkit-dense", "gnnkit-raw-dense", "gnnkit-mp", "pyg")


def prepare(case: str, libs: list[str], size: Size | None, inputs: Inputs, seed: int,
            device: str) -> dict[str, Prepared]:
    """Build each library's module for ``case`` and wrap it in its step. The first gnnkit
    module built (in :data:`BUILD_ORDER`, right after seeding, so it is the same whichever
    variants run) gives its weights to every other one, PyG's included."""
    torch.manual_seed(seed)
    modules: dict[str, nn.Module] = {}
    for lib in sorted(libs, key=BUILD_ORDER.index):
        if case in (*EPOCH_CASES, *MATRIX_CASES):
            module = make_model(case, lib, inputs.x.size(1), inputs.num_classes,
                                sparse_x=features(case, lib, inputs) is inputs.x_sparse)
        else:
            module = make_layer(case, lib, size)
        modules[lib] = module.to(device)
    source = next((module for lib, module in modules.items() if lib != "pyg"), None)
    for module in modules.values():
        if source is not None and module is not source:
            copy_weights(source, module)
    wrap = prepare_layer if case in LAYER_CASES else prepare_epoch
    return {lib: wrap(module, inputs, graph_argument(lib, inputs), features(case, lib, inputs))
            for lib, module in modules.items()}


# ---------------------------------------------------------------------------------- gnnkit CSR
CSR_KIND = {"mean": "mean", "median": "median", "gat": "gat", "cora-gat": "gat",
            "cora-mean": "mean", "epoch-mean": "mean", "epoch-median": "median",
            "epoch-gat": "gat"}


def build_gnnkit_csr(case: str, edge_index: Tensor, num_nodes: int):
    """Build, from scratch, exactly the sparse layouts a :class:`gnnkit.Graph` caches on the
    first step of gnnkit's layer for ``case`` (later steps on that Graph reuse them; a raw
    ``edge_index`` pays this on every call):

    * mean: in-degrees, CSR, CSR targets, and the transpose (CSC) used by the backward pass;
    * median: CSR;
    * gat: the self-loop graph (loops removed, one per node added) with its CSR, CSR targets
      and CSC.

    Returns the :class:`gnnkit.Graph` holding them.
    """
    from gnnkit import Graph

    graph = Graph(edge_index, num_nodes)
    kind = CSR_KIND[case]
    if kind == "gat":
        graph = graph.add_self_loops()
    graph.csr  # noqa: B018 - cached properties, evaluated for their side effect
    if kind in ("mean", "gat"):
        graph.in_degree  # noqa: B018
        graph.csr_target  # noqa: B018
        graph.csc  # noqa: B018
    return graph


def cached_bytes(graph, exclude: Tensor) -> int:
    """Bytes held by ``graph``'s cached layouts (and a derived self-loop graph's edge list),
    not counting the caller's own ``exclude`` tensor."""
    seen: set[int] = set()

    def size_of(value) -> int:
        if isinstance(value, Tensor):
            if value is exclude or id(value) in seen:
                return 0
            seen.add(id(value))
            return value.numel() * value.element_size()
        if isinstance(value, (tuple, list)):
            return sum(size_of(item) for item in value)
        if hasattr(value, "__dict__") and hasattr(value, "edge_index"):
            return sum(size_of(item) for item in vars(value).values())
        return 0

    return size_of(graph)
