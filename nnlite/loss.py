"""Loss functions: MSELoss, BCELoss, CrossEntropyLoss.

A loss is a module whose ``forward(input, target)`` returns a 0-dim tensor and whose ``backward()``,
taking no gradient, returns the gradient of that loss with respect to ``input``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nnlite import _sleef
from nnlite._scalars import scalar
from nnlite.module import Module

_REDUCTIONS = ("mean", "sum")
_SUM_THEN_DIVIDE = (torch.float32, torch.float64)
"""The dtypes whose mean torch computes as a sum divided in place by the count (it averages
float16 and bfloat16 in float32)."""
_EXACT_COUNT = 1 << 24
"""Counts up to here are exact in float32, so dividing by them as a tensor is dividing by them."""
# NOTE: torch's BCE backward clamps the denominator at a float constant 1e-12, which is
# 9.999999960041972e-13 once widened; a double 1e-12 gives other bits for float64 inputs.
_BCE_EPSILON = torch.tensor(1e-12, dtype=torch.float32).item()


class _Loss(Module):
    """Shared validation and caching for losses."""

    _cache_attrs = ("_input", "_target")

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{reduction} is not a valid value for reduction; "
                f"use one of {', '.join(_REDUCTIONS)}"
            )
        self.reduction = reduction
        self._input: Tensor | None = None
        self._target: Tensor | None = None

    def _check_same_shape(self, input: Tensor, target: Tensor) -> Tensor:
        """Refuse a target that does not match ``input``; return it detached from autograd."""
        if not isinstance(target, Tensor):
            raise TypeError(f"{self!r}: target must be a torch.Tensor, got {type(target).__name__}")
        if input.shape != target.shape:
            raise ValueError(
                f"{self!r}: input shape {tuple(input.shape)} and target shape "
                f"{tuple(target.shape)} differ; they would broadcast silently. Reshape one to "
                f"match (e.g. target.view_as(input), or a one-hot target for multi-output "
                f"networks)"
            )
        if target.dtype != input.dtype:
            raise TypeError(
                f"{self!r}: target dtype {target.dtype} differs from input dtype {input.dtype}; "
                f"convert the target with target.to({input.dtype})"
            )
        device_error = self._device_error(input, target)
        if device_error is not None:
            raise device_error
        return target.detach() if target.requires_grad else target

    def _device_error(self, input: Tensor, target: Tensor) -> RuntimeError | None:
        """The error to raise when ``target`` is on another device than ``input``."""
        if target.device == input.device:
            return None
        return RuntimeError(
            f"{self!r}: target is on {target.device} but input on {input.device}; move the "
            f"target with target.to({str(input.device)!r})"
        )

    def _reduce(self, elementwise: Tensor) -> Tensor:
        return elementwise.mean() if self.reduction == "mean" else elementwise.sum()


class MSELoss(_Loss):
    r"""Mean squared error between input and target.

    .. math::
        \ell = \frac{1}{n}\sum_i (x_i - y_i)^2, \qquad
        \frac{\partial \ell}{\partial x_i} = \frac{2}{n}(x_i - y_i)

    (with ``reduction="sum"`` the :math:`\frac{1}{n}` is dropped).

    Args:
        reduction: ``"mean"`` (default) or ``"sum"``.

    Shape:
        - Input: :math:`(*)`; Target: :math:`(*)`, the same shape (no broadcasting).
        - Output: scalar.
    """

    _cache_attrs = ("_diff",)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self._diff: Tensor | None = None

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if not (
            isinstance(input, Tensor)
            and isinstance(target, Tensor)
            and input.dtype is target.dtype
            and input.is_floating_point()
            and input.shape == target.shape
            and not (input.requires_grad or target.requires_grad)
        ):
            input = self._check_input(input)
            target = self._check_same_shape(input, target)
        # Only the difference is kept: the gradient needs nothing else, and the input (the
        # network's output, which nothing else may hold) can be freed.
        try:
            diff = input - target
        except RuntimeError as error:
            raise (self._device_error(input, target) or error) from None
        self._diff = diff
        squared = diff * diff
        if self.reduction == "sum":
            return squared.sum()
        count = squared.numel()
        if 0 < count <= _EXACT_COUNT and squared.dtype in _SUM_THEN_DIVIDE:
            # NOTE: torch's mean on the CPU is this sum divided in place by the count; calling it
            # so with the count as a cached tensor saves a wrapped scalar and a kernel launch.
            return squared.sum().div_(scalar(float(count), squared))
        return squared.mean()

    def backward(self) -> Tensor:
        diff = self._saved(self._diff)
        # NOTE: torch's mse_backward computes the scale in double, rounds it to the input's dtype
        # and multiplies it into the difference.
        norm = 2.0 / max(diff.numel(), 1) if self.reduction == "mean" else 2.0
        return torch.mul(diff, scalar(norm, diff))


class BCELoss(_Loss):
    r"""Binary cross entropy between predicted probabilities and targets.

    .. math::
        \ell_i = -\big(y_i \log x_i + (1 - y_i)\log(1 - x_i)\big), \qquad
        \frac{\partial \ell_i}{\partial x_i} =
            \frac{x_i - y_i}{\max\big((1 - x_i)\,x_i,\ 10^{-12}\big)}

    Each log is clamped at :math:`-100` as torch clamps it, so a prediction of exactly 0 or 1
    gives a finite loss; the reduction is the mean (default) or the sum.

    Args:
        reduction: ``"mean"`` (default) or ``"sum"``.

    Shape:
        - Input: :math:`(*)`, probabilities in :math:`[0, 1]`; Target: :math:`(*)`, same shape.
        - Output: scalar.
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        input = self._check_input(input)
        target = self._check_same_shape(input, target)
        # Written so that a NaN fails the test, as it fails torch's.
        if input.numel() and not (input.min() >= 0 and input.max() <= 1):
            raise ValueError(
                f"{self!r}: all elements of input should be between 0 and 1, got values in "
                f"[{input.min().item()}, {input.max().item()}]; apply a Sigmoid before BCELoss"
            )
        if target.numel() and not (target.min() >= 0 and target.max() <= 1):
            raise ValueError(
                f"{self!r}: all elements of target should be between 0 and 1, got values in "
                f"[{target.min().item()}, {target.max().item()}]"
            )
        self._input, self._target = input, target
        # NOTE: the order of torch's binary_cross_entropy kernel: (y - 1) * max(log(1 - x), -100)
        # - y * max(log(x), -100).
        log_x = torch.log(input).clamp_min_(-100)
        log_1mx = torch.log1p(-input).clamp_min_(-100)
        return self._reduce((target - 1) * log_1mx - target * log_x)

    def backward(self) -> Tensor:
        input = self._saved(self._input)
        # NOTE: torch's binary_cross_entropy_backward: (x - y) / max((1 - x) * x, 1e-12), then / n.
        grad = (input - self._target) / ((1 - input) * input).clamp_min_(_BCE_EPSILON)
        if self.reduction == "mean":
            grad.div_(input.numel())
        return grad


