import math
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import nnlite
from tests.nnlite._oracle import DTYPE_IDS, DTYPES, torch_forward_backward

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


ELU_SIZES = [1, 7, 31, 32, 33, 47, 625, 1000, 4096, 25_000, 32_767, 32_768, 32_769, 50_001]
"""Around the SIMD blocks (16 or 32 elements) and the one-thread grain (32,768 elements)."""


def _assert_elu_equals_torch(x, grad, alpha):
    module = nnlite.ELU(alpha)
    out = module(x)
    grad_input = module.backward(grad)
    leaf = x.detach().requires_grad_(True)  # the same layout as x, for torch's kernel
    expected_out = torch.nn.functional.elu(leaf, alpha)
    expected_out.backward(grad)
    assert torch.equal(out, expected_out.detach())
    assert torch.equal(grad_input, leaf.grad)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("size", ELU_SIZES)
@pytest.mark.parametrize("alpha", [1.0, 0.3, 0.01])
def test_elu_equals_torch_bit_for_bit_scalar_tail_included(alpha, size, dtype, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, grad = _data((size,), dtype, seed=size)
        _assert_elu_equals_torch(x, grad, alpha)
    finally:
        torch.set_num_threads(before)


def _transposed(shape, dtype, seed):
    x, grad = _data(tuple(reversed(shape)), dtype, seed)
    return x.t(), grad.t()


ELU_LAYOUTS = [
    ("contiguous-25x25", lambda dtype: _data((25, 25), dtype, 1)),
    ("contiguous-3d", lambda dtype: _data((2, 3, 5), dtype, 2)),
    ("size-one-dims", lambda dtype: _data((7, 1, 9), dtype, 3)),
    ("transposed", lambda dtype: _transposed((33, 17), dtype, 4)),
    ("transposed-input-contiguous-gradient",
     lambda dtype: (_transposed((33, 17), dtype, 5)[0], _data((33, 17), dtype, 6)[1])),
    ("sliced-rows", lambda dtype: tuple(t[:, :17] for t in _data((40, 24), dtype, 7))),
    ("every-other-column", lambda dtype: tuple(t[:, ::2] for t in _data((40, 24), dtype, 8))),
    ("large-sliced", lambda dtype: tuple(t[:, :40] for t in _data((1000, 41), dtype, 9))),
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("make", [c[1] for c in ELU_LAYOUTS], ids=[c[0] for c in ELU_LAYOUTS])
def test_elu_equals_torch_bit_for_bit_in_every_layout(make, dtype):
    x, grad = make(dtype)
    _assert_elu_equals_torch(x, grad, 0.3)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_elu_edge_values_equal_torch(dtype):
    tiny = torch.finfo(dtype).tiny
    values = [0.0, -0.0, -tiny, -1e-30, -2**-25, -0.34, -0.35, -1.04, -18.7, -18.8, -88.5, -103.5,
              -104.0, -745.0, -float("inf"), 1e-30, 3.0, float("inf")]  # fmt: skip
    x = torch.tensor(values, dtype=dtype)
    _assert_elu_equals_torch(x, torch.linspace(-2, 2, len(values), dtype=dtype), 1.0)


@pytest.mark.parametrize("capability", ["avx2", "default"])
def test_elu_equals_torch_on_other_cpu_capabilities(capability):
    # torch picks its kernels per process from ATEN_CPU_CAPABILITY: one real subprocess each.
    script = (
        "import torch\n"
        "from tests.nnlite.test_activation import ELU_SIZES, _assert_elu_equals_torch, _data\n"
        f"assert torch.backends.cpu.get_cpu_capability() == {capability.upper()!r}\n"
        "for dtype in (torch.float32, torch.float64):\n"
        "    for size in ELU_SIZES[:9]:\n"
        "        _assert_elu_equals_torch(*_data((size,), dtype, seed=size), 0.3)\n"
    )
    environment = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True,
        cwd=pathlib.Path(__file__).parents[2], timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


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


@pytest.mark.parametrize("batch", [4, 1000, 20000])
def test_relu_backward_gives_zero_for_non_finite_gradients_at_inactive_units(batch):
    """inf * 0 would be NaN: torch's threshold_backward selects 0 there, at every size, and in a
    Sequential's in-place path too."""
    torch.manual_seed(0)
    x, grad = torch.randn(batch, 25), torch.randn(batch, 25)
    grad[0, :5], grad[1, :3], grad[2, 0] = float("inf"), float("nan"), -float("inf")
    relu = nnlite.ReLU()
    relu(x)
    expected = torch.where(torch.relu(x) <= 0, 0.0, grad)
    assert torch.equal(relu.backward(grad).nan_to_num(nan=7.0), expected.nan_to_num(nan=7.0))
    model = nnlite.Sequential(nnlite.Linear(25, 25), nnlite.ReLU())
    reference = nnlite.ReLU()
    reference(model[0](x))
    model(x)
    direct = model[0].backward(reference.backward(grad))
    assert torch.equal(model.backward(grad).nan_to_num(nan=7.0), direct.nan_to_num(nan=7.0))
