"""The gradients against finite differences (or autograd), tensor by tensor.

Per tensor, :mod:`gradcheck.budget` picks the method from the memory budget: every Jacobian
entry (:mod:`gradcheck.full`), entry-wise vector-Jacobian products (:mod:`gradcheck.entrywise`)
or random projections (:mod:`gradcheck.projection`); :mod:`gradcheck.oracle` compares with
autograd instead where asked. :mod:`gradcheck.numeric` does the arithmetic; this file drives the
methods and turns their comparisons into :class:`TensorResult` and the two checks' verdicts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gradcheck import budget, hints, numeric
from gradcheck.entrywise import compare_vjp
from gradcheck.full import analytic_full, compare_full
from gradcheck.names import INPUT_GRADIENT, PARAMETER_GRADIENT
from gradcheck.projection import compare_fast
from gradcheck.report import TensorResult
from gradcheck.session import Session
from gradcheck.sweep import rounding_scale

__all__ = ["Jacobians"]

_WHAT = {
    "full": "every Jacobian entry",
    "vjp": "every gradient entry, by {K} vector-Jacobian products",
    "fast": "{K} x {L} random projections",
    "autograd": "every gradient entry against autograd, by {K} vector-Jacobian products",
}


def _unravel(flat: int, shape: torch.Size) -> tuple[int, ...]:
    # numpy's: torch.unravel_index imports torch's compiler stack on its first call (~2 s).
    return tuple(int(i) for i in np.unravel_index(flat, tuple(shape)))


def _percent(value: float) -> str:
    return "-" if value != value or value == float("inf") else f"{100 * value:.2g}%"


def sensitivity(c: numeric.Comparison, method: str) -> tuple[float, str]:
    """The relative error that would have failed, and a sentence saying it.

    Full and entry-wise: per entry, the smallest relative error of the analytical value that
    leaves its tolerance (over the upstream gradients, the best one); the figure is the worst
    entry's, over the entries with a non-zero numerical value. Projections: the same for an
    error of the whole gradient.
    """
    num = c.numerical.abs()
    needed = c.tolerance / num  # inf where the numerical value is 0
    if method == "fast":
        worst = float(needed.min()) if needed.numel() else float("inf")
        return worst, f"an error of {_percent(worst)} over the whole gradient would fail"
    per_entry = needed.min(dim=1).values if needed.dim() > 1 and method != "full" else needed
    # Entries smaller than their own tolerance (rounding-level ones) cannot say anything.
    finite = per_entry[per_entry <= 1]
    worst = float(finite.max()) if finite.numel() else float("inf")
    median = float(finite.median()) if finite.numel() else float("inf")
    unit = "Jacobian entry" if method == "full" else "gradient entry"
    return worst, (
        f"an error of {_percent(worst)} in any {unit} would fail (half of them at "
        f"{_percent(median)})"
    )


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
        # check() records the budget and the oracle with the other options of the report.
        self.max_memory = int(s.report.options.get("max_memory") or budget.DEFAULT_MAX_MEMORY)
        self.oracle = s.report.options.get("oracle") or "auto"
        if self.oracle == "auto" and s.options.mode != "auto":
            # A mode named (full, vjp, fast) asks for that finite-difference method.
            self.oracle = "finite-differences"
        #: Per output entry, the size of its terms (its rounding error's scale), set by run().
        self.terms = None
        #: Upstream gradients of the entry-wise and projection methods (set by plan()).
        self.K = 1 if s.adapted.is_loss else s.options.projections
        #: Per tensor, backward's measured rounding for each upstream gradient (analytic_vjp).
        self.noise: list[Tensor] = []
        #: Per tensor name, a pattern seen in its failing entries (a factor, a flipped sign).
        self.hints: dict[str, str] = {}
        #: Who judged the tensors compared with autograd, and what the validation showed.
        self.oracle_text = "autograd"
        self.validation = ""
        #: Why finite differences judged every tensor although an oracle was asked for.
        self.fallback = ""

    def plan(self, M: int) -> list[str]:
        """The method of every tensor; raises :class:`budget.TooLarge` before anything runs."""
        K = 1 if self.s.adapted.is_loss else self.options.projections
        # Fewer upstream gradients rather than projections for a tensor whose entry-wise tables
        # would not fit with all of them (a million entries at 1 GB): down to 2.
        for t in self.s.tensors():
            while K > 2 and budget.vjp_bytes(M, t.numel(), K) > self.max_memory:
                if budget.vjp_bytes(M, t.numel(), 2) > self.max_memory:
                    break
                K -= 1
        self.K = K
        return [
            budget.choose(
                self.options.mode,
                M,
                t.numel(),
                K=K,
                L=self.options.projections,
                max_full=self.options.max_full,
                max_memory=self.max_memory,
                name=name,
            )
            for name, t in zip(self.s.names(), self.s.tensors(), strict=True)
        ]

    def run(self) -> None:
        """Compare every input and parameter gradient; add the two gradient checks' verdicts."""
        assert self.s.out is not None
        M = self.s.out.numel()
        self.s.report.options["step"] = self.base
        methods = self.plan(M)
        self.terms = rounding_scale(self.s, INPUT_GRADIENT, self.base)
        tensors, names = self.s.tensors(), self.s.names()
        full = [m == "full" for m in methods]
        fd_only = self.oracle == "finite-differences"
        vs, rows = self.analytic_vjp() if not all(full) or not fd_only else (None, [])
        reference = None if fd_only else self.reference(vs)
        jacobians: list = []
        results = []
        for index, (name, tensor) in enumerate(zip(names, tensors, strict=True)):
            check = INPUT_GRADIENT if index < len(self.s.perturbable) else PARAMETER_GRADIENT
            if check == INPUT_GRADIENT and not self.s.returns_input_gradient:
                continue
            A = torch.stack([r[index].reshape(-1) for r in rows]) if rows else None
            result = None
            if reference is not None:
                result = reference.compare(self, index, name, A)
                if result is None and self.oracle == "auto" and A is not None:
                    result = self._settled(reference, index, name, A, vs)
            if result is None:
                if full[index] and not jacobians:
                    # Only the tensors still to be compared in full: the oracle may have done
                    # the others.
                    keep = [f and i >= index for i, f in enumerate(full)]
                    jacobians = analytic_full(self.s, M, keep)
                result = self.compare(check, name, tensor, methods[index], vs, A, jacobians, index)
                if reference is not None and result.passed:
                    if not bool(reference.products[index].any()):
                        why = f"autograd finds no path from {name} to the output: forward "
                        why += "detaches it (.detach(), .data)"
                    else:
                        why = "forward may hide a step from autograd (.detach(), .data), or "
                        why += "the difference is below finite differences' sensitivity"
                    self.s.note(
                        f"autograd disagreed with backward for {name} (error "
                        f"{reference.disagreed[name]:.3g} x its rounding-level tolerance) but "
                        f"finite differences agree: {why}"
                    )
            results.append((check, result))
        for check in (INPUT_GRADIENT, PARAMETER_GRADIENT):
            mine = [r for c, r in results if c == check]
            if not mine:
                continue
            failed = [r for r in mine if not r.passed]
            if failed:
                what = (
                    "autograd"
                    if all(r.mode == "autograd" for r in failed)
                    else ("finite differences")
                )
                message = f"backward disagrees with {what} for " + ", ".join(
                    r.tensor for r in failed
                )
                notes = [self.hints[r.tensor] for r in failed if r.tensor in self.hints]
                if notes:
                    message += " (" + "; ".join(notes) + ")"
            else:
                message = "; ".join(f"{r.tensor} {r.mode}: {r.sensitivity_note}" for r in mine)
            self.s.add(check, not failed, message, mine)

    def _settled(self, reference, index: int, name: str, A: Tensor, vs: Tensor):
        """The failing result of a tensor where backward and validated autograd disagree and
        finite differences along the disagreement side with autograd; None otherwise (finite
        differences then judge it entry by entry)."""
        if reference.settle(index, A, vs, self.terms) is not True:
            return None
        numerical, autograd, backward, tolerance = reference.settled[index]
        self.s.note(
            f"{name}: backward disagrees with autograd, and finite differences along the "
            f"difference side with autograd ({numerical:.6g}; autograd {autograd:.6g}, backward "
            f"{backward:.6g}, tolerance {tolerance:.2g})"
        )
        result = reference.compare(self, index, name, A, settled=True)
        self._hint(
            name, reference.comparison, self.s.tensors()[index], index, entries_are_rows=True
        )
        return result

    def reference(self, vs: Tensor):
        """Autograd's products (:class:`gradcheck.oracle.Reference`), confirmed by finite
        differences under ``oracle="auto"``; ``None`` where finite differences must judge every
        tensor instead (``self.fallback`` says why)."""
        from gradcheck.oracle import Reference

        reference = Reference(self.s, vs)
        reason = reference.reason
        if reason is None and self.oracle == "auto":
            reason = reference.validate(vs, self.terms)
        if reason is None:
            if self.oracle == "auto":
                n = reference.validated
                self.oracle_text = f"autograd, validated by finite differences along {n} directions"
                self.validation = (
                    f"autograd validated by finite differences along {n} random directions (a "
                    f"difference of {reference.validation_sensitivity:.2g} of a directional "
                    "derivative would have shown)"
                )
            return reference
        self.fallback = reason
        if self.oracle == "autograd":
            self.s.note(
                f"oracle autograd not used: {reason}; compared with finite differences instead"
            )
        elif reference.hidden_step:
            # Routine fallbacks (numpy, detach, no_grad, a kink) stay quiet; a forward that
            # autograd follows wrongly is worth a note.
            self.s.note(f"finite differences judged every tensor, as {reason}")
        return None

    def analytic_vjp(self) -> tuple[Tensor, list[list[Tensor]]]:
        """Return K random upstream gradients and, per one, every tensor's gradient.

        Also measures backward's own rounding, per tensor: ``backward(g_0 + g_1)`` against
        ``backward(g_0) + backward(g_1)`` differs only by rounding in a linear backward, and
        the largest difference, scaled to each ``g_k``, joins the tolerance of ``g_k``'s
        products (``self.noise``; float64 makes it negligible, float32 does not).
        """
        count = self.K
        vs, rows, raw = [], [], []
        for _ in range(count):
            v = self.s.upstream(self.s.out)
            raw.append(v)
            rows.append(self.s.gradients(v, INPUT_GRADIENT))
            vs.append(torch.ones(1, dtype=torch.float64) if v is None else v.reshape(-1).double())
        vs = torch.stack(vs)
        self.noise = [torch.zeros(count, dtype=torch.float64) for _ in rows[0]]
        if count >= 2:
            both = self.s.gradients(raw[0] + raw[1], INPUT_GRADIENT)
            size = vs.norm(dim=1) / (vs[0] + vs[1]).norm()
            for k, g in enumerate(both):
                residual = float((g - rows[0][k] - rows[1][k]).abs().max()) if g.numel() else 0.0
                self.noise[k] = residual * size
        return vs, rows

    def compare(self, check, name, tensor, method, vs, A, jacobians, index) -> TensorResult:
        """Compare one tensor by ``method``; return its result (hints recorded)."""
        unrefined, samples = 0, 1
        if method == "full":
            c, scale, samples = compare_full(self, check, tensor, jacobians[index])
        elif method == "vjp":
            noise = self.noise[index].numpy()
            c, scale, samples, unrefined = compare_vjp(self, check, name, tensor, vs, A, noise)
        else:
            c, scale = compare_fast(self, check, tensor, vs, A, self.noise[index])
        result = self.tensor_result(name, method, c, scale)
        result.unrefined = unrefined
        result.samples = samples
        if result.worst_index is not None:
            first, second = result.worst_index
            if method == "full":
                result.worst_index = (
                    _unravel(second, self.s.out.shape),
                    _unravel(first, tensor.shape),
                )
            elif method == "vjp":
                result.worst_index = (second, _unravel(first, tensor.shape))
            else:
                result.worst_index = (second, first)
        self._hint(name, c, tensor, index, entries_are_rows=method != "fast")
        return result

    def _hint(self, name: str, c, tensor: Tensor, index: int, *, entries_are_rows: bool) -> None:
        """Record the pattern the failing entries of ``c`` show (a factor, a flipped sign)."""
        target = self.s.args[1] if self.s.adapted.is_loss and len(self.s.args) > 1 else None
        hint = hints.describe(
            name,
            c,
            shape=tuple(tensor.shape),
            entries_are_rows=entries_are_rows,
            is_input=index < len(self.s.perturbable),
            batch_dim=self.s.adapted.batch_dim,
            target=target,
        )
        if hint:
            self.hints[name] = hint

    def tensor_result(
        self, name: str, mode: str, c: numeric.Comparison, scale: float
    ) -> TensorResult:
        kinks = int(c.kink.sum())
        atol = self.options.atol * min(1.0, scale)
        result = TensorResult(
            tensor=name,
            passed=c.all_passed,
            mode=mode,
            atol=atol,
            rtol=self.options.rtol,
            entries=c.kink.numel() - kinks,
            kinks_skipped=kinks,
            scale=scale,
        )
        result.sensitivity, note = sensitivity(c, mode)
        K = c.numerical.shape[1] if c.numerical.dim() > 1 else 1
        result.sensitivity_note = _WHAT[mode].format(K=K, L=c.numerical.shape[0]) + "; " + note
        result.oracle = self.oracle_text if mode == "autograd" else "finite differences"
        if mode == "autograd" and self.validation:
            result.sensitivity_note += "; " + self.validation
        elif self.fallback:
            result.sensitivity_note += f"; finite differences judged it, as {self.fallback}"
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
