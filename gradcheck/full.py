"""Every Jacobian entry: backward with basis vectors against one forward difference per entry.

The analytical Jacobian of each tensor compared this way comes from one backward per output
entry with a basis vector (only the columns of the tensors in full mode are kept: a small bias
does not force a dense Jacobian on a large weight). The numerical one perturbs each entry in
place (entries of independent samples in the same forward, :class:`gradcheck.sweep.Sweep`);
entries outside tolerance are judged again by central differences at ``h`` and ``h/2``
(:func:`gradcheck.numeric.refine`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradcheck import numeric
from gradcheck.names import INPUT_GRADIENT
from gradcheck.session import Session
from gradcheck.sweep import Sweep

__all__ = ["analytic_full", "compare_full"]


def analytic_full(s: Session, M: int, keep: list[bool]) -> list[Tensor | None]:
    """Return per tensor the Jacobian (outputs x entries) from backward with basis vectors,
    ``None`` for the tensors not kept."""
    tensors = s.tensors()
    jacobians = [
        torch.zeros(M, t.numel(), dtype=torch.float64) if k else None
        for t, k in zip(tensors, keep, strict=True)
    ]
    rows = [j.numpy() if j is not None else None for j in jacobians]
    s.forward(INPUT_GRADIENT)
    basis = None
    # The gradient tensors, once backward is seen to keep them (no refetch per row).
    kept: list[Tensor] | None = None
    for i in range(M):
        before = kept if kept is not None else [p.read_grad() for p in s.fresh_params()]
        for grad in before:
            if isinstance(grad, Tensor):
                grad.detach().zero_()
        if i > 0 and not s.repeatable:
            s.forward(INPUT_GRADIENT)
        if not s.adapted.is_loss:
            basis = torch.zeros(s.out.shape, dtype=s.out.dtype)
            basis.numpy().reshape(-1)[i] = 1.0
        grads = s.backward(basis, INPUT_GRADIENT)
        after = kept if kept is not None else [p.read_grad() for p in s.fresh_params()]
        for k, g in enumerate(grads + after):
            if isinstance(g, Tensor) and rows[k] is not None:
                rows[k][i] = g.detach().reshape(-1).numpy()
        if kept is None and all(
            isinstance(a, Tensor) and a is b for a, b in zip(after, before, strict=True)
        ):
            kept = after
    return jacobians


def compare_full(j, check: str, tensor: Tensor, analytic: Tensor) -> tuple:
    """Compare one tensor's analytical Jacobian with finite differences, entry by entry.

    Returns:
        the comparison (rows: the tensor's entries, columns: the outputs), the tensor's scale
        (its largest numerical Jacobian entry) and how many entries one forward moved.
    """
    options = j.options
    M = analytic.shape[0]
    sweep = Sweep(j.s, check, tensor, M)
    x = sweep.x
    y0 = sweep.f().copy()
    zero = torch.from_numpy(y0)
    sweep.find_samples(y0, j.screen)
    every = np.arange(x.numel())
    # Screen every entry with one forward each (a forward difference at sqrt(eps)).
    xp = x + numeric.step_sizes(x, j.screen)
    plus = torch.from_numpy(sweep.columns(xp.numpy(), every, y0))
    dx = xp.double() - x.double()
    numerical = numeric.forward_difference(zero, plus, dx)
    scale = float(numerical.abs().max()) if numerical.numel() else 0.0
    # Two outputs enter each difference, each off by a few ulps of its terms.
    two_terms = 2 * torch.from_numpy(j.terms)[None, :]
    atol = options.atol * min(1.0, scale)
    comparison = numeric.compare(
        analytic.T,
        numerical,
        atol=atol,
        rtol=options.rtol,
        rounding=numeric.rounding(two_terms.expand_as(plus), dx, j.dtype_eps)
        + numeric.ROUNDING_ULPS * j.dtype_eps * analytic.T.abs(),
    )
    # Judge the rest by central differences at h and h/2 (Richardson, kink detection).
    rows = comparison.failing_rows()
    if rows.numel():
        h = numeric.step_sizes(x, j.base)
        points = [x + h, x - h, x + h / 2, x - h / 2]
        listed = rows.numpy()
        p1, m1, p2, m2 = (torch.from_numpy(sweep.columns(pt.numpy(), listed, y0)) for pt in points)
        dx_half = (points[2].double() - points[3].double())[rows]
        numeric.refine(
            comparison,
            rows,
            zero,
            p1,
            m1,
            (points[0].double() - points[1].double())[rows],
            p2,
            m2,
            dx_half,
            atol=atol,
            rtol=options.rtol,
            dtype_eps=j.dtype_eps,
            rounding_half=numeric.rounding(two_terms.expand_as(p2), dx_half, j.dtype_eps)
            + numeric.ROUNDING_ULPS * j.dtype_eps * analytic.T[rows].abs(),
        )
    return comparison, scale, sweep.N
