"""The layers on a CUDA GPU give what they give on the CPU (skipped without a GPU)."""

import pytest
import torch
from conftest import built_in_layers, random_graph

from gnnkit import Graph
from gnnkit.ops import edge_softmax, spmm

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

LAYERS = built_in_layers(6, 4)


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("form", ["edge_index", "sparse_csr", "Graph"])
def test_layer_on_cuda_matches_cpu(name, form):
    edge_index = random_graph(300, 2000, seed=1)
    x = torch.randn(300, 6, dtype=torch.float64, requires_grad=True)
    layer = LAYERS[name]().double()
    out = layer(x, edge_index)
    (grad_cpu,) = torch.autograd.grad(out.pow(2).sum(), x)

    layer_gpu = layer.to("cuda")
    x_gpu = x.detach().cuda().requires_grad_()
    graph = {
        "edge_index": edge_index.cuda(),
        "sparse_csr": Graph(edge_index, 300).to_sparse(torch.float64).cuda(),
        "Graph": Graph(edge_index, 300).to("cuda"),
    }[form]
    out_gpu = layer_gpu(x_gpu, graph)
    assert out_gpu.is_cuda
    (grad_gpu,) = torch.autograd.grad(out_gpu.pow(2).sum(), x_gpu)
    torch.testing.assert_close(out_gpu.cpu(), out)
    torch.testing.assert_close(grad_gpu.cpu(), grad_cpu)


def test_custom_functions_gradcheck_on_cuda():
    graph = Graph(random_graph(12, 40, seed=2), 12).to("cuda")
    values = torch.rand(graph.num_edges, dtype=torch.float64, device="cuda", requires_grad=True)
    x = torch.randn(12, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, h: spmm(graph, v, h), (values, x))
    scores = torch.randn(graph.num_edges, 2, dtype=torch.float64, device="cuda",
                         requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: edge_softmax(graph, s), (scores,))
