"""The behaviour checks: what a backward must do besides being the right derivative.

The forward's own checks live in :mod:`gradcheck.forward_checks`; they are re-exported here, so
that :func:`gradcheck.check` runs every behaviour check from one place.

Each function takes the :class:`~gradcheck.session.Session`, runs the module through it and adds
its verdict to the report; a failure that makes the rest meaningless raises
:class:`~gradcheck.session.ModuleFailed`.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from gradcheck.forward_checks import (
    check_forward,
    check_input_mutation,
    check_parameters,
    find_casts,
)
from gradcheck.names import (
    ACCUMULATION,
    BACKWARD,
    DETERMINISM,
    GRAD_OUTPUT_MUTATION,
    GRADIENT_SHAPE,
    LINEARITY,
    OUTPUT_MUTATION,
    ZERO_GRAD,
)
from gradcheck.report import CheckResult
from gradcheck.session import (
    USER_ERRORS,
    ModuleFailed,
    Session,
    Unsupported,
    equal,
    raised,
    shape_text,
)

__all__ = [
    "Unsupported",
    "check_accumulation",
    "check_backward",
    "check_determinism",
    "check_forward",
    "check_linearity",
    "check_parameters",
    "check_zero_grad",
    "find_casts",
]

#: Rounding allowed in the linearity and accumulation checks, in ulps of the largest term: a
#: backward in float32 (a batch norm at batch 2) rounds its three results differently.
_ROUNDING_ULPS = 16.0
#: Linear combination used by the linearity check; ``A + B != 1`` so an ignored gradient shows.
LINEAR_A, LINEAR_B = 2.0, -0.5
#: Method names a module may zero its gradients with.
ZERO_GRAD_NAMES = ("zero_grad", "zero_grads", "zerograd", "zero_gradient", "zero_gradients")


def _scaled_close(
    a: Tensor, b: Tensor, atol: float, rtol: float, *, eps: float = 0.0, size: float = 0.0
) -> Tensor:
    """``|a - b| <= atol * scale + rtol * |b| + rounding``, where ``scale`` (at most 1) is the
    size of the values compared (gradients of size 1e-6 are not all within an absolute 1e-5 of
    each other) and ``rounding`` allows backward's own rounding: ``eps`` (the check dtype's
    machine epsilon) times ``size``, the largest value that entered the sums."""
    scale = min(1.0, float(torch.maximum(a.abs().max(), b.abs().max()))) if a.numel() else 1.0
    return (a - b).abs() <= atol * scale + rtol * b.abs() + _ROUNDING_ULPS * eps * size


def _largest(*tensors: Tensor | None) -> float:
    return max((float(t.abs().max()) for t in tensors if t is not None and t.numel()), default=0.0)


def check_backward(s: Session) -> bool:
    """Run one backward and judge what it returned and wrote; whether gradients can be compared."""
    s.zero_grads()
    out = s.forward(BACKWARD)
    out_copy = out.clone()
    grad = s.upstream(out)
    grad_copy = grad.clone() if grad is not None else None
    result = s.backward(grad, BACKWARD, copy=False)
    if all(g is None for g in result) and s.params:
        s.returns_input_gradient = False
        s.note(
            "backward returned None: the parameter gradients are checked, the input gradient "
            "is not (a container's backward often returns nothing; return the gradient with "
            "respect to the input to have it checked too)"
        )
    missing = [
        n for n, g in zip(s.names(), result, strict=False) if g is None and s.returns_input_gradient
    ]
    if missing:
        raise ModuleFailed(
            CheckResult(BACKWARD, False, f"backward returned no gradient for {missing}")
        )
    s.add(BACKWARD, True)
    shapes_ok = _check_gradient_shape(s, result)
    if grad is not None:
        unchanged = equal(grad, grad_copy)
        s.add(
            GRAD_OUTPUT_MUTATION,
            unchanged,
            ""
            if unchanged
            else "backward changed the upstream gradient it received, in place; the caller may "
            "reuse it: compute into a new tensor (grad * mask, not grad.mul_(mask) or "
            "grad[x < 0] = 0)",
        )
    unchanged = equal(out, out_copy)
    s.add(
        OUTPUT_MUTATION,
        unchanged,
        ""
        if unchanged
        else "backward changed the tensor forward returned, in place; the caller still holds it "
        "(e.g. out.mul_(1 - out) turns the output into the derivative): use out * (1 - out)",
    )
    check_input_mutation(s, "backward")
    return shapes_ok


def _check_gradient_shape(s: Session, inputs: list[Tensor | None]) -> bool:
    problems = []
    for name, g, i in zip(s.names(), inputs, s.perturbable, strict=False):
        x = s.args[i]
        if g is None:
            continue
        if g.shape != x.shape:
            problems.append(f"{name} gradient has shape {shape_text(g)}, input has {shape_text(x)}")
        elif g.dtype != x.dtype:
            problems.append(f"{name} gradient is {g.dtype}, input is {x.dtype}")
    params = s.fresh_params()
    if params and all(p.kind == ".grad" and p.read_grad() is None for p in params):
        listed = ", ".join(p.name for p in params)
        raise Unsupported(
            f"param() lists tensors only ({listed}), and after backward none has a .grad nor "
            "an attribute named after it holding its gradient (weight_grad, grad_weight, dw "
            "for w, ...): return (parameter, gradient) pairs from param(), or write an adapter "
            "whose param() does"
        )
    for p in params:
        g = p.read_grad()
        if g is None and _unused(s, p.tensor):
            s.unused.add(p.name)
            s.note(
                f"parameter {p.name} has no gradient after backward, and forward does not read "
                "it (an unused bias?): not checked"
            )
        elif not isinstance(g, Tensor):
            problems.append(f"parameter {p.name} has no gradient after backward")
        elif g.shape != p.tensor.shape:
            problems.append(
                f"parameter {p.name} gradient has shape {shape_text(g)}, the parameter "
                f"{shape_text(p.tensor)}"
            )
        elif g.dtype != p.tensor.dtype:
            problems.append(f"parameter {p.name} gradient is {g.dtype}, it is {p.tensor.dtype}")
    s.params = [p for p in s.params if p.name not in s.unused]
    shape_problems = [p for p in problems if "shape" in p or "no gradient" in p]
    given = [g for g in inputs if g is not None] + [p.read_grad() for p in params]
    lower = [
        g.dtype
        for g in given
        if isinstance(g, Tensor) and _lower_precision(g.dtype, s.options.dtype)
    ]
    if lower:
        problems.append(_computes_in(lower[0], s.options.dtype, s.adapted.module))
        shape_problems.append(problems[-1])
    s.add(GRADIENT_SHAPE, not problems, "; ".join(problems))
    if shape_problems:
        s.report.checks[-1].message += "; gradients not compared"
    return not shape_problems


def _lower_precision(got: torch.dtype, want: torch.dtype) -> bool:
    return (
        got.is_floating_point
        and want.is_floating_point
        and (torch.finfo(got).eps > torch.finfo(want).eps)
    )


def _computes_in(got: torch.dtype, want: torch.dtype, module: Any) -> str:
    """What to do about gradients of a lower precision than the check's."""
    casts = find_casts(module)
    where = f" ({'; '.join(casts)})" if casts else ""
    other, check = (str(d).removeprefix("torch.") for d in (got, want))
    return (
        f"backward computes in {other}{where} (numpy code does when a library replaces np.dot, "
        f"as nnfs.init() does), and {other} rounding cannot be judged at {check}'s tolerance: "
        f"check it in {other} with --dtype {other} (library: dtype=torch.{other})"
    )


