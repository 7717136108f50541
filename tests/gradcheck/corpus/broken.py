"""One broken module per bug class. Each docstring names the bug; the test names the check."""

from __future__ import annotations

import torch

from tests.gradcheck.corpus import correct
from tests.gradcheck.corpus.correct import Linear, Sequential, Tanh


class TanhWrongDerivative(correct.Tanh):
    """Derivative 1 - y instead of 1 - y**2."""

    def backward(self, grad):
        return grad * (1 - self.y)


class SigmoidTwiceTheGradient(correct.Sigmoid):
    """Right shape, right sign, twice the size."""

    def backward(self, grad):
        return 2 * grad * self.y * (1 - self.y)


class ELUMissingAlpha(correct.ELU):
    """For x < 0 uses y instead of y + alpha: wrong on the negative side only."""

    def __init__(self) -> None:
        super().__init__(alpha=1.5)

    def backward(self, grad):
        y = self.alpha * (torch.exp(self.x) - 1)
        return grad * torch.where(self.x > 0, torch.ones_like(y), y)


class LeakyReLUWrongSignOnNegatives:
    """The negative side's slope has the wrong sign."""

    def forward(self, x):
        self.x = x
        return torch.where(x > 0, x, 0.1 * x)

    def backward(self, grad):
        return grad * torch.where(
            self.x > 0, torch.ones_like(self.x), -0.1 * torch.ones_like(self.x)
        )

    def param(self):
        return []


class LinearTransposedWeightGradient(Linear):
    """Square layer: weight gradient x.T @ grad instead of grad.T @ x (shapes agree)."""

    def backward(self, grad):
        self.weight_grad += self.x.T @ grad
        self.bias_grad += grad.sum(0)
        return grad @ self.weight


class LinearBiasGradientAveraged(Linear):
    """Bias gradient is the batch mean instead of the sum."""

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad.mean(0)
        return grad @ self.weight


class LinearBiasGradientFromOneSample(Linear):
    """Bias gradient taken from the first sample only."""

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad[0]
        return grad @ self.weight


class LinearOneEntryOffByHalfAPercent(Linear):
    """One Jacobian entry of the input gradient is 0.5% off: d out[0, 2] / d x[0, 1]."""

    def backward(self, grad):
        dx = grad @ self.weight
        dx[0, 1] += 0.005 * grad[0, 2] * self.weight[2, 1]
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad.sum(0)
        return dx


class LinearOneWeightEntryOffByHalfAPercent(Linear):
    """One Jacobian entry of the weight gradient is 0.5% off: d out[0, 1] / d weight[1, 2]."""

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        self.weight_grad[1, 2] += 0.005 * grad[0, 1] * self.x[0, 2]
        self.bias_grad += grad.sum(0)
        return grad @ self.weight


class LinearOneEntryOffByFive(Linear):
    """The input gradient is off by 5.0 in one Jacobian entry (what torch's fast mode missed)."""

    def backward(self, grad):
        dx = grad @ self.weight
        dx[3, 7] += 5.0 * grad[3, 11]
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad.sum(0)
        return dx


class DropoutBackwardWithoutMask(correct.Dropout):
    """backward scales but forgets the mask."""

    def backward(self, grad):
        return grad / (1 - self.p)


class DropoutBackwardWithoutScale(correct.Dropout):
    """backward applies the 0/1 mask but forgets the 1 / (1 - p) scale."""

    def forward(self, x):
        self.keep = torch.bernoulli(torch.full_like(x, 1 - self.p))
        return x * self.keep / (1 - self.p)

    def backward(self, grad):
        return grad * self.keep


class ReLUMutatesInput:
    """forward clamps its input in place."""

    def forward(self, x):
        self.mask = x > 0
        return x.clamp_(min=0)

    def backward(self, grad):
        return grad * self.mask

    def param(self):
        return []


class ReLUMutatesUpstreamGradient(correct.ReLU):
    """backward zeroes the received gradient in place and returns it."""

    def backward(self, grad):
        grad[~self.mask] = 0
        return grad


class SigmoidMutatesOutput(correct.Sigmoid):
    """backward turns the output it returned into the derivative, in place."""

    def backward(self, grad):
        self.y.mul_(1 - self.y)
        return grad * self.y


class LinearOverwritesGradient(Linear):
    """weight_grad = ... rebinding: gradients do not accumulate, optimizers lose the pair."""

    def backward(self, grad):
        self.weight_grad = grad.T @ self.x
        self.bias_grad = grad.sum(0)
        return grad @ self.weight


