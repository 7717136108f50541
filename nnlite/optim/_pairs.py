"""(parameter, gradient) pairs: checked once when an optimizer or a flattening gets them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor


def as_pairs(params: Iterable[tuple[Tensor, Tensor]], owner: str) -> list[tuple[Tensor, Tensor]]:
    """Materialise ``params`` and check that it holds (parameter, gradient) pairs of tensors."""
    if isinstance(params, Tensor):
        raise TypeError(
            f"{owner} expects an iterable of (parameter, gradient) pairs such as model.param(), "
            f"but got a single {torch.typename(params)}"
        )
    if isinstance(params, Mapping):
        raise TypeError(
            f"{owner} expects an iterable of (parameter, gradient) pairs such as model.param(), "
            f"but got a {type(params).__name__}; parameter groups are not supported"
        )
    pairs = list(params)
    if len(pairs) == 0:
        raise ValueError("optimizer got an empty parameter list")
    for i, pair in enumerate(pairs):
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(t, Tensor) for t in pair)
        ):
            raise TypeError(
                f"{owner} expects (parameter, gradient) pairs of tensors such as model.param(), "
                f"but item {i} is {describe(pair)}"
            )
        param, grad = pair
        if param.requires_grad or grad.requires_grad:
            raise TypeError(
                f"{owner}: parameter {i} (or its gradient) requires grad, as a torch.nn.Parameter "
                f"does; nnlite updates plain tensors and never builds a graph. Pass an nnlite "
                f"module's model.param(), and load torch's values with model.load_state_dict"
            )
        if not param.is_floating_point():
            raise TypeError(
                f"{owner} can only optimize floating-point parameters, but parameter {i} has "
                f"dtype {param.dtype}"
            )
        if grad.shape != param.shape or grad.dtype != param.dtype or grad.device != param.device:
            raise ValueError(
                f"{owner}: the gradient of parameter {i} must match the parameter's shape, dtype "
                f"and device, but the parameter is {describe(param)} and the gradient is "
                f"{describe(grad)}"
            )
    first_index: dict[int, int] = {}
    for i, (param, _) in enumerate(pairs):
        if id(param) in first_index:
            raise ValueError(
                f"{owner}: parameter {i} is the same tensor as parameter {first_index[id(param)]}, "
                "so it would be updated twice per step; pass each parameter once"
            )
        first_index[id(param)] = i
    return [(param, grad) for param, grad in pairs]


def describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    if isinstance(value, (tuple, list)):
        kinds = ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of length {len(value)} ({kinds})"
    return f"a {type(value).__name__}"
