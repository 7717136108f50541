"""Element-wise activation functions: ReLU, LeakyReLU, ELU, Tanh, Sigmoid."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nnlite import _libm, _loops, _sleef
from nnlite._scalars import scalar
from nnlite.module import Module

_SLICE = 1 << 18
#: Up to this many elements ReLU's backward selects with torch.where: as fast as arithmetic there.
_SELECT_MAX = 1 << 10


def _zero_inactive(result: Tensor, y: Tensor, zero: Tensor) -> Tensor:
    """Where ``grad * keep`` met a non-finite gradient, zero the inactive units in place, as
    threshold_backward selects 0 there (one sum tells whether anything is to be done)."""
    if not math.isfinite(float(result.sum())):
        torch.where(torch.le(y, zero), zero, result, out=result)
    return result


"""Elements per slice when ReLU masks a gradient in place (a 1 MiB mask in float32)."""


def _check_number(owner: str, name: str, value: object, example: str) -> None:
    """Refuse a hyper-parameter that is not a finite real number, naming it and the fix."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}; e.g. {example}")
    if not math.isfinite(value):
        raise ValueError(
            f"{owner}: {name} must be a finite number, got {value!r} (it would turn every "
            f"output into nan or inf); e.g. {example}"
        )


class _Activation(Module):
    """An element-wise function: ``forward`` caches its output (and its input only where the
    derivative needs it, ``_needs_input``), ``backward`` applies the derivative to the upstream
    gradient. Subclasses define ``_apply`` and ``_derivative``.

    Keeping the input alive only when needed matters at large batches: the input is the previous
    layer's output, which nothing else holds, so caching it would double the activation memory.
    """

    _needs_input = False
    _cache_attrs = ("_input", "_output")
    _grad_is_fresh = True

    def __init__(self) -> None:
        super().__init__()
        self._input: Tensor | None = None
        self._output: Tensor | None = None

    def forward(self, input: Tensor) -> Tensor:
        if not (
            isinstance(input, Tensor) and input.is_floating_point() and not input.requires_grad
        ):
            input = self._check_input(input)
        if self._needs_input:
            self._input = input
        self._output = output = self._apply(input)
        return output

    def backward(self, grad_output: Tensor) -> Tensor:
        output = self._output
        if (
            output is None
            or not isinstance(grad_output, Tensor)
            or grad_output.dtype is not output.dtype
            or grad_output.shape != output.shape
            or grad_output.requires_grad
        ):
            output = self._saved(output)
            grad_output = self._check_grad(grad_output, output.shape, output.dtype)
        return self._derivative(grad_output, self._input, output)

    def _forward_owned(self, input: Tensor) -> Tensor:
        """``forward`` computed in ``input``'s memory, which the caller hands over.

        :class:`~nnlite.Sequential` calls it, on the activations that need only their output
        (``_apply_``), with a tensor the previous layer has just created and nothing else holds:
        one activation-sized tensor fewer per layer, the same bits (the same kernel, in place).
        """
        if not input.is_floating_point():
            self._check_input(input)  # raises
        self._output = output = self._apply_(input)
        return output

    def _apply(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _apply_(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no in-place forward")

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError


class ReLU(_Activation):
    r"""Applies the rectified linear unit element-wise.

    .. math::
        \text{ReLU}(x) = \max(0, x), \qquad
        \text{ReLU}'(x) = \begin{cases} 1 & x > 0 \\ 0 & x \le 0 \end{cases}

    The derivative at 0 is taken as 0, as torch takes it.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    _forward_in_place = True
    _backward_in_place = True

    def _apply(self, x: Tensor) -> Tensor:
        return torch.relu(x)

    def _apply_(self, x: Tensor) -> Tensor:
        return torch.relu_(x)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's threshold_backward: +0 where the *output* is <= 0, the gradient itself
        # elsewhere (a NaN output passes it through). On small tensors a select, exactly that.
        # On larger ones, where torch.where runs 10x slower than arithmetic here, +0 + grad * keep
        # with keep a 0/1 mask in the result's dtype (a bool mask makes addcmul convert it to a
        # float temporary first): the same values for every finite gradient. An infinite or NaN
        # gradient at an inactive unit would give inf * 0 = NaN where torch gives 0 (a network
        # that overflows in training, seed 002's MSE / SGD / ReLU at lr 0.1, diverged so), so a
        # non-finite sum sends the result through the select, which keeps active units as they
        # are and zeroes the rest. One difference is left: a -0 gradient at an active unit comes
        # out +0, which torch.equal and every later value ignore.
        zero = scalar(0.0, y)
        if y.numel() <= _SELECT_MAX:
            return torch.where(torch.le(y, zero), zero, grad)
        result = torch.ne(y, zero, out=torch.empty_like(y))
        torch.addcmul(zero, grad, result, out=result)
        return _zero_inactive(result, y, zero)

    def _backward_owned(self, grad_output: Tensor) -> Tensor:
        """``backward`` computed in ``grad_output``'s memory, which the caller hands over.

        :class:`~nnlite.Sequential` calls it with the gradient the next layer has just created.
        Small gradients get :meth:`_derivative`'s select written in place (one tensor fewer);
        large ones are masked in place a slice at a time, so the step needs one slice of mask
        instead of a second activation-sized tensor. The operations per element, and so the
        bits, are :meth:`_derivative`'s.
        """
        y = self._output
        if (
            y is None
            or grad_output.dtype is not y.dtype
            or grad_output.shape != y.shape
            or grad_output.requires_grad
        ):
            y = self._saved(y)
            grad_output = self._check_grad(grad_output, y.shape, y.dtype)
        zero = scalar(0.0, y)
        count = grad_output.numel()
        if count <= _SELECT_MAX:
            return grad_output.masked_fill_(torch.le(y, zero), zero)  # +0 where y <= 0
        if count <= _SLICE or not (grad_output.is_contiguous() and y.is_contiguous()):
            return self._derivative(grad_output, None, y)
        flat_grad, flat_y = grad_output.view(-1), y.view(-1)
        keep = flat_y.new_empty(_SLICE)
        for start in range(0, flat_grad.numel(), _SLICE):
            grad, part = flat_grad[start : start + _SLICE], flat_y[start : start + _SLICE]
            mask = torch.ne(part, zero, out=keep[: grad.numel()])
            torch.addcmul(zero, grad, mask, out=grad)
            _zero_inactive(grad, part, zero)
        return grad_output


class LeakyReLU(_Activation):
    r"""Applies the leaky rectified linear unit element-wise.

    .. math::
        \text{LeakyReLU}(x) = \begin{cases} x & x > 0 \\ \text{negative\_slope} \cdot x & x \le 0
        \end{cases}, \qquad
        \text{LeakyReLU}'(x) = \begin{cases} 1 & x > 0 \\ \text{negative\_slope} & x \le 0
        \end{cases}

    Args:
        negative_slope: slope for negative inputs. Default: ``1e-2``.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    _needs_input = True

    def __init__(self, negative_slope: float = 1e-2) -> None:
        super().__init__()
        _check_number("LeakyReLU", "negative_slope", negative_slope, "LeakyReLU(0.01)")
        self.negative_slope = negative_slope

    def _apply(self, x: Tensor) -> Tensor:
        return torch.where(x > 0, x, x * self.negative_slope)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return torch.where(x > 0, grad, grad * self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    r"""Applies the exponential linear unit element-wise.

    .. math::
        \text{ELU}(x) = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \le 0 \end{cases}, \qquad
        \text{ELU}'(x) = \begin{cases} 1 & x > 0 \\ \alpha e^x & x \le 0 \end{cases}

    Args:
        alpha: the :math:`\alpha` value of the negative branch. Default: ``1.0``.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    _needs_input = True

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        _check_number("ELU", "alpha", alpha, "ELU(alpha=1.0)")
        self.alpha = alpha

    def _apply(self, x: Tensor) -> Tensor:
        _sleef.check_dtype(self, x)
        # NOTE: torch's elu kernel computes expm1(x) * alpha with SLEEF's expm1 (torch.expm1's)
        # on its SIMD loop and with the C library's on the elements the loop leaves to its
        # scalar code (nnlite._loops says which); both parts are rebuilt here.
        y = torch.where(x > 0, x, torch.expm1(x) * self.alpha)
        index = _loops.scalar_elements(x)
        if index is not None:
            _put(y, index, _elu_scalar(_take(x, index), self.alpha))
        return y

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's elu_backward computes grad * alpha * exp(x) in this order, with SLEEF's
        # exp (nnlite._sleef) on its SIMD loop and the C library's on the elements left to its
        # scalar code.
        result = torch.where(x > 0, grad, grad * self.alpha * _sleef.exp(x))
        index = _loops.scalar_elements(grad, x)
        if index is not None:
            _put(result, index, _elu_scalar_grad(_take(grad, index), _take(x, index), self.alpha))
        return result

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def _take(tensor: Tensor, index: Tensor | tuple[Tensor, ...]) -> Tensor:
    return tensor.view(-1)[index] if isinstance(index, Tensor) else tensor[index]


def _put(tensor: Tensor, index: Tensor | tuple[Tensor, ...], values: Tensor) -> None:
    if isinstance(index, Tensor):
        tensor.view(-1)[index] = values
    else:
        tensor[index] = values


def _elu_scalar(x: Tensor, alpha: float) -> Tensor:
    """ELU as the kernel's scalar code computes it: ``x <= 0 ? expm1(x) * alpha : x``."""
    return torch.where(x <= 0, _libm.expm1_nonpositive(x.clamp(max=0)) * alpha, x)


def _elu_scalar_grad(grad: Tensor, x: Tensor, alpha: float) -> Tensor:
    """ELU's backward as the scalar code computes it: ``x <= 0 ? grad * alpha * exp(x) : grad``."""
    return torch.where(x <= 0, grad * alpha * _libm.exp_nonpositive(x.clamp(max=0)), grad)


class Tanh(_Activation):
    r"""Applies the hyperbolic tangent element-wise.

    .. math::
        \tanh(x) = \frac{e^x - e^{-x}}{e^x + e^{-x}}, \qquad \tanh'(x) = 1 - \tanh^2(x)

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    _forward_in_place = True

    def _apply(self, x: Tensor) -> Tensor:
        return torch.tanh(x)

    def _apply_(self, x: Tensor) -> Tensor:
        return torch.tanh_(x)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's tanh_backward kernel computes 1 - y * y with one rounding (a fused
        # multiply-add); addcmul is compiled the same way, a separate multiply and subtract is not.
        return grad * torch.addcmul(torch.ones_like(y), y, y, value=-1)


class Sigmoid(_Activation):
    r"""Applies the logistic sigmoid element-wise.

    .. math::
        \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad \sigma'(x) = \sigma(x)\,(1 - \sigma(x))

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    _forward_in_place = True

    def _apply(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)

    def _apply_(self, x: Tensor) -> Tensor:
        return torch.sigmoid_(x)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's sigmoid_backward order: grad * (1 - y) * y.
        return grad * (1 - y) * y
