"""Random projections: ``g_k . J u_l`` for ``K`` upstream gradients and ``L`` directions.

The least memory of the three methods (``(K + L) (n + M)``) and the least sensitive: each
projection sums every entry of the Jacobian, so only an error that is a visible part of the
whole gradient shows. Directions are random, signed and scaled by ``max(1, |x|)``; the per-entry
tolerances are combined in quadrature over each projection.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gradcheck import numeric
from gradcheck.sweep import evaluator

__all__ = ["compare_fast"]


def compare_fast(j, check: str, tensor: Tensor, vs: Tensor, A: Tensor, noise: Tensor) -> tuple:
    """Compare ``K x L`` projections of one tensor's gradient; return the comparison (rows: the
    directions, columns: the upstream gradients) and the estimated scale of the Jacobian.

    ``noise`` is backward's measured rounding per entry of each of its ``K`` gradients; over a
    projection on ``d`` it adds up to at most ``noise |d|_1``.
    """
    s, options = j.s, j.options
    f = evaluator(s, check)
    x = tensor.detach().reshape(-1).clone()
    flat = tensor.detach().view(-1)
    L = options.projections
    W = torch.randn(L, x.numel(), generator=s.generator, dtype=torch.float64)
    W = W * x.abs().double().clamp(min=1.0)

    def sweep(step: float, rows: list[int]) -> tuple[Tensor, Tensor]:
        """Return the outputs at ``x + step * W[r]`` and the exact displacements."""
        outputs, moves = [], []
        try:
            for r in rows:
                moved = (x + step * W[r]).to(x.dtype)
                flat.copy_(moved)
                outputs.append(torch.from_numpy(f().copy()))
                moves.append(moved.double() - x.double())
        finally:
            flat.copy_(x)
        return torch.stack(outputs), torch.stack(moves)

    y0 = torch.from_numpy(f().copy())
    zero = vs @ y0
    rows = list(range(L))
    # Screen: forward differences along each direction, d = displacement / step.
    y_plus, moved = sweep(j.screen, rows)
    d = moved / j.screen
    jd = (y_plus - y0) / j.screen
    # |J d|_i <= max|J| |d|_1; max|J d| / max|d| estimates the largest entry from below.
    scale = float((jd.abs().amax(dim=1) / d.abs().amax(dim=1).clamp(min=1e-300)).max())
    atol_s = options.atol * min(1.0, scale)

    def tolerances(jd: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
        # Per-entry tolerances combined in quadrature over each projection: atol over every
        # entry, rtol over the Jacobian's entries (estimated from both sides' projections).
        atol = atol_s * vs.norm(dim=1)[None, :] * d.norm(dim=1)[:, None]
        from_numeric = ((jd**2) @ (vs**2).T).sqrt()
        from_analytic = ((d**2) @ (A**2).T).sqrt()
        return atol, torch.maximum(from_numeric, from_analytic)

    atol, scale_rows = tolerances(jd, d)
    # Two outputs enter each difference, each off by a few ulps of its terms.
    two_terms = (2 * torch.from_numpy(j.terms)[None, :]) @ vs.abs().T
    ones = torch.full((L,), j.screen, dtype=torch.float64)
    eps = j.dtype_eps
    analytical = d @ A.T
    comparison = numeric.compare(
        analytical,
        jd @ vs.T,
        atol=atol,
        rtol=options.rtol,
        scale=scale_rows,
        rounding=numeric.rounding(two_terms.expand(L, -1), ones, eps)
        + numeric.ROUNDING_ULPS * eps * (d.abs() @ A.abs().T)
        + d.abs().sum(dim=1, keepdim=True) * noise[None, :],
    )
    failing = comparison.failing_rows()
    if failing.numel():
        listed, h = failing.tolist(), j.base
        (p1, move), (m1, _), (p2, _), (m2, _) = (
            sweep(step, listed) for step in (h, -h, h / 2, -h / 2)
        )
        # The analytical side is projected on W[r]; rescale the outputs to match.
        d_rows = move / h
        comparison.analytical[failing] = d_rows @ A.T
        dx = torch.full((len(listed),), 2 * h, dtype=torch.float64)
        a_rows, scale_refined = tolerances((p1 - m1) / (2 * h), d_rows)
        numeric.refine(
            comparison,
            failing,
            zero,
            p1 @ vs.T,
            m1 @ vs.T,
            dx,
            p2 @ vs.T,
            m2 @ vs.T,
            dx / 2,
            atol=a_rows,
            rtol=options.rtol,
            dtype_eps=eps,
            scale=scale_refined,
            rounding_half=numeric.rounding(two_terms.expand(len(listed), -1), dx / 2, eps)
            + numeric.ROUNDING_ULPS * eps * (d_rows.abs() @ A.abs().T)
            + d_rows.abs().sum(dim=1, keepdim=True) * noise[None, :],
        )
    return comparison, scale
