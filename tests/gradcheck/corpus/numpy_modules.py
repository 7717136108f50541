"""Numpy module classes with forward/backward, written here: the numpy convention (backward sets
``self.dW``), the course protocol on arrays (``param()`` pairs that add up), the
"from scratch" style (forward keeps ``self.output``, backward ``self.dinputs``), and their bugs."""

from __future__ import annotations

import numpy as np


def _rng(seed):
    return np.random.default_rng(seed)


class Dense:
    """x @ W + b; backward sets dW and db (the numpy convention)."""

    def __init__(self, in_features, out_features, seed=0, dtype=np.float64):
        g = _rng(seed)
        self.in_features = in_features
        self.W = (g.standard_normal((in_features, out_features)) / np.sqrt(in_features)).astype(
            dtype
        )
        self.b = (g.standard_normal(out_features) * 0.1).astype(dtype)
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class DenseParamPairs(Dense):
    """The course protocol on arrays: param() hands out (W, dW) pairs; backward adds into them."""

    def backward(self, dout):
        self.dW += self.x.T @ dout
        self.db += dout.sum(axis=0)
        return dout @ self.W.T

    def param(self):
        return [(self.W, self.dW), (self.b, self.db)]


class DenseZeroGrad(Dense):
    """Adds into dW and db, with a zero_grad() that zeroes them in place; no param()."""

    def backward(self, dout):
        self.dW += self.x.T @ dout
        self.db += dout.sum(axis=0)
        return dout @ self.W.T

    def zero_grad(self):
        self.dW[...] = 0
        self.db[...] = 0


class DenseParamsDict:
    """Parameters in a params dict, gradients in a grads dict with the same keys."""

    def __init__(self, in_features, out_features):
        g = _rng(1)
        self.in_features = in_features
        self.params = {"W": g.standard_normal((in_features, out_features)), "b": np.zeros(3)}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0)}
        return dout @ self.params["W"].T


class LayerDense:
    """The "from scratch" style: forward keeps self.output, backward self.dinputs, dweights."""

    def __init__(self, n_inputs, n_neurons):
        g = _rng(2)
        self.n_inputs = n_inputs
        self.weights = 0.5 * g.standard_normal((n_inputs, n_neurons))
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs):
        self.inputs = inputs
        self.output = inputs @ self.weights + self.biases

    def backward(self, dvalues):
        self.dweights = self.inputs.T @ dvalues
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = dvalues @ self.weights.T


class ReLU:
    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class Sigmoid:
    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * self.out * (1 - self.out)


class Dropout:
    """Inverted dropout; the mask from numpy's global generator."""

    def __init__(self, p=0.5):
        self.p = p

    def forward(self, x):
        self.mask = (np.random.rand(*x.shape) < self.p) / self.p
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


class MSELoss:
    """mean((prediction - target)**2), returned as a Python float."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return float(np.mean(self.diff**2))

    def backward(self):
        return 2 * self.diff / self.diff.size


class Sequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


# -- broken -----------------------------------------------------------------------------------


class DenseTransposedSquare(Dense):
    """dW = dout.T @ x: the shape fits a square W, the values are transposed."""

    def backward(self, dout):
        self.dW = dout.T @ self.x
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class DenseBiasKept2d(Dense):
    """db of shape (1, M) for a (M,) bias."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.db = dout.sum(axis=0, keepdims=True)
        return dx


class DenseRebindsPairs(DenseParamPairs):
    """param() hands out (W, dW) pairs, but backward binds new arrays: an optimizer holding the
    pairs never sees the gradients."""

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


class DenseZeroGradForgets(DenseZeroGrad):
    """zero_grad() zeroes the bias gradient only."""

    def zero_grad(self):
        self.db[...] = 0


class DenseSGD(Dense):
    """backward takes a learning rate and updates the weights itself."""

    def backward(self, dout, learning_rate):
        dx = dout @ self.W.T
        self.W -= learning_rate * self.x.T @ dout
        self.b -= learning_rate * dout.sum(axis=0)
        return dx


class FpropBprop:
    """Neither forward nor backward: fprop and bprop."""

    def fprop(self, x):
        return x

    def bprop(self, dout):
        return dout


class ReLUWritesInput:
    def forward(self, x):
        x[x < 0] = 0
        self.mask = x > 0
        return x

    def backward(self, dout):
        return dout * self.mask


class ReLUWritesUpstream(ReLU):
    def backward(self, dout):
        dout[~self.mask] = 0
        return dout


class SigmoidWritesOutput(Sigmoid):
    """Turns the output it returned into the derivative, in place."""

    def backward(self, dout):
        self.out *= 1 - self.out
        return dout * self.out


class DropoutNewMaskInBackward(Dropout):
    def backward(self, dout):
        return dout * (np.random.rand(*dout.shape) < self.p) / self.p


class MSELossMissingTwo(MSELoss):
    def backward(self):
        return self.diff / self.diff.size


class TanhTakesALearningRate:
    """The tutorial style where every backward takes a learning rate; this layer ignores it."""

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dout, learning_rate):
        return dout * (1 - self.y**2)


class PerSampleCrossEntropyLoss:
    """The "from scratch" book's loss protocol: forward returns one loss per sample of
    probabilities (clipped), calculate() their mean, backward(dvalues, y_true) sets dinputs."""

    def forward(self, y_pred, y_true):
        clipped = np.clip(y_pred, 1e-7, 1 - 1e-7)
        return -np.log(clipped[np.arange(len(y_pred)), y_true])

    def calculate(self, output, y):
        return np.mean(self.forward(output, y))

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        onehot = np.eye(dvalues.shape[1])[y_true]
        self.dinputs = -onehot / dvalues / samples


class SoftmaxWithCrossEntropy:
    """A softmax fused with its loss: forward(logits, y_true) returns the mean loss and keeps
    self.output; backward(dvalues, y_true) takes that output."""

    def forward(self, inputs, y_true):
        exp = np.exp(inputs - inputs.max(axis=1, keepdims=True))
        self.output = exp / exp.sum(axis=1, keepdims=True)
        return -np.mean(np.log(self.output[np.arange(len(inputs)), y_true]))

    def backward(self, dvalues, y_true):
        self.dinputs = dvalues.copy()
        self.dinputs[np.arange(len(dvalues)), y_true] -= 1
        self.dinputs = self.dinputs / len(dvalues)


class PerSampleCrossEntropyLossNotNormalised(PerSampleCrossEntropyLoss):
    """The gradient of the sum of the per-sample losses, not of their mean."""

    def backward(self, dvalues, y_true):
        super().backward(dvalues, y_true)
        self.dinputs = self.dinputs * len(dvalues)


class Unrelated:
    """Methods of its own names: ``run`` and ``grad``."""

    def run(self, x):
        return x

    def grad(self, dout):
        return dout


class Float32Dense:
    """Its products run in float32, as numpy's do once ``nnfs.init()`` has replaced np.dot;
    the float64 bias makes its output float64 again, its gradients stay float32."""

    def __init__(self):
        self.weights = np.linspace(-1, 1, 12).reshape(3, 4)
        self.biases = np.zeros((1, 4))
        self.dweights = np.zeros_like(self.weights)

    def forward(self, inputs):
        self.inputs = inputs
        return np.dot(inputs, self.weights).astype(np.float32) + self.biases

    def backward(self, dvalues):
        self.dweights += np.dot(self.inputs.T, dvalues).astype(np.float32)
        return np.dot(dvalues, self.weights.T).astype(np.float32)

    def param(self):
        return [(self.weights, self.dweights)]
