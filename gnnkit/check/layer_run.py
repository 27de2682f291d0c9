"""Run a student's layer: build it, find its parameters by name, set them, call forward.

Errors raised by the student's own code are caught and turned into one readable line (the
exception and the line of their file it came from); errors in what was asked of the checker
(an unknown parameter name, a layer that is not an ``nn.Module``) are raised as
``ValueError``/``TypeError``.
"""

from __future__ import annotations

import copy
import inspect
import os
import traceback
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .layer_cases import Case

__all__ = [
    "Built",
    "Outcome",
    "build",
    "find_parameters",
    "forward",
    "set_parameters",
    "student_error",
]

_LIBRARY_DIRS = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))


@dataclass
class Built:
    """A layer built at one size, its parameters by role and the dtype it is run in."""

    module: nn.Module
    in_features: int
    out_features: int
    params: dict[str, Tensor]  # role ("W", "B", "a") -> the layer's own tensor
    dtype: torch.dtype = torch.float64


@dataclass
class Outcome:
    """What one forward call gave: the output [N, out] or the error, and its inputs after."""

    output: Tensor | None
    error: str | None  # "raised TypeError: ... (file.py, line 3, ...)" or "returned ..."
    x: Tensor  # the input as passed (requires grad), to read x.grad and see in-place changes
    edge_index: Tensor


def build(layer, size: tuple[int, int] | None) -> nn.Module:
    """``layer(in, out)`` for a class, a deep copy for an instance (never the student's own),
    in eval mode so that dropout, if any, does not make the output random."""
    module = layer(*size) if inspect.isclass(layer) else copy.deepcopy(layer)
    return module.eval()


def find_parameters(module: nn.Module, roles: dict[str, str], name: str) -> dict[str, Tensor]:
    """Each role's tensor, read at its dotted attribute path (``"lin.weight"``).

    Raises:
        ValueError: a path does not lead to a tensor; the message lists the parameters there are.
    """
    found = {}
    for role, path in roles.items():
        value = module
        for part in path.split("."):
            value = getattr(value, part, None)
        if not isinstance(value, Tensor):
            there = ", ".join(f"{n} {list(p.shape)}" for n, p in module.named_parameters())
            raise ValueError(  # noqa: TRY004 - a name that is not there, not a bad type
                f"{name} has no tensor {path!r} for {role} (its parameters: {there or 'none'}); "
                f"name it {role} or map it with params={{{role!r}: 'attribute.path'}}."
            )
        found[role] = value
    return found


def set_parameters(built: Built, values: dict[str, Tensor]) -> None:
    """Copy the case's values into the layer's own parameters (reshaped, in its dtype)."""
    with torch.no_grad():
        for role, tensor in built.params.items():
            tensor.copy_(values[role].reshape(tensor.shape).to(tensor.dtype))


def forward(built: Built, case: Case, edge_index: Tensor | None = None) -> Outcome:
    """Call the layer on the case (the first item when it returns a tuple)."""
    set_parameters(built, case.params)
    x = case.x.to(built.dtype).clone().requires_grad_(True)
    edge_index = (case.edge_index if edge_index is None else edge_index).clone()
    try:
        output = built.module(x, edge_index)
    except Exception as error:  # noqa: BLE001 - the student's code: report it, do not crash
        return Outcome(None, f"raised {student_error(error)}", x, edge_index)
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, Tensor):
        return Outcome(None, f"returned {type(output).__name__}, not a tensor [N, out]",
                       x, edge_index)
    return Outcome(output, None, x, edge_index)


def student_error(error: BaseException) -> str:
    """``"TypeError: message (file.py, line 12, in forward: code)"``: the exception and the
    last line of the student's code it passed through."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(_LIBRARY_DIRS)]
    where = ""
    if frames:
        frame = frames[-1]
        where = (f" ({os.path.basename(frame.filename)}, line {frame.lineno}, in {frame.name}: "
                 f"{(frame.line or '').strip()})")
    return f"{type(error).__name__}: {message}{where}"
