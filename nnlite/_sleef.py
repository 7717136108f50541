"""SLEEF's exponential, rebuilt from public tensor operations.

torch's vectorised CPU kernels (log-softmax backward, ELU backward, ...) call
``Vectorized<T>::exp()``, which is SLEEF's 1-ulp exponential (``Sleef_expf16_u10`` and
``Sleef_expd8_u10`` on AVX-512, ``Sleef_expf8_u10`` and ``Sleef_expd4_u10`` on AVX2). ``torch.exp``
goes through another library and differs from it by 1 ulp on about one element in ten, so
reproducing those kernels bit for bit needs SLEEF's own algorithm: this module replays SLEEF's
``xexpf`` and ``xexp`` step by step, in the same order and with the same constants.

NOTE: every ``vmla``/``vfma`` step of SLEEF is a fused multiply-add on these targets;
``torch.addcmul(c, a, b)`` is compiled to one as well (one rounding of ``c + a * b``), so each
step below is one ``addcmul``.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Cody-Waite split of ln 2 and 1 / ln 2 (SLEEF's L2Uf/L2Lf/R_LN2f, L2U/L2L/R_LN2).
_R_LN2 = 1.442695040888963407359924681001892137426645954152985934135449406931
_L2U_F32 = 0.693145751953125
_L2L_F32 = 1.428606765330187045e-06
_L2U_F64 = 0.69314718055966295651160180568695068359375
_L2L_F64 = 0.28235290563031577122588448175013436025525412068e-12

# xexpf: Horner's scheme, highest coefficient first.
_POLY_F32 = (
    0.000198527617612853646278381,
    0.00139304355252534151077271,
    0.00833336077630519866943359,
    0.0416664853692054748535156,
    0.166666671633720397949219,
    0.5,
)
# xexp (the FMA build): Estrin's scheme POLY10, c9 (highest) first, then 0.5, 1, 1 by Horner.
_POLY_F64 = (
    0.2081276378237164457e-8,
    0.2511210703042288022e-7,
    0.2755762628169491192e-6,
    0.2755723402025388239e-5,
    0.2480158687479686264e-4,
    0.1984126989855865850e-3,
    0.1388888888914497797e-2,
    0.8333333333314938210e-2,
    0.4166666666666602598e-1,
    0.1666666666666669072e0,
)

# (underflow bound, overflow bound, clamp): SLEEF returns +0 below the first and +inf above the
# second. Inputs are clamped just outside both first so the integer exponent never overflows;
# a clamped element is then overwritten anyway.
_LIMITS = {
    torch.float32: (-104.0, 100.0, 110.0),
    torch.float64: (-1000.0, 709.78271289338399673222338991, 1100.0),
}


def _pow2(e: Tensor, dtype: torch.dtype) -> Tensor:
    """``2 ** e`` for integer ``e`` in the normal range, built from its exponent bits (vpow2i)."""
    if dtype == torch.float32:
        return torch.bitwise_left_shift(e + 127, 23).view(torch.float32)
    return torch.bitwise_left_shift(e.to(torch.int64) + 1023, 52).view(torch.float64)


def _ldexp2(u: Tensor, q: Tensor) -> Tensor:
    """``u * 2 ** q`` as SLEEF's vldexp2: two multiplications by ``2 ** (q >> 1)`` and the rest."""
    half = torch.bitwise_right_shift(q, 1)
    return u * _pow2(half, u.dtype) * _pow2(q - half, u.dtype)


def _fma(a: Tensor, b: Tensor | float, c: Tensor | float) -> Tensor:
    """``a * b + c`` with one rounding."""
    if not isinstance(c, Tensor):
        c = torch.tensor(c, dtype=a.dtype, device=a.device)
    if not isinstance(b, Tensor):
        b = torch.tensor(b, dtype=a.dtype, device=a.device)
    return torch.addcmul(c, a, b)


def _poly2(x: Tensor, c1: float, c0: float) -> Tensor:
    return _fma(x, c1, c0)


def _poly4(x: Tensor, x2: Tensor, c3: float, c2: float, c1: float, c0: float) -> Tensor:
    return _fma(x2, _poly2(x, c3, c2), _poly2(x, c1, c0))


def _poly10(x: Tensor, x2: Tensor, x4: Tensor, x8: Tensor, c: tuple[float, ...]) -> Tensor:
    """SLEEF's POLY10 (estrin.h) for coefficients ``c = (c9, ..., c0)``."""
    low = _fma(x4, _poly4(x, x2, *c[2:6]), _poly4(x, x2, *c[6:10]))
    return _fma(x8, _poly2(x, c[0], c[1]), low)


def exp(input: Tensor) -> Tensor:
    r"""Returns the exponential of the elements of ``input``, bit for bit as torch's kernels get it.

    .. math::
        \text{out}_i = e^{\text{input}_i}

    The result is SLEEF's ``u10`` exponential, the one ``Vectorized<T>::exp()`` calls on CPUs
    with FMA (AVX2, AVX-512): it equals ``torch.exp`` to within 1 ulp, but not bit for bit.

    Args:
        input: a float32 or float64 tensor.
    """
    dtype = input.dtype
    if dtype not in _LIMITS:
        raise TypeError(
            f"nnlite._sleef.exp supports float32 and float64 tensors, got {dtype}; "
            f"convert with input.float() or input.double()"
        )
    lower, upper, clamp = _LIMITS[dtype]
    d = input.clamp(-clamp, clamp)
    # NOTE: rint of the float product (round half to even), as vrint/cvtps_epi32.
    q_float = torch.round(d * _R_LN2)
    q = q_float.to(torch.int32)
    if dtype == torch.float32:
        s = _fma(q_float, -_L2U_F32, d)
        s = _fma(q_float, -_L2L_F32, s)
        u = torch.full_like(s, _POLY_F32[0])
        for coefficient in _POLY_F32[1:]:
            u = _fma(u, s, coefficient)
        u = _fma(s * s, u, s) + 1.0
    else:
        s = _fma(q_float, -_L2U_F64, d)
        s = _fma(q_float, -_L2L_F64, s)
        s2 = s * s
        s4 = s2 * s2
        u = _poly10(s, s2, s4, s4 * s4, _POLY_F64)
        u = _fma(u, s, 0.5)
        u = _fma(u, s, 1.0)
        u = _fma(u, s, 1.0)
    u = _ldexp2(u, q)
    u = torch.where(input < lower, 0.0, u)
    return torch.where(input > upper, float("inf"), u)
