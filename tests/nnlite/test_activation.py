import math

import pytest
import torch

import nnlite
from tests.nnlite._oracle import DTYPE_IDS, DTYPES, torch_forward_backward, ulp_distance

EXACT = [
    ("ReLU", lambda: nnlite.ReLU(), lambda: torch.nn.ReLU()),
    ("LeakyReLU-default", lambda: nnlite.LeakyReLU(), lambda: torch.nn.LeakyReLU()),
    ("LeakyReLU-0.2", lambda: nnlite.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    ("Tanh", lambda: nnlite.Tanh(), lambda: torch.nn.Tanh()),
    ("Sigmoid", lambda: nnlite.Sigmoid(), lambda: torch.nn.Sigmoid()),
]
SHAPES = [(1, 2), (25, 25), (1000, 25), (33, 17), (7,), (2, 3, 5)]


def _data(shape, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype) * 4
    grad = torch.randn(shape, generator=gen, dtype=dtype)
    return x, grad


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize(("name", "ours", "theirs"), EXACT, ids=[e[0] for e in EXACT])
def test_forward_and_backward_equal_torch_bit_for_bit(name, ours, theirs, shape, dtype):
    x, grad = _data(shape, dtype)
    module = ours()
    out = module(x)
    grad_input = module.backward(grad)
    expected_out, expected_grad = torch_forward_backward(theirs(), x, grad)
    assert torch.equal(out, expected_out)
    assert torch.equal(grad_input, expected_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_elu_matches_torch_within_one_ulp(alpha, shape, dtype):
    # torch's elu kernels call the C library's expm1 / exp on the scalar tail of each thread's
    # chunk (see ELU's notes): there the forward is within 1 ulp, the backward within 2 (1 ulp of
    # exp, then one more rounding); elsewhere the backward is exact (see the next test).
    x, grad = _data(shape, dtype)
    module = nnlite.ELU(alpha)
    out = module(x)
    grad_input = module.backward(grad)
    expected_out, expected_grad = torch_forward_backward(torch.nn.ELU(alpha), x, grad)
    assert ulp_distance(out, expected_out) <= 1
    assert ulp_distance(grad_input, expected_grad) <= 2


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_elu_backward_equals_torch_bit_for_bit_without_a_scalar_tail(dtype):
    # 4096 elements fill whole SIMD blocks, so torch's kernel uses its vectorised exp throughout.
    x, grad = _data((64, 64), dtype)
    module = nnlite.ELU(0.3)
    module(x)
    _, expected_grad = torch_forward_backward(torch.nn.ELU(0.3), x, grad)
    assert torch.equal(module.backward(grad), expected_grad)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (nnlite.ReLU, torch.nn.ReLU),
        (nnlite.LeakyReLU, torch.nn.LeakyReLU),
        (nnlite.ELU, torch.nn.ELU),
    ],
    ids=["ReLU", "LeakyReLU", "ELU"],
)
def test_rectifiers_at_zero_take_torchs_one_sided_derivative(ours, theirs):
    x = torch.tensor([-0.0, 0.0, 1e-45, -1e-45, 0.0])
    grad = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    module = ours()
    out = module(x)
    grad_input = module.backward(grad)
    expected_out, expected_grad = torch_forward_backward(theirs(), x, grad)
    assert torch.equal(out, expected_out)
    assert torch.equal(grad_input, expected_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(nnlite.Sigmoid, torch.nn.Sigmoid), (nnlite.Tanh, torch.nn.Tanh)],
    ids=["Sigmoid", "Tanh"],
)
def test_saturating_activations_at_large_magnitudes(ours, theirs, dtype):
    big = torch.finfo(dtype).max
    x = torch.tensor(
        [-big, -1e4, -100.0, -40.0, -20.0, 20.0, 40.0, 100.0, 1e4, big, math.inf, -math.inf],
        dtype=dtype,
    )
    grad = torch.ones_like(x) * 0.5
    module = ours()
    out = module(x)
    grad_input = module.backward(grad)
    expected_out, expected_grad = torch_forward_backward(theirs(), x, grad)
    assert torch.equal(out, expected_out)
    assert torch.equal(grad_input, expected_grad)
    assert torch.isfinite(grad_input).all()


def test_nan_propagates_as_in_torch():
    x = torch.tensor([math.nan, 1.0, -1.0])
    grad = torch.tensor([1.0, 1.0, 1.0])
    for ours, theirs in [
        (nnlite.ReLU(), torch.nn.ReLU()),
        (nnlite.LeakyReLU(), torch.nn.LeakyReLU()),
    ]:
        out = ours(x)
        expected_out, expected_grad = torch_forward_backward(theirs, x, grad)
        assert torch.equal(out.isnan(), expected_out.isnan())
        assert torch.equal(ours.backward(grad).nan_to_num(7.0), expected_grad.nan_to_num(7.0))


@pytest.mark.parametrize(
    "cls", [nnlite.ReLU, nnlite.LeakyReLU, nnlite.ELU, nnlite.Tanh, nnlite.Sigmoid]
)
def test_forward_and_backward_never_mutate_their_arguments(cls):
    x, grad = _data((6, 4), torch.float32)
    x_copy, grad_copy = x.clone(), grad.clone()
    module = cls()
    out = module(x)
    out_copy = out.clone()
    module.backward(grad)
    assert torch.equal(x, x_copy) and torch.equal(grad, grad_copy) and torch.equal(out, out_copy)
    assert out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize(
    "cls", [nnlite.ReLU, nnlite.LeakyReLU, nnlite.ELU, nnlite.Tanh, nnlite.Sigmoid]
)
def test_backward_before_forward_names_the_module(cls):
    with pytest.raises(
        RuntimeError, match=rf"{cls.__name__}.*backward\(\) called before forward\(\)"
    ):
        cls().backward(torch.ones(2))


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ([1.0, 2.0], TypeError, "expected a torch.Tensor as input, got list"),
        (
            torch.tensor([1, 2]),
            TypeError,
            r"floating-point input, got dtype torch.int64.*\.float\(\)",
        ),
    ],
    ids=["list", "int-tensor"],
)
def test_bad_input_is_rejected_with_a_clear_message(value, error, message):
    with pytest.raises(error, match=message):
        nnlite.Tanh()(value)


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    module = nnlite.Sigmoid()
    module(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"output's shape \(3, 2\), got shape \(2, 3\)"):
        module.backward(torch.zeros(2, 3))


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (nnlite.ReLU(), "ReLU()"),
        (nnlite.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
        (nnlite.ELU(alpha=0.5), "ELU(alpha=0.5)"),
        (nnlite.Tanh(), "Tanh()"),
        (nnlite.Sigmoid(), "Sigmoid()"),
    ],
    ids=["ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid"],
)
def test_repr_prints_as_torch_prints(module, text):
    assert repr(module) == text


def test_activation_hyperparameters_must_be_numbers():
    with pytest.raises(TypeError, match="negative_slope must be a number, got 'x'"):
        nnlite.LeakyReLU("x")
    with pytest.raises(TypeError, match="alpha must be a number, got None"):
        nnlite.ELU(None)
