"""The gradients against finite differences: every Jacobian entry, or random projections.

The analytical side comes from backward (one call per output entry in full mode, one per random
upstream gradient in fast mode); the numerical side from forwards at perturbed inputs and
parameters, written in place through numpy views in the hot loop. :mod:`gradcheck.numeric` does
the arithmetic; this file drives the module and turns comparisons into :class:`TensorResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gradcheck import numeric
from gradcheck.names import INPUT_GRADIENT, PARAMETER_GRADIENT
from gradcheck.report import CheckResult, TensorResult
from gradcheck.session import ModuleFailed, Session

__all__ = ["Jacobians"]


def _unravel(flat: int, shape: torch.Size) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), tuple(shape)))


class Jacobians:
    """The two gradient checks of one session (``input_gradient``, ``parameter_gradient``).

    Args:
        s: the session, after the behaviour checks have run (its output and parameters known).
    """

    def __init__(self, s: Session) -> None:
        self.s = s
        self.options = s.options
        dtype = s.options.dtype
        self.dtype_eps = float(torch.finfo(dtype).eps)
        self.base = numeric.base_step(dtype, s.options.eps)
        self.screen = numeric.screening_step(dtype)
        #: Per tensor name, a pattern seen in its failing entries (a factor, a flipped sign).
        self.hints: dict[str, str] = {}

    def run(self) -> None:
        """Compare every input and parameter gradient; add the two gradient checks' verdicts."""
        assert self.s.out is not None
        out = self.s.out
        self.s.report.options["step"] = self.base
        tensors = self.s.tensors()
        names = self.s.names()
        M = out.numel()
        full = [
            self.options.mode == "full"
            or (self.options.mode == "auto" and M * t.numel() <= self.options.max_full)
            for t in tensors
        ]
        analytic_full = self.analytic_full(M) if any(full) else None
        analytic_fast = self.analytic_fast() if not all(full) else None
        results = []
        for index, (name, tensor) in enumerate(zip(names, tensors, strict=True)):
            check = INPUT_GRADIENT if index < len(self.s.perturbable) else PARAMETER_GRADIENT
            if check == INPUT_GRADIENT and not self.s.returns_input_gradient:
                continue
            if full[index]:
                result = self.compare_full(check, name, tensor, analytic_full[index])
            else:
                vs, rows = analytic_fast
                result = self.compare_fast(check, name, tensor, vs, [r[index] for r in rows])
            results.append((check, result))
        for check in (INPUT_GRADIENT, PARAMETER_GRADIENT):
            mine = [r for c, r in results if c == check]
            if not mine:
                continue
            failed = [r for r in mine if not r.passed]
            if failed:
                message = "backward disagrees with finite differences for " + ", ".join(
                    r.tensor for r in failed
                )
                hint = self.hints
                notes = [hint[r.tensor] for r in failed if r.tensor in hint]
                if notes:
                    message += " (" + "; ".join(notes) + ")"
            else:
                message = ", ".join(f"{r.tensor} {r.mode}" for r in mine)
            self.s.add(check, not failed, message, mine)

    def analytic_full(self, M: int) -> list[Tensor]:
        """Return per tensor the Jacobian (outputs x entries) from backward with basis vectors."""
        tensors = self.s.tensors()
        jacobians = [torch.zeros(M, t.numel(), dtype=torch.float64) for t in tensors]
        rows = [j.numpy() for j in jacobians]
        self.s.forward(INPUT_GRADIENT)
        basis = None
        # The gradient tensors, once backward is seen to keep them (no refetch per row).
        kept: list[Tensor] | None = None
        for i in range(M):
            before = kept if kept is not None else [p.read_grad() for p in self.s.fresh_params()]
            for grad in before:
                if isinstance(grad, Tensor):
                    grad.detach().zero_()
            if i > 0 and not self.s.repeatable:
                self.s.forward(INPUT_GRADIENT)
            if not self.s.adapted.is_loss:
                basis = torch.zeros(self.s.out.shape, dtype=self.s.out.dtype)
                basis.numpy().reshape(-1)[i] = 1.0
            grads = self.s.backward(basis, INPUT_GRADIENT)
            after = kept if kept is not None else [p.read_grad() for p in self.s.fresh_params()]
            for k, g in enumerate(grads + after):
                if isinstance(g, Tensor):
                    rows[k][i] = g.detach().reshape(-1).numpy()
            if kept is None and all(
                isinstance(a, Tensor) and a is b for a, b in zip(after, before, strict=True)
            ):
                kept = after
        return jacobians

    def analytic_fast(self) -> tuple[Tensor, list[list[Tensor]]]:
        """Return K random upstream gradients and, per one, every tensor's gradient."""
        count = 1 if self.s.adapted.is_loss else self.options.projections
        vs, rows = [], []
        for _ in range(count):
            v = self.s.upstream(self.s.out)
            rows.append(self.s.gradients(v, INPUT_GRADIENT))
            vs.append(torch.ones(1, dtype=torch.float64) if v is None else v.reshape(-1).double())
        return torch.stack(vs), rows

    def evaluate(self, check: str, M: int) -> Callable[[], Any]:
        """Return f(): forward (seeded) and the flat float64 output as a numpy array."""

        def f() -> Any:
            out = self.s.forward(check)
            if out.numel() != M:
                raise ModuleFailed(
                    CheckResult(
                        check,
                        False,
                        f"forward returned {out.numel()} values for a perturbed "
                        f"input, {M} for the original one; the output shape must not depend on "
                        "the values",
                    )
                )
            try:
                return out.detach().reshape(-1).to(torch.float64).numpy()
            except Exception as exc:  # e.g. a tensor numpy cannot view (conjugate, sparse)
                raise ModuleFailed(
                    CheckResult(check, False, f"forward's output cannot be read: {exc}")
                ) from exc

        return f

    def compare_full(self, check: str, name: str, tensor: Tensor, analytic: Tensor) -> TensorResult:
        M = analytic.shape[0]
        f = self.evaluate(check, M)
        x = tensor.detach().reshape(-1).clone()
        view = tensor.detach().view(-1).numpy()
        xs = x.tolist()

        def sweep(points: Tensor, rows: list[int]) -> Tensor:
            """Return the outputs with entry ``rows[r]`` moved to ``points[rows[r]]``, per row."""
            outputs = torch.empty(len(rows), M, dtype=torch.float64)
            out_np, values = outputs.numpy(), points.tolist()
            forward, args = self.s.adapted.forward, self.s.args
            seed, generator = self.options.seed, torch.default_generator
            done, j = 0, rows[0] if rows else 0
            try:
                if not self.s.mutates:  # a module writing into its input gets copies: use f()
                    # The hot loop: numpy writes, no checks.
                    for j in rows:
                        view[j] = values[j]
                        generator.manual_seed(seed)
                        out_np[done] = forward(*args).numpy().reshape(-1)
                        view[j] = xs[j]
                        done += 1
            except Exception:
                # Something unusual (an output that needs detaching, a wrong shape, the module
                # raising): finish with f(), which diagnoses and attributes it.
                view[j] = xs[j]
            try:
                for r, j in enumerate(rows[done:], start=done):
                    view[j] = values[j]
                    out_np[r] = f()
                    view[j] = xs[j]
            finally:
                if rows:
                    view[j] = xs[j]
            return outputs

        zero = torch.from_numpy(f().copy())
        # Screen every entry with one forward each (a forward difference at sqrt(eps)).
        xp = x + numeric.step_sizes(x, self.screen)
        every = list(range(x.numel()))
        plus = sweep(xp, every)
        dx = xp - x
        comparison = numeric.compare(
            analytic.T,
            numeric.forward_difference(zero, plus, dx),
            atol=self.options.atol,
            rtol=self.options.rtol,
            rounding=numeric.rounding(plus.abs() + zero.abs(), dx, self.dtype_eps),
        )
        # Judge the rest by central differences at h and h/2 (Richardson, kink detection).
        rows = comparison.failing_rows()
        if rows.numel():
            listed = rows.tolist()
            h = numeric.step_sizes(x, self.base)
            points = [x + h, x - h, x + h / 2, x - h / 2]
            p1, m1, p2, m2 = (sweep(pt, listed) for pt in points)
            numeric.refine(
                comparison,
                rows,
                zero,
                p1,
                m1,
                (points[0] - points[1])[rows],
                p2,
                m2,
                (points[2] - points[3])[rows],
                atol=self.options.atol,
                rtol=self.options.rtol,
                dtype_eps=self.dtype_eps,
            )
        result = self.tensor_result(name, "full", comparison)
        if result.worst_index is not None:
            entry, output = result.worst_index
            result.worst_index = (_unravel(output, self.s.out.shape), _unravel(entry, tensor.shape))
        self.hint(name, comparison)
        return result

    def compare_fast(
        self, check: str, name: str, tensor: Tensor, vs: Tensor, analytic: list[Tensor]
    ) -> TensorResult:
        M = vs.shape[1]
        f = self.evaluate(check, M)
        x = tensor.detach().reshape(-1).clone()
        flat = tensor.detach().view(-1)
        A = torch.stack([a.reshape(-1) for a in analytic])  # (K, n)
        L = self.options.projections
        W = torch.randn(L, x.numel(), generator=self.s.generator, dtype=torch.float64)
        W = W * x.abs().clamp(min=1.0)

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

        def tolerances(jd: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
            # Per-entry tolerances combined in quadrature over each projection: atol over every
            # entry, rtol over the Jacobian's entries (estimated from both sides' projections).
            atol = self.options.atol * vs.norm(dim=1)[None, :] * d.norm(dim=1)[:, None]
            from_numeric = ((jd**2) @ (vs**2).T).sqrt()
            from_analytic = ((d**2) @ (A**2).T).sqrt()
            return atol, torch.maximum(from_numeric, from_analytic)

        y0 = torch.from_numpy(f().copy())
        zero = vs @ y0
        rows = list(range(L))
        # Screen: forward differences along each direction, d = displacement / step.
        y_plus, moved = sweep(self.screen, rows)
        d = moved / self.screen
        jd = (y_plus - y0) / self.screen
        atol, scale = tolerances(jd, d)
        ones = torch.full((L,), self.screen, dtype=torch.float64)
        comparison = numeric.compare(
            d @ A.T,
            jd @ vs.T,
            atol=atol,
            rtol=self.options.rtol,
            scale=scale,
            rounding=numeric.rounding((y_plus.abs() + y0.abs()) @ vs.abs().T, ones, self.dtype_eps),
        )
        failing = comparison.failing_rows()
        if failing.numel():
            listed, h = failing.tolist(), self.base
            (p1, move), (m1, _), (p2, _), (m2, _) = (
                sweep(step, listed) for step in (h, -h, h / 2, -h / 2)
            )
            # The analytical side is projected on W[r]; rescale the outputs to match.
            d_rows = move / h
            comparison.analytical[failing] = d_rows @ A.T
            dx = torch.full((len(listed),), 2 * h, dtype=torch.float64)
            a_rows, scale_rows = tolerances((p1 - m1) / (2 * h), d_rows)
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
                rtol=self.options.rtol,
                dtype_eps=self.dtype_eps,
                scale=scale_rows,
                rounding_half=numeric.rounding(
                    (p2.abs() + m2.abs()) @ vs.abs().T, dx / 2, self.dtype_eps
                ),
            )
        result = self.tensor_result(name, "fast", comparison)
        if result.worst_index is not None:
            direction, upstream = result.worst_index
            result.worst_index = (upstream, direction)
        return result

    def tensor_result(self, name: str, mode: str, c: numeric.Comparison) -> TensorResult:
        kinks = int(c.kink.sum())
        result = TensorResult(
            tensor=name,
            passed=c.all_passed,
            mode=mode,
            atol=self.options.atol,
            rtol=self.options.rtol,
            entries=c.kink.numel() - kinks,
            kinks_skipped=kinks,
        )
        if result.entries:
            errors = c.error
            if result.kinks_skipped:
                errors = torch.where(c.kink, torch.zeros_like(errors), errors)
            relative = errors / c.numerical.abs()
            result.max_abs_error = float(errors.max())
            # 0/0 (both exact zeros) is nan and x/0 is inf: neither is a relative error.
            result.max_rel_error = float(relative.nan_to_num(nan=0.0, posinf=0.0).max())
        worst = c.worst()
        if worst is not None:
            result.worst_index = worst
            result.numerical = float(c.numerical[worst])
            result.analytical = float(c.analytical[worst])
            result.tolerance = float(c.tolerance[worst])
            result.truncation = float(c.truncation[worst])
        return result

    def hint(self, name: str, c: numeric.Comparison) -> None:
        """Name a pattern in the failing entries (a constant factor, a flipped sign, zeros)."""
        bad = ~c.passed
        if not bool(bad.any()):
            return
        num, ana = c.numerical[bad], c.analytical[bad]
        hints = self.hints
        if bool((ana == 0).all()):
            hints[name] = f"{name}: analytical is 0 at every failing entry"
            return
        if bool((num.abs() > 0).all()):
            ratio = ana / num
            if float(ratio.max() - ratio.min()) <= 1e-3 * float(ratio.abs().max()):
                factor = float(ratio.mean())
                if abs(factor + 1) < 1e-3:
                    hints[name] = f"{name}: sign flipped at every failing entry"
                else:
                    hints[name] = (
                        f"{name}: analytical = {factor:.4g} x numerical at every failing entry"
                    )
        if name not in hints:
            hints[name] = f"{name}: {int(bad.sum())} of {bad.numel()} entries outside tolerance"
