"""The many ways course projects write the same protocol, each right, and its broken twin.

Written here, modelled on the patterns seen in public course projects (never copied from one):
parameters listed as flat lists, per-layer tuples, dicts, objects with ``.value``, tensors alone
with their gradient in an attribute named after them, or not listed at all; forwards that
store their output instead of returning it; containers whose backward returns nothing; losses
with other names, other signatures and the target first; float32 buffers made without a dtype.
"""

from __future__ import annotations

import torch


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


class _Affine:
    """``x @ w + b`` with float32 weights, as ``torch.randn`` makes them by default."""

    def __init__(self, n_in: int, n_out: int) -> None:
        self.w = _randn(n_in, n_out) / n_in**0.5
        self.b = _randn(n_out, seed=1) * 0.1
        self.dw = torch.zeros(n_in, n_out)
        self.db = torch.zeros(n_out)

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad):
        self.dw += self.x.T @ grad
        self.db += grad.sum(0)
        return grad @ self.w.T


# -- where the parameters are listed ----------------------------------------------------------


class FlatListLinear(_Affine):
    """``param()`` returns one flat list ``[w, dw, b, db]``."""

    def param(self):
        return [self.w, self.dw, self.b, self.db]


class LayerTupleLinear(_Affine):
    """``param()`` returns one tuple per layer: ``[(w, b, dw, db)]``."""

    def param(self):
        return [(self.w, self.b, self.dw, self.db)]


class InterleavedTupleLinear(_Affine):
    """One tuple per layer, each gradient after its parameter: ``[(w, dw, b, db)]``."""

    def param(self):
        return [(self.w, self.dw, self.b, self.db)]


class Value:
    """A parameter object holding ``.value`` and ``.grad``."""

    def __init__(self, value):
        self.value = value
        self.grad = torch.zeros_like(value)


class ValueObjectsLinear:
    """Parameters are objects with ``.value`` and ``.grad``, yielded by a generator."""

    def __init__(self, n_in: int, n_out: int) -> None:
        self.weight = Value(_randn(n_in, n_out))
        self.bias = Value(_randn(n_out, seed=1))

    def forward(self, x):
        self.x = x
        return x @ self.weight.value + self.bias.value

    def backward(self, grad):
        self.weight.grad += self.x.T @ grad
        self.bias.grad += grad.sum(0)
        return grad @ self.weight.value.T

    def parameters(self):
        yield self.weight
        yield self.bias


class GeneratorTanh:
    """A parameterless layer whose ``parameters()`` generator yields nothing."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)

    def parameters(self):
        yield from ()


class DictLinear(ValueObjectsLinear):
    """``param()`` returns a dict of parameter objects."""

    def parameters(self):
        return {"weight": self.weight, "bias": self.bias}


class TensorsOnlyLinear:
    """``param()`` lists the tensors alone; gradients are attributes named after them."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        self.weight = _randn(out_dim, in_dim)
        self.bias = _randn(out_dim, seed=1)
        self.weight_grad = torch.zeros(out_dim, in_dim)
        self.grad_bias = torch.zeros(out_dim)

    def forward(self, x):
        self.x = x
        return x @ self.weight.T + self.bias

    def backward(self, grad):
        self.weight_grad += grad.T @ self.x
        self.grad_bias += grad.sum(0)
        return grad @ self.weight

    def param(self):
        return [self.weight, self.bias]


class LossWrtLinear:
    """Tensors alone, gradients spelled ``dl_dw``; the gradients appear only in backward."""

    def __init__(self, nb_in: int, nb_out: int) -> None:
        self.w = _randn(nb_out, nb_in)
        self.b = _randn(nb_out, seed=1)

    def forward(self, x):
        self.x = x
        return x @ self.w.T + self.b

    def backward(self, grad):
        if not hasattr(self, "dl_dw"):
            self.dl_dw = torch.zeros_like(self.w)
            self.dl_db = torch.zeros_like(self.b)
        self.dl_dw += grad.T @ self.x
        self.dl_db += grad.sum(0)
        return grad @ self.w

    def param(self):
        return [self.w, self.b]


class DictPerParameterLinear(_Affine):
    """``param()`` returns one dict per parameter: ``{"value": w, "grad": dw}``."""

    def param(self):
        return [{"value": self.w, "grad": self.dw}, {"value": self.b, "grad": self.db}]


