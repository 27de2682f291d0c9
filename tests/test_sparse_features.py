"""Node features given as a sparse CSR/COO tensor give the numbers of the dense form:
every layer and model, forward and gradients, dropout, row selection and training."""

import pytest
import torch
from conftest import built_in_layers, needs_data, random_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit import Graph
from gnnkit.data import NodeData
from gnnkit.data.datasets import normalize_rows
from gnnkit.models import GAT, InputDropout, MeanGCN, MedianGCN
from gnnkit.nn import MeanGCNConv
from gnnkit.ops import dense_features, feature_dropout, feature_linear, feature_rows
from gnnkit.ops.features import _SparseLinear, csr_parts, density, is_sparse
from gnnkit.train import train_node_classifier
from gnnkit.train.data import SPARSE_FEATURES_MAX_DENSITY, TrainingData

LAYOUTS = {"csr": lambda x: x.to_sparse_csr(), "coo": lambda x: x.to_sparse()}


def mostly_zero(num_nodes, num_features, density=0.1, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(num_nodes, num_features, generator=generator, dtype=torch.float64)
    keep = torch.rand(num_nodes, num_features, generator=generator) < density
    x = (values * keep).to(dtype)
    x[3] = 0  # a node without any feature
    return x


def outputs_and_grads(module, x, graph, seed=1):
    torch.manual_seed(seed)
    out = module(x, graph)
    grads = torch.autograd.grad(out.square().sum(), [p for p in module.parameters()])
    return out, grads


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(built_in_layers(12, 5)))
def test_every_layer_gives_the_dense_numbers(name, dtype, layout):
    x = mostly_zero(40, 12, dtype=dtype)
    graph = Graph(random_graph(40, 160, seed=2), 40)
    layer = built_in_layers(12, 5)[name]().to(dtype)
    dense_out, dense_grads = outputs_and_grads(layer, x, graph)
    sparse_out, sparse_grads = outputs_and_grads(layer, LAYOUTS[layout](x), graph)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(sparse_out, dense_out, atol=tolerance, rtol=tolerance)
    for sparse_grad, dense_grad in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(sparse_grad, dense_grad, atol=tolerance, rtol=tolerance)


def test_mean_layer_wider_than_its_input_and_dense_adjacency():
    x = mostly_zero(30, 6)
    edge_index = random_graph(30, 90, seed=3)
    layer = MeanGCNConv(6, 20, bias=True)
    adjacency = torch.zeros(30, 30)
    adjacency[edge_index[1], edge_index[0]] = 1
    expected = layer(x, Graph(edge_index, 30))
    torch.testing.assert_close(layer(x.to_sparse_csr(), Graph(edge_index, 30)), expected)
    torch.testing.assert_close(layer(x.to_sparse_csr(), adjacency), expected)


def test_sparse_product_gradcheck_and_gradgradcheck():
    x = mostly_zero(9, 7, density=0.3, dtype=torch.float64)
    rowptr, col, values = csr_parts(x.to_sparse_csr())
    values = values.clone().requires_grad_()
    weight = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)

    def product(values, weight):
        return _SparseLinear.apply(values, weight, rowptr, col)

    assert torch.autograd.gradcheck(product, (values, weight))
    assert torch.autograd.gradgradcheck(product, (values, weight))


def test_gradient_reaches_the_stored_values_of_x():
    x = mostly_zero(10, 6, density=0.4)
    weight = torch.randn(3, 6)
    dense = x.clone().requires_grad_()
    (feature_linear(dense, weight) ** 2).sum().backward()
    values = x.to_sparse_csr().values().clone().requires_grad_()
    crow, col = x.to_sparse_csr().crow_indices(), x.to_sparse_csr().col_indices()
    sparse = torch.sparse_csr_tensor(crow, col, values, x.shape, check_invariants=True)
    (feature_linear(sparse, weight) ** 2).sum().backward()
    torch.testing.assert_close(values.grad, dense.grad[x != 0])


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(0, 12), cols=st.integers(1, 9), out=st.integers(1, 5),
       fraction=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_sparse_product_equals_the_dense_one(rows, cols, out, fraction, seed):
    x = mostly_zero(max(rows, 4), cols, density=fraction, seed=seed)[:rows]
    weight = torch.randn(out, cols, generator=torch.Generator().manual_seed(seed))
    for to_layout in LAYOUTS.values():
        torch.testing.assert_close(feature_linear(to_layout(x), weight), x @ weight.t())


