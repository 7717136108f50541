"""The forward checks: what a module's forward must do before its backward can be judged.

The parameters it lists, a floating and finite output of the right shape (a loss: one value),
the same output twice for the same input, and its input left as it was. Each function takes
the :class:`~gradcheck.session.Session` and adds its verdict to the report; a failure that
makes the rest meaningless raises :class:`~gradcheck.session.ModuleFailed`.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch
from torch import Tensor

from gradcheck.names import (
    FORWARD,
    FORWARD_DETERMINISM,
    INPUT_MUTATION,
    OUTPUT_SHAPE,
    PARAMETERS,
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

__all__ = ["check_forward", "check_input_mutation", "check_parameters", "find_casts"]

#: Explicit casts that keep a module in one dtype whatever its input's.
_CAST = re.compile(
    r"\.(float|double|half)\(\)|dtype\s*=\s*torch\.\w+|torch\.(Float|Double|Half)Tensor"
    r"|\.type\(\s*torch\.\w+"
)


def check_parameters(s: Session) -> None:
    try:
        s.params = s.adapted.params()
    except USER_ERRORS as exc:
        raise raised(PARAMETERS, "listing parameters", exc) from exc
    listed = ", ".join(f"{p.name} {shape_text(p.tensor)}" for p in s.params)
    s.add(PARAMETERS, True, listed or "no parameters")


def find_casts(module: Any) -> list[str]:
    """Where the module's class source casts explicitly: ``["model.py:12: x.float()"]``."""
    found = []
    for cls in type(module).__mro__:
        if cls.__module__ in ("builtins", "torch.nn.modules.module"):
            continue
        try:
            lines, start = inspect.getsourcelines(cls)
            filename = inspect.getsourcefile(cls) or "?"
        except (OSError, TypeError):
            continue
        short = filename.replace("\\", "/").rsplit("/", 1)[-1]
        for offset, line in enumerate(lines):
            code = line.split("#", 1)[0]
            if _CAST.search(code):
                found.append(f"{short}:{start + offset}: {code.strip()}")
    return found[:5]


def check_forward(s: Session) -> None:
    out = s.forward(FORWARD)
    if not out.is_floating_point():
        raise ModuleFailed(
            CheckResult(
                FORWARD,
                False,
                f"forward returned a {out.dtype} tensor; gradients need a floating output",
            )
        )
    if not bool(torch.isfinite(out).all()):
        raise ModuleFailed(
            CheckResult(
                FORWARD,
                False,
                f"forward returned {int((~torch.isfinite(out)).sum())} non-finite values "
                f"(nan or inf) of {out.numel()} at the check's inputs; pass inputs where the "
                "function is defined (e.g. input_range=(0.05, 0.95) for a log)",
            )
        )
    dtype = s.options.dtype
    if out.dtype != dtype:
        casts = find_casts(s.adapted.module)
        where = f" ({'; '.join(casts)})" if casts else ""
        other = str(out.dtype).removeprefix("torch.")
        raise Unsupported(
            f"forward returned {out.dtype} for {dtype} inputs and parameters: it casts "
            f"explicitly{where}. Tensors made without a dtype (torch.zeros, torch.empty, ...) "
            f"follow the check's dtype, but explicit casts do not: check it in the dtype it "
            f"computes in with --dtype {other} (library: dtype=torch.{other}), or make it use "
            "its input's dtype (x.new_zeros(...), dtype=x.dtype)"
        )
    s.add(FORWARD, True, f"output {shape_text(out)} {out.dtype}")
    s.out = out.detach().clone()
    _check_output_shape(s, out)
    check_input_mutation(s, "forward")
    second = s.forward(FORWARD_DETERMINISM)
    if equal(s.out, second):  # not `out`: the module may return its input, since restored
        s.add(FORWARD_DETERMINISM, True)
        return
    raise ModuleFailed(
        CheckResult(
            FORWARD_DETERMINISM,
            False,
            "two forwards on the same input with torch's generator seeded alike returned "
            f"different outputs (max difference {float((s.out - second).abs().max()):.3g}); "
            "draw randomness from torch's global generator (torch.rand, torch.bernoulli), "
            "not from random, numpy or a private generator, and keep no state that "
            "changes the output between calls",
        )
    )


