"""Shared parameters of the homework-form layers: h'_i = W agg_i + B h_i (+ bias)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validate import check_int
from .message_passing import MessagePassing


class RootWeightConv(MessagePassing):
    """Holds ``W`` and ``B`` [F_out, F_in] and an optional ``bias`` [F_out]."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *, aggr: str):
        super().__init__(aggr=aggr)
        self.in_features = check_int(in_features, "in_features", low=0)
        self.out_features = check_int(out_features, "out_features", low=0)
        self.W = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.B = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in +-1/sqrt(F_in), as ``torch.nn.Linear``."""
        bound = 1.0 / math.sqrt(max(self.in_features, 1))
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
