"""Functions with their derivative beside them, as "from scratch" learners write them (numpy),
each right but for the ones named ``_wrong``."""

from __future__ import annotations

import numpy as np


def mse(y_true, y_pred):
    return np.mean(np.power(y_true - y_pred, 2))


def mse_prime(y_true, y_pred):
    return 2 * (y_pred - y_true) / np.size(y_true)


def binary_cross_entropy(y_true, y_pred):
    return np.mean(-y_true * np.log(y_pred) - (1 - y_true) * np.log(1 - y_pred))


def binary_cross_entropy_prime(y_true, y_pred):
    return ((1 - y_true) / (1 - y_pred) - y_true / y_pred) / np.size(y_true)


def mae_wrong(y_true, y_pred):
    return np.mean(np.abs(y_true - y_pred))


def mae_wrong_prime(y_true, y_pred):
    return np.sign(y_true - y_pred) / np.size(y_true)  # the sign is flipped


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(x):
    s = sigmoid(x)
    return s * (1 - s)


def tanh_wrong(x):
    return np.tanh(x)


def tanh_wrong_derivative(x):
    return 1 - np.tanh(x)  # the square is missing
