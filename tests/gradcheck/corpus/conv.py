"""Convolutional modules written the way Noise2Noise course projects write them (NCHW, unfold).

``Conv2d`` is correct; the ``*Wrong*`` subclasses each carry one bug that a check must flag,
``block()`` builds the three-convolution block (3 -> 16 -> 16 -> 3 with ReLUs) the scale tests
and the benchmark check. Plain torch tensor ops: ``unfold``/``fold`` from
``torch.nn.functional`` and nothing of nnlite or gradcheck.
"""

from __future__ import annotations

import torch
from torch.nn.functional import fold, unfold


class Conv2d:
    """A stride-1 convolution with zero padding, forward and backward through unfold/fold."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1, seed=0
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        fan_in = in_channels * kernel_size**2
        self.kernel_size, self.padding = kernel_size, padding
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = torch.randn(shape, generator=g) / fan_in**0.5
        self.bias = torch.randn(out_channels, generator=g) * 0.1
        self.weight_grad = torch.zeros_like(self.weight)
        self.bias_grad = torch.zeros_like(self.bias)

    def forward(self, x):
        self.shape = x.shape
        self.cols = unfold(x, self.kernel_size, padding=self.padding)  # (N, C k k, H W)
        out = self.weight.reshape(self.weight.shape[0], -1) @ self.cols
        out = out + self.bias.reshape(1, -1, 1)
        return out.reshape(x.shape[0], -1, x.shape[2], x.shape[3])

    def backward(self, grad):
        g = grad.reshape(grad.shape[0], grad.shape[1], -1)  # (N, out, H W)
        self.weight_grad += (g @ self.cols.transpose(1, 2)).sum(0).reshape(self.weight.shape)
        self.bias_grad += g.sum((0, 2))
        cols = self.weight.reshape(self.weight.shape[0], -1).T @ g
        size = self.shape[2:]
        return fold(cols, size, self.kernel_size, padding=self.padding)

    def param(self):
        return [(self.weight, self.weight_grad), (self.bias, self.bias_grad)]


class Conv2dWrongWeightEntry(Conv2d):
    """One weight-gradient entry 0.5% too large: what only an entry-level comparison sees."""

    def backward(self, grad):
        before = self.weight_grad.clone()
        result = super().backward(grad)
        step = self.weight_grad - before
        self.weight_grad.view(-1)[5] += 0.005 * step.view(-1)[5]
        return result


class Conv2dWeightGradientOfFirstSample(Conv2d):
    """The weight gradient of sample 0 only: right for batch 1, wrong for batch > 1."""

    def backward(self, grad):
        g = grad.reshape(grad.shape[0], grad.shape[1], -1)
        self.weight_grad += (g[0] @ self.cols[0].T).reshape(self.weight.shape)
        self.bias_grad += g.sum((0, 2))
        cols = self.weight.reshape(self.weight.shape[0], -1).T @ g
        return fold(cols, self.shape[2:], self.kernel_size, padding=self.padding)


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask

    def param(self):
        return []


class Sequential:
    def __init__(self, *modules) -> None:
        self.modules = modules

    def forward(self, x):
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, grad):
        for m in reversed(self.modules):
            grad = m.backward(grad)
        return grad

    def param(self):
        return [p for m in self.modules for p in m.param()]


def block(width: int = 16, channels: int = 3, first=Conv2d) -> Sequential:
    """Three 3x3 convolutions ``channels -> width -> width -> channels`` with ReLUs between."""
    return Sequential(
        first(channels, width, seed=1),
        ReLU(),
        Conv2d(width, width, seed=2),
        ReLU(),
        Conv2d(width, channels, seed=3),
    )
