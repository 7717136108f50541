"""What a check found: :class:`Report`, :class:`CheckResult`, :class:`TensorResult`.

A report is plain data. ``str(report)`` is a short summary that names every failure with the
entry that failed worst; ``report.to_dict()`` is ready for :func:`json.dumps`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "GradcheckError", "Report", "TensorResult"]


def _num(value: float | None) -> float | None | str:
    """Return ``value`` as JSON can hold it (``inf`` and ``nan`` become strings)."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    return str(value)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


@dataclass
class TensorResult:
    """The verdict on one gradient: the input's or one parameter's.

    ``worst_index`` is the entry whose error is largest relative to its tolerance. In ``full`` mode
    it is ``(output_index, entry_index)``: the row and column of the Jacobian, each a tuple index
    into the output's and the tensor's shape. In ``vjp`` and ``autograd`` modes it is
    ``(k, entry_index)``: the upstream gradient ``k`` and the gradient entry. In ``fast`` mode it
    is ``(k, l)``: the upstream gradient ``k`` and the input direction ``l`` of the worst
    projection.

    Attributes:
        tensor: ``"input"`` (``"input[i]"`` for several inputs) or the parameter's name or index.
        passed: whether every compared entry is within its tolerance.
        mode: the method: ``"full"`` (every Jacobian entry compared), ``"vjp"`` (every entry of
            a few vector-Jacobian products), ``"fast"`` (random projections) or ``"autograd"``
            (every entry of the products against autograd's).
        max_abs_error: largest ``|numerical - analytical|`` over compared entries.
        max_rel_error: largest ``|numerical - analytical| / |numerical|`` over compared entries
            whose numerical value is not zero.
        worst_index: see above; ``None`` when nothing was compared.
        numerical: the finite-difference value at the worst entry.
        analytical: the backward's value at the worst entry.
        tolerance: the tolerance in force at the worst entry,
            ``atol + rtol * |numerical| + truncation``.
        truncation: the measured finite-difference error at the worst entry (Richardson), ``0``
            when the first step already agreed.
        atol: absolute tolerance.
        rtol: relative tolerance.
        entries: how many entries (or projections) were compared.
        kinks_skipped: entries skipped because the function is not differentiable there.
        scale: the largest entry of the tensor's Jacobian (the absolute tolerance in force is
            ``atol * min(1, scale)``).
        sensitivity: the relative error of the analytical values that would have failed (the
            worst entry's; see ``sensitivity_note``), ``None`` when not worked out.
        sensitivity_note: the method and its sensitivity in words.
        unrefined: failing entries left with their first (screening) verdict once enough others
            were confirmed wrong.
        samples: how many entries one forward moved (the batch's samples, when independent).
        oracle: what judged the tensor: ``"finite differences"``, ``"autograd"``, or
            ``"autograd, validated by finite differences along 2 directions"`` (``oracle="auto"``).
    """

    tensor: str
    passed: bool
    mode: str = "full"
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    worst_index: tuple | None = None
    numerical: float | None = None
    analytical: float | None = None
    tolerance: float | None = None
    truncation: float = 0.0
    atol: float = 0.0
    rtol: float = 0.0
    entries: int = 0
    kinks_skipped: int = 0
    scale: float = 1.0
    sensitivity: float | None = None
    sensitivity_note: str = ""
    unrefined: int = 0
    samples: int = 1
    oracle: str = "finite differences"

    @property
    def ratio(self) -> float:
        """Error at the worst entry over its tolerance (above 1 means failed)."""
        if self.numerical is None or self.analytical is None or not self.tolerance:
            return 0.0 if self.passed else math.inf
        return abs(self.numerical - self.analytical) / self.tolerance

    def describe(self) -> str:
        """One line: where the worst entry is, both values, its error and the tolerance."""
        if self.worst_index is None:
            return f"{self.tensor}: nothing compared"
        where = _index_text(self.mode, self.worst_index)
        error = abs(self.numerical - self.analytical)
        verdict = "<=" if error <= self.tolerance else ">"
        # Against autograd, the reference is autograd's value and the other backward's.
        reference, checked = (
            ("autograd", "backward")
            if self.mode == "autograd"
            else (
                "numerical",
                "analytical",
            )
        )
        text = (
            f"{self.tensor}{where}: {reference} {_fmt(self.numerical)} vs {checked} "
            f"{_fmt(self.analytical)}, error {_fmt(error)} {verdict} tolerance "
            f"{_fmt(self.tolerance)} "
        )
        if self.mode == "full":
            text += f"(atol {self.atol:g} + rtol {self.rtol:g} * |{_fmt(self.numerical)}|"
        elif self.mode == "vjp":
            text += f"(atol {self.atol:g} and rtol {self.rtol:g} per term of the product"
        elif self.mode == "autograd":
            text += f"(rounding level: atol {self.atol:.3g} + rtol {self.rtol:.3g} x |value|"
        else:
            text += f"(atol {self.atol:g} and rtol {self.rtol:g} per entry, over the projection"
        if self.truncation:
            text += f" + truncation {_fmt(self.truncation)}"
        noun = {"full": "entries", "fast": "projections"}.get(self.mode, "products' entries")
        text += f"); {self.entries} {noun}"
        if self.unrefined:
            text += f", {self.unrefined} judged by the first difference only"
        if self.kinks_skipped:
            text += f", {self.kinks_skipped} kinks skipped"
        if self.mode == "autograd" and self.oracle != "autograd":
            text += f"; {self.oracle}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "tensor": self.tensor,
            "passed": self.passed,
            "mode": self.mode,
            "max_abs_error": _num(self.max_abs_error),
            "max_rel_error": _num(self.max_rel_error),
            "worst_index": _jsonable_index(self.worst_index),
            "numerical": _num(self.numerical),
            "analytical": _num(self.analytical),
            "tolerance": _num(self.tolerance),
            "truncation": _num(self.truncation),
            "atol": self.atol,
            "rtol": self.rtol,
            "entries": self.entries,
            "kinks_skipped": self.kinks_skipped,
            "scale": _num(self.scale),
            "sensitivity": _num(self.sensitivity),
            "sensitivity_note": self.sensitivity_note,
            "unrefined": self.unrefined,
            "samples": self.samples,
            "oracle": self.oracle,
        }