class CrossEntropyLoss(_Loss):
    r"""Cross entropy between the softmax of the input logits and the target.

    With class-index targets :math:`c_n`:

    .. math::
        \ell = -\frac{1}{N}\sum_n \log \operatorname{softmax}(x_n)_{c_n}, \qquad
        \frac{\partial \ell}{\partial x_{n}} =
            \frac{1}{N}\big(\operatorname{softmax}(x_n) - e_{c_n}\big)

    With probability targets :math:`p_n` (same shape as the input), :math:`e_{c_n}` becomes
    :math:`p_n` and the loss is
    :math:`-\frac{1}{N}\sum_n p_n \cdot \log\operatorname{softmax}(x_n)`.

    Args:
        reduction: ``"mean"`` (default) or ``"sum"``.

    Shape:
        - Input: :math:`(N, C)` logits, or :math:`(C,)` for one sample.
        - Target: :math:`(N,)` (or :math:`()`) class indices of dtype long in :math:`[0, C)`, or
          :math:`(N, C)` probabilities of the input's dtype.
        - Output: scalar.
    """

    _cache_attrs = ("_input", "_target", "_log_probs")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        input = self._check_input(input)
        _sleef.check_dtype(self, input)
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{self!r}: expected input of shape (N, C) or (C,), got {tuple(input.shape)}"
            )
        if not isinstance(target, Tensor):
            raise TypeError(f"{self!r}: target must be a torch.Tensor, got {type(target).__name__}")
        class_dim = input.dim() - 1
        n_classes = input.shape[class_dim]
        log_probs = torch.log_softmax(input, class_dim)
        if target.is_floating_point():
            target = self._check_same_shape(input, target)
        self._input, self._target, self._log_probs = input, target, log_probs
        if target.is_floating_point():
            # NOTE: torch's cross_entropy with probability targets: -(log_probs * target).sum() / N.
            loss = -(log_probs * target).sum()
            return loss / (input.numel() // n_classes) if self.reduction == "mean" else loss
        if target.dtype != torch.long:
            raise TypeError(
                f"{self!r}: class-index target must have dtype torch.long, got {target.dtype}; "
                f"use target.long(), or pass float probabilities of the input's shape"
            )
        device_error = self._device_error(input, target)
        if device_error is not None:
            raise device_error
        if target.shape != input.shape[:class_dim]:
            raise ValueError(
                f"{self!r}: class-index target must have shape {tuple(input.shape[:class_dim])} "
                f"for input {tuple(input.shape)}, got {tuple(target.shape)}"
            )
        if target.numel() and (target.min() < 0 or target.max() >= n_classes):
            raise ValueError(
                f"{self!r}: target class indices must lie in [0, {n_classes}), got values in "
                f"[{target.min().item()}, {target.max().item()}]"
            )
        picked = log_probs.reshape(-1, n_classes).gather(1, target.reshape(-1, 1)).view(-1)
        total = _nll_cascade_sum(-picked)
        if self.reduction == "mean":
            total = total / torch.tensor(float(picked.numel()), dtype=input.dtype)
        return total

    def backward(self) -> Tensor:
        input = self._saved(self._input)
        log_probs, target = self._log_probs, self._target
        class_dim = input.dim() - 1
        n_classes = input.shape[class_dim]
        if target.is_floating_point():
            n = input.numel() // n_classes
            scale = (
                -(1 / torch.tensor(float(n), dtype=input.dtype))
                if self.reduction == "mean"
                else -1.0
            )
            grad_log_probs = (target * scale).reshape(-1, n_classes)
            row_sums = _vec_row_sum(grad_log_probs).unsqueeze(1)
        else:
            one = torch.ones((), dtype=input.dtype, device=input.device)
            scale = -(one / target.numel()) if self.reduction == "mean" else -one
            grad_log_probs = torch.zeros_like(input).reshape(-1, n_classes)
            grad_log_probs.scatter_(1, target.reshape(-1, 1), scale.expand(target.numel(), 1))
            # Each row holds one nonzero, so its sum is exactly that value in any order.
            row_sums = scale
        # NOTE: torch's log_softmax backward computes g - exp(log_probs) * sum(g) per row with its
        # vectorised exp (SLEEF's, not torch.exp's) and one rounding (a fused multiply-add).
        probs = _sleef.exp(log_probs.reshape(-1, n_classes))
        return torch.addcmul(grad_log_probs, probs, row_sums, value=-1).view_as(input)


def _vec_row_sum(rows: Tensor) -> Tensor:
    """Sum each row of a 2-D tensor in the order of torch's ``vec::reduce_all`` on this CPU.

    NOTE: the kernel adds the row into one SIMD register lane by lane (512 or 256 bits wide, by
    CPU capability), the last partial chunk into the leading lanes only, then folds the lanes:
    float32 by halves (lane i with lane i + width/2, and so on), float64 left to right. A row
    shorter than the register is summed left to right.
    """
    n, length = rows.shape
    register_bits = 512 if torch.backends.cpu.get_cpu_capability() == "AVX512" else 256
    width = register_bits // torch.finfo(rows.dtype).bits
    if length < width:
        total = rows[:, 0].clone()
        for column in range(1, length):
            total += rows[:, column]
        return total
    full = length // width
    chunks = rows[:, : full * width].reshape(n, full, width)
    lanes = chunks[:, 0].clone()
    for chunk in range(1, full):
        lanes += chunks[:, chunk]
    if length > full * width:
        lanes[:, : length - full * width] += rows[:, full * width :]
    if rows.dtype == torch.float32:
        while lanes.shape[1] > 1:
            half = lanes.shape[1] // 2
            lanes = lanes[:, :half] + lanes[:, half:]
        return lanes[:, 0]
    total = lanes[:, 0].clone()
    for lane in range(1, width):
        total += lanes[:, lane]
    return total


_CASCADE_LEVELS = 8
_CASCADE_STEP = 16


def _nll_cascade_sum(values: Tensor) -> Tensor:
    """Sum a 1-D tensor in the order torch's CPU ``nll_loss`` kernel sums it.

    NOTE: the kernel accumulates samples into 8 partial sums, flushing partial sum ``j`` into
    ``j + 1`` whenever the sample index is a multiple of ``16 ** (j + 1)`` (so sample 0 lands in
    the last one), then adds the partial sums in order. Reproducing that order gives its bits.
    """
    zero = values.new_zeros(())
    if values.numel() == 0:
        return zero
    partials = []
    level = values[1:]
    for _ in range(_CASCADE_LEVELS - 1):
        remainder = level.numel() % _CASCADE_STEP
        padded = torch.cat((level, level.new_zeros((-remainder) % _CASCADE_STEP)))
        chunks = padded.view(-1, _CASCADE_STEP)
        sums = chunks[:, 0].clone()
        for column in range(1, _CASCADE_STEP):
            sums += chunks[:, column]
        if remainder:
            partials.append(sums[-1])
            sums = sums[:-1]
        else:
            partials.append(zero)
        level = sums
        if level.numel() == 0:
            break
    partials.extend([zero] * (_CASCADE_LEVELS - 1 - len(partials)))
    partials.append(values[0] + level.sum() if level.numel() else values[0])
    total = zero
    for partial in partials:
        total = total + partial
    return total
