"""Element-wise activation functions: ReLU, LeakyReLU, ELU, Tanh, Sigmoid."""

from __future__ import annotations

import torch
from torch import Tensor

from nnlite import _sleef
from nnlite._scalars import scalar
from nnlite.module import Module


class _Activation(Module):
    """An element-wise function: ``forward`` caches its output (and its input only where the
    derivative needs it, ``_needs_input``), ``backward`` applies the derivative to the upstream
    gradient. Subclasses define ``_apply`` and ``_derivative``.

    Keeping the input alive only when needed matters at large batches: the input is the previous
    layer's output, which nothing else holds, so caching it would double the activation memory.
    """

    _needs_input = False

    def __init__(self) -> None:
        super().__init__()
        self._input: Tensor | None = None
        self._output: Tensor | None = None

    def forward(self, input: Tensor) -> Tensor:
        self._check_input(input)
        if self._needs_input:
            self._input = input
        self._output = self._apply(input)
        return self._output

    def backward(self, grad_output: Tensor) -> Tensor:
        output = self._saved(self._output)
        self._check_grad(grad_output, output.shape, output.dtype)
        return self._derivative(grad_output, self._input, output)

    def _apply(self, x: Tensor) -> Tensor:
        raise NotImplementedError

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

    def _apply(self, x: Tensor) -> Tensor:
        return torch.relu(x)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's threshold_backward gives +0 where the *output* is <= 0 and the gradient
        # itself elsewhere (a NaN output passes it through). +0 + grad * keep gives the same
        # values, the common +0 at inactive units included (grad * keep alone would give -0 for
        # every negative gradient there). Two differences, neither visible to torch.equal or to
        # any later value: a -0 gradient at an active unit comes out +0, and an infinite one at
        # an inactive unit NaN instead of 0. The mask is built in the result's dtype and memory
        # (ne into a float tensor, addcmul over it in place): a bool mask makes addcmul convert
        # it to a float temporary first, 4x slower at batch 1,000 and 15x at 100,000, with one
        # more tensor of the activation's size alive at the peak.
        zero = scalar(0.0, y)
        result = torch.ne(y, zero, out=torch.empty_like(y))
        return torch.addcmul(zero, grad, result, out=result)


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
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
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
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"ELU: alpha must be a number, got {alpha!r}")
        self.alpha = alpha

    def _apply(self, x: Tensor) -> Tensor:
        # NOTE: torch's elu kernel uses SLEEF's expm1 on its vectorised body, as torch.expm1 does,
        # but the C library's expm1 on the scalar tail of each thread's chunk (its last
        # numel % (2 * SIMD width) elements), where a rare element differs by 1 ulp.
        return torch.where(x > 0, x, torch.expm1(x) * self.alpha)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's elu_backward multiplies in this order, with SLEEF's exp on its vectorised
        # body (reproduced by _sleef.exp) but the C library's exp on the scalar tail of each
        # thread's chunk (its last numel % (2 * SIMD width) elements), where a rare element
        # differs by 1 ulp; tests bound the difference at 2 ulps.
        return torch.where(x > 0, grad, grad * self.alpha * _sleef.exp(x))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Tanh(_Activation):
    r"""Applies the hyperbolic tangent element-wise.

    .. math::
        \tanh(x) = \frac{e^x - e^{-x}}{e^x + e^{-x}}, \qquad \tanh'(x) = 1 - \tanh^2(x)

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    def _apply(self, x: Tensor) -> Tensor:
        return torch.tanh(x)

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

    def _apply(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x)

    def _derivative(self, grad: Tensor, x: Tensor, y: Tensor) -> Tensor:
        # NOTE: torch's sigmoid_backward order: grad * (1 - y) * y.
        return grad * (1 - y) * y
