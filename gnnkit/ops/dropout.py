"""Dropout with torch's mask, drawn faster on CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validate import check_real


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``F.dropout(x, p, training)``: each entry of ``x`` is zeroed with probability ``p``, the
    kept ones are divided by ``1 - p``; the identity when not ``training`` or ``p == 0``.

    On CPU the entry is kept where a float64 uniform draw ``torch.rand(...)`` is below
    ``1 - p``: the draws, and so the mask, of torch's own CPU Bernoulli kernel behind
    ``F.dropout`` (the same random numbers in the same order, 1.6x faster on [13264, 8];
    torch builds on Intel CPUs draw ``F.dropout``'s mask with MKL instead, a different
    sequence of the same distribution). Other devices call ``F.dropout``.

    Shapes: any; the result has ``x``'s shape and dtype.

    Raises:
        TypeError: ``x`` not a floating tensor.
        ValueError: ``p`` outside [0, 1).
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating torch tensor, got "
                        f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}.")
    p = check_real(p, "p", low=0.0, high=1.0, open_high=True)
    if not training or p == 0.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    keep = 1.0 - p
    noise = (torch.rand(x.shape, dtype=torch.float64) < keep).to(x.dtype).div_(keep)
    return x * noise
