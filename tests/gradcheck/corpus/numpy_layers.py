"""CS231n-style layers on numpy arrays, written here: ``f_forward(...) -> (out, cache)``,
``f_backward(dout, cache)``, losses ``f_loss(x, y) -> (loss, dx)``. The correct ones first; then
one broken function per bug, its docstring naming the bug (the test names the check)."""

from __future__ import annotations

import numpy as np

# -- correct ----------------------------------------------------------------------------------


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out


def sigmoid_backward(dout, cache):
    return dout * cache * (1 - cache)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    return dout * (1 - cache**2)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Train mode normalises by the batch and updates the running means in ``bn_param``."""
    mode = bn_param["mode"]
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))
    if mode == "train":
        mean, var = x.mean(axis=0), x.var(axis=0)
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        mean, var = running_mean, running_var
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')
    std = np.sqrt(var + eps)
    xhat = (x - mean) / std
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return gamma * xhat + beta, (xhat, std, gamma, mode)


def batchnorm_backward(dout, cache):
    xhat, std, gamma, mode = cache
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    dxhat = dout * gamma
    if mode == "test":
        return dxhat / std, dgamma, dbeta
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The same gradient in one expression (train mode)."""
    xhat, std, gamma, _ = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
    return gamma / (N * std) * (N * dout - dbeta - xhat * dgamma), dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    std = np.sqrt(x.var(axis=1, keepdims=True) + eps)
    xhat = (x - x.mean(axis=1, keepdims=True)) / std
    return gamma * xhat + beta, (xhat, std, gamma)


def layernorm_backward(dout, cache):
    xhat, std, gamma = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=1, keepdims=True)) - xhat * (dxhat * xhat).mean(
        axis=1, keepdims=True
    )
    return dx / std, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def dropout_forward(x, dropout_param):
    """Inverted dropout keeping each unit with probability p, its mask from numpy's generator."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        return x * mask, (dropout_param, mask)
    return x, (dropout_param, None)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout


def _windows(size, kernel, stride):
    return [(i, i * stride) for i in range(1 + (size - kernel) // stride)]


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    rows, cols = _windows(xp.shape[2], HH, stride), _windows(xp.shape[3], WW, stride)
    out = np.zeros((x.shape[0], F, len(rows), len(cols)), dtype=x.dtype)
    for i, top in rows:
        for j, left in cols:
            window = xp[:, :, top : top + HH, left : left + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i, top in _windows(xp.shape[2], HH, stride):
        for j, left in _windows(xp.shape[3], WW, stride):
            window = xp[:, :, top : top + HH, left : left + WW]
            d = dout[:, :, i, j]
            dw += np.tensordot(d, window, axes=([0], [0]))
            dxp[:, :, top : top + HH, left : left + WW] += np.tensordot(d, w, axes=([1], [0]))
    dx = dxp[:, :, pad : pad + x.shape[2], pad : pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    rows, cols = _windows(x.shape[2], ph, stride), _windows(x.shape[3], pw, stride)
    out = np.zeros((x.shape[0], x.shape[1], len(rows), len(cols)), dtype=x.dtype)
    for i, top in rows:
        for j, left in cols:
            out[:, :, i, j] = x[:, :, top : top + ph, left : left + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i, top in _windows(x.shape[2], ph, stride):
        for j, left in _windows(x.shape[3], pw, stride):
            window = x[:, :, top : top + ph, left : left + pw]
            mask = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, top : top + ph, left : left + pw] += mask * dout[:, :, i, j][:, :, None, None]
    return dx


def word_embedding_forward(x, W):
    """x holds integer indices into the rows of W."""
    return W[x], (x, W.shape)


def word_embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dW, x, dout)
    return dW


def softmax_loss(x, y):
    """Returns the loss as a Python float."""
    shifted = x - x.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    N = x.shape[0]
    loss = float(-np.log(p[np.arange(N), y]).sum() / N)
    dx = p.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx / N


def svm_loss(x, y):
    """Returns the loss as a numpy scalar."""
    N = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(N), y][:, None] + 1.0)
    margins[np.arange(N), y] = 0
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(N), y] -= dx.sum(axis=1)
    return margins.sum() / N, dx / N


# -- broken -----------------------------------------------------------------------------------


def affine_backward_bias_kept_2d(dout, cache):
    """db of shape (1, M) for a (M,) bias: right values, wrong shape."""
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, db.reshape(1, -1)


def affine_backward_weight_transposed(dout, cache):
    """dw computed as dout.T @ x: the shape fits a square w, the values are transposed."""
    x, w, _ = cache
    return (dout @ w.T).reshape(x.shape), dout.T @ x.reshape(x.shape[0], -1), dout.sum(axis=0)


def relu_forward_in_place(x):
    """Clamps the caller's array itself."""
    x[x < 0] = 0
    return x, x


