"""The autograd oracle: the user's forward differentiated by torch.autograd, entry by entry.

Where forward is made of differentiable torch operations, autograd's vector-Jacobian products
``g_k . J`` are exact up to rounding: the hand-written backward's products are compared with
them entry by entry at a rounding-level tolerance, in milliseconds and with no finite-difference
noise. Where autograd cannot follow forward (it writes into its input, runs under
``torch.no_grad``, goes through numpy, raises), the check falls back to finite differences and
the report says why. A tensor on which backward and autograd disagree is judged again by finite
differences, whose verdict stands: a forward that hides a step from autograd (``.detach()``,
``.data``) would otherwise make correct code look wrong.

The default, ``oracle="auto"``, trusts autograd only once finite differences confirm it
(:meth:`Reference.validate`): a forward that hides a step from autograd together with a backward
that ignores the same step would otherwise pass a wrong gradient. Along a few random directions
``u`` over every input and parameter at once, the central differences of ``g_k . y`` at ``h``
and ``h / 2`` (the same forwards for every ``k``) must match autograd's
``sum over tensors of (g_k . J) . u``, within the finite differences' measured error and the
rounding of both sides. A failed or inconclusive validation (a kink crossed along ``u``) only
ever means "finite differences judge every tensor", never a failure.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradcheck import numeric
from gradcheck.names import INPUT_GRADIENT
from gradcheck.report import TensorResult
from gradcheck.session import ModuleFailed, Session, exception_text
from gradcheck.sweep import evaluator

__all__ = ["DIRECTIONS", "ULPS", "Reference"]

#: Rounding-level tolerance: backward and autograd sum the same terms in different orders.
ULPS = 1024
#: Random directions along which finite differences must confirm autograd (``oracle="auto"``).
DIRECTIONS = 2
#: Directions drawn at most, when some cross a kink and say nothing.
_TRIES = 4
#: Standard deviations of a projection's rounding error allowed: ``g . err`` with ``g`` drawn
#: independently of the error ``err`` is about normal with deviation ``|err|_2``, so the
#: per-output bounds are combined in quadrature. Too tight a bound only falls back to finite
#: differences; too loose would let a hidden step through.
_SPREAD = 4.0
#: How far above its rounding a one-sided gap must be before it can count as a kink (the gap at
#: ``h / 2`` then cannot pass ``KINK_RATIO`` of the gap at ``h`` by rounding alone).
_KINK_MARGIN = 8.0


class Reference:
    """Autograd's products ``g_k . J`` for every compared tensor, or the reason there are none.

    Args:
        s: the session.
        vs: ``(K, M)`` upstream gradients, the rows the analytical products were computed for.
    """

    def __init__(self, s: Session, vs: Tensor) -> None:
        self.s = s
        self.reason: str | None = None
        self.products: list[Tensor] = []
        #: Tensors where autograd disagreed, with the largest error over tolerance.
        self.disagreed: dict[str, float] = {}
        #: The tensors autograd finds no path from to the output (it returned no gradient).
        self.unreached: list[int] = []
        #: Directions finite differences confirmed autograd along (:meth:`validate`), and the
        #: relative difference of a directional derivative that would have failed (the worst).
        self.validated = 0
        #: Whether finite differences contradicted autograd (a step forward hides from it).
        self.hidden_step = False
        #: Per tensor settled by :meth:`settle`: (finite differences, autograd, backward,
        #: tolerance) of the directional derivative along the disagreement.
        self.settled: dict[int, tuple[float, float, float, float]] = {}
        #: The last comparison :meth:`compare` made (for the hints of a failing tensor).
        self.comparison: numeric.Comparison | None = None
        self.validation_sensitivity = float("inf")
        from gradcheck._numpy import NumpyAdapted

        if s.mutates:
            self.reason = "forward writes into its input"
            return
        if isinstance(s.adapted, NumpyAdapted):
            self.reason = "forward runs on numpy arrays"
            return
        try:
            self.products = self._products(vs)
        except _NotDifferentiable as exc:
            self.reason = str(exc)

    def _products(self, vs: Tensor) -> list[Tensor]:
        s = self.s
        tensors = s.tensors()
        args = list(s.args)
        leaves = []
        for i in s.perturbable:
            args[i] = s.args[i].detach().clone().requires_grad_(True)
            leaves.append(args[i])
        params = [p.tensor for p in s.params]
        flags = [t.requires_grad for t in params]
        try:
            for t in params:
                t.requires_grad_(True)
            leaves += params
            torch.default_generator.manual_seed(s.options.seed)
            with torch.enable_grad():
                try:
                    out = s.adapted.forward(*args)
                except Exception as exc:
                    first = exception_text(exc).split(". ")[0].rstrip(".")
                    raise _NotDifferentiable(
                        f"forward raised {first} with inputs that require grad"
                    ) from exc
                if not isinstance(out, Tensor) or not out.requires_grad:
                    raise _NotDifferentiable(
                        "autograd cannot follow forward (torch.no_grad, numpy or detach inside)"
                    )
                products = [[] for _ in leaves]
                for v in vs:
                    grads = torch.autograd.grad(
                        out,
                        leaves,
                        v.reshape(out.shape).to(out.dtype),
                        retain_graph=True,
                        allow_unused=True,
                    )
                    for k, (g, t) in enumerate(zip(grads, tensors, strict=True)):
                        if g is None and t.numel() and k not in self.unreached:
                            self.unreached.append(k)
                        g = torch.zeros(t.shape) if g is None else g
                        products[k].append(g.detach().reshape(-1).to(torch.float64))
        except _NotDifferentiable:
            raise
        except Exception as exc:  # e.g. requires_grad on a non-leaf parameter view
            raise _NotDifferentiable(f"autograd raised {exception_text(exc)}") from exc
        finally:
            for t, flag in zip(params, flags, strict=True):
                t.requires_grad_(flag)
                t.grad = None
        return [torch.stack(p) for p in products]

    def validate(self, vs: Tensor, terms: np.ndarray) -> str | None:
        """Confirm autograd by finite differences along random directions; return why not.

        Along each direction ``u`` (random signs scaled by ``max(1, |x|)``, on every input and
        parameter at once), forwards at ``x +- h u`` and ``x +- h u / 2`` give, for every
        upstream gradient ``g_k``, the central differences of ``g_k . y``; autograd's side is
        ``sum_t R_k[t] . d_t`` over the exact displacements ``d``. Their difference is
        extrapolated (Richardson) and must stay within the measured finite-difference error
        ``|e(h) - e(h/2)|`` plus the rounding of both sides (outputs: a few ulps of their terms,
        ``terms`` from :func:`gradcheck.sweep.rounding_scale`, combined in quadrature over
        ``g_k``; autograd: ``ULPS`` of each term of its sum). ``h`` is the screening step
        (``sqrt(eps)`` in float64): rounding still leaves ~1e-8 of the products, and so small a
        move rarely crosses a kink. A direction whose outputs show a kink (a one-sided gap that
        does not halve with ``h``) is replaced by a new one, up to ``_TRIES`` in all.

        Returns:
            ``None`` when ``DIRECTIONS`` directions confirmed autograd, else the reason, for a
            note: the caller then compares every tensor by finite differences.
        """
        s = self.s
        if self.unreached:
            names = ", ".join(s.names()[i] for i in self.unreached)
            them = "them" if len(self.unreached) > 1 else "it"
            return f"autograd finds no path from {names} to the output: forward detaches {them}"
        f = evaluator(s, INPUT_GRADIENT)
        tensors = [t for t in s.tensors() if t.numel()]
        products = [p for p, t in zip(self.products, s.tensors(), strict=True) if t.numel()]
        saved = [t.detach().clone() for t in tensors]
        eps = float(torch.finfo(s.options.dtype).eps)
        h = numeric.screening_step(s.options.dtype)
        generator = torch.Generator().manual_seed(s.options.seed + 5)
        rho = numeric.ROUNDING_ULPS * eps * torch.from_numpy(terms)  # one output's rounding

        def at(u: list[Tensor], size: float) -> tuple[Tensor, Tensor]:
            """``g_k . y`` at ``x + size u`` for every ``k``, and autograd's ``R_k . d``."""
            moved = torch.zeros(vs.shape[0], dtype=torch.float64)
            for t, x, d, R in zip(tensors, saved, u, products, strict=True):
                t.detach().copy_(x + size * d)
                moved += R @ (t.detach().double() - x.double()).reshape(-1)
            return torch.from_numpy(f().copy()), moved

        confirmed, kinks, worst = 0, 0, 0.0
        try:
            y0 = torch.from_numpy(f().copy())
            for _ in range(_TRIES):
                u = [
                    (torch.randint(0, 2, x.shape, generator=generator) * 2 - 1).to(x.dtype)
                    * x.abs().clamp(min=1.0)
                    for x in saved
                ]
                (p1, a1), (m1, b1), (p2, a2), (m2, b2) = (
                    at(u, step) for step in (h, -h, h / 2, -h / 2)
                )
                if self._kink(y0, p1, m1, p2, m2, h, rho):
                    kinks += 1
                    continue
                e_h = (vs @ (p1 - m1) - (a1 - b1)) / (2 * h)
                e_half = (vs @ (p2 - m2) - (a2 - b2)) / h
                error, truncation = numeric.richardson(e_h, e_half)
                autograd = (a2 - b2) / h
                # D(h/2) differences two outputs: 2 rho / h per output, 3/2 of it in Richardson.
                rounding = (vs * (2 * rho / h)).norm(dim=1) * numeric.RICHARDSON_ROUNDING
                tolerance = truncation + _SPREAD * rounding + _autograd_rounding(u, products, eps)
                if bool((error.abs() > tolerance).any()):
                    self.hidden_step = True
                    k = int(torch.argmax(error.abs() / tolerance))
                    return (
                        "they disagree with autograd along a random direction "
                        f"({float(autograd[k] + error[k]):.6g} vs autograd's "
                        f"{float(autograd[k]):.6g}, tolerance {float(tolerance[k]):.2g}): "
                        "forward hides a step from autograd (.detach(), .data, torch.no_grad)"
                    )
                worst = max(worst, float((tolerance / autograd.abs()).clamp(max=1.0).max()))
                confirmed += 1
                if confirmed == DIRECTIONS:
                    break
        except ModuleFailed as failure:
            return f"forward failed at a point moved along a random direction: {failure}"
        finally:
            for t, x in zip(tensors, saved, strict=True):
                t.detach().copy_(x)
        if confirmed < DIRECTIONS:
            return f"autograd is unconfirmed: {kinks} of {_TRIES} random directions crossed a kink"
        self.validated = confirmed
        self.validation_sensitivity = worst
        return None

    @staticmethod
    def _kink(y0, p1, m1, p2, m2, h: float, rho: Tensor) -> bool:
        """Whether some output's one-sided slopes differ by a gap that does not halve with
        ``h`` (numeric.refine's test, with a margin over rounding): a kink along the direction."""
        gap_h = numeric.one_sided_gap(y0, p1, m1, torch.tensor([2 * h]))
        gap_half = numeric.one_sided_gap(y0, p2, m2, torch.tensor([h]))
        # The second difference adds four outputs' rounding, divided by the half step.
        above = gap_h > _KINK_MARGIN * 4 * rho / h
        return bool((above & (gap_half > numeric.KINK_RATIO * gap_h)).any())

    def settle(self, index: int, A: Tensor, vs: Tensor, terms: np.ndarray) -> bool | None:
        """Who is right where backward and (validated) autograd disagree on tensor ``index``:
        finite differences along the disagreement itself.

        For the upstream gradient ``g_k`` where they differ most, the direction is
        ``d = (A_k - R_k)`` (scaled per entry by ``max(1, |x|)``, which keeps
        ``(A_k - R_k) . d > 0``); the central differences of ``g_k . y`` along ``d`` at ``h`` and
        ``h / 2`` (Richardson) give ``g_k . J d``, against autograd's ``R_k . d`` and
        backward's ``A_k . d``. Four forwards.

        Returns:
            True when finite differences side with autograd (backward is wrong along ``d``),
            False when they side with backward, None when they cannot tell (a kink along
            ``d``, or a difference below their error).
        """
        s = self.s
        tensor = s.tensors()[index]
        R = self.products[index]
        diff = A - R
        if not diff.numel():
            return None
        k = int(diff.abs().amax(dim=1).argmax())
        x = tensor.detach().clone()
        d = (diff[k] / diff[k].abs().max()).reshape(x.shape).to(x.dtype)
        d = d * x.abs().clamp(min=1.0)
        f = evaluator(s, INPUT_GRADIENT)
        eps = float(torch.finfo(s.options.dtype).eps)
        h = numeric.screening_step(s.options.dtype)
        rho = numeric.ROUNDING_ULPS * eps * torch.from_numpy(terms)
        g = vs[k]

        def at(size: float) -> tuple[Tensor, Tensor]:
            tensor.detach().copy_(x + size * d)
            moved = (tensor.detach().double() - x.double()).reshape(-1)
            return torch.from_numpy(f().copy()), moved

        try:
            y0 = torch.from_numpy(f().copy())
            (p1, u1), (m1, w1), (p2, u2), (m2, w2) = (at(step) for step in (h, -h, h / 2, -h / 2))
        except ModuleFailed:
            return None
        finally:
            tensor.detach().copy_(x)
            f()  # the module's cache at the unmoved point again
        if self._kink(y0, p1, m1, p2, m2, h, rho):
            return None
        numerical, truncation = numeric.richardson(g @ (p1 - m1) / (2 * h), g @ (p2 - m2) / h)
        span = (u2 - w2) / h  # the exact displacement per unit step
        autograd, backward = float(R[k] @ span), float(A[k] @ span)
        rounding = float((g * (2 * rho / h)).norm()) * numeric.RICHARDSON_ROUNDING
        sums = ULPS * eps * float(((R[k].abs() + A[k].abs()) * span.abs()).sum())
        tolerance = float(truncation) + _SPREAD * rounding + sums
        near_autograd = abs(float(numerical) - autograd) <= tolerance
        near_backward = abs(float(numerical) - backward) <= tolerance
        self.settled[index] = (float(numerical), autograd, backward, tolerance)
        if near_autograd and not near_backward:
            return True
        if near_backward and not near_autograd:
            return False
        return None

    def compare(
        self, j, index: int, name: str, A: Tensor, *, settled: bool = False
    ) -> TensorResult | None:
        """The result of tensor ``index`` if backward agrees with autograd, else ``None`` (the
        caller then compares it by finite differences); with ``settled`` (finite differences
        sided with autograd, :meth:`settle`), the failing result."""
        R = self.products[index]
        eps = j.dtype_eps
        scale = float(R.abs().max()) if R.numel() else 0.0
        tolerance = ULPS * eps
        c = numeric.compare(
            A.T,
            R.T,
            atol=tolerance * scale,
            rtol=tolerance,
            rounding=tolerance * A.T.abs(),
        )
        self.comparison = c
        if not c.all_passed and not settled:
            worst = c.worst()
            self.disagreed[name] = float(c.error[worst] / c.tolerance[worst])
            return None
        result = j.tensor_result(name, "autograd", c, scale)
        result.atol, result.rtol = tolerance * scale, tolerance
        if result.worst_index is not None:
            entry, k = result.worst_index
            shape = j.s.tensors()[index].shape
            result.worst_index = (k, tuple(int(i) for i in np.unravel_index(entry, tuple(shape))))
        return result


class _NotDifferentiable(Exception):
    pass


def _autograd_rounding(u: list[Tensor], products: list[Tensor], eps: float) -> Tensor:
    """Autograd's rounding over ``R_k . u``: ``ULPS`` of each term, in quadrature."""
    total = torch.zeros(products[0].shape[0] if products else 1, dtype=torch.float64)
    for d, R in zip(u, products, strict=True):
        total = total + (R * d.double().reshape(-1)).pow(2).sum(dim=1)
    return _SPREAD * ULPS * eps * total.sqrt()
