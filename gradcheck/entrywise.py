"""Entry-wise vector-Jacobian products: every entry of ``g . J`` against finite differences.

For ``K`` random upstream gradients ``g_k`` the analytical side is ``K`` backwards, one table
``A[j, k] = (g_k . J)[j]``. The numerical side of every entry ``j`` comes from the forwards the
full mode makes: move entry ``j`` by ``h_j``, and the output change ``dy`` dotted with all the
``g_k`` at once is ``h_j (g_k . J[:, j])`` for every ``k``. ``n`` forwards (``n / N`` when the
``N`` samples of a batch are independent, :class:`gradcheck.sweep.Sweep`) and ``K`` backwards,
in memory ``O(K n)`` plus a chunk of outputs, instead of ``O(M n)``.

The tolerance of entry ``j`` comes from the terms that enter its product, ``g_ki J[i, j]`` over
the outputs ``i`` that entry ``j`` moves, with each term's own full-mode tolerance combined in
quadrature:

.. math::
    \\text{atol}_s \\sqrt{\\textstyle\\sum_{i:\\,dy_i \\ne 0} g_{ki}^2}
    + \\text{rtol} \\sqrt{\\textstyle\\sum_i (g_{ki} J_{ij})^2} + \\text{rounding},

with :math:`\\text{atol}_s = \\text{atol} \\min(1, \\max |J|)`. An error in gradient entry
``j`` of any size over ``rtol`` shows in ``A[j, k]`` directly and fails (the sum and the
quadrature are about equal for random ``g``). An error in one Jacobian entry ``J[i, j]`` is
scaled by ``g_ki`` and seen against the other terms of column ``j``: as strong as full mode
where the column has one or a few terms (elementwise layers, a bias, a loss), weaker where it is
dense (a 0.5% error in one of 300 terms of a Linear's input column is inside the quadrature).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradcheck import budget, numeric
from gradcheck.sweep import Sweep

__all__ = ["compare_vjp"]

#: Refinement of failing entries runs worst first in batches of this many; once this many
#: entries are confirmed wrong, the rest keep their screening verdict (a broken module with a
#: million entries needs no four million more forwards to be called broken).
REFINE_BATCH = 256
CONFIRMED_ENOUGH = 64


class _Products:
    """Sums over the outputs of a chunk of forwards, per moved entry and upstream gradient.

    Only the outputs a forward changed enter: by batched matrix products where most changed,
    over the non-zero differences only where few did (an elementwise layer changes one per
    entry), so that the cost follows what changed, not the output's size.
    """

    def __init__(self, sweep: Sweep, G: np.ndarray, terms: np.ndarray) -> None:
        self.sweep = sweep
        N = sweep.N
        self.G = G[:, sweep.perm].reshape(G.shape[0], N, -1)  # (K, N, M / N)
        #: Twice the rounding scale of each output (two outputs enter each difference).
        self.T2 = 2 * terms[sweep.perm].reshape(N, -1)
        #: Per upstream gradient, the largest rounding of one output: an entry whose effect on
        #: an output is below that output's resolution changes nothing there, and the missing
        #: term can be this large.
        self.hidden = (np.abs(G) * 2 * terms[None, :]).max(axis=1) if G.size else np.zeros(1)

    def __call__(self, outs: np.ndarray, y0: np.ndarray, groups: np.ndarray) -> dict:
        """Per entry of ``groups`` (flattened, ``-1`` dropped): the sums the comparison needs."""
        sweep, N = self.sweep, self.sweep.N
        c = len(outs)
        dy = (outs[:, sweep.perm] - y0[sweep.perm][None, :]).reshape(c, N, -1)
        keep = groups.reshape(-1) >= 0
        nonzero = np.count_nonzero(dy)
        if nonzero > dy.size // 8:
            sums = self._dense(dy)
        else:
            sums = self._sparse(dy.reshape(c * N, -1))
        sums = {key: value[keep] for key, value in sums.items()}
        sums["rows"] = groups.reshape(-1)[keep]
        return sums

    def _dense(self, dy: np.ndarray) -> dict:
        """Sums by batched matrix products (most outputs changed: a convolution's weight)."""
        c, N, m = dy.shape
        K = self.G.shape[0]
        G = self.G.transpose(1, 2, 0)  # (N, m, K)
        d = dy.transpose(1, 0, 2)  # (N, c, m)
        changed = (d != 0).astype(np.float64)
        absd = np.abs(d)

        def total(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.matmul(a, b).transpose(1, 0, 2).reshape(c * N, K)

        return {
            "product": total(d, G),
            "quad": np.sqrt(total(d**2, G**2)),
            "abs": total(absd, np.abs(G)),
            "gnorm": np.sqrt(total(changed, G**2)),
            "outputs": total(changed, np.abs(G) * self.T2[:, :, None]),
            "jmax": absd.max(axis=2).T.reshape(-1) if m else np.zeros(c * N),
        }

    def _sparse(self, dy: np.ndarray) -> dict:
        """Sums over the non-zero differences only (an elementwise layer changes one output)."""
        slots, N = dy.shape[0], self.sweep.N
        r, i = np.nonzero(dy)
        d = dy[r, i]
        sample = r % N
        G = self.G[:, sample, i]  # (K, nnz)
        T2 = self.T2[sample, i]

        def total(weights: np.ndarray) -> np.ndarray:
            sums = [np.bincount(r, weights=w, minlength=slots) for w in weights]
            return np.stack(sums, axis=1).astype(np.float64)  # bincount of nothing is int

        jmax = np.zeros(slots)
        if len(r):
            starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
            jmax[r[starts]] = np.maximum.reduceat(np.abs(d), starts)
        Gabs = np.abs(G)
        return {
            "product": total(G * d),
            "quad": np.sqrt(total((G * d) ** 2)),
            "abs": total(Gabs * np.abs(d)),
            "gnorm": np.sqrt(total(G**2)),
            "outputs": total(Gabs * T2),
            "jmax": jmax,
        }


def _sweep_all(
    sweep: Sweep, products: _Products, values: list[float], groups: np.ndarray, y0, chunk: int
) -> dict:
    parts = []
    for start in range(0, len(groups), chunk):
        part = groups[start : start + chunk]
        parts.append(products(sweep.outputs(values, part), y0, part))
    if not parts:  # an empty tensor
        K = products.G.shape[0]
        empty = {key: np.zeros((0, K)) for key in ("product", "quad", "abs", "gnorm", "outputs")}
        return {**empty, "jmax": np.zeros(0), "rows": np.zeros(0, dtype=np.int64)}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def compare_vjp(j, check: str, name: str, tensor: Tensor, vs: Tensor, A: Tensor, noise):
    """Compare ``A`` (``(K, n)``: the gradients backward gave for the ``K`` rows of ``vs``)
    with finite differences, entry by entry; return the comparison and what the report needs.

    Args:
        j: the :class:`gradcheck.jacobian.Jacobians` driving the check (options, steps).
        check, name, tensor: the check, the tensor's name and the tensor itself.
        vs: ``(K, M)`` upstream gradients.
        A: ``(K, n)`` analytical products.
        noise: ``(K,)`` the rounding of backward's own products, as measured by
            :meth:`gradcheck.jacobian.Jacobians.analytic_vjp` (zeros where not measured).
    """
    s, options = j.s, j.options
    M, K = vs.shape[1], vs.shape[0]
    sweep = Sweep(s, check, tensor, M)
    x, n = sweep.x, sweep.x.numel()
    y0 = sweep.f().copy()
    sweep.find_samples(y0, j.screen)
    products = _Products(sweep, vs.numpy(), j.terms)
    reserved = budget.vjp_bytes(M, n, K)
    chunk = budget.chunk_rows(M, j.max_memory, reserved)  # groups: one output row each
    # Screening: a forward difference at sqrt(eps) per entry.
    xp = x + numeric.step_sizes(x, j.screen)
    dx = (xp.double() - x.double()).numpy()
    got = _sweep_all(sweep, products, xp.numpy(), sweep.all_groups(), y0, chunk)
    order = np.argsort(got.pop("rows"))
    # One table at a time, in place where possible: at a million entries each is 64 MB.
    step = np.abs(dx)[:, None]

    def take(key: str, divide: np.ndarray | None = None) -> Tensor:
        value = got.pop(key)[order]
        if divide is not None:
            value /= divide
        return torch.from_numpy(value)

    scale = float((got.pop("jmax") / np.abs(dx)).max()) if n else 0.0
    numerical = take("product", dx[:, None])
    quad = take("quad", step)
    atol = take("gnorm").mul_(options.atol * min(1.0, scale))
    eps = j.dtype_eps
    # Both sides round: the outputs' differences (divided by the step) and backward's sum of
    # the products' terms.
    terms = take("abs", step)
    rounding = take("outputs", step)
    rounding += torch.from_numpy(products.hidden[None, :] / step)
    rounding += terms
    rounding.mul_(numeric.ROUNDING_ULPS * eps).add_(torch.from_numpy(noise)[None, :])
    comparison = numeric.compare(
        A.T, numerical, atol=atol, rtol=options.rtol, rounding=rounding, scale=quad
    )
    del rounding
    noise = torch.from_numpy(noise)[None, :]
    unrefined = _refine(j, sweep, products, comparison, y0, chunk, atol, quad, (terms, noise))
    return comparison, scale, sweep.N, unrefined


def _refine(j, sweep: Sweep, products: _Products, c, y0, chunk: int, atol, quad, floor) -> int:
    """Judge failing entries again by central differences at ``h`` and ``h / 2``, worst first.

    ``floor`` is the part of the rounding allowance that does not depend on the step: the size
    of backward's terms and backward's measured noise.

    Returns how many failing entries were left with their screening verdict.
    """
    terms, noise = floor
    hidden = torch.from_numpy(products.hidden)[None, :]
    failing = c.failing_rows()
    if not failing.numel():
        return 0
    x = sweep.x
    h = numeric.step_sizes(x, j.base)
    points = [x + h, x - h, x + h / 2, x - h / 2]
    values = [p.numpy() for p in points]
    dx = (points[0].double() - points[1].double()).numpy()
    dx_half = (points[2].double() - points[3].double()).numpy()
    ratio = (c.error / c.tolerance).nan_to_num(nan=float("inf")).max(dim=1).values
    rows = failing[torch.argsort(ratio[failing], descending=True)].numpy()
    zero = torch.zeros(c.numerical.shape[1], dtype=torch.float64)
    confirmed, done = 0, 0
    while done < len(rows) and confirmed < CONFIRMED_ENOUGH:
        batch = np.sort(rows[done : done + REFINE_BATCH])
        groups = sweep.groups(batch)
        got = [_sweep_all(sweep, products, v, groups, y0, chunk) for v in values]
        order = np.argsort(got[0]["rows"])
        p1, m1, p2, m2 = (torch.from_numpy(g["product"][order]) for g in got)
        index = torch.from_numpy(batch)
        half = torch.from_numpy(dx_half[batch])
        # Outputs a step changed are its footprint: the larger step sees more of it.
        outputs = np.maximum(got[0]["outputs"][order], got[2]["outputs"][order])
        # The product's size at the refined step: the screening step may have moved nothing.
        quad_rows = torch.maximum(
            quad[index], torch.from_numpy(got[2]["quad"][order]) / half.abs()[:, None] * 2
        )
        numeric.refine(
            c,
            index,
            zero,
            p1,
            m1,
            torch.from_numpy(dx[batch]),
            p2,
            m2,
            half,
            atol=atol[index],
            rtol=j.options.rtol,
            dtype_eps=j.dtype_eps,
            scale=quad_rows,
            rounding_half=numeric.ROUNDING_ULPS
            * j.dtype_eps
            * ((torch.from_numpy(outputs) + hidden) / half.abs()[:, None] + terms[index])
            + noise,
        )
        done += len(batch)
        confirmed += int((~c.passed[index]).any(dim=1).sum())
    return len(rows) - done
