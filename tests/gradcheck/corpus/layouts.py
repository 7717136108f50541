"""More ways course projects lay out the protocol, each right, most with a broken twin.

Written here, modelled on patterns seen in public course projects (never copied from one):
layers on one sample as a column vector or as a vector; gradients that are the number 0 until
the first backward; a bias gradient that lost its leading dimension; losses taking one
``(prediction, target)`` tuple; losses built around the network, whose forward returns the loss
object and whose backward hands the gradient on with ``self.model.backward(grad)``.
"""

from __future__ import annotations

import torch


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- one sample at a time ---------------------------------------------------------------------


class ColumnReLU:
    """A ReLU on a ``(D, 1)`` column: its backward reshapes the mask to a column, so a
    ``(N, D)`` batch passes forward and breaks backward."""

    def forward(self, x):
        self.x = x
        return x.clamp(min=0)

    def backward(self, grad):
        return grad * (self.x > 0).to(grad.dtype).view(-1, 1)


class ColumnTanhWrong(ColumnReLU):
    """Its derivative misses the square: ``1 - tanh(x)``."""

    def forward(self, x):
        self.x = x
        return x.tanh()

    def backward(self, grad):
        return grad * (1 - self.x.tanh()).view(-1, 1)


class VectorLinear:
    """``W x + b`` on one sample ``x`` of shape ``(D,)`` with ``mv``: a batch is refused."""

    def __init__(self, n_in: int = 3, n_out: int = 4, *, wrong: bool = False) -> None:
        self.w, self.b = _randn(n_out, n_in), _randn(n_out, seed=1)
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return self.w.mv(x) + self.b

    def backward(self, grad):
        self.dw += torch.outer(grad, self.x)
        self.db += grad * (2 if self.wrong else 1)
        return self.w.t().mv(grad)

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


# -- gradients made by backward ---------------------------------------------------------------


class ZeroUntilBackwardLinear:
    """Gradients are the number 0 until the first backward makes tensors of them, which later
    backwards add into and ``zero_grad`` zeroes in place: ``param()`` lists ``(w, 0)`` before
    the first backward."""

    def __init__(self, n_in: int = 3, n_out: int = 4) -> None:
        self.w, self.b = _randn(n_in, n_out), _randn(n_out, seed=1)
        self.dw = self.db = 0

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad):
        if not isinstance(self.dw, torch.Tensor):
            self.dw, self.db = torch.zeros_like(self.w), torch.zeros(self.w.shape[1])
        self.dw += self.x.t() @ grad
        self.db += grad.sum(0)
        return grad @ self.w.t()

    def zero_grad(self):
        for g in (self.dw, self.db):
            if isinstance(g, torch.Tensor):
                g.zero_()

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class RowBiasLinear(ZeroUntilBackwardLinear):
    """A ``(1, n)`` bias whose gradient is summed to ``(n,)``: an update broadcasts it, but the
    gradient does not have the parameter's shape."""

    def __init__(self, n_in: int = 3, n_out: int = 4) -> None:
        super().__init__(n_in, n_out)
        self.b = _randn(1, n_out, seed=1)


# -- losses -----------------------------------------------------------------------------------


class TupleMSE:
    """``forward(self, inputs)`` unpacks ``prediction, target = inputs``."""

    def forward(self, inputs):
        prediction, target = inputs
        self.d = prediction - target
        return (self.d**2).mean()

    def backward(self):
        return 2 * self.d / self.d.numel()


class TupleMSEWrong(TupleMSE):
    """Its gradient forgets the mean: ``2 d``."""

    def backward(self):
        return 2 * self.d


class CriterionMSE:
    """Built around the network: ``loss = criterion(out, y); loss.backward()`` as in torch;
    backward returns what the network's backward returns."""

    def __init__(self, model) -> None:
        self.model = model

    def forward(self, output, target):
        self.err = output - target
        self.loss = self.err.pow(2).sum() / len(self.err)
        return self

    def backward(self):
        return self.model.backward(2 * self.err / len(self.err))


class CriterionMSEWrong(CriterionMSE):
    """Divides the gradient by the element count where the loss divides by the batch."""

    def backward(self):
        return self.model.backward(2 * self.err / self.err.numel())


class SilentCriterionMSE:
    """Built around the network; its backward returns nothing."""

    def __init__(self, net) -> None:
        self.net = net

    def forward(self, prediction, target):
        self.d = prediction - target
        return (self.d**2).mean()

    def backward(self):
        self.net.backward(2 * self.d / self.d.numel())


