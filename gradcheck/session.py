"""One check of one module: the state it keeps, and every call into the module.

Everything that calls the module's code goes through :class:`Session`, so that an exception
from the module, or a result the checker cannot use, becomes a failed check attributed to the
module (:class:`ModuleFailed`) rather than a crash of the checker.
"""

from __future__ import annotations

import inspect
import re
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gradcheck._adapt import Adapted, Param
from gradcheck._params import ADAPTER
from gradcheck.names import PARAMETERS
from gradcheck.report import CheckResult, Report

__all__ = [
    "ModuleFailed",
    "Options",
    "Session",
    "Unsupported",
    "USER_ERRORS",
    "equal",
    "exception_text",
    "module_traceback",
    "raised",
    "shape_text",
]

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


@dataclass(frozen=True)
class Options:
    """The numerical options of one check (see :func:`gradcheck.check` for each)."""

    mode: str
    eps: float | None
    atol: float
    rtol: float
    seed: int
    max_full: int
    projections: int
    dtype: torch.dtype


#: What the module's code may raise and the checker reports as the module's failure: its
#: exceptions, and a ``sys.exit`` or ``KeyboardInterrupt`` from it (never the end of the run).
USER_ERRORS = (Exception, SystemExit, KeyboardInterrupt)


class Unsupported(Exception):
    """The module cannot be checked as it is (the report says why, and what to do)."""


class ModuleFailed(Exception):
    """A check failed inside the module (it raised or returned something unusable)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def exception_text(exc: BaseException) -> str:
    """``TypeName: message``, even for an exception whose ``str()`` raises."""
    try:
        message = str(exc)
    except Exception:  # a user's exception class with a broken __str__
        message = "<its message could not be printed>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def module_traceback(exc: BaseException) -> str:
    """Format ``exc`` with the checker's own frames left out: the module's code is what matters."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not str(Path(f.filename).resolve()).startswith(_PACKAGE_DIR)
    ]
    lines = ["Traceback (most recent call last):\n"]
    lines += traceback.format_list(frames)
    lines.append(exception_text(exc) + "\n")
    return "".join(lines)


def raised(check: str, action: str, exc: BaseException) -> ModuleFailed:
    """The failure for "the module raised": ``check`` failed because ``action`` raised ``exc``."""
    return ModuleFailed(
        CheckResult(
            check, False, f"{action} raised {exception_text(exc)}", [], module_traceback(exc)
        )
    )


def _foreign_arrays(module: Any, exc: BaseException) -> str | None:
    """Why a module written for its own array type (a list-of-lists ``Matrix``) cannot be
    checked, when forward choked on a tensor and its file imports neither torch nor numpy."""
    if not isinstance(exc, AttributeError | TypeError) or "Tensor" not in str(exc):
        return None
    source = sys.modules.get(type(module).__module__)
    if source is None or type(module).__module__.split(".")[0] in ("torch", "numpy", "gradcheck"):
        return None
    for value in vars(source).values():
        origin = getattr(value, "__name__", "") if isinstance(value, types.ModuleType) else ""
        origin = origin or str(getattr(value, "__module__", "") or "")
        if origin.split(".")[0] in ("torch", "numpy"):
            return None
    return (
        f"{type(module).__name__} works on an array type of its own: forward raised "
        f"{exception_text(exc)} on a torch tensor, and {source.__name__} imports neither torch "
        "nor numpy. gradcheck drives modules on torch tensors or numpy arrays; write an "
        "adapter that converts to your type and back"
    )


def _unbound_import(module: Any, exc: BaseException, method: str) -> str | None:
    """Why a module whose file imports a name that did not bind (a compiled extension not
    built, imported in a ``try``) cannot be checked: forward or backward raised NameError on
    it. None for any other NameError (a typo is the module's bug)."""
    name = getattr(exc, "name", None)
    if not isinstance(exc, NameError) or not name:
        return None
    owner = module if callable(module) and not isinstance(module, type) else type(module)
    source_module = sys.modules.get(getattr(owner, "__module__", "") or "")
    try:
        source = inspect.getsource(source_module) if source_module else ""
    except (OSError, TypeError):
        return None
    line = next(
        (
            text.strip()
            for text in source.splitlines()
            if "import" in text and re.search(rf"\b{re.escape(name)}\b", text)
        ),
        None,
    )
    if line is None:
        return None
    return (
        f"{method} raised NameError: {name!r} is not defined: {source_module.__name__} imports "
        f"it ({line}), and that import did not run (a compiled extension not built? its file "
        "printed why at import); build or install it, then check again"
    )


