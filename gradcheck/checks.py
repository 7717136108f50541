"""The checks: run a module, compare its backward with finite differences, watch its behaviour.

Each check has a name (the constants below) and its own verdict in the :class:`Report`. They run
in the order of :data:`CHECKS`; when one makes the rest meaningless (forward raised, backward
returned nothing) the rest are not run and the report says so.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gradcheck import numeric
from gradcheck._adapt import Adapted, Param, adapt
from gradcheck.inputs import default_shape, loss_defaults, make_input, make_target
from gradcheck.report import CheckResult, GradcheckError, Report, TensorResult

__all__ = [
    "ACCUMULATION",
    "BACKWARD",
    "CHECKS",
    "DETERMINISM",
    "FORWARD",
    "FORWARD_DETERMINISM",
    "GRADIENT_SHAPE",
    "GRAD_OUTPUT_MUTATION",
    "INPUT_GRADIENT",
    "INPUT_MUTATION",
    "LINEARITY",
    "OUTPUT_MUTATION",
    "OUTPUT_SHAPE",
    "PARAMETERS",
    "PARAMETER_GRADIENT",
    "assert_gradients",
    "check",
]

#: The module's parameters can be listed (``param()`` and its variants) as tensors.
PARAMETERS = "parameters"
#: forward runs and returns a finite floating tensor.
FORWARD = "forward"
#: The output has the expected dtype (float64 here) and shape (a loss: one value; a layer: the
#: batch dimension kept, ``out_features`` last when the module declares it).
OUTPUT_SHAPE = "output_shape"
#: Two forwards with torch's generator seeded alike return the same output.
FORWARD_DETERMINISM = "forward_determinism"
#: Neither forward nor backward changes the input tensors.
INPUT_MUTATION = "input_mutation"
#: backward runs and returns a tensor.
BACKWARD = "backward"
#: The input gradient has the input's shape and dtype; every parameter gradient its parameter's.
GRADIENT_SHAPE = "gradient_shape"
#: backward does not change the upstream gradient it receives.
GRAD_OUTPUT_MUTATION = "grad_output_mutation"
#: backward does not change the tensor forward returned.
OUTPUT_MUTATION = "output_mutation"
#: backward returns the same gradients twice for the same forward and upstream gradient.
DETERMINISM = "determinism"
#: backward is linear in its upstream gradient: ``b(2 g1 - g2 / 2) = 2 b(g1) - b(g2) / 2``.
LINEARITY = "linearity"
#: Parameter gradients add up over two backward calls (the course contract).
ACCUMULATION = "accumulation"
#: The input gradient matches central differences.
INPUT_GRADIENT = "input_gradient"
#: Every parameter gradient matches central differences.
PARAMETER_GRADIENT = "parameter_gradient"

#: Every check, in the order they run.
CHECKS = (
    PARAMETERS,
    FORWARD,
    OUTPUT_SHAPE,
    FORWARD_DETERMINISM,
    INPUT_MUTATION,
    BACKWARD,
    GRADIENT_SHAPE,
    GRAD_OUTPUT_MUTATION,
    OUTPUT_MUTATION,
    DETERMINISM,
    LINEARITY,
    ACCUMULATION,
    INPUT_GRADIENT,
    PARAMETER_GRADIENT,
)

_MODES = ("auto", "full", "fast")
_TARGET_KINDS = ("auto", "like", "class", "onehot", "prob")
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
#: Linear combination used by the linearity check; ``A + B != 1`` so an ignored gradient shows.
_LINEAR_A, _LINEAR_B = 2.0, -0.5


class _ModuleFailed(Exception):
    """A check failed inside the module (it raised or returned something unusable)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def _module_traceback(exc: BaseException) -> str:
    """Format ``exc`` with the checker's own frames left out: the module's code is what matters."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not str(Path(f.filename).resolve()).startswith(_PACKAGE_DIR)
    ]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines)


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ("," if t.dim() == 1 else "") + ")"


def _equal(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)))


def _flat_copy(t: Tensor) -> Tensor:
    """Return ``t`` flattened into a new float64 tensor."""
    t = t.detach()
    if t.dtype == torch.float64:
        return t.reshape(-1).clone()
    return t.reshape(-1).to(torch.float64)


def _unravel(flat: int, shape: Sequence[int]) -> tuple[int, ...]:
    index = []
    for size in reversed(tuple(shape)):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))


class _Session:
    """One run of every check on one module, with the module already in float64."""

    def __init__(
        self,
        adapted: Adapted,
        args: list[Any],
        perturbable: list[int],
        report: Report,
        *,
        mode: str,
        eps: float | None,
        atol: float,
        rtol: float,
        seed: int,
        max_full: int,
        projections: int,
    ) -> None:
        self.adapted = adapted
        self.args = args
        self.perturbable = perturbable
        self.report = report
        self.mode = mode
        self.eps = eps
        self.atol = atol
        self.rtol = rtol
        self.seed = seed
        self.max_full = max_full
        self.projections = projections
        self.generator = torch.Generator().manual_seed(seed + 2)
        self.snapshot = [a.clone() if isinstance(a, Tensor) else a for a in args]
        self.params: list[Param] = []
        self.repeatable = True
        self.out: Tensor | None = None

    # -- calling the module --------------------------------------------------------------------

    def forward(self, check: str) -> Tensor:
        torch.default_generator.manual_seed(self.seed)
        try:
            out = self.adapted.forward(*self.args)
        except Exception as exc:
            raise _ModuleFailed(
                CheckResult(
                    check,
                    False,
                    f"forward raised {type(exc).__name__}: {exc}",
                    [],
                    _module_traceback(exc),
                )
            ) from exc
        if not isinstance(out, Tensor):
            hint = " (a missing `return`?)" if out is None else ""
            raise _ModuleFailed(
                CheckResult(
                    check,
                    False,
                    f"forward returned {type(out).__name__}{hint}; it must return the output "
                    "tensor",
                )
            )
        return out

    def backward(self, grad: Tensor | None, check: str) -> list[Tensor | None]:
        """Call backward and return the gradient of each perturbable input (None: missing)."""
        try:
            result = self.adapted.backward(grad)
        except Exception as exc:
            raise _ModuleFailed(
                CheckResult(
                    check,
                    False,
                    f"backward raised {type(exc).__name__}: {exc}",
                    [],
                    _module_traceback(exc),
                )
            ) from exc
        if isinstance(result, Tensor):
            grads: list[Any] = [result]
        elif isinstance(result, tuple | list):
            grads = list(result)
            if len(grads) == len(self.args) and len(self.args) != len(self.perturbable):
                grads = [grads[i] for i in self.perturbable]
        else:
            hint = " (a missing `return`?)" if result is None else ""
            raise _ModuleFailed(
                CheckResult(
                    check,
                    False,
                    f"backward returned {type(result).__name__}{hint}; it must return the "
                    "gradient with respect to its input",
                )
            )
        grads += [None] * (len(self.perturbable) - len(grads))
        return [g if isinstance(g, Tensor) else None for g in grads[: len(self.perturbable)]]

    def fresh_params(self) -> list[Param]:
        params = self.adapted.params()
        if len(params) != len(self.params):
            raise _ModuleFailed(
                CheckResult(
                    PARAMETERS,
                    False,
                    f"the module listed {len(self.params)} parameters, then {len(params)}; "
                    "param() must return the same parameters every time",
                )
            )
        return params

    def zero_grads(self) -> None:
        for p in self.fresh_params():
            grad = p.read_grad()
            if isinstance(grad, Tensor):
                grad.detach().zero_()

    def read_grads(self) -> list[Tensor]:
        """Copy every parameter gradient (zeros where the module holds none)."""
        grads = []
        for p in self.fresh_params():
            grad = p.read_grad()
            if isinstance(grad, Tensor) and grad.shape == p.tensor.shape:
                grads.append(grad.detach().to(torch.float64).clone())
            else:
                grads.append(torch.zeros(p.tensor.shape, dtype=torch.float64))
        return grads

    def gradients(self, grad: Tensor | None, check: str, *, zero: bool = True) -> list[Tensor]:
        """Forward, backward(grad) and return the input gradients then the parameter gradients."""
        if zero:
            self.zero_grads()
        self.forward(check)
        inputs = self.backward(grad, check)
        inputs = [
            g.detach().to(torch.float64).clone()
            if g is not None
            else torch.zeros_like(self.args[i])
            for g, i in zip(inputs, self.perturbable, strict=True)
        ]
        return inputs + self.read_grads()

    def upstream(self, like: Tensor) -> Tensor | None:
        """Return a random, signed, non-uniform upstream gradient (None for a loss)."""
        if self.adapted.is_loss:
            return None
        return torch.randn(like.shape, generator=self.generator, dtype=torch.float64)

    def names(self) -> list[str]:
        if len(self.perturbable) == 1:
            inputs = ["input"]
        else:
            inputs = [f"input[{i}]" for i in self.perturbable]
        return inputs + [p.name for p in self.params]

    def tensors(self) -> list[Tensor]:
        return [self.args[i] for i in self.perturbable] + [p.tensor for p in self.params]

    # -- the checks ----------------------------------------------------------------------------

    def add(self, name: str, passed: bool, message: str = "", tensors: list | None = None) -> None:
        self.report.checks.append(CheckResult(name, passed, message, tensors or []))

    def run(self) -> None:
        stage = PARAMETERS
        try:
            stage = PARAMETERS
            self.check_parameters()
            stage = FORWARD
            self.check_forward()
            stage = BACKWARD
            if not self.check_backward():
                return
            stage = DETERMINISM
            self.check_determinism()
            if not self.adapted.is_loss:
                stage = LINEARITY
                self.check_linearity()
            if self.params:
                stage = ACCUMULATION
                self.check_accumulation()
            stage = INPUT_GRADIENT
            self.check_gradients()
        except _ModuleFailed as failure:
            result = failure.result
            ran = {c.name for c in self.report.checks}
            rest = [c for c in CHECKS[CHECKS.index(stage) :] if c not in ran and c != result.name]
            if rest:
                result.message += f"; not run after this failure: {', '.join(rest)}"
            self.report.checks.append(result)

    def check_parameters(self) -> None:
        try:
            self.params = self.adapted.params()
        except Exception as exc:
            raise _ModuleFailed(
                CheckResult(
                    PARAMETERS,
                    False,
                    f"listing parameters raised {type(exc).__name__}: {exc}",
                    [],
                    _module_traceback(exc),
                )
            ) from exc
        listed = ", ".join(f"{p.name} {_shape(p.tensor)}" for p in self.params)
        self.add(PARAMETERS, True, listed or "no parameters")

    def check_forward(self) -> None:
        out = self.forward(FORWARD)
        if not out.is_floating_point():
            raise _ModuleFailed(
                CheckResult(
                    FORWARD,
                    False,
                    f"forward returned a {out.dtype} tensor; gradients need a floating output",
                )
            )
        if not bool(torch.isfinite(out).all()):
            raise _ModuleFailed(
                CheckResult(
                    FORWARD,
                    False,
                    f"forward returned {int((~torch.isfinite(out)).sum())} non-finite values "
                    f"(nan or inf) of {out.numel()} at the check's inputs; pass inputs where the "
                    "function is defined (e.g. input_range=(0.05, 0.95) for a log)",
                )
            )
        self.add(FORWARD, True, f"output {_shape(out)} {out.dtype}")
        self.out = out
        self.check_output_shape(out)
        self.check_input_mutation("forward")
        second = self.forward(FORWARD_DETERMINISM)
        if _equal(out, second):
            self.add(FORWARD_DETERMINISM, True)
        else:
            raise _ModuleFailed(
                CheckResult(
                    FORWARD_DETERMINISM,
                    False,
                    "two forwards on the same input with torch's generator seeded alike returned "
                    f"different outputs (max difference {float((out - second).abs().max()):.3g}); "
                    "draw randomness from torch's global generator (torch.rand, torch.bernoulli), "
                    "not from random, numpy or a private generator, and keep no state that "
                    "changes the output between calls",
                )
            )

    def check_output_shape(self, out: Tensor) -> None:
        problems = []
        if out.dtype != torch.float64:
            problems.append(
                f"forward returned {out.dtype} for float64 inputs and parameters: it casts "
                "somewhere (e.g. builds a tensor with the default dtype); use the input's dtype"
            )
        first = self.args[self.perturbable[0]] if self.perturbable else None
        if self.adapted.is_loss:
            if out.numel() != 1:
                problems.append(
                    f"a loss must return one value (a 0-dim tensor), got shape {_shape(out)}"
                )
        elif first is not None and first.dim() >= 2:
            if out.dim() == 0 or out.shape[0] != first.shape[0]:
                problems.append(
                    f"output shape {_shape(out)} lost the batch dimension of input shape "
                    f"{_shape(first)}: expected ({first.shape[0]}, ...)"
                )
            features = getattr(self.adapted.module, "out_features", None)
            if isinstance(features, int) and (out.dim() == 0 or out.shape[-1] != features):
                problems.append(
                    f"output shape {_shape(out)} does not end with out_features={features}"
                )
        self.add(OUTPUT_SHAPE, not problems, "; ".join(problems) or f"{_shape(out)} {out.dtype}")

    def check_input_mutation(self, during: str) -> None:
        changed = [
            i
            for i, (a, s) in enumerate(zip(self.args, self.snapshot, strict=True))
            if isinstance(a, Tensor) and not _equal(a, s)
        ]
        previous = next((c for c in self.report.checks if c.name == INPUT_MUTATION), None)
        if changed:
            message = (
                f"{during} changed its input in place (argument {', '.join(map(str, changed))}); "
                "a module must not write into tensors it receives: compute into a new tensor "
                "(e.g. x.clamp(min=0), not x.clamp_(min=0) or x[x < 0] = 0)"
            )
            for i in changed:
                self.args[i].copy_(self.snapshot[i])
            if previous is None:
                self.add(INPUT_MUTATION, False, message)
            elif previous.passed:
                previous.passed, previous.message = False, message
        elif previous is None:
            self.add(INPUT_MUTATION, True)

    def check_backward(self) -> bool:
        self.zero_grads()
        out = self.forward(BACKWARD)
        out_copy = out.clone()
        grad = self.upstream(out)
        grad_copy = grad.clone() if grad is not None else None
        inputs = self.backward(grad, BACKWARD)
        missing = [n for n, g in zip(self.names(), inputs, strict=False) if g is None]
        if missing:
            raise _ModuleFailed(
                CheckResult(BACKWARD, False, f"backward returned no gradient for {missing}")
            )
        self.add(BACKWARD, True)
        shapes_ok = self.check_gradient_shape(inputs)
        if grad is not None:
            self.add(
                GRAD_OUTPUT_MUTATION,
                _equal(grad, grad_copy),
                ""
                if _equal(grad, grad_copy)
                else "backward changed the upstream gradient it received, in place; the caller may "
                "reuse it: compute into a new tensor (grad * mask, not grad.mul_(mask) or "
                "grad[x < 0] = 0)",
            )
        self.add(
            OUTPUT_MUTATION,
            _equal(out, out_copy),
            ""
            if _equal(out, out_copy)
            else "backward changed the tensor forward returned, in place; the caller still "
            "holds it "
            "(e.g. out.mul_(1 - out) turns the output into the derivative): use out * (1 - out)",
        )
        self.check_input_mutation("backward")
        return shapes_ok

    def check_gradient_shape(self, inputs: list[Tensor | None]) -> bool:
        problems = []
        for name, g, i in zip(self.names(), inputs, self.perturbable, strict=False):
            x = self.args[i]
            if g.shape != x.shape:
                problems.append(f"{name} gradient has shape {_shape(g)}, input has {_shape(x)}")
            elif g.dtype != x.dtype:
                problems.append(f"{name} gradient is {g.dtype}, input is {x.dtype}")
        for p in self.fresh_params():
            g = p.read_grad()
            if not isinstance(g, Tensor):
                problems.append(f"parameter {p.name} has no gradient after backward")
            elif g.shape != p.tensor.shape:
                problems.append(
                    f"parameter {p.name} gradient has shape {_shape(g)}, the parameter "
                    f"{_shape(p.tensor)}"
                )
            elif g.dtype != p.tensor.dtype:
                problems.append(f"parameter {p.name} gradient is {g.dtype}, it is {p.tensor.dtype}")
        shape_problems = [p for p in problems if "shape" in p or "no gradient" in p]
        self.add(GRADIENT_SHAPE, not problems, "; ".join(problems))
        if shape_problems:
            self.report.checks[-1].message += "; gradients not compared"
        return not shape_problems

    def check_determinism(self) -> None:
        grad = self.upstream(self.out)
        first = self.gradients(grad, DETERMINISM)
        second = self._collect_last(DETERMINISM, grad)
        differ = [
            n for n, a, b in zip(self.names(), first, second, strict=True) if not _equal(a, b)
        ]
        if differ:
            self.add(
                DETERMINISM,
                False,
                f"backward returned different gradients for {', '.join(differ)} on two runs "
                "with the same input and upstream gradient; it must depend only on what "
                "forward cached and on the upstream gradient (no random numbers, no state)",
            )
            return
        self.add(DETERMINISM, True)
        # Can backward run twice after one forward? If not, the Jacobian loop re-runs forward.
        self.zero_grads()
        try:
            inputs = self.backward(grad, DETERMINISM)
            again = [g if g is not None else torch.zeros(0) for g in inputs] + self.read_grads()
            self.repeatable = all(_equal(a, b) for a, b in zip(first, again, strict=True))
        except _ModuleFailed:
            self.repeatable = False

    def _collect_last(self, check: str, grad: Tensor | None) -> list[Tensor]:
        """Return the gradients of a backward that runs after a forward and an RNG draw."""
        self.zero_grads()
        self.forward(check)
        torch.rand(16)  # a backward drawing random numbers now draws different ones
        inputs = self.backward(grad, check)
        inputs = [
            g.detach().to(torch.float64).clone()
            if g is not None
            else torch.zeros_like(self.args[i])
            for g, i in zip(inputs, self.perturbable, strict=True)
        ]
        return inputs + self.read_grads()

    def check_linearity(self) -> None:
        g1, g2 = self.upstream(self.out), self.upstream(self.out)
        r1 = self.gradients(g1, LINEARITY)
        r2 = self.gradients(g2, LINEARITY)
        r12 = self.gradients(_LINEAR_A * g1 + _LINEAR_B * g2, LINEARITY)
        bad = []
        for name, a, b, c in zip(self.names(), r1, r2, r12, strict=True):
            expected = _LINEAR_A * a + _LINEAR_B * b
            if not bool(((c - expected).abs() <= self.atol + self.rtol * expected.abs()).all()):
                error = float((c - expected).abs().max())
                bad.append(f"{name} (max error {error:.3g})")
        message = ""
        if bad:
            message = (
                f"backward is not linear in its upstream gradient for {', '.join(bad)}: "
                f"backward({_LINEAR_A:g} g1 + {_LINEAR_B:g} g2) != {_LINEAR_A:g} backward(g1) + "
                f"{_LINEAR_B:g} backward(g2); it must multiply the upstream gradient by the local "
                "derivative (a backward that ignores the upstream gradient, or adds a constant, "
                "fails here)"
            )
        self.add(LINEARITY, not bad, message)

    def check_accumulation(self) -> None:
        grad = self.upstream(self.out)
        self.zero_grads()
        before = [p.read_grad() for p in self.fresh_params()]
        once = self.gradients(grad, ACCUMULATION, zero=False)[len(self.perturbable) :]
        twice = self.gradients(grad, ACCUMULATION, zero=False)[len(self.perturbable) :]
        after = [p.read_grad() for p in self.fresh_params()]
        problems = []
        for p, g1, g2, b, a in zip(self.params, once, twice, before, after, strict=True):
            tolerance = self.atol + self.rtol * (2 * g1).abs()
            if bool(((g2 - 2 * g1).abs() <= tolerance).all()):
                continue
            if isinstance(b, Tensor) and a is not b:
                problems.append(
                    f"{p.name}: backward replaced the gradient tensor with a new one; "
                    "optimizers holding the pair from param() never see it: add in place "
                    "(grad += ..., not grad = ...)"
                )
            elif bool(((g2 - g1).abs() <= self.atol + self.rtol * g1.abs()).all()):
                problems.append(
                    f"{p.name}: after two backward calls the gradient equals one call's, not the "
                    "sum; backward overwrites the gradient instead of adding to it (course "
                    "contract: grad += ..., and forward must not reset it)"
                )
            else:
                error = float((g2 - 2 * g1).abs().max())
                problems.append(
                    f"{p.name}: after two backward calls the gradient is not twice one call's "
                    f"(max error {error:.3g}); backward must ADD into parameter gradients"
                )
        self.add(ACCUMULATION, not problems, "; ".join(problems))

    # -- the gradients against finite differences ----------------------------------------------

    def check_gradients(self) -> None:
        assert self.out is not None
        out = self.out
        dtype = out.dtype if out.dtype in (torch.float16, torch.bfloat16, torch.float32) else None
        dtype = dtype or torch.float64
        self.dtype_eps = float(torch.finfo(dtype).eps)
        self.base = numeric.base_step(dtype, self.eps)
        self.screen = numeric.screening_step(dtype)
        self.report.options["step"] = self.base
        tensors = self.tensors()
        names = self.names()
        M = out.numel()
        full = [
            self.mode == "full" or (self.mode == "auto" and M * t.numel() <= self.max_full)
            for t in tensors
        ]
        analytic_full = self.analytic_full(M) if any(full) else None
        analytic_fast = self.analytic_fast() if not all(full) else None
        results = []
        for index, (name, tensor) in enumerate(zip(names, tensors, strict=True)):
            check = INPUT_GRADIENT if index < len(self.perturbable) else PARAMETER_GRADIENT
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
                hint = getattr(self, "_hints", {})
                notes = [hint[r.tensor] for r in failed if r.tensor in hint]
                if notes:
                    message += " (" + "; ".join(notes) + ")"
            else:
                message = ", ".join(f"{r.tensor} {r.mode}" for r in mine)
            self.add(check, not failed, message, mine)

    def analytic_full(self, M: int) -> list[Tensor]:
        """Return per tensor the Jacobian (outputs x entries) from backward with basis vectors."""
        tensors = self.tensors()
        jacobians = [torch.zeros(M, t.numel(), dtype=torch.float64) for t in tensors]
        rows = [j.numpy() for j in jacobians]
        self.forward(INPUT_GRADIENT)
        basis = None
        # The gradient tensors, once backward is seen to keep them (no refetch per row).
        kept: list[Tensor] | None = None
        for i in range(M):
            before = kept if kept is not None else [p.read_grad() for p in self.fresh_params()]
            for grad in before:
                if isinstance(grad, Tensor):
                    grad.detach().zero_()
            if i > 0 and not self.repeatable:
                self.forward(INPUT_GRADIENT)
            if not self.adapted.is_loss:
                basis = torch.zeros(self.out.shape, dtype=torch.float64)
                basis.numpy().reshape(-1)[i] = 1.0
            grads = self.backward(basis, INPUT_GRADIENT)
            after = kept if kept is not None else [p.read_grad() for p in self.fresh_params()]
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
        count = 1 if self.adapted.is_loss else self.projections
        vs, rows = [], []
        for _ in range(count):
            v = self.upstream(self.out)
            rows.append(self.gradients(v, INPUT_GRADIENT))
            vs.append(torch.ones(1, dtype=torch.float64) if v is None else v.reshape(-1))
        return torch.stack(vs), rows

    def evaluate(self, check: str, M: int) -> Callable[[], Any]:
        """Return f(): forward (seeded) and the flat float64 output as a numpy array."""

        def f() -> Any:
            out = self.forward(check)
            if out.numel() != M:
                raise _ModuleFailed(
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
                raise _ModuleFailed(
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
            forward, args = self.adapted.forward, self.args
            seed, generator = self.seed, torch.default_generator
            r, j = 0, rows[0] if rows else 0
            try:
                try:
                    # The hot loop: numpy writes, no checks.
                    for r, j in enumerate(rows):
                        view[j] = values[j]
                        generator.manual_seed(seed)
                        out_np[r] = forward(*args).numpy().reshape(-1)
                        view[j] = xs[j]
                except Exception:
                    # Something unusual (an output that needs detaching, a wrong shape, the
                    # module raising): finish with f(), which diagnoses and attributes it.
                    done = r
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
            atol=self.atol,
            rtol=self.rtol,
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
                atol=self.atol,
                rtol=self.rtol,
                dtype_eps=self.dtype_eps,
            )
        result = self.tensor_result(name, "full", comparison)
        if result.worst_index is not None:
            entry, output = result.worst_index
            result.worst_index = (_unravel(output, self.out.shape), _unravel(entry, tensor.shape))
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
        L = self.projections
        W = torch.randn(L, x.numel(), generator=self.generator, dtype=torch.float64)
        W = W * x.abs().clamp(min=1.0)

        def sweep(step: float, rows: list[int]) -> tuple[Tensor, Tensor]:
            """Return the outputs at ``x + step * W[r]`` and the exact displacements."""
            outputs, moves = [], []
            try:
                for r in rows:
                    moved = x + step * W[r]
                    flat.copy_(moved)
                    outputs.append(torch.from_numpy(f().copy()))
                    moves.append(moved - x)
            finally:
                flat.copy_(x)
            return torch.stack(outputs), torch.stack(moves)

        def tolerances(jd: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
            # Per-entry tolerances combined in quadrature over each projection: atol over every
            # entry, rtol over the Jacobian's entries (estimated from both sides' projections).
            atol = self.atol * vs.norm(dim=1)[None, :] * d.norm(dim=1)[:, None]
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
            rtol=self.rtol,
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
                rtol=self.rtol,
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
            atol=self.atol,
            rtol=self.rtol,
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
        hints = getattr(self, "_hints", {})
        self._hints = hints
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


def _validate(mode: str, atol: float, rtol: float, max_full: int, projections: int) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if not (atol >= 0 and rtol >= 0) or (atol == 0 and rtol == 0):
        raise ValueError(
            f"atol and rtol must be >= 0 and not both 0, got atol={atol!r}, rtol={rtol!r}; "
            "the defaults are atol=1e-5, rtol=1e-3"
        )
    if not (isinstance(max_full, int) and max_full >= 0):
        raise ValueError(f"max_full must be an int >= 0, got {max_full!r}")
    if not (isinstance(projections, int) and projections >= 1):
        raise ValueError(f"projections must be an int >= 1, got {projections!r}")


def _describe(module: Any) -> str:
    try:
        text = repr(module)
    except Exception:
        text = ""
    if not text or (text.startswith("<") and " at 0x" in text) or len(text) > 80 or "\n" in text:
        return type(module).__name__
    return text


def _prepare_args(
    adapted: Adapted,
    module: Any,
    inputs: tuple[Any, ...],
    target: Any,
    target_kind: str,
    input_range: Sequence[float] | None,
    seed: int,
) -> tuple[list[Any], list[int]]:
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"input {i} is a {type(x).__name__}; gradcheck takes tensors as inputs")
    if target_kind not in _TARGET_KINDS:
        raise ValueError(
            f"target_kind must be one of {', '.join(_TARGET_KINDS)}, got {target_kind!r}"
        )

    def copy(x: Tensor) -> Tensor:
        dtype = torch.float64 if x.is_floating_point() else x.dtype
        return torch.empty(x.shape, dtype=dtype).copy_(x.detach())

    if adapted.is_loss:
        kind, range_default = loss_defaults(module)
        if target_kind != "auto":
            kind = target_kind
        if inputs:
            prediction = inputs[0]
        else:
            prediction = make_input(
                default_shape(module), input_range=input_range or range_default, seed=seed
            )
        if len(inputs) > 2 or (len(inputs) == 2 and target is not None):
            raise TypeError(
                f"a loss takes (prediction, target); got {len(inputs)} inputs"
                + (" and target=" if target is not None else "")
            )
        if len(inputs) == 2:
            target = inputs[1]
        if target is None:
            target = make_target(prediction, kind=kind, seed=seed)
        if not isinstance(target, Tensor):
            raise TypeError(f"target is a {type(target).__name__}; pass a tensor")
        return [copy(prediction), copy(target)], [0]
    if target is not None:
        raise TypeError(
            f"target= is for losses; {type(module).__name__} is not one (its backward takes a "
            "gradient). Pass every input positionally"
        )
    if not inputs:
        inputs = (make_input(default_shape(module), input_range=input_range, seed=seed),)
    args = [copy(x) for x in inputs]
    perturbable = [i for i, x in enumerate(args) if x.is_floating_point()]
    if not perturbable:
        raise TypeError("gradcheck needs at least one floating-point input to differentiate")
    return args, perturbable


def check(
    module: Any,
    *inputs: Tensor,
    target: Tensor | None = None,
    target_kind: str = "auto",
    input_range: Sequence[float] | None = None,
    mode: str = "auto",
    eps: float | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    train: bool | None = None,
    max_full: int = 1_000_000,
    projections: int = 8,
) -> Report:
    r"""Check a module's backward against finite differences and its behaviour; return a report.

    The check runs in float64: inputs are copied to float64, and the module's parameters and
    gradients are promoted in place (same Python objects, new storage), then restored to their
    exact original values and dtypes, also when the module fails. Torch's global generator is
    re-seeded with ``seed`` before every forward (a Dropout sees the same mask each time) and
    restored to the caller's state afterwards. The check runs single-threaded
    (``torch.set_num_threads(1)``, restored after): its many small forwards gain nothing from
    intra-op threads.

    The module's gradient with respect to ``x`` is compared entry by entry with the central
    difference :math:`(f(x + h) - f(x - h)) / 2h`, with :math:`h = \epsilon^{1/3} \max(1, |x|)`
    (:math:`\epsilon` the dtype's machine epsilon). An entry passes when

    .. math::
        |\text{numerical} - \text{analytical}| \le \text{atol} + \text{rtol}\,|\text{numerical}|
        + \text{rounding} + \text{truncation},

    where entries that fail at :math:`h` are evaluated again at :math:`h/2`: the numerical value
    becomes the Richardson extrapolation and ``truncation`` the measured :math:`|D(h) - D(h/2)|`.
    Entries where the one-sided slopes disagree and keep disagreeing at :math:`h/2` straddle a
    kink: they are skipped and counted.

    Args:
        module: a module with the course protocol (or a variant), a ``torch.nn.Module``, or a loss
            (``forward(prediction, target)``, ``backward()``); see ``gradcheck._adapt``.
        *inputs: the inputs to forward. Default: one input of shape
            :func:`gradcheck.inputs.default_shape` drawn by :func:`make_input`. For a loss, the
            prediction and optionally the target.
        target: a loss's target. Default: drawn by :func:`make_target` (see ``target_kind``).
        target_kind: ``"like"``, ``"class"``, ``"onehot"``, ``"prob"``, or ``"auto"`` to guess from
            the loss's name (class indices for cross-entropy, probabilities for BCE).
            Default: ``"auto"``.
        input_range: ``(low, high)`` for generated inputs. Default: ``(-2, 2)``; ``(0.05, 0.95)``
            for a BCE loss.
        mode: ``"full"`` compares every Jacobian entry (one backward per output entry, two
            forwards per input or parameter entry); ``"fast"`` compares ``projections`` x
            ``projections`` random signed projections per tensor; ``"auto"`` uses full for each
            tensor whose Jacobian has at most ``max_full`` entries. Default: ``"auto"``.
        eps: the relative step ``h / max(1, |x|)``. Default: ``None``, the dtype's cube root of
            machine epsilon (``6.1e-6`` for float64).
        atol: absolute tolerance per entry. Default: ``1e-5``.
        rtol: relative tolerance per entry. Default: ``1e-3``.
        seed: seeds generated inputs, targets, upstream gradients, and torch's global generator
            before each forward. Default: ``0``.
        train: ``True`` or ``False`` to put the module in train or eval mode for the check
            (restored after); ``None`` leaves it as it is. Default: ``None``.
        max_full: the largest Jacobian (output entries x tensor entries) that ``"auto"`` compares
            in full. Default: ``1_000_000``.
        projections: random upstream gradients and random input directions in fast mode.
            Default: ``8``.

    Returns:
        a :class:`Report` with one :class:`CheckResult` per check (see :data:`CHECKS`).
    """
    _validate(mode, atol, rtol, max_full, projections)
    adapted = adapt(module)
    args, perturbable = _prepare_args(
        adapted, module, inputs, target, target_kind, input_range, seed
    )
    report = Report(
        module=_describe(module),
        options={
            "mode": mode,
            "eps": eps,
            "atol": atol,
            "rtol": rtol,
            "seed": seed,
            "train": train,
            "max_full": max_full,
            "projections": projections,
            "loss": adapted.is_loss,
            "input_shapes": [list(a.shape) for a in args],
        },
    )
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    training = adapted.training
    undo: Callable[[], None] | None = None
    try:
        # Thousands of forwards on small tensors: intra-op threads only add overhead, and on a
        # busy machine a two-thread reduction can take milliseconds instead of microseconds.
        torch.set_num_threads(1)
        if train is not None:
            adapted.train(train)
        try:
            undo = adapted.promote()
        except Exception as exc:
            report.checks.append(
                CheckResult(
                    PARAMETERS,
                    False,
                    f"listing parameters raised {type(exc).__name__}: {exc}",
                    [],
                    _module_traceback(exc),
                )
            )
            return report
        _Session(
            adapted,
            args,
            perturbable,
            report,
            mode=mode,
            eps=eps,
            atol=atol,
            rtol=rtol,
            seed=seed,
            max_full=max_full,
            projections=projections,
        ).run()
    finally:
        if undo is not None:
            undo()
        if train is not None and training is not None:
            adapted.train(training)
        torch.set_rng_state(rng_state)
        torch.set_num_threads(threads)
    return report


def assert_gradients(module: Any, *inputs: Tensor, **options: Any) -> Report:
    """Run :func:`check` and raise :class:`GradcheckError` (an ``AssertionError``) if it fails.

    Takes the same arguments and keyword-only options as :func:`check`.

    Returns:
        the passing :class:`Report`.

    Raises:
        GradcheckError: with the report as its message and as ``.report``.
    """
    __tracebackhide__ = True
    report = check(module, *inputs, **options)
    if not report.passed:
        raise GradcheckError(report)
    return report