# -- a container without param() --------------------------------------------------------------


class _Affine:
    def __init__(self, n_in: int, n_out: int, seed: int, *, wrong: bool = False) -> None:
        self.w, self.b = _randn(n_in, n_out, seed=seed), _randn(n_out, seed=seed + 1)
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad):
        self.dw += self.x.t() @ grad * (1.01 if self.wrong else 1)
        self.db += grad.sum(0)
        return grad @ self.w.t()

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class _Tanh:
    def forward(self, x):
        self.y = x.tanh()
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)


class TransformsSequential:
    """A container keeping its layers in ``self.transforms`` with no ``param()`` of its own:
    its layers' parameters are theirs to list."""

    def __init__(self, *, wrong: bool = False) -> None:
        self.transforms = (_Affine(3, 4, 2, wrong=wrong), _Tanh(), _Affine(4, 2, 4))

    def forward(self, x):
        for t in self.transforms:
            x = t.forward(x)
        return x

    def backward(self, grad):
        for t in reversed(self.transforms):
            grad = t.backward(grad)
        return grad

    def zero_grad(self):
        for t in self.transforms:
            for _, g in getattr(t, "param", list)():
                g.zero_()


# -- a parameter forward does not use -------------------------------------------------------


class UnusedBiasLinear:
    """``use_bias=False`` by default: the bias is still listed, its gradient None, and forward
    never reads it."""

    def __init__(self, n_in: int = 3, n_out: int = 4, use_bias: bool = False) -> None:
        self.w, self.b = _randn(n_in, n_out), torch.zeros(n_out, dtype=torch.float64)
        self.dw, self.db = torch.zeros_like(self.w), None
        self.use_bias = use_bias

    def forward(self, x):
        self.x = x
        return x @ self.w + (self.b if self.use_bias else 0)

    def backward(self, grad):
        self.dw += self.x.t() @ grad
        return grad @ self.w.t()

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


# -- a forward that requires its mode -------------------------------------------------------


class ModeTanh:
    """``forward(self, inputs, training)``, as the "from scratch" book writes every layer once
    it has dropout: scaled by 0.5 in training, as is in evaluation."""

    def __init__(self, *, wrong: bool = False) -> None:
        self.wrong = wrong

    def forward(self, inputs, training):
        self.scale = 0.5 if training else 1.0
        self.y = inputs.tanh()
        return self.scale * self.y

    def backward(self, dvalues):
        scale = 1.0 if self.wrong else self.scale
        return dvalues * scale * (1 - self.y**2)


class ColumnLinear:
    """``W x + b`` on one sample as a ``(D, 1)`` column, its bias a column too: its output
    keeps the sample along dim 1, not the features along dim 0."""

    def __init__(self, n_in: int = 3, n_out: int = 4) -> None:
        self.w, self.b = _randn(n_out, n_in), _randn(n_out, 1, seed=1)
        self.dw, self.db = torch.zeros_like(self.w), torch.zeros_like(self.b)

    def forward(self, x):
        if x.shape[0] != self.w.shape[1] or x.shape[1] != 1:
            raise ValueError(f"expected a ({self.w.shape[1]}, 1) column, got {tuple(x.shape)}")
        self.x = x
        return self.w @ x + self.b

    def backward(self, grad):
        self.dw += grad @ self.x.t()
        self.db += grad
        return self.w.t() @ grad

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


class AttentionLike(torch.nn.Module):
    """A torch.nn module whose forward takes three tensors of one shape."""

    def __init__(self) -> None:
        super().__init__()
        self.query = torch.nn.Linear(4, 4, dtype=torch.float64)

    def forward(self, query, key, value, mask=None):
        weights = (self.query(query) @ key.transpose(-1, -2)).softmax(-1)
        return weights @ value


# -- parameters in boxes ------------------------------------------------------------------


class Box:
    """A value in a box, the gradient in another box of the same class (no ``.grad``)."""

    def __init__(self, value) -> None:
        self.value = value

    def add_value(self, delta) -> None:
        self.value = self.value + delta  # rebinds: whoever holds the old tensor keeps it


