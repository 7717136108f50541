"""Losses written without ``forward``/``backward``: a value method and a gradient method.

Course projects write these as ``loss(pred, target)`` and ``dloss(pred, target)``, ``__call__``
and ``derivative()``, or one ``apply(pred, target)`` returning ``(value, gradient)``. A class
whose name says it is a loss (``MSE``, ``...Loss``, ``BCE``, ...) and that has one of these pairs
is checked as a loss through them, with a note naming the pair.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from gradcheck._adapt import Adapted
from gradcheck._protocol import _LOSS_WORDS, _required_positional
from gradcheck._target_derive import _is_stub

__all__ = ["LossPairAdapted", "loss_pair"]

#: (value method, gradient method) pairs, most likely first; None: the value method returns
#: ``(value, gradient)`` itself.
PAIRS: tuple[tuple[str, str | None], ...] = (
    ("loss", "dloss"),
    ("loss_value", "loss_grad"),
    ("loss_value", "loss_gradient"),
    ("value", "gradient"),
    ("loss", "loss_grad"),
    ("loss", "grad"),
    ("loss", "gradient"),
    ("loss", "derivative"),
    ("loss", "prime"),
    ("compute", "derivative"),
    ("compute", "gradient"),
    ("__call__", "derivative"),
    ("__call__", "derivate"),
    ("__call__", "prime"),
    ("__call__", "gradient"),
    ("__call__", "grad"),
    ("apply", None),
    ("__call__", None),
)


def _own(cls: type, name: str) -> bool:
    """Whether ``cls`` defines ``name`` itself or in a base other than ``object``."""
    return any(name in vars(base) for base in cls.__mro__ if base is not object)


def loss_pair(obj: Any) -> tuple[str, str | None] | None:
    """The (value, gradient) method names of a loss written without forward/backward, or None.

    Args:
        obj: a class or an instance.
    """
    cls = obj if inspect.isclass(obj) else type(obj)
    forward, backward = getattr(cls, "forward", None), getattr(cls, "backward", None)
    if callable(forward) and callable(backward) and not (_is_stub(forward) and _is_stub(backward)):
        return None  # the protocol itself (a base's placeholders do not count)
    if not _LOSS_WORDS.search(cls.__name__):
        return None
    for value, gradient in PAIRS:
        if not _own(cls, value) or (gradient is not None and not _own(cls, gradient)):
            continue
        required = _required_positional(getattr(cls, value))
        # Unbound: ``self`` counts; a loss takes (prediction, target).
        if required is None or len(required) == 3:
            return value, gradient
    return None


class LossPairAdapted(Adapted):
    """A loss reached through its value and gradient methods (see the module docstring)."""

    def __init__(self, module: Any, pair: tuple[str, str | None]) -> None:
        self.module = module
        self.is_loss = True
        self.batch_dim = 0
        self.target_first = False
        self.value_name, self.gradient_name = pair
        described = f"{pair[0]}()" + (f" and {pair[1]}()" if pair[1] else " (value, gradient)")
        self.notes = [f"no forward/backward: checked as a loss through {described}"]
        self._names: dict[int, str] = {}
        self._output_attr = None
        self._last: tuple[Tensor, Tensor] | None = None
        self._gradient: Any = None

    def forward(self, *args: Any) -> Any:
        prediction, target = args
        self._last = (prediction, target)
        out = getattr(self.module, self.value_name)(prediction, target)
        self._gradient = None
        if self.gradient_name is None:
            if not (isinstance(out, tuple | list) and len(out) == 2):
                raise TypeError(
                    f"{self.value_name}() returned {type(out).__name__}, not (value, gradient)"
                )
            out, self._gradient = out
        if isinstance(out, float | int) and not isinstance(out, bool):
            return torch.tensor(float(out), dtype=torch.get_default_dtype())
        return out

    def backward(self, grad: Tensor | None) -> Any:
        if self.gradient_name is None:
            return self._gradient
        method = getattr(self.module, self.gradient_name)
        required = _required_positional(method)
        if required and self._last is not None:
            return method(*self._last[: len(required)])
        return method()

    def params(self) -> list:
        return []
