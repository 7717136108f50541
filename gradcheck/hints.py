"""What the failing entries of one comparison have in common, said in words.

A constant factor ("analytical = 2 x numerical"), a flipped sign, zeros on one side ("is it used
in forward?"), or failures confined to a few rows, columns or channels of the tensor, or to the
rows whose target is one class. Pure functions of the comparison and the shapes.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from gradcheck import numeric

__all__ = ["describe"]

#: At most this many distinct indices along a dimension make a "confined to" hint.
_FEW = 2


def _factor(name: str, num: Tensor, ana: Tensor, everywhere_zero: bool) -> str | None:
    if bool((ana == 0).all()):
        return f"{name}: analytical is 0 at every failing entry"
    if bool((num == 0).all()):
        if everywhere_zero:
            return (
                f"{name}: the numerical gradient is 0 everywhere, the analytical one is not: "
                f"{name} has no effect on the output (is it used in forward?)"
            )
        return f"{name}: numerical is 0 at every failing entry (those entries have no effect)"
    if bool((num.abs() > 0).all()):
        ratio = ana / num
        if float(ratio.max() - ratio.min()) <= 1e-3 * float(ratio.abs().max()):
            factor = float(ratio.mean())
            if abs(factor + 1) < 1e-3:
                return f"{name}: sign flipped at every failing entry"
            return f"{name}: analytical = {factor:.4g} x numerical at every failing entry"
    return None


def _dim_word(dim: int, ndim: int, is_input: bool, batch_dim: int) -> str:
    if is_input:
        if dim == batch_dim:
            return "batch row"
        if ndim == 4 and dim == 1:
            return "channel"
        return "column" if ndim == 2 else f"index along dim {dim}"
    if ndim == 4:
        return ("output channel", "input channel", "kernel row", "kernel column")[dim]
    if ndim == 2:
        return ("row", "column")[dim]
    return "entry" if ndim == 1 else f"index along dim {dim}"


def _confined(entries: np.ndarray, shape: tuple, is_input: bool, batch_dim: int) -> list[str]:
    """Which dimensions the failing entries (flat indices) are confined to a few indices of."""
    if len(np.unique(entries)) < 2:
        return []
    index = np.unravel_index(entries, shape)
    said = []
    for dim, size in enumerate(shape):
        values = np.unique(index[dim])
        if size > _FEW and len(values) <= _FEW:
            word = _dim_word(dim, len(shape), is_input, batch_dim)
            said.append(
                f"only {word}{'s' if len(values) > 1 else ''} " + ", ".join(map(str, values))
            )
    return said


def _classes(rows: np.ndarray, target: Tensor | None, N: int) -> str | None:
    """Say "only rows whose target is class c" when no passing row has a failing class."""
    if target is None:
        return None
    if target.is_floating_point():
        if target.dim() != 2 or target.shape[0] != N:
            return None
        target = target.argmax(dim=1)
    if target.dim() != 1 or target.shape[0] != N:
        return None
    classes = target.numpy()
    failing = np.unique(classes[rows])
    passing = np.unique(np.delete(classes, np.unique(rows)))
    if not len(passing) or np.intersect1d(failing, passing).size or len(failing) > _FEW:
        return None
    words = " or ".join(map(str, failing))
    return f"only rows whose target is class {words}"


def describe(
    name: str,
    c: numeric.Comparison,
    *,
    shape: tuple,
    entries_are_rows: bool,
    is_input: bool,
    batch_dim: int | None = 0,
    target: Tensor | None = None,
) -> str | None:
    """One hint about the failing entries of ``c``, or None when nothing stands out.

    Args:
        name: the tensor's name.
        c: the comparison.
        shape: the tensor's shape.
        entries_are_rows: whether the rows of ``c`` are the tensor's entries (full and
            entry-wise methods), so that confinement to rows or columns can be said.
        is_input: whether the tensor is an input (its dim ``batch_dim`` is the batch).
        target: a loss's target, to say "only rows whose target is class c".
    """
    bad = ~c.passed
    if not bool(bad.any()):
        return None
    parts = []
    factor = _factor(name, c.numerical[bad], c.analytical[bad], bool((c.numerical == 0).all()))
    if factor:
        parts.append(factor)
    if entries_are_rows and len(shape):
        entries = c.failing_rows().numpy()
        where = _confined(entries, tuple(shape), is_input, batch_dim)
        if is_input and len(shape) == 2:
            classes = _classes(np.unravel_index(entries, shape)[0], target, shape[0])
            if classes:
                where = [w for w in where if not w.startswith("only batch row")] + [classes]
        if where:
            parts.append(("" if factor else f"{name}: ") + ", ".join(where))
    if not parts:
        parts.append(f"{name}: {int(bad.sum())} of {bad.numel()} entries outside tolerance")
    return "; ".join(parts)
