import pytest
import torch

from nnlite import _sleef
from tests.nnlite._oracle import DTYPE_IDS, DTYPES

INT_TYPES = {torch.float32: torch.int32, torch.float64: torch.int64}

pytestmark = pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"),
    reason="torch's kernels use SLEEF's exp only on CPUs with AVX2 or AVX-512",
)


def _kernel_exp(x):
    # The log-softmax backward kernel computes g - exp(y) * sum(g) per row with its vectorised
    # exp; with g = [0, 1] and y = [x, 0] the first column is exactly -exp(x).
    flat = x.reshape(-1)
    grad = torch.zeros(flat.numel(), 2, dtype=x.dtype)
    grad[:, 1] = 1
    rows = torch.stack([flat, torch.zeros_like(flat)], 1)
    return -torch._log_softmax_backward_data(grad, rows, 1, x.dtype)[:, 0]


def _assert_same(ours, expected):
    # exp is never negative, so comparing values (NaN with NaN) covers every bit but a zero's sign,
    # which the oracle's negation cannot show.
    same = (ours == expected) | (ours.isnan() & expected.isnan())
    assert same.all(), f"{int((~same).sum())} differ, first at input {ours[~same][:3].tolist()}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(
    "scale", [1e-6, 1.0, 5.0, 30.0, 120.0, 800.0], ids=lambda s: f"uniform-{s:g}"
)
def test_exp_equals_the_kernels_exp_on_random_values(scale, dtype):
    gen = torch.Generator().manual_seed(int(scale * 1000))
    x = (torch.rand(200_003, generator=gen, dtype=dtype) * 2 - 1) * scale
    _assert_same(_sleef.exp(x), _kernel_exp(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_exp_equals_the_kernels_exp_on_random_bit_patterns(dtype):
    int_type = INT_TYPES[dtype]
    gen = torch.Generator().manual_seed(7)
    bits = torch.randint(
        torch.iinfo(int_type).min,
        torch.iinfo(int_type).max,
        (200_000,),
        generator=gen,
        dtype=int_type,
    )
    x = bits.view(dtype)
    _assert_same(_sleef.exp(x), _kernel_exp(x))


BOUNDARIES = [
    ("float32-underflow", torch.float32, -104.0),
    ("float32-last-subnormal", torch.float32, -103.97208),
    ("float32-overflow", torch.float32, 88.72284),
    ("float32-sleef-inf-bound", torch.float32, 100.0),
    ("float64-underflow", torch.float64, -745.1332191019411),
    ("float64-sleef-zero-bound", torch.float64, -1000.0),
    ("float64-overflow", torch.float64, 709.782712893384),
    ("float64-rounding-tie", torch.float64, 0.5 / 1.4426950408889634),
    ("float32-rounding-tie", torch.float32, 0.5 / 1.4426950408889634),
]


@pytest.mark.parametrize(
    ("dtype", "point"), [b[1:] for b in BOUNDARIES], ids=[b[0] for b in BOUNDARIES]
)
def test_exp_equals_the_kernels_exp_on_consecutive_floats_around(dtype, point):
    int_type = INT_TYPES[dtype]
    center = torch.tensor(point, dtype=dtype).view(int_type)
    x = (center + torch.arange(-20_000, 20_000, dtype=int_type)).view(dtype)
    _assert_same(_sleef.exp(x), _kernel_exp(x))


SPECIAL = [
    ("zero", 0.0),
    ("negative-zero", -0.0),
    ("one", 1.0),
    ("minus-one", -1.0),
    ("inf", float("inf")),
    ("minus-inf", float("-inf")),
    ("nan", float("nan")),
    ("max", "max"),
    ("lowest", "lowest"),
    ("tiny", "tiny"),
    ("smallest-subnormal", "subnormal"),
    ("minus-smallest-subnormal", "-subnormal"),
]


def _special(value, dtype):
    info = torch.finfo(dtype)
    named = {
        "max": info.max,
        "lowest": info.min,
        "tiny": info.tiny,
        "subnormal": info.smallest_normal * info.eps,
        "-subnormal": -info.smallest_normal * info.eps,
    }
    return torch.tensor([named.get(value, value)] * 3, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("value", [s[1] for s in SPECIAL], ids=[s[0] for s in SPECIAL])
def test_exp_equals_the_kernels_exp_on_special_values(value, dtype):
    x = _special(value, dtype)
    _assert_same(_sleef.exp(x), _kernel_exp(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_exp_differs_from_torch_exp_where_the_kernel_does(dtype):
    # Guards the test above against an oracle that is torch.exp in disguise.
    x = torch.linspace(-20, 20, 100_000, dtype=dtype)
    assert not torch.equal(torch.exp(x), _kernel_exp(x))
    assert torch.equal(_sleef.exp(x), _kernel_exp(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_addcmul_rounds_once_as_a_fused_multiply_add(dtype):
    # (1 + 2**-k)(1 - 2**-k) - 1 = -2**-2k exactly; a separate multiply rounds the product to 1.
    k = 13 if dtype == torch.float32 else 30
    n = 37  # a vectorised body and a scalar tail
    a = torch.full((n,), 1 + 2.0**-k, dtype=dtype)
    b = torch.full((n,), 1 - 2.0**-k, dtype=dtype)
    c = torch.full((n,), -1.0, dtype=dtype)
    assert torch.equal(torch.addcmul(c, a, b), torch.full((n,), -(2.0 ** (-2 * k)), dtype=dtype))
    assert torch.equal(a * b + c, torch.zeros(n, dtype=dtype))


def test_exp_keeps_shape_and_leaves_its_input_alone():
    x = torch.randn(4, 5, 3)
    before = x.clone()
    out = _sleef.exp(x)
    assert out.shape == x.shape
    assert torch.equal(x, before)


def test_exp_rejects_other_dtypes_with_the_fix():
    with pytest.raises(TypeError, match=r"torch.float16.*input.float\(\)"):
        _sleef.exp(torch.ones(3, dtype=torch.float16))