def relu_backward_into_dout(dout, cache):
    """Zeroes the upstream gradient in place: the caller's dout changes."""
    dout[cache <= 0] = 0
    return dout


def sigmoid_backward_plus(dout, cache):
    """y * (1 + y) instead of y * (1 - y)."""
    return dout * cache * (1 + cache)


def tanh_backward_missing_square(dout, cache):
    """1 - y instead of 1 - y**2."""
    return dout * (1 - cache)


def batchnorm_backward_gradients_kept_2d(dout, cache):
    """dgamma and dbeta of shape (1, D) (sum with keepdims=True): right values, wrong shape."""
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    return dx, dgamma[None, :], dbeta[None, :]


def batchnorm_backward_missing_mean_terms(dout, cache):
    """dx = dout * gamma / std: forgets that the mean and variance depend on x."""
    xhat, std, gamma, _ = cache
    return dout * gamma / std, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def layernorm_backward_over_the_batch(dout, cache):
    """Takes the means over the batch (axis 0), as batchnorm does, instead of the features."""
    xhat, std, gamma = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def dropout_forward_private_generator(x, dropout_param):
    """Draws the mask from a fresh, unseeded generator: forward is not repeatable."""
    p = dropout_param["p"]
    mask = (np.random.default_rng().random(x.shape) < p) / p
    return x * mask, (dropout_param, mask)


def dropout_backward_new_mask(dout, cache):
    """Draws a new mask in backward instead of using the one forward cached."""
    dropout_param, _ = cache
    p = dropout_param["p"]
    return dout * (np.random.rand(*dout.shape) < p) / p


def conv_backward_naive_empty_without_padding(dout, cache):
    """Crops the padding with [pad:-pad]: with pad=0 that is [0:0], an empty dx."""
    _, dw, db = conv_backward_naive(dout, cache)
    x, w, _, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    HH, WW = w.shape[2:]
    for i, top in _windows(xp.shape[2], HH, stride):
        for j, left in _windows(xp.shape[3], WW, stride):
            d = dout[:, :, i, j]
            dxp[:, :, top : top + HH, left : left + WW] += np.tensordot(d, w, axes=([1], [0]))
    return dxp[:, :, pad:-pad, pad:-pad], dw, db


def conv_backward_naive_first_sample_dw(dout, cache):
    """dw from the first sample of the batch only: right for a batch of one."""
    dx, _, db = conv_backward_naive(dout, cache)
    x, w, b, conv_param = cache
    _, dw, _ = conv_backward_naive(dout[:1], (x[:1], w, b, conv_param))
    return dx, dw, db


def max_pool_backward_spread(dout, cache):
    """Spreads each gradient over the whole window (average pooling's backward)."""
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i, top in _windows(x.shape[2], ph, stride):
        for j, left in _windows(x.shape[3], pw, stride):
            dx[:, :, top : top + ph, left : left + pw] += dout[:, :, i, j][:, :, None, None] / 4
    return dx


def softmax_loss_not_averaged(x, y):
    """The loss is averaged over the batch, its gradient is not."""
    loss, dx = softmax_loss(x, y)
    return loss, dx * x.shape[0]


def svm_loss_sign_flipped(x, y):
    """The gradient's sign is flipped."""
    loss, dx = svm_loss(x, y)
    return loss, -dx


def word_embedding_backward_overwrites(dout, cache):
    """dW[x] = dout: a word that occurs twice keeps one occurrence's gradient."""
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    dW[x] = dout
    return dW


def lstm_like_forward(x, w):
    """Returns three values (two outputs and a cache): not a pair gradcheck can check."""
    return x @ w, x @ w, (x, w)


def lstm_like_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.T @ dout


def takes_three_arguments_backward(dout, cache, extra):
    """A backward that needs more than (dout, cache)."""
    return dout