def _unused(s: Session, tensor: Tensor) -> bool:
    """Whether forward's output stays bit for bit the same when ``tensor`` moves (it is
    restored, and forward run again, after)."""
    saved = tensor.detach().clone()
    generator = torch.Generator().manual_seed(s.options.seed + 5)
    try:
        moved = torch.randn(saved.shape, generator=generator, dtype=torch.float64)
        tensor.detach().add_(moved.to(saved.dtype) * saved.abs().clamp(min=1.0))
        return equal(s.forward(GRADIENT_SHAPE), s.out)
    except ModuleFailed:
        return False
    finally:
        tensor.detach().copy_(saved)
        s.forward(GRADIENT_SHAPE)


def check_determinism(s: Session) -> None:
    grad = s.upstream(s.out)
    first = s.gradients(grad, DETERMINISM)
    # A backward drawing random numbers now draws different ones.
    s.zero_grads()
    s.forward(DETERMINISM)
    torch.rand(16)
    second = s.input_grads(s.backward(grad, DETERMINISM)) + s.read_grads()
    differ = [n for n, a, b in zip(s.names(), first, second, strict=True) if not equal(a, b)]
    if differ:
        s.add(
            DETERMINISM,
            False,
            f"backward returned different gradients for {', '.join(differ)} on two runs "
            "with the same input and upstream gradient; it must depend only on what "
            "forward cached and on the upstream gradient (no random numbers, no state)",
        )
        return
    # A second backward after the same forward: it works, or raises (the module frees its cache,
    # as torch does without retain_graph), or it silently returns something else.
    s.zero_grads()
    try:
        again = s.input_grads(s.backward(grad, DETERMINISM)) + s.read_grads()
    except ModuleFailed as failure:
        s.repeatable = False
        s.note(
            "a second backward after one forward failed ("
            + failure.result.message.removeprefix("backward raised ")
            + "): every backward below runs after a forward of its own"
        )
        s.add(DETERMINISM, True)
        return
    changed = [n for n, a, b in zip(s.names(), first, again, strict=True) if not equal(a, b)]
    if changed:
        s.repeatable = False
        s.add(
            DETERMINISM,
            False,
            f"a second backward after the same forward returned different gradients for "
            f"{', '.join(changed)}: backward changes what forward cached (an in-place "
            "operation on a cached tensor, e.g. self.mask.mul_(grad)); compute into new "
            "tensors so that backward can run again, or raise if it cannot",
        )
        return
    s.add(DETERMINISM, True)