class LazyGradientLinear:
    """Pairs whose gradient is None until the first backward makes it."""

    def __init__(self, n_in: int, n_out: int) -> None:
        self.w = _randn(n_in, n_out)
        self.dw = None

    def forward(self, x):
        self.x = x
        return x @ self.w

    def backward(self, grad):
        if self.dw is None:
            self.dw = torch.zeros_like(self.w)
        self.dw += self.x.T @ grad
        return grad @ self.w.T

    def param(self):
        return [(self.w, self.dw)]


class NoParamMethodLinear(_Affine):
    """No ``param()`` at all: ``w``, ``b`` with ``dw``, ``db`` beside them."""


# -- outputs and input gradients --------------------------------------------------------------


class StoresOutputTanh:
    """forward stores its output in ``self.output`` and returns None."""

    def forward(self, x):
        self.output = torch.tanh(x)

    def backward(self, grad):
        return grad * (1 - self.output**2)

    def param(self):
        return []


class SilentSequential:
    """A container whose backward runs every layer but returns nothing."""

    def __init__(self, layers) -> None:
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def param(self):
        return [p for layer in self.layers for p in layer.param()]


class PairLinear(_Affine):
    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class NestedSequential(SilentSequential):
    """``param()`` returns one list of pairs per layer, not flattened; backward returns."""

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def param(self):
        return [layer.param() for layer in self.layers]


class FeaturesFirstLinear:
    """Inputs are (features, batch): ``W @ x + b``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        self.w = _randn(out_features, in_features)
        self.b = _randn(out_features, 1, seed=1)
        self.dw = torch.zeros(out_features, in_features)
        self.db = torch.zeros(out_features, 1)

    def forward(self, x):
        self.x = x
        return self.w @ x + self.b

    def backward(self, grad):
        self.dw += grad @ self.x.T
        self.db += grad.sum(1, keepdim=True)
        return self.w.T @ grad

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class Float32BuffersLinear(PairLinear):
    """Makes its intermediates with ``torch.zeros``/``torch.empty`` and no dtype."""

    def forward(self, x):
        self.x = x
        out = torch.empty(x.shape[0], self.w.shape[1])
        out[:] = x @ self.w
        return out + self.b

    def backward(self, grad):
        dx = torch.zeros(self.x.shape)
        dx[:] = grad @ self.w.T
        self.dw += self.x.T @ grad
        self.db += grad.sum(0)
        return dx


# -- losses -----------------------------------------------------------------------------------


class MSE:
    """A loss named neither ``...Loss`` nor with a no-argument backward: the course template."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff**2).mean()

    def backward(self, *gradwrtoutput):
        return 2 * self.diff / self.diff.numel()

    def param(self):
        return []


class TargetFirstMSE:
    """``forward(target, prediction)``: the gradient is with respect to the second."""

    def forward(self, target, prediction):
        self.diff = prediction - target
        return (self.diff**2).sum() / len(prediction)

    def backward(self):
        return 2 * self.diff / len(self.diff)


class SoftCrossEntropy:
    """Cross-entropy against probability rows (soft targets): class indices do not fit."""

    def forward(self, logits, target):
        log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        self.p, self.target = torch.exp(log_p), target
        return -(target * log_p).sum() / len(logits)

    def backward(self):
        return (self.p * self.target.sum(1, keepdim=True) - self.target) / len(self.p)


class FloatLoss:
    """A loss that returns a Python float (``.item()``)."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return (self.diff**2).mean().item()

    def backward(self):
        return 2 * self.diff / self.diff.numel()


# -- zero_grad, the upstream gradient kept, a second backward --------------------------------


class ZeroGradInPlace(PairLinear):
    def zero_grad(self):
        self.dw.zero_()
        self.db.zero_()


class Shift:
    """A learnable offset per input entry, shape (N, D): its gradient is the upstream one."""

    def __init__(self, n: int = 4, d: int = 3) -> None:
        self.b = _randn(n, d)
        self.db = torch.zeros(n, d)

    def forward(self, x):
        return x + self.b

    def backward(self, grad):
        self.db += grad
        return grad

    def param(self):
        return [(self.b, self.db)]


class FreesCacheTanh:
    """backward consumes the cache, as torch does without retain_graph: a second one raises."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        y, self.y = self.y, None
        return grad * (1 - y**2)

    def param(self):
        return []