def shape_text(t: Tensor) -> str:
    """A shape as Python writes a tuple: ``(4, 3)``, ``(3,)``, ``()``."""
    return "(" + ", ".join(map(str, t.shape)) + ("," if t.dim() == 1 else "") + ")"


def equal(a: Tensor, b: Tensor) -> bool:
    """Exact equality that treats nan as equal to nan."""
    return a.shape == b.shape and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)))


class Session:
    """One run of every check on one module, with its parameters already in the check's dtype.

    Args:
        adapted: the module behind the checker's interface.
        args: the inputs to forward (copies owned by the session).
        perturbable: the indices of ``args`` whose gradients are checked.
        report: where the checks' results go.
        options: the numerical options.
    """

    def __init__(
        self,
        adapted: Adapted,
        args: list[Any],
        perturbable: list[int],
        report: Report,
        options: Options,
    ) -> None:
        self.adapted = adapted
        self.args = args
        self.perturbable = perturbable
        self.report = report
        self.options = options
        self.generator = torch.Generator().manual_seed(options.seed + 2)
        self.snapshot = [a.clone() if isinstance(a, Tensor) else a for a in args]
        self.params: list[Param] = []
        #: The output of the first forward, at the unperturbed inputs.
        self.out: Tensor | None = None
        #: Whether backward may run twice after one forward (decided by the determinism check).
        self.repeatable = True
        #: Whether forward or backward wrote into its input: every later call gets fresh copies.
        self.mutates = False
        #: Whether backward returns the input gradient (a container may return None).
        self.returns_input_gradient = True
        #: Listed parameters forward does not read and backward gives no gradient (a bias
        #: with ``use_bias=False``): left out of every later check.
        self.unused: set[str] = set()

    # -- calling the module --------------------------------------------------------------------

    def call_args(self) -> list[Any]:
        """The arguments for one forward: the session's own, or copies once the module is known
        to write into its inputs (so that a later check never sees corrupted inputs)."""
        if not self.mutates:
            return self.args
        return [a.clone() if isinstance(a, Tensor) else a for a in self.args]

    def forward(self, check: str) -> Tensor:
        """Run forward with torch's generator seeded; return its output as a tensor."""
        torch.default_generator.manual_seed(self.options.seed)
        args = self.call_args()
        try:
            out = self.adapted.forward(*args)
        except USER_ERRORS as exc:
            foreign = _foreign_arrays(self.adapted.module, exc) or _unbound_import(
                self.adapted.module, exc, "forward"
            )
            if foreign:
                raise Unsupported(foreign) from exc
            raise raised(check, "forward", exc) from exc
        if isinstance(out, tuple | list) and any(isinstance(o, Tensor) for o in out):
            kinds = ", ".join(type(o).__name__ for o in out)
            raise Unsupported(
                f"forward returned a {type(out).__name__} of {len(out)} ({kinds}); the protocol's "
                "forward returns the output tensor alone. A forward returning (output, cache) "
                "or (output, loss) needs an adapter whose forward returns the output: "
                f"{ADAPTER}"
            )
        if not isinstance(out, Tensor):
            hint = " (a missing `return`?)" if out is None else ""
            raise ModuleFailed(
                CheckResult(
                    check,
                    False,
                    f"forward returned {type(out).__name__}{hint}; it must return the output "
                    "tensor",
                )
            )
        problem = self._unusable(out, args)
        if problem:
            raise ModuleFailed(CheckResult(check, False, problem))
        return out

    def _unusable(self, out: Tensor, args: list[Any]) -> str | None:
        """Why the checker cannot compare ``out`` (None: it can)."""
        if out.layout != torch.strided:
            layout = str(out.layout).removeprefix("torch.")
            return f"forward returned a {layout} tensor; return a dense one (.to_dense())"
        if out.device.type != "cpu":
            return (
                f"forward returned a tensor on the {out.device.type} device, whose values cannot "
                "be compared; return it on the CPU, where its input is"
            )
        for i, (a, before) in enumerate(zip(args, self.snapshot, strict=True)):
            if isinstance(a, Tensor) and a.shape != before.shape:
                return (
                    f"forward resized input {i} from {shape_text(before)} to {shape_text(a)}; "
                    "it must leave its input as it is"
                )
        if self.out is not None and out.shape != self.out.shape:
            return (
                f"forward returned shape {shape_text(out)} after {shape_text(self.out)} for the "
                "same input shape: its output must not depend on earlier calls"
            )
        return None

    def backward(
        self, grad: Tensor | None, check: str, *, copy: bool = True
    ) -> list[Tensor | None]:
        """Call backward and return the gradient of each perturbable input (None: missing).

        The module gets a copy of ``grad`` unless ``copy`` is False: a module that keeps the
        upstream gradient itself (``self.db = grad``) must not see the checker's own tensor
        change when the checker zeroes gradients.
        """
        if copy and grad is not None:
            grad = grad.clone()
        try:
            result = self.adapted.backward(grad)
        except USER_ERRORS as exc:
            unbound = _unbound_import(self.adapted.module, exc, "backward")
            if unbound:
                raise Unsupported(unbound) from exc
            raise raised(check, "backward", exc) from exc
        if result is None and (self.params or not self.returns_input_gradient):
            return [None] * len(self.perturbable)  # check_backward decides what that means
        if isinstance(result, Tensor):
            grads: list[Any] = [result]
        elif isinstance(result, tuple | list):
            grads = list(result)
            if len(grads) == len(self.args) and len(self.args) != len(self.perturbable):
                grads = [grads[i] for i in self.perturbable]
        else:
            hint = " (a missing `return`?)" if result is None else ""
            raise ModuleFailed(
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
        """The parameters listed afresh; the same count as at the start, or a failure."""
        try:
            params = self.adapted.params()
        except USER_ERRORS as exc:
            raise raised(PARAMETERS, "listing parameters", exc) from exc
        listed = len(self.params) + len(self.unused)
        if len(params) != listed:
            raise ModuleFailed(
                CheckResult(
                    PARAMETERS,
                    False,
                    f"the module listed {listed} parameters, then {len(params)}; "
                    "param() must return the same parameters every time",
                )
            )
        return [p for p in params if p.name not in self.unused]

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

    def input_grads(self, grads: list[Tensor | None]) -> list[Tensor]:
        """Copies of the input gradients backward returned (zeros where it returned none)."""
        return [
            g.detach().to(torch.float64).clone()
            if g is not None
            else torch.zeros(self.args[i].shape, dtype=torch.float64)
            for g, i in zip(grads, self.perturbable, strict=True)
        ]

    def gradients(self, grad: Tensor | None, check: str, *, zero: bool = True) -> list[Tensor]:
        """Forward, backward(grad) and return the input gradients then the parameter gradients."""
        if zero:
            self.zero_grads()
        self.forward(check)
        return self.input_grads(self.backward(grad, check)) + self.read_grads()

    def upstream(self, like: Tensor) -> Tensor | None:
        """Return a random, signed, non-uniform upstream gradient (None for a loss)."""
        if self.adapted.is_loss:
            return None
        return torch.randn(like.shape, generator=self.generator, dtype=torch.float64).to(like.dtype)

    # -- what is compared ----------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the compared tensors: the inputs, then the parameters. An adapter's
        ``input_names`` (a function pair's ``x``, ``w``, ``b``) name the inputs."""
        named = getattr(self.adapted, "input_names", None)
        if named and len(named) == len(self.args):
            inputs = [named[i] for i in self.perturbable]
        elif len(self.perturbable) == 1:
            inputs = ["input"]
        else:
            inputs = [f"input[{i}]" for i in self.perturbable]
        return inputs + [p.name for p in self.params]

    def tensors(self) -> list[Tensor]:
        return [self.args[i] for i in self.perturbable] + [p.tensor for p in self.params]

    # -- reporting -----------------------------------------------------------------------------

    def add(self, name: str, passed: bool, message: str = "", tensors: list | None = None) -> None:
        self.report.checks.append(CheckResult(name, passed, message, tensors or []))

    def note(self, text: str) -> None:
        if text not in self.report.notes:
            self.report.notes.append(text)
