"""A loss and its derivative written as functions on torch tensors (``loss``/``dloss``): this
file imports torch and not numpy, so its functions get tensors."""

from __future__ import annotations

import torch


def loss(v, t):
    return (v - t).pow(2).sum() / v.numel()


def dloss(v, t):
    return 2 * (v - t) / v.numel()


def softplus(x):
    return torch.log1p(torch.exp(x))


def dsoftplus(x):
    return torch.sigmoid(x)
