"""Aggregation modules against per-node Python loops (hypothesis for random graphs)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnkit.nn import aggr


@st.composite
def messages_with_gaps(draw):
    """[E, F] messages and their receivers, with isolated nodes first, in the middle and last,
    degrees both even and odd, and many duplicate values."""
    num_nodes = draw(st.integers(4, 14))
    receivers = list(range(1, num_nodes - 1))
    receivers.remove(num_nodes // 2)  # node 0, a middle node and the last receive nothing
    degrees = draw(st.lists(st.integers(0, 6), min_size=len(receivers), max_size=len(receivers)))
    index = [node for node, degree in zip(receivers, degrees) for _ in range(degree)]
    num_features = draw(st.integers(1, 3))
    values = draw(
        st.lists(st.integers(-3, 3), min_size=len(index) * num_features,
                 max_size=len(index) * num_features)
    )
    order = draw(st.permutations(list(range(len(index)))))
    index = torch.tensor([index[k] for k in order], dtype=torch.long)
    x = torch.tensor(values, dtype=torch.float64).view(len(order), num_features)
    return x, index, num_nodes


def loop_reference(x, index, num_nodes, reduce):
    out = torch.zeros(num_nodes, x.size(1), dtype=x.dtype)
    for node in range(num_nodes):
        rows = x[index == node]
        if len(rows):
            out[node] = {
                "sum": lambda r: r.sum(0),
                "mean": lambda r: r.mean(0),
                "max": lambda r: r.max(0).values,
                "min": lambda r: r.min(0).values,
                "median": lambda r: torch.median(r, dim=0).values,
            }[reduce](rows)
    return out


@settings(max_examples=60, deadline=None)
@given(messages_with_gaps(), st.sampled_from(["sum", "mean", "max", "min", "median"]))
def test_aggregations_equal_a_per_node_loop(case, reduce):
    x, index, num_nodes = case
    module = aggr.resolve_aggregation(reduce)
    out = module(x, index, num_nodes)
    torch.testing.assert_close(out, loop_reference(x, index, num_nodes, reduce))
    for isolated in (0, num_nodes // 2, num_nodes - 1):
        assert (out[isolated] == 0).all()


def test_median_takes_the_lower_middle_for_even_counts():
    x = torch.tensor([[4.0], [1.0], [3.0], [2.0], [9.0]])
    index = torch.tensor([1, 1, 1, 1, 2])
    out = aggr.MedianAggregation()(x, index, 3)
    assert out.view(-1).tolist() == [0.0, 2.0, 9.0]


def test_median_gradient_goes_to_the_selected_element():
    x = torch.tensor([[4.0, 0.5], [1.0, 0.1], [3.0, 0.7], [2.0, 0.2], [9.0, 1.0]],
                     requires_grad=True)
    index = torch.tensor([1, 1, 1, 0, 1])
    aggr.MedianAggregation()(x, index, 2).sum().backward()
    # node 1 gets rows 0, 1, 2, 4: column 0 values 4, 1, 3, 9 -> lower median 3 (row 2);
    # column 1 values .5, .1, .7, 1 -> lower median .5 (row 0); node 0 gets row 3 alone.
    expected = torch.zeros(5, 2)
    expected[2, 0] = expected[0, 1] = 1.0
    expected[3] = 1.0
    assert torch.equal(x.grad, expected)


def test_median_gradcheck_on_distinct_values():
    index = torch.tensor([0, 2, 2, 2, 3, 3, 0, 2])
    x = torch.randperm(16).double().view(8, 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda h: aggr.MedianAggregation()(h, index, 5), (x,))


def test_median_without_messages():
    out = aggr.MedianAggregation()(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 4)
    assert torch.equal(out, torch.zeros(4, 3))


def test_strings_resolve_and_bad_names_are_explained():
    assert isinstance(aggr.resolve_aggregation("median"), aggr.MedianAggregation)
    assert isinstance(aggr.resolve_aggregation("add"), aggr.SumAggregation)
    module = aggr.MaxAggregation()
    assert aggr.resolve_aggregation(module) is module
    with pytest.raises(ValueError, match="aggr must be one of"):
        aggr.resolve_aggregation("mode")


@pytest.mark.parametrize("reduce", ["sum", "median"])
def test_bad_index_is_explained(reduce):
    module = aggr.resolve_aggregation(reduce)
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="dim_size"):
        module(x, torch.tensor([0, 1, 5]), 3)
    with pytest.raises(ValueError, match="dim_size"):
        module(x, torch.tensor([0, -1, 2]), 3)
    with pytest.raises(ValueError, match="one entry per row"):
        module(x, torch.tensor([0, 1]), 3)
    with pytest.raises(TypeError, match="integer"):
        module(x, torch.tensor([0.0, 1.0, 2.0]), 3)


def test_median_refuses_nan():
    x = torch.tensor([[1.0], [float("nan")], [2.0]])
    with pytest.raises(ValueError, match="NaN"):
        aggr.MedianAggregation()(x, torch.tensor([0, 0, 0]), 1)