def _check_output_shape(s: Session, out: Tensor) -> None:
    problems = []
    # The batch is the first input's, differentiated or not (an embedding's integer indices).
    first = s.args[0] if s.args else None
    batch_dim = s.adapted.batch_dim
    if s.adapted.is_loss:
        if out.numel() != 1:
            raise ModuleFailed(
                CheckResult(
                    OUTPUT_SHAPE,
                    False,
                    f"a loss must return one value (a 0-dim tensor), got shape "
                    f"{shape_text(out)}; " + _reduction_hint(s, out.numel()),
                )
            )
    elif first is not None and first.dim() >= 2 and batch_dim is not None:
        if out.dim() <= batch_dim or out.shape[batch_dim] != first.shape[batch_dim]:
            expected = ["..."] * (batch_dim + 1)
            expected[batch_dim] = str(first.shape[batch_dim])
            problems.append(
                f"output shape {shape_text(out)} lost the batch dimension (dim {batch_dim}) of "
                f"input shape {shape_text(first)}: expected ({', '.join(expected)}, ...)"
            )
        features = getattr(s.adapted.module, "out_features", None)
        if isinstance(features, int) and batch_dim == 0:
            if out.dim() == 0 or out.shape[-1] != features:
                problems.append(
                    f"output shape {shape_text(out)} does not end with out_features={features}"
                )
    s.add(OUTPUT_SHAPE, not problems, "; ".join(problems) or f"{shape_text(out)} {out.dtype}")


def _reduction_hint(s: Session, count: int) -> str:
    """Say which reduction of a loss's ``count`` values its backward() is the gradient of: a
    directional central difference of their sum, against backward() along the same direction."""
    x = s.args[0]
    try:
        s.forward(OUTPUT_SHAPE)
        (grad,) = s.backward(None, OUTPUT_SHAPE)[:1]
        u = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
        h = float(torch.finfo(x.dtype).eps) ** (1 / 3)
        saved = x.clone()
        try:
            x.add_(u, alpha=h)
            plus = float(s.forward(OUTPUT_SHAPE).sum())
            x.copy_(saved).add_(u, alpha=-h)
            minus = float(s.forward(OUTPUT_SHAPE).sum())
        finally:
            x.copy_(saved)
    except ModuleFailed:
        return "return their mean or sum"
    if grad is None or grad.shape != x.shape:
        return "return their mean or sum"
    numerical = (plus - minus) / (2 * h)
    analytical = float((grad.to(x.dtype) * u).sum())
    for name, value in (("sum", numerical), ("mean", numerical / count)):
        if abs(analytical - value) <= 1e-4 * max(abs(value), 1e-12):
            return (
                f"its backward() is the gradient of the {name} of these {count} values: "
                f"return that {name}"
            )
    return (
        f"its backward() is the gradient of neither the sum nor the mean of these {count} "
        "values (along a random direction: backward gives "
        f"{analytical:.6g}, the sum's derivative is {numerical:.6g}): return one of them and "
        "make backward its gradient"
    )


def check_input_mutation(s: Session, during: str) -> None:
    changed = [
        i
        for i, (a, snap) in enumerate(zip(s.args, s.snapshot, strict=True))
        if isinstance(a, Tensor) and not equal(a, snap)
    ]
    previous = next((c for c in s.report.checks if c.name == INPUT_MUTATION), None)
    if changed:
        message = (
            f"{during} changed its input in place (argument {', '.join(map(str, changed))}); "
            "a module must not write into tensors it receives: compute into a new tensor "
            "(e.g. x.clamp(min=0), not x.clamp_(min=0) or x[x < 0] = 0)"
        )
        for i in changed:
            s.args[i].copy_(s.snapshot[i])
        # From now on every forward gets fresh copies: later checks judge the gradient at the
        # inputs the check drew, not at inputs the module has written over.
        s.mutates = True
        if previous is None:
            s.add(INPUT_MUTATION, False, message)
        elif previous.passed:
            previous.passed, previous.message = False, message
    elif previous is None:
        s.add(INPUT_MUTATION, True)