def test_dropout_draws_as_the_dense_input_dropout():
    x = mostly_zero(50, 30, density=0.05)
    torch.manual_seed(7)
    dense = InputDropout(0.6)(x)
    torch.manual_seed(7)
    sparse = feature_dropout(x.to_sparse_csr(), 0.6)
    assert is_sparse(sparse)
    torch.testing.assert_close(sparse.to_dense(), dense)
    kept = sparse.values()[sparse.values() != 0]
    stored = x[x != 0]
    assert set(torch.isclose(kept.unsqueeze(1), stored.unsqueeze(0) / 0.4).any(1).tolist()) \
        == {True}
    assert feature_dropout(x.to_sparse_csr(), 0.6, training=False).values().equal(
        x.to_sparse_csr().values())


def test_dropout_of_dense_x_is_torch_dropout():
    x = torch.rand(8, 5)
    torch.manual_seed(3)
    expected = torch.nn.functional.dropout(x, 0.3, True)
    torch.manual_seed(3)
    assert feature_dropout(x, 0.3).equal(expected)
    assert feature_dropout(x, 0.3, training=False).equal(x)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_rows_of_sparse_features(layout):
    x = mostly_zero(20, 8, density=0.3)
    sparse = LAYOUTS[layout](x)
    index = torch.tensor([5, 3, 5, 0, 19])
    assert feature_rows(sparse, index).to_dense().equal(x[index])
    assert feature_rows(sparse, 7).to_dense().equal(x[:7])
    assert feature_rows(sparse, 0).to_dense().shape == (0, 8)
    assert feature_rows(x, index).equal(x[index])


def test_normalised_rows_and_density():
    x = mostly_zero(30, 10, density=0.2)
    torch.testing.assert_close(normalize_rows(x.to_sparse_csr()).to_dense(), normalize_rows(x))
    assert density(x.to_sparse_csr()) == density(x) == int((x != 0).sum()) / x.numel()
    assert dense_features(x.to_sparse()).equal(x)


def test_other_layouts_are_refused_with_the_fix():
    x = mostly_zero(10, 4)
    layer = MeanGCNConv(4, 2)
    with pytest.raises(TypeError, match="to_sparse_csr"):
        layer(x.to_sparse_csc(), Graph(random_graph(10, 20), 10))


@pytest.mark.parametrize("model_class", [MeanGCN, MedianGCN, GAT])
def test_models_train_and_infer_alike(model_class):
    x = mostly_zero(60, 20, density=0.08)
    graph = Graph(random_graph(60, 240, seed=4), 60)
    torch.manual_seed(0)
    model = model_class(20, 8, 3) if model_class is not GAT else GAT(20, 3, hidden=4, heads=2)
    dense_out, dense_grads = outputs_and_grads(model, x, graph)
    sparse_out, sparse_grads = outputs_and_grads(model, x.to_sparse_csr(), graph)
    torch.testing.assert_close(sparse_out, dense_out)
    for sparse_grad, dense_grad in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(sparse_grad, dense_grad)
    model.eval()
    expected = model(x, graph)
    torch.testing.assert_close(model.inference(x.to_sparse_csr(), graph, chunk_size=7),
                               expected, atol=1e-5, rtol=1e-5)
    first = Graph(random_graph(40, 120, seed=5), 40)
    second = Graph(random_graph(10, 20, seed=6), 10)
    torch.testing.assert_close(model(x.to_sparse_csr(), [first, second]),
                               model(x, [first, second]))


def small_dataset(x):
    num_nodes = x.size(0)
    y = torch.arange(num_nodes) % 3
    masks = [torch.zeros(num_nodes, dtype=torch.bool) for _ in range(3)]
    for i, mask in enumerate(masks):
        mask[i * 20:(i + 1) * 20] = True
    return NodeData.from_edge_index(random_graph(num_nodes, 400, seed=8), x, y, *masks)


