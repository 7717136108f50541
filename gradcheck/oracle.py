"""The autograd oracle: the user's forward differentiated by torch.autograd, entry by entry.

Where forward is made of differentiable torch operations, autograd's vector-Jacobian products
``g_k . J`` are exact up to rounding: the hand-written backward's products are compared with
them entry by entry at a rounding-level tolerance, in milliseconds and with no finite-difference
noise. Where autograd cannot follow forward (it writes into its input, runs under
``torch.no_grad``, goes through numpy, raises), the check falls back to finite differences and
the report says why. A tensor on which backward and autograd disagree is judged again by finite
differences, whose verdict stands: a forward that hides a step from autograd (``.detach()``,
``.data``) would otherwise make correct code look wrong.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradcheck import numeric
from gradcheck.report import TensorResult
from gradcheck.session import Session, exception_text

__all__ = ["ULPS", "Reference"]

#: Rounding-level tolerance: backward and autograd sum the same terms in different orders.
ULPS = 1024


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
        if s.mutates:
            self.reason = "forward writes into its input"
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
                    raise _NotDifferentiable(
                        f"forward raised {exception_text(exc)} with inputs that require grad"
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

    def compare(self, j, index: int, name: str, A: Tensor) -> TensorResult | None:
        """The result of tensor ``index`` if backward agrees with autograd, else ``None`` (the
        caller then compares it by finite differences)."""
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
        if not c.all_passed:
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
