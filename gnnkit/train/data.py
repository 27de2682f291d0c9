"""The dataset's tensors on the training device, checked before any training starts.

Training refuses what would make its result meaningless instead of reporting a number:

- an empty split: no training nodes (nothing to learn from), no validation nodes (nothing to
  select the epoch by) or no test nodes (nothing to report);
- features that are not floating point, or that hold NaN or infinity (one NaN feature turns
  every loss into NaN);
- a label of a training, validation or test node below 0 (labels are class ids 0..C-1;
  nodes outside the three masks may carry any label, e.g. -1 for unlabelled).

Floating features of another precision (float64, float16, bfloat16) are converted to float32,
the precision the models' weights have; the check for non-finite values runs after the
conversion (a float64 value beyond float32's range would become infinity).

Full-batch training holds mostly-zero features (at most :data:`SPARSE_FEATURES_MAX_DENSITY`
non-zero, e.g. bag-of-words rows) as a sparse CSR tensor: the input dropout and the first
layer's weight product then touch only the non-zero entries (:mod:`gnnkit.ops.features`),
with the same numbers as the dense form. Mini-batch training gathers feature rows per batch
and keeps them dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..data.datasets import normalize_rows
from ..graph import Graph
from ..ops.features import (
    csr_parts,
    dense_features,
    density,
    is_sparse,
)
from ..ops.features import sparse_features as to_sparse

#: Full-batch training keeps features sparse up to this fraction of non-zero entries. Measured
#: (``python -m bench --epochs``, 1 thread, sparse against dense x on the same Graph): Cora
#: (1.3%) mean-GCN epoch 17 against 64 ms, GAT 41 against 157 ms; PubMed-sized (10%) 131
#: against 188 ms and 235 against 471 ms. The first layer's product alone (no dropout) is
#: slower sparse from about 10% on, and 4x slower at 20%; with the models' input dropout the
#: two are about even at 20-30%.
SPARSE_FEATURES_MAX_DENSITY = 0.15

#: The three node masks of a dataset and what each is for (for the error messages).
SPLITS = {
    "train_mask": ("training nodes", "there would be nothing to learn from"),
    "val_mask": ("validation nodes", "they select the best epoch and decide early stopping"),
    "test_mask": ("test nodes", "the test accuracy is measured on them"),
}


@dataclass
class TrainingData:
    """A dataset's features (float32, row-normalised if asked), labels, graph and masks on the
    training device."""

    x: Tensor
    y: Tensor
    graph: Graph
    train_mask: Tensor
    val_mask: Tensor
    test_mask: Tensor

    @classmethod
    def on_device(cls, dataset, graph: Graph, normalize_features: bool,
                  device: torch.device, *, sparse_features: bool = False) -> TrainingData:
        """Check ``dataset`` (see the module docstring) and move it to ``device``; with
        ``sparse_features`` (full batch) features no denser than
        :data:`SPARSE_FEATURES_MAX_DENSITY` are held as a sparse CSR tensor, otherwise dense.

        Raises:
            TypeError: features not floating point, labels not integers, a mask not boolean.
            ValueError: an empty split, NaN or infinite features, a negative label in a split.
        """
        x = features(dataset.x)
        masks = {name: split_mask(getattr(dataset, name), name) for name in SPLITS}
        check_labels(dataset.y, masks)
        x = normalize_rows(x) if normalize_features else x
        sparse = sparse_features and density(x) <= SPARSE_FEATURES_MAX_DENSITY
        x = to_sparse(x) if sparse else dense_features(x)
        return cls(
            x=x.to(device),
            y=dataset.y.to(device),
            graph=graph.to(device) if graph.device != device else graph,
            **{name: mask.to(device) for name, mask in masks.items()},
        )


def features(x: Tensor) -> Tensor:
    """``x`` as float32 (a copy only when it has another floating dtype), checked finite; a
    sparse ``x`` keeps its layout (its stored values are checked).

    Raises:
        TypeError: ``x`` is not floating point.
        ValueError: ``x`` holds NaN or infinity (also after conversion to float32).
    """
    if not x.is_floating_point():
        raise TypeError(
            f"x must hold floating-point features, got dtype {x.dtype}; convert them with "
            "x.float() (or store them as float32)."
        )
    x = x.float()
    if is_sparse(x):
        _, _, values = csr_parts(x)
        if not bool(torch.isfinite(values).all()):
            features(dense_features(x))  # raises, naming the first non-finite entry
        return x
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        node, feature = (int(i) for i in torch.nonzero(~finite)[0])
        raise ValueError(
            f"x holds NaN or infinity (first at node {node}, feature {feature}, value "
            f"{float(x[node, feature])} as float32); training would give NaN losses: replace "
            "or drop those values first."
        )
    return x


def split_mask(mask: Tensor, name: str) -> Tensor:
    """``mask`` checked to be boolean and to select at least one node.

    Raises:
        TypeError: not a boolean tensor.
        ValueError: it selects no node.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a boolean tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}.")
    if not bool(mask.any()):
        nodes, why = SPLITS[name]
        raise ValueError(
            f"the dataset has no {nodes} ({name} selects no node), but {why}; give the split "
            "at least one node."
        )
    return mask


def check_labels(y: Tensor, masks: dict[str, Tensor]) -> None:
    """Raise unless ``y`` holds integer labels that are >= 0 on every node of ``masks``.

    Raises:
        TypeError: ``y`` is not an integer tensor.
        ValueError: a node of a split has a negative label.
    """
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class ids 0..C-1, got dtype {y.dtype}.")
    for name, mask in masks.items():
        labels = y[mask]
        if int(labels.min()) < 0:
            node = int(torch.nonzero(mask & (y < 0))[0])
            raise ValueError(
                f"node {node} is in {name} but has the label {int(y[node])}; labels of "
                "training, validation and test nodes must be class ids 0..C-1 (leave "
                "unlabelled nodes out of the three masks)."
            )
