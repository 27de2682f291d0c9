"""Graph attention (GAT, Velickovic et al. 2018) on sparse tensors, lean in memory."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validate import check_int, check_real
from ..ops import dropout, edge_softmax, feature_linear, multi_head_spmm
from ..ops.gather import take_rows
from ._inputs import check_features, graph_for


class GATConv(nn.Module):
    r"""Multi-head graph attention.

    For every edge j -> i and head k, with ``z = W h`` split into heads ``z^k`` [C]:

        e_ij^k     = LeakyReLU(a_dst^k . z_i^k + a_src^k . z_j^k)
        alpha_ij^k = softmax over the incoming edges of i of e_ij^k
        h'_i^k     = sum_{j -> i} alpha_ij^k z_j^k

    Heads are concatenated ([N, heads*C]) or averaged ([N, C]), then ``bias`` is added.
    Dropout (probability ``dropout``) acts on the attention coefficients while training.

    Memory: per-edge work is done on [E, heads] tensors only. The weighted aggregation is one
    multi-head CSR product (:func:`gnnkit.ops.multi_head_spmm`) whose backward computes the
    attention gradient as a sampled product <grad_i, z_j> at the edges, so no [E, heads, C]
    tensor is ever created or saved: memory grows as E x heads + N x heads x C. Works on CPU
    and CUDA tensors alike, in float16/bfloat16 and under ``torch.autocast`` (the softmax is
    normalised in float32), with second derivatives.

    Args:
        in_features: F_in.
        out_features: C, channels per head.
        heads: number of attention heads.
        concat: concatenate the heads (else average them).
        negative_slope: slope of the LeakyReLU for negative scores.
        dropout: dropout probability on the attention coefficients.
        add_self_loops: remove existing self-loops, then add one per node, so every node
            attends to itself.
        bias: add a learnable bias ([heads*C] if concat else [C]).

    Shapes:
        x [N, F_in] (dense, or sparse CSR/COO: the product ``W x`` then reads only its stored
        values), graph with N nodes -> [N, heads*C] or [N, C]. ``W`` [heads*C, F_in],
        ``att_src`` and ``att_dst`` [heads, C].
    """

    def __init__(
        self, in_features: int, out_features: int, heads: int = 1, concat: bool = True,
        negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", low=0)
        self.out_features = check_int(out_features, "out_features", low=0)
        self.heads = check_int(heads, "heads", low=1)
        self.concat, self.add_self_loops = concat, add_self_loops
        self.negative_slope = check_real(negative_slope, "negative_slope")
        self.dropout = check_real(dropout, "dropout", low=0.0, high=1.0, open_high=True)
        self.W = nn.Parameter(torch.empty(heads * out_features, in_features))
        self.att_src = nn.Parameter(torch.empty(heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(heads, out_features))
        bias_size = heads * out_features if concat else out_features
        self.bias = nn.Parameter(torch.empty(bias_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights and attention vectors, zero bias."""
        for parameter, fan_in, fan_out in (
            (self.W, self.in_features, self.heads * self.out_features),
            (self.att_src, self.out_features, self.heads),
            (self.att_dst, self.out_features, self.heads),
        ):
            bound = math.sqrt(6.0 / max(fan_in + fan_out, 1))
            nn.init.uniform_(parameter, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph, return_attention_weights: bool = False):
        """Returns the new features, and with ``return_attention_weights=True`` also
        ``(edge_index_used [2, E'], alpha [E', heads])``: the edges attended over (self-loops
        included, grouped by target) and their attention before dropout, summing to 1 over the
        incoming edges of each node."""
        check_features(x, self.in_features, dtype=self.W.dtype)
        graph = graph_for(graph, x)
        if self.add_self_loops:
            graph = graph.add_self_loops()
        _, source, _ = graph.csr
        target = graph.csr_target

        z = feature_linear(x, self.W)  # [N, H*C]
        node_scores = z @ self._attention_matrix()  # [N, 2H]: a_src^k . z^k, then a_dst^k . z^k
        scores = (take_rows(node_scores[:, : self.heads], source)
                  + take_rows(node_scores[:, self.heads:], target))  # [E, H]
        z = z.view(x.size(0), self.heads, self.out_features)  # [N, H, C]
        alpha = edge_softmax(graph, F.leaky_relu(scores, self.negative_slope))  # [E, H]
        weights = dropout(alpha, self.dropout, self.training)  # [E, H]
        out = multi_head_spmm(graph, weights, z)  # [N, H, C]
        out = out.flatten(1) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        if return_attention_weights:
            return out, (torch.stack([source, target]), alpha)
        return out

    def _attention_matrix(self) -> Tensor:
        """[H*C, 2H], block diagonal: column k holds ``att_src[k]`` in rows k*C..(k+1)*C-1,
        column H + k holds ``att_dst[k]`` there, so ``z @ M`` gives every node's source and
        target score per head in one product (no [N, H, C] temporary)."""
        heads, channels = self.heads, self.out_features
        eye = torch.eye(heads, dtype=self.W.dtype, device=self.W.device)
        both = torch.stack([self.att_src, self.att_dst])  # [2, H, C]
        blocks = both.unsqueeze(-1) * eye.view(1, heads, 1, heads)  # [2, H, C, H]
        return blocks.permute(1, 2, 0, 3).reshape(heads * channels, 2 * heads)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_features}, {self.out_features}, "
            f"heads={self.heads}, concat={self.concat})"
        )