# -- broken twins -----------------------------------------------------------------------------


class FlatListLinearWrongBias(FlatListLinear):
    def backward(self, grad):
        self.dw += self.x.T @ grad
        self.db += grad.mean(0)
        return grad @ self.w.T


class TensorsOnlyLinearTransposed(TensorsOnlyLinear):
    def backward(self, grad):
        self.weight_grad += (self.x.T @ grad).T * 0.5
        self.grad_bias += grad.sum(0)
        return grad @ self.weight


class StoresOutputTanhWrong(StoresOutputTanh):
    def backward(self, grad):
        return grad * (1 - self.output)


class MSETwice(MSE):
    def backward(self, *gradwrtoutput):
        return 4 * self.diff / self.diff.numel()


class TargetFirstMSEWrongSign(TargetFirstMSE):
    def backward(self):
        return -2 * self.diff / len(self.diff)


class ZeroGradRebinds(PairLinear):
    """zero_grad binds fresh tensors: an optimizer holding the pairs keeps the old ones."""

    def zero_grad(self):
        self.dw = torch.zeros_like(self.w)
        self.db = torch.zeros_like(self.b)


class ShiftKeepsUpstream(Shift):
    """Keeps the upstream gradient itself as its parameter gradient (``self.db = grad``)."""

    def backward(self, grad):
        self.db = grad
        return grad


class MutatesCacheTanh:
    """backward writes into its cache: a second backward after one forward is wrong."""

    def forward(self, x):
        self.d = 1 - torch.tanh(x) ** 2
        return torch.tanh(x)

    def backward(self, grad):
        self.d.mul_(grad)
        return self.d.clone()

    def param(self):
        return []


class ReLUMutatesInputRightGradient:
    """Zeroes its input in place, yet its gradient is right at the inputs it was given."""

    def forward(self, x):
        self.mask = x > 0
        x[~self.mask] = 0
        return x.clone()

    def backward(self, grad):
        return grad * self.mask

    def param(self):
        return []


class UnusedWeightLinear(PairLinear):
    """forward reads a copy of the weight made at construction: the listed one has no effect."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        self.frozen = self.w.clone()

    def forward(self, x):
        self.x = x
        return x @ self.frozen + self.b


class StringParams(PairLinear):
    """``param()`` lists names, not tensors: nothing the checker can read."""

    def param(self):
        return ["w", "b"]


class ReLUReturnsItsInput:
    """Zeroes its input in place and returns that very tensor."""

    def forward(self, x):
        self.mask = x > 0
        x[~self.mask] = 0
        return x

    def backward(self, grad):
        return grad * self.mask

    def param(self):
        return []


class PerSampleMSE:
    """Returns one loss per sample, ``(N, 1)``, for a one-output network; backward is the
    gradient of their mean."""

    def forward(self, prediction, target):
        self.diff = prediction - target.view(prediction.shape)
        return (self.diff**2).mean(1).view(prediction.shape)

    def backward(self):
        return 2 * self.diff / len(self.diff)


class LayerSizes:
    """Sizes spelled ``input_layer_size`` and ``nb_of_outputs``."""

    def __init__(self, input_layer_size, nb_of_outputs):
        self.w = torch.zeros(input_layer_size, nb_of_outputs)

    def forward(self, x):
        return x @ self.w

    def backward(self, grad):
        return grad @ self.w.T


class NonePairReLU:
    """A parameterless layer whose ``param()`` is ``[(None, None)]``."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask

    def param(self):
        return [(None, None)]


class LossListsItsValue(MSE):
    """A loss whose ``param()`` lists its value and gradient, as if they were parameters."""

    def forward(self, prediction, target):
        self.loss = super().forward(prediction, target)
        return self.loss

    def backward(self, *gradwrtoutput):
        self.gradient = super().backward()
        return self.gradient

    def param(self):
        return [(getattr(self, "loss", None), getattr(self, "gradient", None))]


class InplaceReLU:
    """``inplace=True`` by default: writes into its input by design, as torch's does."""

    def __init__(self, inplace=True):
        self.inplace = inplace

    def forward(self, x):
        self.mask = x > 0
        if self.inplace:
            x[~self.mask] = 0
            return x
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