class BoxedLinear:
    """``param()`` returns ``[[Box(w), Box(dw)], [Box(b), Box(db)]]``."""

    def __init__(self, n_in: int = 3, n_out: int = 4, *, wrong: bool = False) -> None:
        self.weight, self.bias = Box(_randn(n_in, n_out)), Box(_randn(n_out, seed=1))
        self.weight_grad = Box(torch.zeros(n_in, n_out, dtype=torch.float64))
        self.bias_grad = Box(torch.zeros(n_out, dtype=torch.float64))
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x @ self.weight.value + self.bias.value

    def backward(self, grad):
        self.weight_grad.add_value(self.x.t() @ grad)
        self.bias_grad.add_value(grad.sum(0) * (0.5 if self.wrong else 1))
        return grad @ self.weight.value.t()

    def param(self):
        return [[self.weight, self.weight_grad], [self.bias, self.bias_grad]]


class MeanBiasGradLinear:
    """Its bias gradient is ``grad.mean()``, one number for a bias of four."""

    def __init__(self, n_in: int = 3, n_out: int = 4) -> None:
        self.w, self.b = _randn(n_in, n_out), _randn(n_out, seed=1)
        self.w_grad, self.b_grad = torch.zeros_like(self.w), torch.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad):
        self.w_grad += self.x.t() @ grad
        self.b_grad = grad.mean()
        return grad @ self.w.t()

    def param(self):
        return [(self.w, self.w_grad), (self.b, self.b_grad)]


# -- the protocol under other names -----------------------------------------------------------


class BackpropMaxPool:
    """``forward`` and ``backprop``: a 2x2 max pool on (N, C, H, W) (ties go to the first)."""

    def __init__(self, *, wrong: bool = False) -> None:
        self.wrong = wrong

    def forward(self, x):
        n, c, h, w = x.shape
        self.x = x
        windows = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5)
        self.windows = windows.reshape(n, c, h // 2, w // 2, 4)
        return self.windows.max(-1).values

    def backprop(self, d_out):
        n, c, h, w = self.x.shape
        top = self.windows.argmax(-1, keepdim=True)
        mask = torch.zeros_like(self.windows).scatter_(-1, top, 1.0)
        d = mask * d_out[..., None] * (2.0 if self.wrong else 1.0)
        d = d.reshape(n, c, h // 2, w // 2, 2, 2).permute(0, 1, 2, 4, 3, 5)
        return d.reshape(n, c, h, w)


class _PlaceholderModule:
    def forward(self, *args):
        raise NotImplementedError

    def backward(self, *args):
        raise NotImplementedError


class ValueGradMSE(_PlaceholderModule):
    """A concrete loss under a base's placeholders: ``loss_value`` and ``loss_grad``."""

    def loss_value(self, prediction, target):
        return ((prediction - target) ** 2).mean()

    def loss_grad(self, prediction, target):
        return 2 * (prediction - target) / prediction.numel()


class SingleImageConv:
    """A 3x3 'valid' convolution of one image ``(C, H, W)``, no batch dimension, two filters:
    its output ``(2, H - 2, W - 2)`` has no dim of its input's size to keep."""

    def __init__(self, channels: int = 3) -> None:
        self.kernels = _randn(2, channels, 3, 3)
        self.dkernels = torch.zeros_like(self.kernels)

    def forward(self, image):
        self.image = image
        return torch.nn.functional.conv2d(image[None], self.kernels)[0]

    def backward(self, grad):
        self.dkernels += torch.nn.grad.conv2d_weight(
            self.image[None], self.kernels.shape, grad[None]
        )
        return torch.nn.grad.conv2d_input(self.image[None].shape, self.kernels, grad[None])[0]

    def param(self):
        return [(self.kernels, self.dkernels)]


class ImageMaxPool:
    """A 2x2 max pool of one ``(H, W, C)`` image, as a numpy-from-scratch CNN writes it in
    torch: ``h, w, c = x.shape``."""

    def forward(self, x):
        h, w, c = x.shape
        self.x = x
        windows = (
            x.reshape(h // 2, 2, w // 2, 2, c).permute(0, 2, 4, 1, 3).reshape(h // 2, w // 2, c, 4)
        )
        self.top = windows.argmax(-1, keepdim=True)
        return windows.max(-1).values

    def backward(self, grad):
        h, w, c = self.x.shape
        mask = torch.zeros(h // 2, w // 2, c, 4, dtype=grad.dtype).scatter_(-1, self.top, 1.0)
        d = (mask * grad[..., None]).reshape(h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2)
        return d.reshape(h, w, c)


class OneHotCrossEntropy:
    """A cross-entropy on one-hot targets: forward runs with class indices (broadcasting),
    backward does not."""

    def forward(self, prediction, target):
        self.p = prediction.softmax(1)
        self.target = target
        return -(target * self.p.log()).sum() / len(prediction)

    def backward(self):
        return (self.p - self.target) / len(self.p)
