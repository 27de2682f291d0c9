"""GATConv against PyG's GATConv (oracle), attention normalisation, and saved-memory bound."""

import pytest
import torch
from conftest import random_graph

from gnnkit import Graph
from gnnkit.nn import GATConv


def pyg_copy(ours: GATConv):
    from torch_geometric.nn import GATConv as PyGGATConv

    theirs = PyGGATConv(
        ours.in_features, ours.out_features, heads=ours.heads, concat=ours.concat,
        negative_slope=ours.negative_slope, dropout=ours.dropout,
        add_self_loops=ours.add_self_loops, bias=ours.bias is not None,
    ).to(ours.W.dtype)
    with torch.no_grad():
        theirs.lin.weight.copy_(ours.W)
        theirs.att_src.copy_(ours.att_src.unsqueeze(0))
        theirs.att_dst.copy_(ours.att_dst.unsqueeze(0))
        if ours.bias is not None:
            ours.bias.copy_(torch.randn_like(ours.bias))
            theirs.bias.copy_(ours.bias)
    return theirs


@pytest.mark.parametrize("heads", [1, 4])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize("self_loops", [True, False])
def test_gat_equals_pyg_forward_and_gradients(heads, concat, self_loops):
    edge_index = random_graph(40, 160, seed=heads + 2 * concat + 4 * self_loops, unique=False)
    edge_index = torch.cat([edge_index, torch.tensor([[3, 5], [3, 5]])], 1)  # self-loops
    x = torch.randn(42, 7, dtype=torch.float64, requires_grad=True)  # nodes 40, 41 isolated
    ours = GATConv(7, 5, heads=heads, concat=concat, add_self_loops=self_loops).double()
    theirs = pyg_copy(ours)
    out, theirs_out = ours(x, edge_index), theirs(x, edge_index)
    torch.testing.assert_close(out, theirs_out)
    weight = torch.randn_like(out)
    ours_grads = torch.autograd.grad((out * weight).sum(), [x, ours.W, ours.att_src, ours.att_dst])
    theirs_grads = torch.autograd.grad(
        (theirs_out * weight).sum(), [x, theirs.lin.weight, theirs.att_src, theirs.att_dst]
    )
    for got, want in zip(ours_grads, theirs_grads):
        torch.testing.assert_close(got, want.view_as(got))


def test_attention_sums_to_one_per_target_and_names_its_edges():
    edge_index = random_graph(20, 60, seed=3)
    layer = GATConv(4, 3, heads=4).double()
    x = torch.randn(20, 4, dtype=torch.float64)
    _, (used, alpha) = layer(x, edge_index, return_attention_weights=True)
    assert alpha.shape == (used.size(1), 4)
    expected_edges = Graph(edge_index, 20).add_self_loops().edge_index
    assert sorted(map(tuple, used.t().tolist())) == sorted(map(tuple, expected_edges.t().tolist()))
    sums = torch.zeros(20, 4, dtype=torch.float64).index_add_(0, used[1], alpha)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert (alpha > 0).all()


def test_node_without_incoming_edges_gets_only_the_bias():
    layer = GATConv(3, 2, heads=2, add_self_loops=False)
    x = torch.randn(3, 3)
    out = layer(x, torch.tensor([[0, 1], [1, 1]]))
    torch.testing.assert_close(out[0], layer.bias)
    torch.testing.assert_close(out[2], layer.bias)


def test_dropout_acts_only_while_training():
    edge_index = random_graph(15, 50, seed=4)
    layer = GATConv(4, 3, heads=2, dropout=0.5)
    x = torch.randn(15, 4)
    layer.eval()
    torch.testing.assert_close(layer(x, edge_index), layer(x, edge_index))
    layer.train()
    assert not torch.allclose(layer(x, edge_index), layer(x, edge_index))


def test_gat_gradcheck():
    edge_index = random_graph(7, 18, seed=5)
    layer = GATConv(3, 2, heads=2).double()
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: layer(h, edge_index), (x,))
    assert torch.autograd.gradcheck(
        lambda a: torch.func.functional_call(layer, {"att_src": a}, (x.detach(), edge_index)),
        (layer.att_src.detach().clone().requires_grad_(),),
    )


def saved_bytes(forward) -> int:
    """Bytes of every tensor autograd saves for the backward pass of ``forward()``."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return total


def test_saved_memory_grows_with_edges_times_heads_not_times_channels():
    num_nodes, heads, channels, features = 300, 4, 32, 16
    edge_index = random_graph(num_nodes, 30_000, seed=6)
    num_edges = edge_index.size(1) + num_nodes  # self-loops added
    x = torch.randn(num_nodes, features, requires_grad=True)
    layer = GATConv(features, channels, heads=heads, dropout=0.5)
    ours = saved_bytes(lambda: layer(x, edge_index))
    # A few [E, heads] floats and [E] indices, plus [N, heads * C] node tensors and the input.
    bound = 4 * (8 * num_edges * heads + 8 * num_edges + 8 * num_nodes * heads * channels
                 + num_nodes * features + features * heads * channels)
    per_edge_channel_tensor = 4 * num_edges * heads * channels
    assert ours <= bound < per_edge_channel_tensor
    theirs = saved_bytes(lambda: pyg_copy(layer)(x, edge_index))
    assert theirs > per_edge_channel_tensor  # the oracle keeps E x heads x C: the bound bites