class OrderedDictLinear(ValueObjectsLinear):
    """``param()`` is a generator yielding one dict of parameter objects per module."""

    def param(self):
        yield {"weight": self.weight, "bias": self.bias}


class OrderedDictSequential:
    """A generator of the children's generators; a parameterless child yields an empty dict."""

    def __init__(self, *children) -> None:
        self.children = children

    def forward(self, x):
        for child in self.children:
            x = child.forward(x)
        return x

    def backward(self, grad):
        for child in reversed(self.children):
            grad = child.backward(grad)
        return grad

    def param(self):
        for child in self.children:
            yield child.param()


class EmptyDictTanh(GeneratorTanh):
    def param(self):
        yield {}


class FlatHalvesLinear(_Affine):
    """``param()`` returns ``[w, b, dw, db]``: parameters first, then their gradients."""

    def param(self):
        return [self.w, self.b, self.dw, self.db]


class GradMethodLinear:
    """``param()`` lists the tensors; ``grad()`` returns their gradients in the same order."""

    def __init__(self, n_in: int, n_out: int) -> None:
        self.w = _randn(n_in, n_out)
        self.b = _randn(n_out, seed=1)
        self._gw = torch.zeros(n_in, n_out)
        self._gb = torch.zeros(n_out)

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad):
        self._gw += self.x.T @ grad
        self._gb += grad.sum(0)
        return grad @ self.w.T

    def param(self):
        return [self.w, self.b]

    def grad(self):
        return [self._gw, self._gb]


class ScaleShift:
    """Two parameters of one shape, gradients in ``.grad``: never taken for a (w, dw) pair."""

    def __init__(self, d: int = 3) -> None:
        self.gamma = _randn(d)
        self.beta = _randn(d, seed=1)
        self.gamma.grad = torch.zeros(d)
        self.beta.grad = torch.zeros(d)

    def forward(self, x):
        self.x = x
        return x * self.gamma + self.beta

    def backward(self, grad):
        self.gamma.grad += (grad * self.x).sum(0)
        self.beta.grad += grad.sum(0)
        return grad * self.gamma

    def param(self):
        return [self.gamma, self.beta]


class ReturnsOutputAndCache(PairLinear):
    """forward returns ``(output, cache)``: the functional style, in a class."""

    def forward(self, x):
        return super().forward(x), x


class BackwardTakesTheCache(PairLinear):
    def backward(self, grad, cache):
        return super().backward(grad)


class BackwardReadsItsOwnError:
    """A layer whose backward() takes nothing: it reads the upstream gradient from elsewhere."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self):
        return self.error * (1 - self.y**2)


class WrapperZeroGradRebinds:
    """Wraps a layer and re-reads its gradient after backward; zero_grad() binds fresh zeros
    and leaves the inner layer's gradient, which backward keeps adding into, as it was."""

    def __init__(self, n_in: int = 3, n_out: int = 2) -> None:
        self.inner = PairLinear(n_in, n_out)
        self.w, self.dw = self.inner.w, self.inner.dw

    def forward(self, x):
        return self.inner.forward(x)

    def backward(self, grad):
        dx = self.inner.backward(grad)
        self.dw = self.inner.dw
        return dx

    def param(self):
        return [(self.w, self.dw)]

    def zero_grad(self):
        self.dw = torch.zeros(self.w.shape)


class MSEWithDerivative:
    """A loss as two methods: ``loss(pred, target)`` and ``dloss(pred, target)``."""

    def loss(self, prediction, target):
        return ((prediction - target) ** 2).mean()

    def dloss(self, prediction, target):
        return 2 * (prediction - target) / prediction.numel()


class MSEApplyTwiceTheGradient:
    """``apply(pred, target)`` returns ``(value, gradient)``; the gradient lacks its 1/2."""

    def apply(self, prediction, target):
        diff = prediction - target
        return 0.5 * (diff**2).mean(), diff / diff.numel() * 2


class CallableMSE:
    """``__call__`` for the value, ``derivative()`` from what it kept."""

    def __call__(self, prediction, target):
        self.diff = prediction - target
        return float((self.diff**2).sum())

    def derivative(self):
        return 2 * self.diff
