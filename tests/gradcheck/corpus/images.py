"""NCHW layers as the 2022 course projects write them (Noise2Noise): a convolution through
``unfold``, nearest upsampling, activations, an MSE loss and a container taking a list.

Written here, modelled on the patterns seen in public projects, never copied from one. Weights
are made with ``torch.empty(...).uniform_`` and gradients with ``torch.zeros``, no dtype: float32
by default, as in those projects. The broken classes carry the bugs found there.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import fold, unfold


class Module:
    def forward(self, *input):
        raise NotImplementedError

    def backward(self, *gradwrtoutput):
        raise NotImplementedError

    def param(self):
        return []


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.k, self.stride, self.padding = kernel_size, stride, padding
        bound = 1 / math.sqrt(in_channels * kernel_size**2)
        generator = torch.Generator().manual_seed(in_channels * 100 + out_channels)
        self.weight = torch.empty(out_channels, in_channels, kernel_size, kernel_size)
        self.weight.uniform_(-bound, bound, generator=generator)
        self.bias = torch.empty(out_channels).uniform_(-bound, bound, generator=generator)
        self.dweight = torch.zeros(self.weight.shape)
        self.dbias = torch.zeros(self.bias.shape)

    def forward(self, *input):
        x = input[0]
        self.input_shape = x.shape
        self.cols = unfold(x, self.k, padding=self.padding, stride=self.stride)
        h = (x.shape[2] + 2 * self.padding - self.k) // self.stride + 1
        w = (x.shape[3] + 2 * self.padding - self.k) // self.stride + 1
        out = self.weight.view(self.out_channels, -1) @ self.cols + self.bias.view(1, -1, 1)
        return out.view(x.shape[0], self.out_channels, h, w)

    def backward(self, *gradwrtoutput):
        grad = gradwrtoutput[0].reshape(self.input_shape[0], self.out_channels, -1)
        self.dweight += (grad @ self.cols.transpose(1, 2)).sum(0).view(self.weight.shape)
        self.dbias += grad.sum((0, 2))
        cols = self.weight.view(self.out_channels, -1).T @ grad
        size = self.input_shape[2:]
        return fold(cols, size, self.k, padding=self.padding, stride=self.stride)

    def param(self):
        return [(self.weight, self.dweight), (self.bias, self.dbias)]


class Conv(Conv2d):
    """Sizes as keywords defaulting to None, as some projects write them."""

    def __init__(self, channels_in=None, channels_out=None, kernel_size=3, padding=1):
        super().__init__(channels_in, channels_out, kernel_size, padding=padding)


class NearestUpsampling(Module):
    def __init__(self, scale_factor):
        self.scale_factor = scale_factor

    def forward(self, *input):
        s = self.scale_factor
        return input[0].repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)

    def backward(self, *gradwrtoutput):
        g, s = gradwrtoutput[0], self.scale_factor
        n, c, h, w = g.shape
        return g.view(n, c, h // s, s, w // s, s).sum((3, 5))


class ReLU(Module):
    def forward(self, *input):
        self.x = input[0]
        return self.x.clamp(min=0)

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * (self.x > 0)


class Sigmoid(Module):
    def forward(self, *input):
        self.y = 1 / (1 + torch.exp(-input[0]))
        return self.y

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * self.y * (1 - self.y)


class LeakyReLU(Module):
    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, *input):
        self.x = input[0]
        return torch.where(self.x > 0, self.x, self.negative_slope * self.x)

    def backward(self, *gradwrtoutput):
        return gradwrtoutput[0] * torch.where(self.x > 0, 1.0, self.negative_slope)


class SkipConnection(Module):
    """Concatenates a module's output with its input along the channels (a U-Net's skip)."""

    def __init__(self, module):
        self.module = module

    def forward(self, *input):
        self.channels = input[0].shape[1]
        return torch.cat((self.module.forward(input[0]), input[0]), dim=1)

    def backward(self, *gradwrtoutput):
        n, c, h, w = gradwrtoutput[0].shape
        inner = self.module.backward(gradwrtoutput[0][:, : c - self.channels])
        return inner + gradwrtoutput[0][:, c - self.channels :]

    def param(self):
        return self.module.param()


class MSE(Module):
    def forward(self, *input):
        self.diff = input[0] - input[1]
        return (self.diff**2).mean()

    def backward(self, *gradwrtoutput):
        return 2 * self.diff / self.diff.numel()


class Sequential(Module):
    def __init__(self, modules):
        self.modules = list(modules)

    def forward(self, *input):
        x = input[0]
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, *gradwrtoutput):
        grad = gradwrtoutput[0]
        for module in reversed(self.modules):
            grad = module.backward(grad)
        return grad

    def param(self):
        return [p for module in self.modules for p in module.param()]


# -- the bugs found in such projects ----------------------------------------------------------


class Conv2dWeightGradientFromFirstSample(Conv2d):
    """The weight gradient of sample 0 only: right at batch 1, wrong for any larger batch."""

    def backward(self, *gradwrtoutput):
        grad = gradwrtoutput[0].reshape(self.input_shape[0], self.out_channels, -1)
        self.dweight += (grad[0] @ self.cols[0].T).view(self.weight.shape)
        self.dbias += grad.sum((0, 2))
        cols = self.weight.view(self.out_channels, -1).T @ grad
        return fold(cols, self.input_shape[2:], self.k, padding=self.padding, stride=self.stride)


class NearestUpsamplingAverages(NearestUpsampling):
    """Averages the gradient over each block instead of summing it."""

    def backward(self, *gradwrtoutput):
        g, s = gradwrtoutput[0], self.scale_factor
        n, c, h, w = g.shape
        return g.view(n, c, h // s, s, w // s, s).mean((3, 5))


class LeakyReLUIgnoresUpstream(LeakyReLU):
    """Returns the local derivative alone."""

    def backward(self, *gradwrtoutput):
        return torch.where(self.x > 0, 1.0, self.negative_slope)


class SkipConnectionAddsInPlace(SkipConnection):
    """Adds into a view of the upstream gradient: the caller's tensor changes."""

    def backward(self, *gradwrtoutput):
        n, c, h, w = gradwrtoutput[0].shape
        skip = gradwrtoutput[0][:, c - self.channels :]
        skip += self.module.backward(gradwrtoutput[0][:, : c - self.channels])
        return skip


class MSEPerSample(MSE):
    """Divides by the batch size in forward but by the element count in backward."""

    def forward(self, *input):
        self.diff = input[0] - input[1]
        return (self.diff**2).sum() / len(self.diff)
