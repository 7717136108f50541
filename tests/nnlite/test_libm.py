"""nnlite._libm: the C library's expm1 and exp at x <= 0, checked against the library itself."""

import ctypes
import ctypes.util
import math
import platform
from decimal import Decimal, getcontext

import pytest
import torch

from nnlite import _libm

_LIBM_PATH = ctypes.util.find_library("m")
_GLIBC = platform.libc_ver()[0] == "glibc" and _LIBM_PATH is not None
glibc_only = pytest.mark.skipif(not _GLIBC, reason="the float32 replay is glibc's algorithms")


def _c_function(name):
    function = getattr(ctypes.CDLL(_LIBM_PATH), name)
    function.restype, function.argtypes = ctypes.c_float, [ctypes.c_float]
    return function


def _nonpositive_floats():
    """Every region of both algorithms: random magnitudes, random bit patterns, and edges."""
    generator = torch.Generator().manual_seed(0)
    random_bits = torch.randint(0, 0x7F800001, (20_000,), generator=generator)
    edges = [0.0, -0.0, -float("inf"), -1e-45, -1e-30, -(2**-25), -(2**-26), -0.3465735, -0.3465736,
             -1.0397207, -1.0397208, -18.714972, -18.714973, -88.0, -88.72, -103.27, -103.28,
             -103.5, -103.97, -103.98, -104.0, -149.0]  # fmt: skip
    return torch.cat(
        [
            -torch.rand(20_000, generator=generator) * 2,
            -torch.rand(20_000, generator=generator) * 30,
            -torch.rand(5_000, generator=generator) * 120,
            -random_bits.to(torch.int32).view(torch.float32),
            torch.tensor(edges),
        ]
    )


@glibc_only
@pytest.mark.parametrize(
    "replay, name",
    [(_libm.expm1_nonpositive, "expm1f"), (_libm.exp_nonpositive, "expf")],
    ids=["expm1f", "expf"],
)
def test_float32_replay_equals_the_c_library_bit_for_bit(replay, name):
    x = _nonpositive_floats()
    c_function = _c_function(name)
    expected = torch.tensor([c_function(v) for v in x.tolist()], dtype=torch.float32)
    assert torch.equal(replay(x).view(torch.int32), expected.view(torch.int32))


@pytest.mark.parametrize(
    "replay, reference",
    [(_libm.expm1_nonpositive, math.expm1), (_libm.exp_nonpositive, math.exp)],
    ids=["expm1", "exp"],
)
def test_float64_is_pythons_math_which_calls_the_c_library(replay, reference):
    x = -torch.rand(2, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 40
    result = replay(x)
    assert result.shape == x.shape and result.dtype == torch.float64
    assert result.flatten().tolist() == [reference(v) for v in x.flatten().tolist()]


def test_exp_table_holds_two_to_the_i_over_32_correctly_rounded():
    getcontext().prec = 50
    for i, value in enumerate(_libm._TWO_POW_I_32):
        assert value == float(Decimal(2) ** (Decimal(i) / 32)), i
