"""The C library's ``expm1`` and ``exp`` at x <= 0, as torch's scalar CPU loops call them.

torch's vectorised kernels hand the elements a SIMD register cannot take (see
:mod:`nnlite._loops`) to a scalar function, which calls the C library: ``std::expm1`` and
``std::exp``. In float64 those are Python's :func:`math.expm1` and :func:`math.exp`, the same
C functions of the same library. In float32 they are ``expm1f`` and ``expf``, which Python does
not expose; this module replays them with tensor operations, step by step:

* ``expm1f`` is the fdlibm algorithm glibc ships (``sysdeps/ieee754/flt-32/s_expm1f.c``):
  float32 operations, each rounded, with no fused multiply-add (glibc builds it for the x86-64
  baseline). A float32 tensor operation rounds the same way, so one operation per C operation.
* ``expf`` is glibc's table-driven routine (``e_expf.c``, since glibc 2.27): double arithmetic,
  rounded to float once at the end. On x86-64 CPUs with FMA, glibc selects its FMA build, where
  the compiler fused each ``a * b + c``; ``torch.addcmul`` is one rounding as well.

NOTE: proven equal, on every float32 tried, to the C library of glibc 2.36 (Debian 12) on
x86-64 with FMA, by ``tests/nnlite/test_libm.py``, which calls the library itself through ctypes.
Another C library (musl, macOS, Windows) has other algorithms: there ELU's tail elements may
differ from torch's by an ulp.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nnlite._sleef import _constant, _pow2

__all__ = ["exp_nonpositive", "expm1_nonpositive"]

# expm1f: |x| thresholds on the bits of |x|, ln 2 split in two, 1 / ln 2, and the scaled
# coefficients Q1 ... Q5 of the rational approximation (float32 constants of fdlibm).
_BITS_27_LN2 = 0x4195B844
_BITS_HALF_LN2 = 0x3EB17218
_BITS_THREE_HALVES_LN2 = 0x3F851592
_BITS_TWO_POW_MINUS_25 = 0x33000000
_LN2_HI = 6.9313812256e-01
_LN2_LO = 9.0580006145e-06
_INV_LN2 = 1.4426950216e00
_Q = (-3.3333335072e-02, 1.5873016091e-03, -7.9365076090e-05, 4.0082177293e-06, -2.0109921195e-07)

# expf: 2^(i/32), correctly rounded doubles (the routine's table stores them less the exponent
# step), 32 / ln 2, the rounding shift 1.5 * 2^52 and the polynomial of 2^(r/32), scaled.
_TABLE_BITS = 5
_TWO_POW_I_32 = tuple(
    float.fromhex(h)
    for h in (
        "0x1.0000000000000p+0", "0x1.059b0d3158574p+0", "0x1.0b5586cf9890fp+0",
        "0x1.11301d0125b51p+0", "0x1.172b83c7d517bp+0", "0x1.1d4873168b9aap+0",
        "0x1.2387a6e756238p+0", "0x1.29e9df51fdee1p+0", "0x1.306fe0a31b715p+0",
        "0x1.371a7373aa9cbp+0", "0x1.3dea64c123422p+0", "0x1.44e086061892dp+0",
        "0x1.4bfdad5362a27p+0", "0x1.5342b569d4f82p+0", "0x1.5ab07dd485429p+0",
        "0x1.6247eb03a5585p+0", "0x1.6a09e667f3bcdp+0", "0x1.71f75e8ec5f74p+0",
        "0x1.7a11473eb0187p+0", "0x1.82589994cce13p+0", "0x1.8ace5422aa0dbp+0",
        "0x1.93737b0cdc5e5p+0", "0x1.9c49182a3f090p+0", "0x1.a5503b23e255dp+0",
        "0x1.ae89f995ad3adp+0", "0x1.b7f76f2fb5e47p+0", "0x1.c199bdd85529cp+0",
        "0x1.cb720dcef9069p+0", "0x1.d5818dcfba487p+0", "0x1.dfc97337b9b5fp+0",
        "0x1.ea4afa2a490dap+0", "0x1.f50765b6e4540p+0",
    )
)  # fmt: skip
_INV_LN2_SCALED = float.fromhex("0x1.71547652b82fep+0") * (1 << _TABLE_BITS)
_SHIFT = float.fromhex("0x1.8p+52")
_POLY_SCALED = (
    float.fromhex("0x1.c6af84b912394p-5") / (1 << 3 * _TABLE_BITS),
    float.fromhex("0x1.ebfce50fac4f3p-3") / (1 << 2 * _TABLE_BITS),
    float.fromhex("0x1.62e42ff0c52d6p-1") / (1 << _TABLE_BITS),
)
# Below log(2^-150) the result is +0; below log(2^-149) the routine returns the smallest
# subnormal (its "may underflow" path).
_EXPF_ZERO_BELOW = float.fromhex("-0x1.9fe368p6")
_EXPF_TINY_BELOW = float.fromhex("-0x1.9d1d9ep6")


def expm1_nonpositive(x: Tensor) -> Tensor:
    """``expm1`` of every element (each <= 0, or -0) as the C library computes it."""
    if x.dtype == torch.float64:
        return _elementwise(math.expm1, x)
    return _expm1f(x)


def exp_nonpositive(x: Tensor) -> Tensor:
    """``exp`` of every element (each <= 0, or -0) as the C library computes it."""
    if x.dtype == torch.float64:
        return _elementwise(math.exp, x)
    return _expf(x)


def _elementwise(function, x: Tensor) -> Tensor:  # noqa: ANN001 (math.exp or math.expm1)
    values = [function(v) for v in x.flatten().tolist()]
    return torch.tensor(values, dtype=x.dtype).view(x.shape)


def _f32(value: float) -> Tensor:
    return _constant(value, torch.float32)


def _expm1f(x: Tensor) -> Tensor:
    """fdlibm's expm1f for float32 ``x <= 0``: one float32 operation per C operation."""
    magnitude = x.abs().view(torch.int32)
    # Argument reduction x = k ln2 + (hi - lo), k = -1 in (-1.5 ln2, -0.5 ln2), else the
    # truncation of x / ln2 - 1/2; k = 0 (no reduction) within 0.5 ln2.
    one_step = (magnitude > _BITS_HALF_LN2) & (magnitude < _BITS_THREE_HALVES_LN2)
    far = magnitude >= _BITS_THREE_HALVES_LN2
    k_float = ((x * _f32(_INV_LN2)) + _f32(-0.5)).trunc()
    k_float = torch.where(one_step, _f32(-1.0), torch.where(far, k_float, _f32(0.0)))
    k = k_float.to(torch.int32)
    # NOTE: in (-1.5 ln2, -0.5 ln2) fdlibm writes hi = x + ln2_hi and lo = -ln2_lo, the
    # same values as the general form with t = -1 (t * ln2_hi is exact).
    hi = x - k_float * _f32(_LN2_HI)
    lo = k_float * _f32(_LN2_LO)
    reduced = torch.where(k != 0, hi - lo, x)
    c = torch.where(k != 0, (hi - reduced) - lo, _f32(0.0))
    # The rational approximation on the reduced argument.
    hfx = reduced * _f32(0.5)
    hxs = reduced * hfx
    poly = hxs * _f32(_Q[4])
    for q in reversed(_Q[:4]):
        poly = hxs * (poly + _f32(q))
    r1 = poly + _f32(1.0)
    t = _f32(3.0) - r1 * hfx
    e = hxs * ((r1 - t) / (_f32(6.0) - reduced * t))
    no_reduction = reduced - (reduced * e - hxs)
    e = (reduced * (e - c) - c) - hxs
    minus_one_step = (reduced - e) * _f32(0.5) - _f32(0.5)
    # k <= -2: 1 - (e - x) scaled by 2^k (an exact exponent change), minus 1.
    scaled = (_f32(1.0) - (e - reduced)) * _pow2(k.clamp(-126, 0), torch.float32) - _f32(1.0)
    result = torch.where(k == 0, no_reduction, torch.where(k == -1, minus_one_step, scaled))
    # |x| < 2^-25 gives x itself (-0 stays -0), |x| >= 27 ln2 (and -inf) gives -1.
    result = torch.where(magnitude < _BITS_TWO_POW_MINUS_25, x, result)
    return torch.where(magnitude >= _BITS_27_LN2, _f32(-1.0), result)