def test_full_batch_training_holds_mostly_zero_features_sparse():
    sparse_enough = small_dataset(mostly_zero(80, 50, density=SPARSE_FEATURES_MAX_DENSITY / 2))
    too_dense = small_dataset(mostly_zero(80, 50, density=0.5))
    device = torch.device("cpu")
    for dataset, expected in ((sparse_enough, True), (too_dense, False)):
        data = TrainingData.on_device(dataset, dataset.graph(), True, device,
                                      sparse_features=True)
        assert is_sparse(data.x) is expected
        torch.testing.assert_close(dense_features(data.x), normalize_rows(dataset.x))
    mini_batch = TrainingData.on_device(sparse_enough, sparse_enough.graph(), True, device)
    assert not is_sparse(mini_batch.x)


@pytest.mark.parametrize("model", ["mean-gcn", "median-gcn", "gat"])
def test_training_on_sparse_and_dense_input_is_the_same_run(model):
    x = mostly_zero(80, 50, density=0.03)
    dense = train_node_classifier(small_dataset(x), model, epochs=15, seed=0)
    sparse = train_node_classifier(small_dataset(x.to_sparse_csr()), model, epochs=15, seed=0)
    assert sparse.best_epoch == dense.best_epoch
    assert sparse.test_accuracy == dense.test_accuracy
    for (a, b, c), (d, e, f) in zip(sparse.history, dense.history, strict=True):
        assert abs(a - d) < 1e-4 and abs(b - e) < 1e-4 and c == f
    batched = train_node_classifier(small_dataset(x.to_sparse_csr()), model, epochs=2, seed=0,
                                    batch_size=16, fanouts=(3, 3))
    assert batched.epochs_run == 2


def test_non_finite_sparse_features_are_refused():
    x = mostly_zero(80, 50, density=0.03)
    x[5, x[5].nonzero()[0]] = float("nan")
    with pytest.raises(ValueError, match="node 5"):
        train_node_classifier(small_dataset(x.to_sparse_csr()), "mean-gcn", epochs=1)


@needs_data("planetoid/Cora/raw")
def test_planetoid_sparse_features_match_the_dense_ones():
    from conftest import DATASETS

    from gnnkit.data import planetoid

    dense = planetoid(DATASETS / "planetoid", "Cora", normalize_features=True)
    sparse = planetoid(DATASETS / "planetoid", "Cora", normalize_features=True,
                       sparse_features=True)
    assert sparse.x.layout == torch.sparse_csr
    assert sparse.x.to_dense().equal(dense.x)
    assert sparse.x._nnz() == int(torch.count_nonzero(dense.x))


def test_a_store_holds_sparse_features_dense(tmp_path):
    from gnnkit.data import store

    x = mostly_zero(80, 50, density=0.03)
    store.save(small_dataset(x.to_sparse_csr()), tmp_path / "s")
    assert store.load(tmp_path / "s").x.equal(x)


def test_the_loader_gathers_sparse_feature_rows():
    from gnnkit.sampling import NeighborLoader

    x = mostly_zero(80, 50, density=0.05)
    data = small_dataset(x)
    dense = list(NeighborLoader(data.graph(), x, data.y, None, [3, 2], 16, seed=1))
    sparse = list(NeighborLoader(data.graph(), x.to_sparse_csr(), data.y, None, [3, 2], 16,
                                 seed=1))
    for a, b in zip(dense, sparse, strict=True):
        assert is_sparse(b.x) and b.x.to_dense().equal(a.x) and b.n_id.equal(a.n_id)


def test_link_training_takes_sparse_features():
    from gnnkit.train import train_link_predictor

    x = mostly_zero(80, 50, density=0.05)
    dense = train_link_predictor(small_dataset(x), epochs=2, seed=0)
    sparse = train_link_predictor(small_dataset(x.to_sparse_csr()), epochs=2, seed=0)
    assert sparse.test_auc == dense.test_auc
    batched = train_link_predictor(small_dataset(x.to_sparse_csr()), epochs=1, seed=0,
                                   batch_size=16)
    assert 0.0 <= batched.test_auc <= 1.0
