"""Shared parameters of the homework-form layers: h'_i = W agg_i + B h_i (+ bias)."""

from __future__ import annotations

import math

import torch
from torch import nn


class RootWeightConv(nn.Module):
    """Holds ``W`` and ``B`` [F_out, F_in] and an optional ``bias`` [F_out]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.W = nn.Parameter(torch.empty(out_features, in_features))
        self.B = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in +-1/sqrt(F_in), as ``torch.nn.Linear``."""
        bound = 1.0 / math.sqrt(self.in_features)
        for parameter in (self.W, self.B, self.bias):
            if parameter is not None:
                nn.init.uniform_(parameter, -bound, bound)

    def add_bias(self, out):
        return out if self.bias is None else out + self.bias

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_features}, {self.out_features}, "
            f"bias={self.bias is not None})"
        )
