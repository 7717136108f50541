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

# SLEEF returns +0 below -104 (float32) or -1000 (float64) and +inf above 100 or ln(DBL_MAX);
# the exponent reduction below reaches the same results on its own (0 once e**x is under half the
# smallest subnormal, inf once over the largest float) as long as the integer exponent stays in
# range, so inputs are clamped just outside those bounds instead of masked afterwards.
_CLAMP = {torch.float32: 110.0, torch.float64: 1100.0}


_CONSTANTS: dict[torch.dtype, dict[float, Tensor]] = {}


def check_dtype(module: object, input: Tensor) -> None:
    """Refuse, at forward, an input whose backward needs :func:`exp` in a dtype it lacks."""
    if input.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"{module!r} supports float32 and float64 inputs, got {input.dtype}: its backward "
            f"follows torch's float32/float64 kernels; convert the input with input.float() "
            f"and the model with model.float()"
        )


def _constant(value: float, dtype: torch.dtype) -> Tensor:
    """A cached 0-dim CPU tensor: ``addcmul`` takes only tensors, and building one is slow."""
    table = _CONSTANTS.setdefault(dtype, {})
    if value not in table:
        table[value] = torch.tensor(value, dtype=dtype)
    return table[value]


def _pow2(e: Tensor, dtype: torch.dtype) -> Tensor:
    """``2 ** e`` for integer ``e`` in the normal range, built from its exponent bits (vpow2i)."""
    if dtype == torch.float32:
        return torch.bitwise_left_shift(e + 127, 23).view(torch.float32)
    return torch.bitwise_left_shift(e.to(torch.int64) + 1023, 52).view(torch.float64)


def _ldexp2(u: Tensor, q: Tensor) -> Tensor:
    """``u * 2 ** q`` as SLEEF's vldexp2: two multiplications by ``2 ** (q >> 1)`` and the rest."""
    half = torch.bitwise_right_shift(q, 1)
    return u.mul_(_pow2(half, u.dtype)).mul_(_pow2(q - half, u.dtype))


def _fma(a: Tensor, b: Tensor | float, c: Tensor | float) -> Tensor:
    """``a * b + c`` with one rounding, into a new tensor."""
    if not isinstance(b, Tensor):
        b = _constant(b, a.dtype)
    if not isinstance(c, Tensor):
        c = _constant(c, a.dtype)
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
    if dtype not in _CLAMP:
        raise TypeError(
            f"nnlite._sleef.exp supports float32 and float64 tensors, got {dtype}; "
            f"convert with input.float() or input.double()"
        )
    # NOTE: rint of the rounded product (half to even), as SLEEF's vrint / cvtps_epi32.
    s = input.clamp(-_CLAMP[dtype], _CLAMP[dtype])
    q_float = torch.round(s * _R_LN2)
    q = q_float.to(torch.int32)
    if dtype == torch.float32:
        s.addcmul_(q_float, _constant(-_L2U_F32, dtype))
        s.addcmul_(q_float, _constant(-_L2L_F32, dtype))
        u = _fma(s, _POLY_F32[0], _POLY_F32[1])
        for coefficient in _POLY_F32[2:]:
            torch.addcmul(_constant(coefficient, dtype), u, s, out=u)
        u = torch.addcmul(s, s * s, u).add_(1.0)
    else:
        s.addcmul_(q_float, _constant(-_L2U_F64, dtype))
        s.addcmul_(q_float, _constant(-_L2L_F64, dtype))
        s2 = s * s
        s4 = s2 * s2
        u = _poly10(s, s2, s4, s4 * s4, _POLY_F64)
        for coefficient in (0.5, 1.0, 1.0):
            torch.addcmul(_constant(coefficient, dtype), u, s, out=u)
    return _ldexp2(u, q)