def _index_text(mode: str, index: tuple) -> str:
    if mode == "fast":
        return f" projection (upstream {index[0]}, direction {index[1]})"
    if mode in ("vjp", "autograd"):
        return f"[{', '.join(map(str, index[1]))}] (upstream gradient {index[0]})"
    out_index, entry_index = index
    return f"[{', '.join(map(str, entry_index))}] -> output[{', '.join(map(str, out_index))}]"


def _jsonable_index(index: Any) -> Any:
    if isinstance(index, tuple | list):
        return [_jsonable_index(i) for i in index]
    return index


@dataclass
class CheckResult:
    """The verdict of one check (see the ``gradcheck.checks`` constants for the names).

    Attributes:
        name: the check, e.g. ``"input_gradient"`` or ``"accumulation"``.
        passed: its verdict.
        message: what failed and how to fix it; a short note when it passed.
        tensors: per-tensor verdicts (gradient checks; behaviour checks that compare tensors).
        traceback: the module's own traceback when it raised, else ``None``.
    """

    name: str
    passed: bool
    message: str = ""
    tensors: list[TensorResult] = field(default_factory=list)
    traceback: str | None = None

    @property
    def kinks_skipped(self) -> int:
        """Entries skipped at non-differentiable points, summed over the tensors."""
        return sum(t.kinks_skipped for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "kinks_skipped": self.kinks_skipped,
            "tensors": [t.to_dict() for t in self.tensors],
            "traceback": self.traceback,
        }


@dataclass
class Report:
    """Everything one :func:`gradcheck.check` found.

    Attributes:
        module: how the module prints (its ``repr``, or its class name when that fails).
        checks: one :class:`CheckResult` per check that ran, in the order they ran.
        options: the options in force (mode, tolerances, step, seed, ...).
        notes: what the checker worked out or worked around and a reader should know, e.g.
            "forward returned None; its output was read from self.output" or "backward
            returned None: the input gradient was not compared". Notes never fail a check.
        unsupported: set when the module cannot be checked at all (its parameters or outputs
            are in a form the checker does not understand); says why and what adapter to write.
            Such a report neither passes nor fails: :attr:`checkable` is ``False``.
    """

    module: str
    checks: list[CheckResult] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unsupported: str | None = None

    @property
    def checkable(self) -> bool:
        """Whether the checker understood the module (``unsupported`` is not set)."""
        return self.unsupported is None

    @property
    def passed(self) -> bool:
        """Whether every check passed (a report with no checks did not pass)."""
        return self.checkable and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if not c.passed]

    @property
    def kinks_skipped(self) -> int:
        """Entries skipped at non-differentiable points, over every check."""
        return sum(c.kinks_skipped for c in self.checks)

    @property
    def worst(self) -> TensorResult | None:
        """The tensor result whose worst entry is furthest past (or closest to) its tolerance."""
        results = [t for c in self.checks for t in c.tensors if t.worst_index is not None]
        if not results:
            return None
        return max(results, key=lambda t: t.ratio)

    def __getitem__(self, name: str) -> CheckResult:
        """Return the check called ``name``; raises ``KeyError`` listing the names that ran."""
        for check in self.checks:
            if check.name == name:
                return check
        ran = ", ".join(c.name for c in self.checks)
        raise KeyError(f"no check named {name!r} in this report; checks that ran: {ran}")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.checks)

    def __str__(self) -> str:
        failures = self.failures
        if not self.checkable:
            lines = [f"gradcheck {self.module}: cannot be checked: {self.unsupported}"]
            lines += [f"  note: {note}" for note in self.notes]
            return "\n".join(lines)
        if self.passed:
            head = f"gradcheck {self.module}: passed {len(self.checks)} checks"
        else:
            head = (
                f"gradcheck {self.module}: FAILED {len(failures)} of {len(self.checks)} checks "
                f"({', '.join(c.name for c in failures)})"
            )
        lines = [head]
        worst = self.worst
        if worst is not None and self.passed:
            lines.append(f"  closest to its tolerance: {worst.describe()}")
        for check in failures:
            lines.append(f"  FAIL {check.name}: {check.message}")
            for tensor in check.tensors:
                if not tensor.passed:
                    lines.append(f"    {tensor.describe()}")
            if check.traceback:
                lines.extend("    " + line for line in check.traceback.rstrip().splitlines())
        if self.kinks_skipped:
            lines.append(f"  {self.kinks_skipped} entries skipped at kinks (not differentiable)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: module, passed, options, checks, worst."""
        worst = self.worst
        return {
            "module": self.module,
            "passed": self.passed,
            "checkable": self.checkable,
            "unsupported": self.unsupported,
            "notes": list(self.notes),
            "options": {k: _jsonable_option(v) for k, v in self.options.items()},
            "kinks_skipped": self.kinks_skipped,
            "worst": worst.to_dict() if worst is not None else None,
            "checks": [c.to_dict() for c in self.checks],
        }


def _jsonable_option(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, tuple | list):
        return [_jsonable_option(v) for v in value]
    return str(value)


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck.assert_gradients` when a check fails; ``.report`` holds why."""

    def __init__(self, report: Report) -> None:
        super().__init__(str(report))
        self.report = report
