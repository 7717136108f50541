"""``check()``: run every check on one module and report.

The checks themselves live beside this file: their names in :mod:`gradcheck.names`, the calls
into the module in :mod:`gradcheck.session`, the behaviour checks in :mod:`gradcheck.behaviour`
and the comparison with finite differences in :mod:`gradcheck.jacobian`. This file prepares the
inputs, saves and restores what the check changes (torch's generator, its thread count and
default dtype, the module's parameters and mode) and runs the checks in the order of
:data:`CHECKS`; when one makes the rest meaningless (forward raised, backward returned nothing)
the rest are not run and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from gradcheck import behaviour, budget
from gradcheck._adapt import CannotAdapt, adapt
from gradcheck.behaviour import Unsupported
from gradcheck.inputs import (
    loss_defaults,
)
from gradcheck.jacobian import Jacobians
from gradcheck.names import (
    ACCUMULATION,
    BACKWARD,
    CHECKS,
    DETERMINISM,
    FORWARD,
    INPUT_GRADIENT,
    LINEARITY,
    PARAMETER_GRADIENT,
    PARAMETERS,
    ZERO_GRAD,
)
from gradcheck.prepare import (
    fit_class_target,
    fit_default_input,
    fit_loss_input,
    prepare_args,
)
from gradcheck.report import GradcheckError, Report
from gradcheck.session import USER_ERRORS, ModuleFailed, Options, Session, exception_text

__all__ = ["assert_gradients", "check", "default_tolerances"]

_MODES = ("auto", "full", "vjp", "fast")
_ORACLES = ("auto", "finite-differences", "autograd")
#: Default (atol, rtol) per dtype the check computes in. float32's steps are cbrt(eps) = 4.9e-3,
#: whose rounding error is allowed for by itself (gradcheck.numeric, gradcheck.sweep): rtol 2e-3
#: passed every correct module over 12 seeds x 4 shapes x 15 modules and catches a 1% error.
_TOLERANCES = {
    torch.float64: (1e-5, 1e-3),
    torch.float32: (1e-4, 2e-3),
    torch.float16: (1e-2, 5e-2),
}


def default_tolerances(dtype: torch.dtype = torch.float64) -> tuple[float, float]:
    """Return the default ``(atol, rtol)`` of a check computed in ``dtype``."""
    if dtype not in _TOLERANCES:
        names = ", ".join(str(d).removeprefix("torch.") for d in _TOLERANCES)
        raise ValueError(f"dtype must be one of {names}, got {dtype!r}")
    return _TOLERANCES[dtype]


def _run(s: Session) -> None:
    """Run the checks in order; a module failure stops them and says which did not run."""
    stage = PARAMETERS
    try:
        behaviour.check_parameters(s)
        stage = FORWARD
        behaviour.check_forward(s)
        stage = BACKWARD
        if not behaviour.check_backward(s):
            return
        stage = DETERMINISM
        behaviour.check_determinism(s)
        if not s.adapted.is_loss:
            stage = LINEARITY
            behaviour.check_linearity(s)
        if s.params:
            stage = ACCUMULATION
            behaviour.check_accumulation(s)
        stage = INPUT_GRADIENT
        Jacobians(s).run()
        _say_values_are_right(s.report, ACCUMULATION)
        if s.params:
            stage = ZERO_GRAD
            behaviour.check_zero_grad(s)
            _say_values_are_right(s.report, ZERO_GRAD)
    except ModuleFailed as failure:
        result = failure.result
        ran = {c.name for c in s.report.checks}
        rest = [c for c in CHECKS[CHECKS.index(stage) :] if c not in ran and c != result.name]
        if rest:
            result.message += f"; not run after this failure: {', '.join(rest)}"
        s.report.checks.append(result)


def _say_values_are_right(report: Report, check: str = ACCUMULATION) -> None:
    """When only a contract check (accumulation, zero_grad) broke, say that one backward's
    gradients are right: a reader should not hunt for a wrong derivative."""
    if check in report and PARAMETER_GRADIENT in report:
        contract, gradients = report[check], report[PARAMETER_GRADIENT]
        if not contract.passed and gradients.passed:
            what = "their accumulation over calls" if check == ACCUMULATION else "zero_grad()"
            contract.message += (
                "; the gradients of one backward are right (parameter_gradient passed): only "
                f"{what} breaks the course contract"
            )


def _validate(
    mode: str, atol: float, rtol: float, max_full: int, projections: int, dtype: Any
) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    default_tolerances(dtype)
    if not (0 <= atol < float("inf") and 0 <= rtol <= 1) or (atol == 0 and rtol == 0):
        raise ValueError(
            "atol and rtol must be finite, atol >= 0 and rtol in [0, 1], not both 0; got "
            f"atol={atol!r}, rtol={rtol!r}; the defaults are atol=1e-5, rtol=1e-3 (float64)"
        )
    if not (isinstance(max_full, int) and max_full >= 0):
        raise ValueError(f"max_full must be an int >= 0, got {max_full!r}")
    if not (isinstance(projections, int) and projections >= 1):
        raise ValueError(f"projections must be an int >= 1, got {projections!r}")


def _describe(module: Any) -> str:
    try:
        text = repr(module)
    except USER_ERRORS:
        text = ""
    if not text or (text.startswith("<") and " at 0x" in text) or len(text) > 80 or "\n" in text:
        return type(module).__name__
    return text


def check(
    module: Any,
    *inputs: Tensor,
    target: Tensor | None = None,
    target_kind: str = "auto",
    target_first: bool | None = None,
    input_range: Sequence[float] | None = None,
    shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    dtype: torch.dtype = torch.float64,
    batch_dim: int | None = 0,
    mode: str = "auto",
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    train: bool | None = None,
    max_full: int = 1_000_000,
    projections: int = 8,
    max_memory: int | str | None = None,
    oracle: str = "auto",
    numpy: bool | None = None,
) -> Report:
    r"""Check a module's backward against finite differences and its behaviour; return a report.

    The check runs in ``dtype`` (float64 by default): inputs are copied to it, the module's
    parameters and gradients are converted in place (same Python objects, new storage), and
    torch's default dtype is set to it, so that buffers the module makes without a dtype
    (``torch.zeros(n)``, ``torch.empty(...)``) follow. All of it is restored afterwards to the
    exact original values and dtypes, also when the module fails. Torch's global generator is
    re-seeded with ``seed`` before every forward (a Dropout sees the same mask each time) and
    restored to the caller's state afterwards. The check runs single-threaded
    (``torch.set_num_threads(1)``, restored after): its many small forwards gain nothing from
    intra-op threads.

    The module's gradient with respect to ``x`` is compared entry by entry with the central
    difference :math:`(f(x + h) - f(x - h)) / 2h`, with :math:`h = \epsilon^{1/3} \max(1, |x|)`
    (:math:`\epsilon` the dtype's machine epsilon). An entry passes when

    .. math::
        |\text{numerical} - \text{analytical}| \le \text{atol} \cdot \min(1, s)
        + \text{rtol}\,|\text{numerical}| + \text{rounding} + \text{truncation},

    where :math:`s` is the largest entry of the tensor's Jacobian (so a module whose gradients
    are all about 1e-6 is judged at its own scale), and entries that fail at :math:`h` are
    evaluated again at :math:`h/2`: the numerical value becomes the Richardson extrapolation and
    ``truncation`` the measured :math:`|D(h) - D(h/2)|`. Entries where the one-sided slopes
    disagree and keep disagreeing at :math:`h/2` straddle a kink: they are skipped and counted.

    Args:
        module: a module with the course protocol (or a variant), a ``torch.nn.Module``, or a loss
            (``forward(prediction, target)``, ``backward()``); see ``gradcheck._adapt``. A module
            on numpy arrays is recognised (``gradcheck._numpy``).
        *inputs: the inputs to forward (tensors or numpy arrays). Default: one input of shape
            :func:`gradcheck.inputs.default_shape` drawn by :func:`make_input`. For a loss, the
            prediction and optionally the target.
        target: a loss's target. Default: drawn by :func:`make_target` (see ``target_kind``).
        target_kind: ``"like"``, ``"class"``, ``"onehot"``, ``"prob"``, or ``"auto"`` to guess from
            the loss's name (class indices for cross-entropy, probabilities for BCE; a
            cross-entropy that refuses class indices gets probability rows, with a note).
            Default: ``"auto"``.
        target_first: ``True`` for a loss whose forward takes ``(target, prediction)``; ``None``
            reads it from the names of forward's parameters. Default: ``None``.
        input_range: ``(low, high)`` for generated inputs. Default: ``(-2, 2)``; ``(0.05, 0.95)``
            for a BCE loss.
        shape: the shape of the generated input when ``inputs`` are not given, or a list of
            shapes, one per input (``[(4, 5), (5, 3), (3,)]``). Default:
            :func:`gradcheck.inputs.default_shape` (``(4, in_features)``, NCHW for a module with
            ``in_channels``); a function pair guesses each array's from its name.
        dtype: the dtype the check computes in: ``torch.float64``, or ``torch.float32`` for a
            module written in float32 (steps and tolerances follow). Default: ``torch.float64``.
        batch_dim: the batch dimension of the input, ``1`` for modules whose inputs are
            ``(features, batch)``, ``None`` for modules that take one sample with no batch
            dimension (a ``(C, H, W)`` image). Default: ``0``.
        mode: ``"full"`` compares every Jacobian entry (one backward per output entry, two
            forwards per input or parameter entry); ``"fast"`` compares ``projections`` x
            ``projections`` random signed projections per tensor; ``"auto"`` uses full for each
            tensor whose Jacobian has at most ``max_full`` entries. Default: ``"auto"``.
        eps: the relative step ``h / max(1, |x|)``. Default: ``None``, the dtype's cube root of
            machine epsilon (``6.1e-6`` for float64).
        atol: absolute tolerance per entry. Default: ``1e-5`` (float64), ``1e-4`` (float32).
        rtol: relative tolerance per entry. Default: ``1e-3`` (float64), ``2e-3`` (float32).
        seed: seeds generated inputs, targets, upstream gradients, and torch's global generator
            before each forward. Default: ``0``.
        train: ``True`` or ``False`` to put the module in train or eval mode for the check
            (restored after); ``None`` leaves it as it is. Default: ``None``.
        max_full: the largest Jacobian (output entries x tensor entries) that ``"auto"`` compares
            in full. Default: ``1_000_000``.
        projections: random upstream gradients and random input directions in fast mode;
            upstream gradients of the entry-wise products in vjp mode. Default: ``8``.
        max_memory: the memory the gradient comparison may use beyond the module's own, in
            bytes or as ``"512M"``, ``"2G"``: each tensor gets the most sensitive method that
            fits (full, vjp, fast; see :mod:`gradcheck.budget`), computed in chunks; an input
            that fits no method is refused before anything runs. Default: ``None``, about 1 GB.
        oracle: what the hand-written backward is compared with. ``"auto"``: autograd's
            differentiation of forward, entry by entry at rounding-level tolerance, once finite
            differences confirm autograd along 2 random directions over every input and
            parameter (a forward that hides a step from autograd, ``.detach()`` or
            ``torch.no_grad``, fails that confirmation); where autograd cannot follow forward or
            is not confirmed, finite differences judge every tensor (each tensor's
            ``sensitivity_note`` says why; a note when they contradict autograd). Where
            backward and confirmed autograd disagree, finite differences along the difference
            itself say who is right (backward fails when they side with autograd); when they
            cannot tell, finite differences judge that tensor entry by entry, and their verdict
            stands. A named ``mode`` (full, vjp, fast) asks for finite differences.
            ``"autograd"``: the same without the confirmation (finite differences judge only the
            tensors where backward and autograd disagree, and every tensor where autograd cannot
            follow forward). ``"finite-differences"``: finite differences alone.
            Default: ``"auto"``.
        numpy: ``True`` to check a module on numpy arrays (inputs, parameters and gradients as
            ndarrays), ``False`` to give it tensors; ``None`` decides from what it holds and
            what its file imports. Default: ``None``.

    Returns:
        a :class:`Report` with one :class:`CheckResult` per check (see :data:`CHECKS`); a module
        the checker cannot understand gets a report with ``unsupported`` set, saying why.
    """
    default_atol, default_rtol = default_tolerances(dtype)
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    _validate(mode, atol, rtol, max_full, projections, dtype)
    memory = budget.DEFAULT_MAX_MEMORY if max_memory is None else budget.parse_memory(max_memory)
    if oracle not in _ORACLES:
        raise ValueError(f"oracle must be one of {', '.join(_ORACLES)}, got {oracle!r}")
    if batch_dim not in (0, 1, None):
        raise ValueError(f"batch_dim must be 0, 1 or None (no batch dimension), got {batch_dim!r}")
    if inputs and shape is not None:
        raise TypeError("pass either inputs or shape=, not both: shape= sizes a drawn input")
    report = Report(module=_describe(module))
    try:
        adapted = adapt(module, batch_dim=batch_dim, target_first=target_first, numpy=numpy)
    except CannotAdapt as exc:
        report.unsupported = str(exc)
        return report
    try:
        args, perturbable, drawn = prepare_args(
            adapted, module, inputs, target, target_kind, input_range, seed, dtype, shape
        )
    except CannotAdapt as exc:
        report.unsupported = str(exc)
        return report
    report.options = {
        "mode": mode,
        "eps": eps,
        "atol": atol,
        "rtol": rtol,
        "seed": seed,
        "train": train,
        "max_full": max_full,
        "projections": projections,
        "max_memory": memory,
        "oracle": oracle,
        "dtype": str(dtype).removeprefix("torch."),
        "loss": adapted.is_loss,
        "input_shapes": [list(a.shape) for a in args],
    }
    if adapted.is_loss:
        report.options["target_first"] = adapted.target_first
    report.unsupported = budget.refuse_inputs(
        [args[i].numel() for i in perturbable], K=projections, L=projections, max_memory=memory
    )
    if report.unsupported:
        return report
    options = Options(mode, eps, atol, rtol, seed, max_full, projections, dtype)
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    default_dtype = torch.get_default_dtype()
    training = adapted.training
    undo: Callable[[], None] | None = None
    try:
        # Thousands of forwards on small tensors: intra-op threads only add overhead, and on a
        # busy machine a two-thread reduction can take milliseconds instead of microseconds.
        torch.set_num_threads(1)
        torch.set_default_dtype(dtype)
        if train is not None:
            adapted.train(train)
        try:
            undo = adapted.promote(dtype)
        except CannotAdapt as exc:
            report.unsupported = str(exc)
            return report
        except USER_ERRORS as exc:
            report.unsupported = f"listing its parameters raised {exception_text(exc)}"
            return report
        note = None
        if drawn == "class" and target_kind == "auto":
            note = fit_class_target(adapted, args, seed)
        elif not inputs and shape is None and args[0].dim() == 2:
            if adapted.is_loss and drawn is not None:
                note = fit_loss_input(
                    adapted, args, seed, input_range or loss_defaults(module)[1], drawn
                )
            elif not adapted.is_loss:
                note = fit_default_input(adapted, args, seed, input_range)
        if note:
            report.notes.append(note)
            report.options["input_shapes"] = [list(a.shape) for a in args]
        report.notes.extend(adapted.notes)
        session = Session(adapted, args, perturbable, report, options)
        try:
            _run(session)
        except (Unsupported, CannotAdapt) as exc:
            report.unsupported = str(exc)
        for note in adapted.notes:
            if note not in report.notes:
                report.notes.append(note)
    finally:
        if undo is not None:
            undo()
        if train is not None and training is not None:
            adapted.train(training)
        torch.set_rng_state(rng_state)
        torch.set_num_threads(threads)
        torch.set_default_dtype(default_dtype)
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
