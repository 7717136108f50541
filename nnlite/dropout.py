"""Inverted dropout."""

from __future__ import annotations

import torch
from torch import Tensor

from nnlite.module import Module


class Dropout(Module):
    r"""During training, zeroes each element with probability ``p`` and scales the rest by
    :math:`\frac{1}{1-p}`; in evaluation mode, the identity.

    .. math::
        y = x \odot m, \quad m_i = \frac{b_i}{1 - p},\ b_i \sim \text{Bernoulli}(1 - p), \qquad
        \frac{\partial \ell}{\partial x} = \frac{\partial \ell}{\partial y} \odot m

    The mask is drawn from torch's global generator exactly as ``torch.nn.Dropout`` draws it
    (``empty_like(x).bernoulli_(1 - p).div_(1 - p)``), so after the same ``torch.manual_seed`` both
    drop the same elements. ``backward`` reuses the mask of the last ``forward``.

    Args:
        p: probability of an element to be zeroed. Default: ``0.5``.

    Shape:
        - Input: :math:`(*)`, any shape.
        - Output: :math:`(*)`, same shape as the input.
    """

    _cache_attrs = ("_mask", "_output")
    _grad_is_fresh = True

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self._mask: Tensor | None = None
        self._output: Tensor | None = None

    def forward(self, input: Tensor) -> Tensor:
        x = self._check_input(input)
        if not self.training or self.p == 0 or x.numel() == 0:
            self._mask = None
            self._output = x.clone()
        elif self.p == 1:
            self._mask = torch.zeros((), dtype=x.dtype, device=x.device)
            self._output = x * self._mask
        else:
            # NOTE: torch's _dropout_impl draws and scales the mask in this order.
            self._mask = torch.empty_like(x).bernoulli_(1 - self.p).div_(1 - self.p)
            self._output = x * self._mask
        return self._output

    def backward(self, grad_output: Tensor) -> Tensor:
        output = self._saved(self._output)
        grad_output = self._check_grad(grad_output, output.shape, output.dtype)
        if self._mask is None:
            return grad_output.clone()
        return grad_output * self._mask

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"
