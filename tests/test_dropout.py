"""gnnkit.ops.dropout: F.dropout's mask and scaling, drawn from torch.rand on CPU."""

import pytest
import torch
import torch.nn.functional as F

from gnnkit.ops import dropout


def torch_kernel_draws_like_rand() -> bool:
    """Whether this torch build draws Bernoulli numbers with its own CPU kernel (on Intel CPUs
    it uses MKL, a different sequence)."""
    torch.manual_seed(0)
    bernoulli = torch.empty(1000).bernoulli_(0.3)
    torch.manual_seed(0)
    return torch.equal(bernoulli, (torch.rand(1000, dtype=torch.float64) < 0.3).float())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.6])
def test_mask_is_rand_below_keep_probability_and_kept_entries_are_divided(dtype, p):
    x = torch.randn(37, 5).to(dtype)
    torch.manual_seed(4)
    out = dropout(x, p)
    torch.manual_seed(4)
    keep = (torch.rand(37, 5, dtype=torch.float64) < 1 - p).to(dtype)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(out, x * keep.div_(1 - p))


@pytest.mark.skipif(not torch_kernel_draws_like_rand(),
                    reason="this torch draws F.dropout's mask with MKL (Intel CPU)")
@pytest.mark.parametrize("shape", [(13264, 8), (2708, 64), (3,)])
def test_same_numbers_as_f_dropout_where_torch_uses_its_own_kernel(shape):
    x = torch.randn(shape)
    torch.manual_seed(11)
    expected = F.dropout(x, 0.6, True)
    torch.manual_seed(11)
    assert torch.equal(dropout(x, 0.6), expected)


def test_identity_when_not_training_or_p_zero_and_the_gradient_is_the_mask():
    x = torch.randn(10, 3, requires_grad=True)
    assert dropout(x, 0.5, training=False) is x
    assert torch.equal(dropout(x, 0.0), x)
    torch.manual_seed(1)
    out = dropout(x, 0.25)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() / 0.75)


def test_keeps_about_one_minus_p():
    torch.manual_seed(0)
    kept = (dropout(torch.ones(200_000), 0.6) != 0).float().mean()
    assert abs(float(kept) - 0.4) < 0.005


@pytest.mark.parametrize("p", [1.0, -0.1, float("nan"), "0.5"])
def test_bad_p_is_refused_by_name(p):
    with pytest.raises((ValueError, TypeError), match="p"):
        dropout(torch.ones(3), p)


@pytest.mark.parametrize("x", [torch.ones(3, dtype=torch.long), [1.0, 2.0]])
def test_x_must_be_a_floating_tensor(x):
    with pytest.raises(TypeError, match="x must be a floating"):
        dropout(x, 0.5)
