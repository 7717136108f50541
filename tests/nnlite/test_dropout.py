import pytest
import torch

import nnlite
from tests.nnlite._oracle import DTYPE_IDS, DTYPES


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
@pytest.mark.parametrize(
    "shape", [(1, 25), (25, 25), (1000, 25), (3, 4, 5)], ids=lambda s: "x".join(map(str, s))
)
def test_same_seed_draws_torchs_mask_and_gives_its_gradient(shape, p, dtype):
    x = torch.randn(shape, dtype=dtype)
    grad = torch.randn(shape, dtype=dtype)
    torch.manual_seed(3)
    module = nnlite.Dropout(p)
    out = module(x)
    grad_input = module.backward(grad)
    after_ours = torch.rand(2)
    torch.manual_seed(3)
    leaf = x.clone().requires_grad_(True)
    expected = torch.nn.Dropout(p)(leaf)
    expected.backward(grad)
    after_theirs = torch.rand(2)
    assert torch.equal(out, expected.detach())
    assert torch.equal(grad_input, leaf.grad)
    assert torch.equal(after_ours, after_theirs), "the generator must advance by the same draws"


def test_backward_applies_the_mask_and_the_scale():
    torch.manual_seed(0)
    module = nnlite.Dropout(0.25)
    out = module(torch.ones(200, 10))
    grad_input = module.backward(torch.ones(200, 10))
    kept = out != 0
    assert torch.equal(grad_input != 0, kept)
    assert torch.allclose(grad_input[kept], torch.tensor(1 / 0.75))
    assert 0.2 < 1 - kept.float().mean().item() < 0.3


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_eval_mode_is_the_identity_without_aliasing(p):
    module = nnlite.Dropout(p).eval()
    x = torch.randn(4, 3)
    state = torch.get_rng_state()
    out = module(x)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    assert torch.equal(torch.get_rng_state(), state), "eval mode must not draw from the generator"
    grad = torch.randn(4, 3)
    assert torch.equal(module.backward(grad), grad)


def test_p_one_zeroes_everything_as_torch():
    x = torch.randn(5, 2)
    module = nnlite.Dropout(1.0)
    leaf = x.clone().requires_grad_(True)
    expected = torch.nn.Dropout(1.0)(leaf)
    expected.backward(torch.ones(5, 2))
    assert torch.equal(module(x), expected.detach())
    assert torch.equal(module.backward(torch.ones(5, 2)), leaf.grad)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5"], ids=["negative", "above-one", "str"])
def test_probability_outside_unit_interval_uses_torchs_wording(p):
    with pytest.raises(
        ValueError, match=f"dropout probability has to be between 0 and 1, but got {p}"
    ):
        nnlite.Dropout(p)


def test_forward_never_mutates_its_input_and_backward_never_its_gradient():
    module = nnlite.Dropout(0.5)
    x, grad = torch.randn(6, 6), torch.randn(6, 6)
    x_copy, grad_copy = x.clone(), grad.clone()
    out = module(x)
    out_copy = out.clone()
    module.backward(grad)
    assert torch.equal(x, x_copy) and torch.equal(grad, grad_copy) and torch.equal(out, out_copy)


def test_backward_before_forward_raises():
    with pytest.raises(
        RuntimeError, match=r"Dropout\(p=0.5, inplace=False\): backward\(\) called before"
    ):
        nnlite.Dropout().backward(torch.ones(2))


def test_repr_prints_as_torch_prints():
    assert repr(nnlite.Dropout(0.2)) == repr(torch.nn.Dropout(0.2))
