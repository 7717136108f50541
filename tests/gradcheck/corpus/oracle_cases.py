"""Modules for the oracle tests: forwards that hide a step from autograd (a detached batch mean,
a gate computed under ``torch.no_grad``), each with a backward that ignores the same step (wrong,
and autograd agrees with it) and one that does not (right, and autograd disagrees); a forward
that raises when its input requires grad; and a kink on every entry. Plain torch tensor ops."""

from __future__ import annotations

import numpy as np
import torch

from tests.gradcheck.corpus.correct import BatchNorm, Linear, ReLU, Standardize


class StandardizeDetachedMean(Standardize):
    """Wrong: forward detaches the batch mean and backward treats it as a constant, so the
    ``- mean(grad)`` term is missing. autograd, seeing the same constant, agrees with it."""

    def forward(self, x):
        mean = x.mean(0).detach()
        var = ((x - mean) ** 2).mean(0)
        self.inv = 1 / torch.sqrt(var + self.eps)
        self.xhat = (x - mean) * self.inv
        return self.xhat

    def backward(self, grad):
        n = grad.shape[0]
        return self.inv / n * (n * grad - self.xhat * (grad * self.xhat).sum(0))


class StandardizeDetachedMeanRightBackward(StandardizeDetachedMean):
    """Right: the same detached forward with the full derivative (autograd disagrees)."""

    backward = Standardize.backward


class BatchNormDetachedMean(BatchNorm):
    """A batch norm whose normalisation is :class:`StandardizeDetachedMean`: wrong input
    gradient, right gamma and beta gradients."""

    def __init__(self, features: int, eps: float = 1e-5) -> None:
        super().__init__(features, eps)
        self.norm = StandardizeDetachedMean(eps)


class SiLUNoGradGate:
    """Wrong: ``x * sigmoid(x)`` with the gate computed under ``torch.no_grad``; backward
    returns ``grad * gate``, missing ``x * gate'``, as autograd (blind to the gate) does."""

    def forward(self, x):
        self.x = x
        with torch.no_grad():
            self.gate = torch.sigmoid(x)
        return x * self.gate

    def backward(self, grad):
        return grad * self.gate

    def param(self):
        return []


class SoftplusThroughArray:
    """Right, but forward goes through ``np.asarray``: it raises when its input requires grad."""

    def forward(self, x):
        self.x = x
        return torch.as_tensor(np.logaddexp(0.0, np.asarray(x)))

    def backward(self, grad):
        return grad * torch.sigmoid(self.x)

    def param(self):
        return []


class AbsReLU(ReLU):
    """Right: ``relu(x) + relu(-x)`` (that is ``|x|``), whose kink sits at every 0 of the input."""

    def forward(self, x):
        self.sign = torch.sign(x)
        return x.abs()

    def backward(self, grad):
        return grad * self.sign


class LinearInputEntryOff(Linear):
    """A right Linear but for one entry of its input gradient, 0.5% too large: in a dense
    column, where entry-wise products by finite differences blur it."""

    def __init__(self, n_in: int = 30, n_out: int = 30, entry: tuple[int, int] = (3, 7)) -> None:
        super().__init__(n_in, n_out)
        self.entry = entry

    def backward(self, grad):
        dx = super().backward(grad)
        dx[self.entry] *= 1.005
        return dx