def check_linearity(s: Session) -> None:
    g1, g2 = s.upstream(s.out), s.upstream(s.out)
    r1 = s.gradients(g1, LINEARITY)
    r2 = s.gradients(g2, LINEARITY)
    r12 = s.gradients(LINEAR_A * g1 + LINEAR_B * g2, LINEARITY)
    bad = []
    for name, a, b, c in zip(s.names(), r1, r2, r12, strict=True):
        expected = LINEAR_A * a + LINEAR_B * b
        # What backward sums is of the size of the upstream gradients and of its results: a
        # batch norm at batch 2, whose true input gradient is 0, returns float32 noise of that
        # size, differently rounded on each of the three calls.
        size = _largest(g1, g2, LINEAR_A * a, LINEAR_B * b, c)
        eps = float(torch.finfo(s.options.dtype).eps)
        close = _scaled_close(c, expected, s.options.atol, s.options.rtol, eps=eps, size=size)
        if not bool(close.all()):
            error = float((c - expected).abs().max())
            bad.append(f"{name} (max error {error:.3g})")
    message = ""
    if bad:
        message = (
            f"backward is not linear in its upstream gradient for {', '.join(bad)}: "
            f"backward({LINEAR_A:g} g1 + {LINEAR_B:g} g2) != {LINEAR_A:g} backward(g1) + "
            f"{LINEAR_B:g} backward(g2); it must multiply the upstream gradient by the local "
            "derivative (a backward that ignores the upstream gradient, or adds a constant, "
            "fails here)"
        )
    s.add(LINEARITY, not bad, message)


def check_accumulation(s: Session) -> None:
    grad = s.upstream(s.out)
    s.zero_grads()
    before = [p.read_grad() for p in s.fresh_params()]
    skip = len(s.perturbable)
    once = s.gradients(grad, ACCUMULATION, zero=False)[skip:]
    twice = s.gradients(grad, ACCUMULATION, zero=False)[skip:]
    after = [p.read_grad() for p in s.fresh_params()]
    atol, rtol = s.options.atol, s.options.rtol
    problems = []
    for p, g1, g2, b, a in zip(s.params, once, twice, before, after, strict=True):
        eps = float(torch.finfo(s.options.dtype).eps)
        if bool(_scaled_close(g2, 2 * g1, atol, rtol, eps=eps, size=_largest(g2)).all()):
            continue
        if p.kind == "pair" and isinstance(b, Tensor) and a is not b:
            problems.append(
                f"{p.name}: backward replaced the gradient tensor with a new one; "
                "optimizers holding the pair from param() never see it: add in place "
                "(grad += ..., not grad = ...)"
            )
        elif bool(_scaled_close(g2, g1, atol, rtol).all()):
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
    s.add(ACCUMULATION, not problems, "; ".join(problems))


def zero_grad_method(module: Any) -> tuple[str, Any] | None:
    """The module's own ``zero_grad`` (or a spelling of it) that takes no argument, if any."""
    for name in ZERO_GRAD_NAMES:
        method = getattr(module, name, None)
        if not callable(method):
            continue
        try:
            parameters = inspect.signature(method).parameters.values()
        except (TypeError, ValueError):
            continue
        if all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in parameters
        ):
            return name, method
    return None


def check_zero_grad(s: Session) -> None:
    """After a backward, the module's ``zero_grad()`` zeroes every gradient tensor in place."""
    found = zero_grad_method(s.adapted.module)
    if found is None or not s.params:
        return
    name, method = found
    s.gradients(s.upstream(s.out), ZERO_GRAD)
    before = [p.read_grad() for p in s.fresh_params()]
    try:
        method()
    except USER_ERRORS as exc:
        raise raised(ZERO_GRAD, f"{name}()", exc) from exc
    after = [p.read_grad() for p in s.fresh_params()]
    problems = []
    for p, b, a in zip(s.params, before, after, strict=True):
        if p.kind == "pair" and isinstance(b, Tensor) and a is not b:
            # param() handed out the gradient tensor itself: optimizers hold that one.
            left = "" if bool((b == 0).all()) else " and left the old one as it was"
            problems.append(
                f"{p.name}: {name}() bound a new gradient tensor{left}; an optimizer holding "
                "the (parameter, gradient) pair from param() keeps the old one: zero in place "
                "(grad.zero_(), not grad = torch.zeros(...))"
            )
        elif isinstance(a, Tensor) and not bool((a == 0).all()):
            problems.append(f"{p.name}: {name}() left {int((a != 0).sum())} nonzero entries")
    s.add(ZERO_GRAD, not problems, "; ".join(problems) or f"{name}() zeroes in place")
