"""Exact (or bounded) comparison of nnlite's tensors with torch.nn's, with a located report."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


class ConformanceError(AssertionError):
    """nnlite and torch.nn disagree; the message names where, which tensor, and by how much."""


@dataclass(frozen=True)
class Bound:
    """Largest accepted difference where nnlite cannot reproduce torch's bits.

    An entry passes when ``|nnlite - torch| <= atol + rtol * |torch|``. With ``scaled``, ``atol``
    is relative to the tensor's scale: it is multiplied by ``max |torch|`` over the tensor (a
    norm-wise bound, for values that go through sums with cancellation).
    """

    atol: float
    rtol: float = 0.0
    scaled: bool = False

    def __str__(self) -> str:
        scale = " x max|torch|" if self.scaled else ""
        return f"atol={self.atol:g}{scale}, rtol={self.rtol:g}"


def difference(nn: Tensor, th: Tensor) -> float:
    """Largest absolute difference between two same-shape tensors; ``inf`` where NaNs differ."""
    if torch.equal(nn, th):
        return 0.0
    nn64, th64 = nn.detach().double(), th.detach().double()
    nan_nn, nan_th = torch.isnan(nn64), torch.isnan(th64)
    if not torch.equal(nan_nn, nan_th):
        return math.inf
    both = ~nan_nn
    diff = (nn64[both] - th64[both]).abs()
    return float(diff.max()) if diff.numel() else 0.0


def _scale(values: Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def check_tensor(
    where: str, name: str, nn: Tensor, th: Tensor, bound: Bound | None = None
) -> float:
    """Checks that nnlite's ``nn`` equals torch.nn's ``th`` (or stays within ``bound``).

    NaNs compare equal to NaNs in the same position, so two runs that diverge identically agree.

    Args:
        where: the place in training, e.g. ``"relu-ce-... epoch 3, step 12"``.
        name: the tensor, e.g. ``"grad of 2.weight"``.
        nn: nnlite's tensor.
        th: torch.nn's tensor.
        bound: ``None`` for exact equality.

    Returns:
        The largest absolute difference (0.0 when equal).

    Raises:
        ConformanceError: on a dtype or shape mismatch, or a difference beyond ``bound``.
    """
    __tracebackhide__ = True
    th = th.detach()
    if nn.dtype != th.dtype or nn.shape != th.shape:
        raise ConformanceError(
            f"{where}: {name}: nnlite gives {nn.dtype} of shape {tuple(nn.shape)}, "
            f"torch.nn gives {th.dtype} of shape {tuple(th.shape)}"
        )
    if torch.equal(nn, th):
        return 0.0
    nn64, th64 = nn.double(), th.double()
    nan_nn, nan_th = torch.isnan(nn64), torch.isnan(th64)
    if not torch.equal(nan_nn, nan_th):
        index = _index(th, int(torch.nonzero((nan_nn != nan_th).reshape(-1))[0]))
        raise ConformanceError(
            f"{where}: {name}: NaN in one framework only at {index}: "
            f"nnlite {_fmt(nn[index])}, torch.nn {_fmt(th[index])}"
        )
    diff = (nn64 - th64).abs().nan_to_num(0.0)
    allowed = (
        torch.zeros_like(diff)
        if bound is None
        else bound.atol * (_scale(th64) if bound.scaled else 1.0)
        + bound.rtol * th64.abs().nan_to_num(0.0)
    )
    excess = diff - allowed
    worst = int(torch.argmax(excess if bound is not None else diff))
    largest = float(diff.max())
    if float(excess.reshape(-1)[worst]) <= 0:
        return largest
    index = _index(th, worst)
    a, b = nn.reshape(-1)[worst], th.reshape(-1)[worst]
    count = int((excess > 0).sum())
    rule = "exact equality" if bound is None else f"the bound {bound}"
    raise ConformanceError(
        f"{where}: {name} breaks {rule}: worst entry {index}: nnlite {_fmt(a)} vs torch.nn "
        f"{_fmt(b)} (|diff| {float((a.double() - b.double()).abs()):.3g}, "
        f"{_ulps(a, b)} ulp); {count} of {th.numel()} entries differ"
    )


def check_scalar(where: str, name: str, nn: float, th: float, bound: Bound | None = None) -> float:
    """:func:`check_tensor` for Python numbers (accuracies, learning rates, step counts)."""
    __tracebackhide__ = True
    return check_tensor(
        where,
        name,
        torch.tensor(float(nn), dtype=torch.float64),
        torch.tensor(float(th), dtype=torch.float64),
        bound,
    )


def _index(t: Tensor, flat: int) -> tuple[int, ...]:
    index = []
    for size in reversed(t.shape):
        index.append(flat % size)
        flat //= size
    return tuple(reversed(index))


def _fmt(x: Tensor) -> str:
    return repr(float(x)) if x.dtype == torch.float64 else f"{float(x):.9g}"


def _ulps(a: Tensor, b: Tensor) -> str:
    if not (torch.isfinite(a) and torch.isfinite(b)):
        return "inf"
    if a.dtype not in (torch.float32, torch.float64):
        return "n/a"
    int_type, width = (torch.int64, 64) if a.dtype == torch.float64 else (torch.int32, 32)

    def ordered(x: Tensor) -> int:
        # Sign-magnitude float bits mapped onto a monotone integer line.
        bits = int(x.reshape(1).view(int_type)) & ((1 << width) - 1)
        magnitude = bits & ((1 << (width - 1)) - 1)
        return -magnitude if bits >> (width - 1) else magnitude

    return str(abs(ordered(a) - ordered(b)))
