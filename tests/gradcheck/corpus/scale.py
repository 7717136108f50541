"""Modules for the scale tests: elementwise and Linear layers with one wrong gradient entry,
one wrong Jacobian entry, a wrong factor on some rows, values of any scale, and forwards autograd
cannot follow. Plain torch tensor ops."""

from __future__ import annotations

import numpy as np
import torch

from tests.gradcheck.corpus.correct import Linear


class ScaledTanh:
    """``scale * tanh(x)``; ``factor`` multiplies backward (1: correct)."""

    def __init__(self, scale: float = 1.0, factor: float = 1.0) -> None:
        self.scale, self.factor = scale, factor

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.scale * self.y

    def backward(self, grad):
        return self.factor * self.scale * grad * (1 - self.y**2)

    def param(self):
        return []


class TanhOneEntryOff(ScaledTanh):
    """Input-gradient entry ``index`` (flat) 0.5% too large."""

    def __init__(self, index: int = 7) -> None:
        super().__init__()
        self.index = index

    def backward(self, grad):
        result = super().backward(grad).clone()
        result.view(-1)[self.index] *= 1.005
        return result


class TanhWrongOnRow(ScaledTanh):
    """Twice the gradient on batch row ``row``."""

    def __init__(self, row: int = 0) -> None:
        super().__init__()
        self.row = row

    def backward(self, grad):
        result = super().backward(grad).clone()
        result[self.row] *= 2
        return result


class LinearWeightEntryOff(Linear):
    """One weight-gradient entry 0.5% too large (of what this backward adds)."""

    def backward(self, grad):
        before = self.weight_grad.clone()
        result = super().backward(grad)
        self.weight_grad.view(-1)[3] += 0.005 * (self.weight_grad - before).view(-1)[3]
        return result


class LinearOneJacobianEntryOff(Linear):
    """Input gradient with one Jacobian entry, d out[0, 0] / d x[0, 0], 0.5% too large: in a
    dense column (out_features terms) an entry-wise product does not see it, full mode does."""

    def backward(self, grad):
        result = super().backward(grad).clone()
        result[0, 0] += 0.005 * grad[0, 0] * self.weight[0, 0]
        return result


class LinearUnusedBias(Linear):
    """Forward ignores the bias; backward still gives it a gradient."""

    def forward(self, x):
        self.x = x
        return x @ self.weight.T


class LinearDoubleOnOutputFeature(Linear):
    """Twice the weight gradient of output feature 2."""

    def backward(self, grad):
        before = self.weight_grad.clone()
        result = super().backward(grad)
        self.weight_grad[2] += self.weight_grad[2] - before[2]
        return result


class CrossEntropyWrongOnClass0:
    """Softmax cross-entropy (mean) whose gradient is doubled on rows whose target is class 0."""

    def forward(self, prediction, target):
        self.p = torch.softmax(prediction, dim=1)
        self.target = target
        n = prediction.shape[0]
        return -torch.log(self.p[torch.arange(n), target]).mean()

    def backward(self):
        n = self.p.shape[0]
        grad = self.p.clone()
        grad[torch.arange(n), self.target] -= 1
        grad[self.target == 0] *= 2
        return grad / n


class TanhNoGrad(ScaledTanh):
    """Correct, but forward runs under torch.no_grad (autograd cannot follow it)."""

    def forward(self, x):
        with torch.no_grad():
            return super().forward(x)


class TanhThroughNumpy(ScaledTanh):
    """Correct, through numpy."""

    def forward(self, x):
        self.y = torch.from_numpy(np.tanh(x.numpy()))
        return self.y


class TanhDetachedDerivativeCache(ScaledTanh):
    """Correct, but computes ``scale * x`` as ``x + (scale - 1) * x.detach()``: autograd sees
    a derivative of 1 for ``scale * x`` where the true one is ``scale``."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y + (self.scale - 1) * self.y.detach()


class CoupledBatch:
    """``x - x.mean(0)``: every sample's output depends on every sample."""

    def forward(self, x):
        return x - x.mean(0, keepdim=True)

    def backward(self, grad):
        return grad - grad.mean(0, keepdim=True)

    def param(self):
        return []
