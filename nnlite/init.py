"""Parameter initialisation filling exactly the bits torch.nn.init fills after the same seed.

Each function computes its bound or standard deviation with torch's own Python float expression and
draws with the same in-place tensor method (``uniform_``/``normal_``) from the same generator, so
the tensors are bit-identical to ``torch.nn.init``'s. Unlike torch.nn.init these never touch
autograd: to fill a tensor that requires grad, pass ``tensor.detach()`` (it shares the storage).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)


def _check_tensor(tensor: object, function: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{function} expects a torch.Tensor to fill, got {type(tensor).__name__}")
    return tensor


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    r"""Return the recommended gain value for the given nonlinearity function.

    ================= ====================================================
    nonlinearity      gain
    ================= ====================================================
    Linear / Identity :math:`1`
    Conv{1,2,3}D      :math:`1`
    Sigmoid           :math:`1`
    Tanh              :math:`\frac{5}{3}`
    ReLU              :math:`\sqrt{2}`
    Leaky Relu        :math:`\sqrt{\frac{2}{1 + \text{negative\_slope}^2}}`
    SELU              :math:`\frac{3}{4}`
    ================= ====================================================

    Args:
        nonlinearity (str): the non-linear function (``torch.nn.functional`` name).
        param (float, optional): the negative slope of ``"leaky_relu"`` (default: 0.01).
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill the input Tensor with values drawn from the uniform distribution.

    :math:`\mathcal{U}(a, b)`.

    Args:
        tensor (Tensor): an n-dimensional tensor, filled in place and returned.
        a (float): the lower bound of the uniform distribution.
        b (float): the upper bound of the uniform distribution.
        generator (torch.Generator, optional): the generator to sample from (default: torch's).
    """
    return _check_tensor(tensor, "uniform_").uniform_(a, b, generator=generator)


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill the input Tensor with values drawn from the normal distribution.

    :math:`\mathcal{N}(\text{mean}, \text{std}^2)`.

    Args:
        tensor (Tensor): an n-dimensional tensor, filled in place and returned.
        mean (float): the mean of the normal distribution.
        std (float): the standard deviation of the normal distribution.
        generator (torch.Generator, optional): the generator to sample from (default: torch's).
    """
    return _check_tensor(tensor, "normal_").normal_(mean, std, generator=generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    r"""Fill the input Tensor with the value :math:`\text{val}`.

    Args:
        tensor (Tensor): an n-dimensional tensor, filled in place and returned.
        val (float): the value to fill the tensor with.
    """
    return _check_tensor(tensor, "constant_").fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    r"""Fill the input Tensor with the scalar value `1`.

    Args:
        tensor (Tensor): an n-dimensional tensor, filled in place and returned.
    """
    return _check_tensor(tensor, "ones_").fill_(1.0)


def zeros_(tensor: Tensor) -> Tensor:
    r"""Fill the input Tensor with the scalar value `0`.

    Args:
        tensor (Tensor): an n-dimensional tensor, filled in place and returned.
    """
    return _check_tensor(tensor, "zeros_").zero_()


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """Return (fan_in, fan_out) of a weight laid out as torch lays it: (out, in, *kernel)."""
    if tensor.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive_field_size = 1
    for s in tensor.shape[2:]:
        receptive_field_size *= s
    fan_in = tensor.size(1) * receptive_field_size
    fan_out = tensor.size(0) * receptive_field_size
    return fan_in, fan_out


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill the input Tensor with values from a Xavier (Glorot) uniform distribution.

    Values are drawn from :math:`\mathcal{U}(-a, a)` where

    .. math::
        a = \text{gain} \times \sqrt{\frac{6}{\text{fan\_in} + \text{fan\_out}}}

    Args:
        tensor (Tensor): an n-dimensional tensor, n >= 2, filled in place and returned.
        gain (float): an optional scaling factor.
        generator (torch.Generator, optional): the generator to sample from (default: torch's).
    """
    _check_tensor(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    # NOTE: torch's expressions, so the bound is the same float.
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return tensor.uniform_(-a, a, generator=generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill the input Tensor with values from a Xavier (Glorot) normal distribution.

    Values are drawn from :math:`\mathcal{N}(0, \text{std}^2)` where

    .. math::
        \text{std} = \text{gain} \times \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}

    Args:
        tensor (Tensor): an n-dimensional tensor, n >= 2, filled in place and returned.
        gain (float): an optional scaling factor.
        generator (torch.Generator, optional): the generator to sample from (default: torch's).
    """
    _check_tensor(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return tensor.normal_(0.0, std, generator=generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with values from a Kaiming (He) uniform distribution.

    Values are drawn from :math:`\mathcal{U}(-\text{bound}, \text{bound})` where

    .. math::
        \text{bound} = \text{gain} \times \sqrt{\frac{3}{\text{fan\_mode}}}

    ``torch.nn.Linear`` initialises its weight with ``a=math.sqrt(5)``.

    Args:
        tensor (Tensor): an n-dimensional tensor, n >= 2, filled in place and returned.
        a (float): the negative slope of the rectifier used after this layer (only used with
            ``"leaky_relu"``).
        mode (str): ``"fan_in"`` (default) preserves the variance of the forward pass,
            ``"fan_out"`` that of the backward pass.
        nonlinearity (str): the non-linear function (``torch.nn.functional`` name), recommended
            only with ``"relu"`` or ``"leaky_relu"`` (default).
        generator (torch.Generator, optional): the generator to sample from (default: torch's).
    """
    _check_tensor(tensor, "kaiming_uniform_")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    # NOTE: torch's expressions, so the bound is the same float.
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with values from a Kaiming (He) normal distribution.

    Values are drawn from :math:`\mathcal{N}(0, \text{std}^2)` where

    .. math::
        \text{std} = \frac{\text{gain}}{\sqrt{\text{fan\_mode}}}

    Args:
        tensor (Tensor): an n-dimensional tensor, n >= 2, filled in place and returned.
        a (float): the negative slope of the rectifier used after this layer (only used with
            ``"leaky_relu"``).
        mode (str): ``"fan_in"`` (default) preserves the variance of the forward pass,
            ``"fan_out"`` that of the backward pass.
        nonlinearity (str): the non-linear function (``torch.nn.functional`` name), recommended
            only with ``"relu"`` or ``"leaky_relu"`` (default).
        generator (torch.Generator, optional): the generator to sample from (default: torch's).
    """
    _check_tensor(tensor, "kaiming_normal_")
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return tensor.normal_(0, std, generator=generator)