class LinearCopiesIntoGradient(Linear):
    """Writes the gradient in place with copy_: gradients do not accumulate."""

    def backward(self, grad):
        self.weight_grad.copy_(grad.T @ self.x)
        self.bias_grad.copy_(grad.sum(0))
        return grad @ self.weight


class LinearZeroesGradientInForward(Linear):
    """forward resets the gradients, so two forward/backward passes do not add up."""

    def forward(self, x):
        self.weight_grad.zero_()
        self.bias_grad.zero_()
        return super().forward(x)


class ParameterObjectsOverwriteGrad(correct.LinearParameterObjects):
    """Parameter objects whose .grad is assigned, not added to."""

    def backward(self, grad):
        self.w.grad = self.x.T @ grad
        self.b.grad = grad.sum(0)
        return grad @ self.w.data.T


class TanhNoisyBackward(correct.Tanh):
    """backward adds a little noise from torch's generator (a leftover 'regularizer')."""

    def backward(self, grad):
        return grad * (1 - self.y**2) + 1e-3 * torch.randn_like(grad)


class TanhCountsCalls(correct.Tanh):
    """backward depends on how often it ran (state kept across calls)."""

    calls = 0

    def backward(self, grad):
        self.calls += 1
        return grad * (1 - self.y**2) * (1 + 0.01 * (self.calls % 2))


class LinearTransposedOutput(Linear):
    """forward returns (out_features, N) instead of (N, out_features)."""

    def forward(self, x):
        self.x = x
        return (x @ self.weight.T + self.bias).T

    def backward(self, grad):
        grad = grad.T
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad.sum(0)
        return grad @ self.weight


class TanhCastsToFloat32(correct.Tanh):
    """forward builds its output in float32 whatever the input's dtype."""

    def forward(self, x):
        self.y = torch.tanh(x).float()
        return self.y


class TanhIgnoresUpstreamGradient(correct.Tanh):
    """backward returns the local derivative and drops the upstream gradient."""

    def backward(self, grad):
        return 1 - self.y**2


class TanhGradientSummedOverBatch(correct.Tanh):
    """backward returns one row: the gradient summed over the batch."""

    def backward(self, grad):
        return (grad * (1 - self.y**2)).sum(0)


class StandardizeWithoutCrossSampleTerms(correct.Standardize):
    """Treats the batch mean and variance as constants: only grad / std."""

    def backward(self, grad):
        return grad * self.inv


class SoftmaxDiagonalOnly(correct.Softmax):
    """Keeps the diagonal s (1 - s) of the softmax Jacobian, drops the cross terms."""

    def backward(self, grad):
        return grad * self.s * (1 - self.s)


class SequentialBackwardInForwardOrder(Sequential):
    """Walks the modules forward in backward too."""

    def __init__(self) -> None:
        super().__init__(Linear(3, 3, seed=1), Tanh(), Linear(3, 3, seed=2))

    def backward(self, grad):
        for m in self.modules:
            grad = m.backward(grad)
        return grad


class TanhForwardReturnsNone(correct.Tanh):
    """forward computes the output but neither returns nor keeps it."""

    def forward(self, x):
        torch.tanh(x)


class LinearBackwardRaises(Linear):
    """backward multiplies by the weight the wrong way round: a shape error."""

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad.sum(0)
        return grad @ self.weight.T


class TanhBackwardReturnsNone(correct.Tanh):
    """backward stores the gradient but forgets to return it."""

    def backward(self, grad):
        self.dx = grad * (1 - self.y**2)


class MSELossNotDividedByN(correct.MSELoss):
    """The mean's 1 / N is missing from the gradient."""

    def backward(self):
        return 2 * self.diff


class BCELossWrongSignOnNegativeClass(correct.BCELoss):
    """d/dp of -(1 - t) log(1 - p) is +(1 - t) / (1 - p); here it has the wrong sign."""

    def backward(self):
        n = self.p.numel()
        return (-self.t / self.p - (1 - self.t) / (1 - self.p)) / n


class CrossEntropyLossWrongSignOnTargetClass(correct.CrossEntropyLoss):
    """Adds 1 at the target class instead of subtracting it."""

    def backward(self):
        grad = self.p.clone()
        grad[torch.arange(len(self.target)), self.target] += 1
        return grad / len(self.target)
