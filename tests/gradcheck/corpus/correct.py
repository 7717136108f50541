"""Correct modules with a hand-written backward, some of them hard to check."""

from __future__ import annotations

import torch


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Linear:
    """The course protocol: param() returns (parameter, gradient) tuples."""

    def __init__(self, in_features: int, out_features: int, seed: int = 0) -> None:
        g = _generator(seed)
        self.weight = torch.randn(out_features, in_features, generator=g) / in_features**0.5
        self.bias = torch.randn(out_features, generator=g) * 0.1
        self.weight_grad = torch.zeros_like(self.weight)
        self.bias_grad = torch.zeros_like(self.bias)

    def forward(self, x):
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        self.bias_grad += grad.sum(0)
        return grad @ self.weight

    def param(self):
        return [(self.weight, self.weight_grad), (self.bias, self.bias_grad)]


class Tanh:
    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)

    def param(self):
        return []


class Sigmoid:
    def forward(self, x):
        self.y = 1 / (1 + torch.exp(-x))
        return self.y

    def backward(self, grad):
        return grad * self.y * (1 - self.y)

    def param(self):
        return []


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask

    def param(self):
        return []


class ELU:
    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def forward(self, x):
        self.x = x
        return torch.where(x > 0, x, self.alpha * (torch.exp(x) - 1))

    def backward(self, grad):
        return grad * torch.where(
            self.x > 0, torch.ones_like(self.x), self.alpha * torch.exp(self.x)
        )

    def param(self):
        return []


class Softmax:
    """Softmax over dim 1: every output depends on every input of its row (dense Jacobian)."""

    def forward(self, x):
        e = torch.exp(x - x.max(dim=1, keepdim=True).values)
        self.s = e / e.sum(dim=1, keepdim=True)
        return self.s

    def backward(self, grad):
        return self.s * (grad - (grad * self.s).sum(dim=1, keepdim=True))

    def param(self):
        return []


class Standardize:
    """Batch statistics: each output depends on every sample of the batch."""

    def __init__(self, eps: float = 1e-5) -> None:
        self.eps = eps

    def forward(self, x):
        mean = x.mean(0)
        var = ((x - mean) ** 2).mean(0)
        self.inv = 1 / torch.sqrt(var + self.eps)
        self.xhat = (x - mean) * self.inv
        return self.xhat

    def backward(self, grad):
        n = grad.shape[0]
        return self.inv / n * (n * grad - grad.sum(0) - self.xhat * (grad * self.xhat).sum(0))

    def param(self):
        return []


class BatchNorm:
    """Batch normalisation with a scale and shift, parameters as lists of pairs."""

    def __init__(self, features: int, eps: float = 1e-5) -> None:
        g = _generator(1)
        self.norm = Standardize(eps)
        self.gamma = 1 + 0.1 * torch.randn(features, generator=g)
        self.beta = 0.1 * torch.randn(features, generator=g)
        self.dgamma = torch.zeros(features)
        self.dbeta = torch.zeros(features)

    def forward(self, x):
        self.xhat = self.norm.forward(x)
        return self.gamma * self.xhat + self.beta

    def backward(self, grad):
        self.dgamma += (grad * self.xhat).sum(0)
        self.dbeta += grad.sum(0)
        return self.norm.backward(grad * self.gamma)

    def param(self):
        return [[self.gamma, self.dgamma], [self.beta, self.dbeta]]


class WideRange:
    """Outputs and derivatives spanning twelve orders of magnitude: y = scale * exp(x)."""

    def __init__(self, features: int) -> None:
        self.scale = torch.logspace(-6, 6, features, dtype=torch.float64)

    def forward(self, x):
        self.y = self.scale * torch.exp(x)
        return self.y

    def backward(self, grad):
        return grad * self.y

    def param(self):
        return []


class Dropout:
    """Inverted dropout drawing its mask from torch's global generator."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p
        self.training = True

    def forward(self, x):
        if not self.training:
            return x
        self.mask = torch.bernoulli(torch.full_like(x, 1 - self.p)) / (1 - self.p)
        return x * self.mask

    def backward(self, grad):
        if not self.training:
            return grad
        return grad * self.mask

    def param(self):
        return []


class Sequential:
    def __init__(self, *modules) -> None:
        self.modules = list(modules)

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


# -- protocol variants ------------------------------------------------------------------------


class LinearParamProperty(Linear):
    """``param`` is a property, not a method."""

    @property
    def param(self):
        return [(self.weight, self.weight_grad), (self.bias, self.bias_grad)]


class LinearParameters(Linear):
    """``parameters()`` instead of ``param()``; a generator of pairs."""

    param = None  # type: ignore[assignment]

    def parameters(self):
        yield self.weight, self.weight_grad
        yield self.bias, self.bias_grad


class Parameter:
    """A student's parameter object: the value in ``.data``, its gradient in ``.grad``."""

    def __init__(self, data):
        self.data = data
        self.grad = torch.zeros_like(data)


class LinearParameterObjects:
    """Parameters are objects with ``.data`` and ``.grad``; ``params`` is a plain list."""

    def __init__(self, in_features: int, out_features: int) -> None:
        g = _generator(2)
        self.w = Parameter(torch.randn(in_features, out_features, generator=g))
        self.b = Parameter(torch.zeros(out_features))
        self.params = [self.w, self.b]

    def forward(self, x):
        self.x = x
        return x @ self.w.data + self.b.data

    def backward(self, grad):
        self.w.grad += self.x.T @ grad
        self.b.grad += grad.sum(0)
        return grad @ self.w.data.T


# -- losses -----------------------------------------------------------------------------------


class MSELoss:
    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff**2).mean()

    def backward(self):
        return 2 * self.diff / self.diff.numel()


class BCELoss:
    def forward(self, prediction, target):
        self.p, self.t = prediction, target
        return -(target * torch.log(prediction) + (1 - target) * torch.log(1 - prediction)).mean()

    def backward(self):
        return (self.p - self.t) / (self.p * (1 - self.p)) / self.p.numel()


class CrossEntropyLoss:
    """Softmax cross-entropy with class-index targets (a dense Jacobian per row)."""

    def forward(self, logits, target):
        shifted = logits - logits.max(dim=1, keepdim=True).values
        log_p = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
        self.p = torch.exp(log_p)
        self.target = target
        return -log_p[torch.arange(len(target)), target].mean()

    def backward(self):
        grad = self.p.clone()
        grad[torch.arange(len(self.target)), self.target] -= 1
        return grad / len(self.target)
