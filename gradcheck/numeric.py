"""Finite differences, Richardson extrapolation, kink detection and comparison.

Pure functions on tensors: nothing here calls a module or prints. The checks in
``gradcheck.checks`` evaluate the module and hand the outputs to these functions.

Arrays follow one layout. Row ``r`` is one perturbation (one entry of a tensor in full mode, one
random direction in fast mode); column ``c`` is one observed output (one output entry in full
mode, one projection onto a random upstream gradient in fast mode). ``plus[r, c]`` and
``minus[r, c]`` are the outputs at ``x + h_r`` and ``x - h_r``, ``zero[c]`` the output at ``x``,
and ``dx[r]`` the exact distance between the two evaluation points, ``(x + h) - (x - h)``.

The central difference ``D(h) = (f(x + h) - f(x - h)) / 2h`` has error ``c h^2 + O(h^4)`` plus
rounding ``~ eps |f| / h``. Entries that agree with the analytical value within
``atol + rtol * |D| + rounding`` pass at once. Others are evaluated again at ``h / 2``:
Richardson's ``D* = D(h/2) + (D(h/2) - D(h)) / 3`` cancels the ``h^2`` term, and
``|D(h) - D(h/2)|`` measures the remaining finite-difference error, which joins the tolerance.
A bug does not shrink with ``h``; truncation does. Where the one-sided slopes
``(f(x+h) - f(x)) / h`` and ``(f(x) - f(x-h)) / h`` disagree and their gap does not halve with
``h``, the perturbation straddles a point where ``f`` is not differentiable (ReLU at 0): the
entry is a kink, skipped and counted, never reported as a bug.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Comparison",
    "base_step",
    "central_difference",
    "compare",
    "forward_difference",
    "one_sided_gap",
    "refine",
    "richardson",
    "rounding",
    "screening_step",
    "step_sizes",
]

#: How much a one-sided gap must keep of its size when ``h`` halves to count as a kink. For a
#: smooth function the gap is ``h |f''|`` and halves (ratio 0.5); across a kink it stays.
KINK_RATIO = 0.75
#: Rounding allowance: the difference of two outputs carries about this many ulps of each.
ROUNDING_ULPS = 4.0
#: How much of the rounding of ``D(h/2)`` Richardson's estimate carries (see :func:`refine`).
RICHARDSON_ROUNDING = 1.5


def base_step(dtype: torch.dtype, eps: float | None = None) -> float:
    """Return the relative finite-difference step for ``dtype``.

    The central difference balances truncation ``~h^2`` against rounding ``~eps/h``; the
    optimum is ``h ~ cbrt(eps_machine)``: about ``6.1e-6`` in float64, ``4.9e-3`` in float32.

    Args:
        dtype: the floating dtype the module computes in.
        eps: a step to use instead (relative: scaled by ``max(1, |x|)`` per entry).
    """
    if eps is not None:
        if not eps > 0:
            raise ValueError(f"eps must be a positive step, got {eps!r}; pass e.g. eps=1e-6")
        return float(eps)
    return float(torch.finfo(dtype).eps) ** (1.0 / 3.0)


def screening_step(dtype: torch.dtype) -> float:
    """Return the relative step of the one-sided screening difference.

    A forward difference balances truncation ``~h`` against rounding ``~eps/h`` at
    ``h ~ sqrt(eps)``, where both are about ``1.5e-8`` in float64: far below any sensible
    tolerance, so one forward per entry decides most entries. In float32 the same balance leaves
    a rounding error of ``3e-4`` of the output's terms, too close to the tolerance of a 1%
    error: the step is then ``cbrt(eps)`` (``4.9e-3``), whose rounding error is 15 times
    smaller, and the larger truncation error of entries with curvature is left to the central
    differences that judge every entry the screen does not pass.
    """
    eps = float(torch.finfo(dtype).eps)
    return eps**0.5 if eps < 1e-10 else eps ** (1.0 / 3.0)


def step_sizes(x: Tensor, base: float) -> Tensor:
    """Return the step per entry, ``base * max(1, |x|)``: large entries move visibly."""
    return base * x.detach().abs().clamp(min=1.0)


def central_difference(plus: Tensor, minus: Tensor, dx: Tensor) -> Tensor:
    """Return ``(plus - minus) / dx`` with ``dx`` (one per row) broadcast over columns."""
    return (plus - minus) / dx.reshape(-1, *([1] * (plus.dim() - 1)))


def one_sided_gap(zero: Tensor, plus: Tensor, minus: Tensor, dx: Tensor) -> Tensor:
    """Return ``|forward slope - backward slope|``: ``|f(x+h) - 2 f(x) + f(x-h)| / h``."""
    half = dx.reshape(-1, *([1] * (plus.dim() - 1))) / 2
    return (plus - 2 * zero + minus).abs() / half


def richardson(d_h: Tensor, d_half: Tensor) -> tuple[Tensor, Tensor]:
    """Return the extrapolated derivative and the measured error of the central differences.

    Args:
        d_h: central differences with step ``h``.
        d_half: central differences with step ``h / 2``.

    Returns:
        ``(d_half + (d_half - d_h) / 3, |d_h - d_half|)``.
    """
    return d_half + (d_half - d_h) / 3, (d_h - d_half).abs()


def _rows(v: Tensor, like: Tensor) -> Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


@dataclass
class Comparison:
    """Per-entry comparison of numerical and analytical derivatives (all tensors one shape).

    Attributes:
        numerical: the finite-difference estimate (Richardson where refined).
        analytical: the backward's values.
        error: ``|numerical - analytical|``.
        tolerance: the tolerance in force per entry.
        truncation: the measured finite-difference error (0 where not refined).
        kink: entries skipped as non-differentiable.
        passed: entries within tolerance (kinks count as passed: they are skipped).
        refined: entries evaluated a second time at ``h / 2``.
    """

    numerical: Tensor
    analytical: Tensor
    error: Tensor
    tolerance: Tensor
    truncation: Tensor
    kink: Tensor
    passed: Tensor
    refined: Tensor

    def failing_rows(self) -> Tensor:
        """Return the rows (perturbations) holding at least one entry outside tolerance."""
        failing = ~self.passed
        if failing.numel() == 0:  # a zero-size tensor or output: nothing to compare
            return torch.zeros(0, dtype=torch.long)
        return failing.reshape(failing.shape[0], -1).any(dim=1).nonzero().flatten()

    @property
    def all_passed(self) -> bool:
        """Whether every entry passed or was skipped as a kink."""
        return bool(self.passed.all())

    def worst(self) -> tuple[int, ...] | None:
        """Return the index of the entry with the largest error over tolerance, kinks excluded."""
        if self.error.numel() == 0 or bool(self.kink.all()):
            return None
        ratio = self.error / self.tolerance
        if bool(ratio.isnan().any()):
            ratio = torch.nan_to_num(ratio, nan=float("inf"))
        if bool(self.kink.any()):
            ratio = torch.where(self.kink, torch.full_like(ratio, -1.0), ratio)
        flat = int(torch.argmax(ratio))
        index = []
        for size in reversed(ratio.shape):
            flat, i = divmod(flat, size)
            index.append(i)
        return tuple(reversed(index))


def compare(
    analytical: Tensor,
    numerical: Tensor,
    *,
    atol: float | Tensor,
    rtol: float,
    rounding: Tensor,
    scale: Tensor | None = None,
) -> Comparison:
    """Compare analytical derivatives with a first numerical estimate, entry by entry.

    Args:
        analytical: the backward's values, shape ``(rows, cols)``.
        numerical: the finite-difference estimate, same shape.
        atol: absolute tolerance (a tensor broadcast to the entries, for projections).
        rtol: relative tolerance.
        rounding: the rounding allowance per entry (see :func:`rounding`).
        scale: what ``rtol`` multiplies; ``|numerical|`` when ``None``.
    """
    error = (numerical - analytical).abs()
    magnitude = numerical.abs() if scale is None else scale
    tolerance = atol + rtol * magnitude + rounding
    passed = error <= tolerance
    zeros = torch.zeros_like(numerical)
    false = torch.zeros_like(passed)
    return Comparison(numerical, analytical, error, tolerance, zeros, false, passed, false.clone())


def forward_difference(zero: Tensor, plus: Tensor, dx: Tensor) -> Tensor:
    """Return ``(plus - zero) / dx``: the one-sided difference with ``dx = (x + h) - x`` per row."""
    return (plus - zero) / _rows(dx, plus)


def rounding(values: Tensor, dx: Tensor, dtype_eps: float) -> Tensor:
    """Return the rounding allowance of a difference of outputs whose magnitudes add to ``values``.

    ``ROUNDING_ULPS * dtype_eps * values / |dx|``: each output carries a few ulps of error, and
    the difference divides them by the step.
    """
    return ROUNDING_ULPS * dtype_eps * values / _rows(dx, values).abs()


def refine(
    comparison: Comparison,
    rows: Tensor,
    zero: Tensor,
    plus: Tensor,
    minus: Tensor,
    dx: Tensor,
    plus_half: Tensor,
    minus_half: Tensor,
    dx_half: Tensor,
    *,
    atol: float | Tensor,
    rtol: float,
    dtype_eps: float,
    scale: Tensor | None = None,
    rounding_half: Tensor | None = None,
) -> Comparison:
    """Re-judge the failing entries of ``rows`` with a second step ``h / 2``, in place.

    Failing entries get the Richardson estimate and a tolerance widened by the measured
    finite-difference error ``|D(h) - D(h/2)|``; those that still fail and whose one-sided slopes
    disagree by a gap that does not halve with ``h`` are marked as kinks.

    Args:
        comparison: the result of :func:`compare`, updated in place and returned.
        rows: the rows evaluated again.
        zero: outputs at ``x`` (one per column).
        plus, minus, dx: the first-step evaluations of ``rows`` only.
        plus_half, minus_half, dx_half: the evaluations at ``x +- h/2`` of ``rows``.
        atol, rtol, dtype_eps, scale: as in :func:`compare` (``atol`` and ``scale`` for ``rows``).
        rounding_half: rounding allowance at the half step, as in :func:`compare`.
    """
    if rows.numel() == 0:
        return comparison
    d_h = central_difference(plus, minus, dx)
    d_half = central_difference(plus_half, minus_half, dx_half)
    estimate, truncation = richardson(d_h, d_half)
    if rounding_half is None:
        rounding_half = rounding(plus_half.abs() + minus_half.abs(), dx_half, dtype_eps)
    # D* = (4 D(h/2) - D(h)) / 3 carries 4/3 of the rounding of D(h/2) and 1/3 of that of D(h),
    # itself half as large: 3/2 of the rounding at h/2 in all.
    rounding_half = RICHARDSON_ROUNDING * rounding_half
    analytical = comparison.analytical[rows]
    error = (estimate - analytical).abs()
    magnitude = estimate.abs() if scale is None else scale
    base_tolerance = atol + rtol * magnitude + rounding_half
    tolerance = base_tolerance + truncation
    passed = error <= tolerance
    gap_h = one_sided_gap(zero, plus, minus, dx)
    gap_half = one_sided_gap(zero, plus_half, minus_half, dx_half)
    kink = ~passed & (gap_h > base_tolerance) & (gap_half > KINK_RATIO * gap_h)

    redo = ~comparison.passed[rows]
    for name, new in (
        ("numerical", estimate),
        ("error", error),
        ("tolerance", tolerance),
        ("truncation", truncation),
        ("kink", kink),
        ("passed", passed | kink),
    ):
        field = getattr(comparison, name)
        field[rows] = torch.where(redo, new, field[rows])
    comparison.refined[rows] = redo
    return comparison