def _expf(x: Tensor) -> Tensor:
    """glibc's expf (FMA build) for float32 ``x <= 0``: double arithmetic, one final rounding."""
    xd = x.double()
    f64 = torch.float64
    # NOTE: the FMA build fuses both uses of z = x * 32/ln2 with what follows: the rounding to an
    # integer (z + shift) and the remainder (z - k), each one rounding.
    inv_ln2, shift = _constant(_INV_LN2_SCALED, f64), _constant(_SHIFT, f64)
    shifted = torch.addcmul(shift, xd, inv_ln2)
    kd = shifted - shift
    r = torch.addcmul(-kd, xd, inv_ln2)
    k = kd.to(torch.int64)
    table = torch.tensor(_TWO_POW_I_32, dtype=f64)
    scale = table[torch.remainder(k, 1 << _TABLE_BITS)] * _pow2(
        torch.div(k, 1 << _TABLE_BITS, rounding_mode="floor").clamp_min(-1000), f64
    )
    c0, c1, c2 = (_constant(value, f64) for value in _POLY_SCALED)
    z = torch.addcmul(c1, c0, r)
    y = torch.addcmul(_constant(1.0, f64), c2, r)
    y = torch.addcmul(y, z, r * r) * scale
    result = y.to(torch.float32)
    result = torch.where(x < _EXPF_TINY_BELOW, _f32(float.fromhex("0x1p-149")), result)
    return torch.where(x < _EXPF_ZERO_BELOW, _f32(0.0), result)
