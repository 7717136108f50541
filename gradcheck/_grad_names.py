"""How a gradient is named after its parameter: ``weight_grad``, ``grad_weight``, ``dw`` for
``w``, ``dl_dw``, ``dW``, ... and the names that say a tensor is a parameter or a gradient.
"""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

__all__ = ["_GRAD_FORMS", "_GRAD_WORDS", "_PARAMETER_NAMES", "_SHORT", "_grad_attribute"]

_PARAMETER_NAMES = ("weight", "weights", "w", "bias", "biases", "b", "kernel", "gamma", "beta")
#: Short names a parameter's gradient may be written with (``dw`` for ``weight``).
_SHORT = {"weight": ("w",), "weights": ("w",), "bias": ("b",), "biases": ("b",), "kernel": ("k",)}
#: Gradient spellings for a parameter named ``n``, compared lower-case and without underscores.
_GRAD_FORMS = (
    "{}grad",
    "grad{}",
    "d{}",
    "dld{}",
    "dlossd{}",
    "{}gradient",
    "gradient{}",
    "gradwrt{}",
    "grads{}",
    "{}grads",
    "delta{}",
    "g{}",
)
_GRAD_WORDS = re.compile(r"(^d[a-z]|grad|^delta|^dl_?d)", re.IGNORECASE)


def _normal(name: str) -> str:
    return name.replace("_", "").lower()


def _grad_attribute(owner: Any, attr: str, tensor: Tensor) -> Tensor | None:
    """The gradient kept beside ``owner.attr``: an attribute named after it, of its shape."""
    values = getattr(owner, "__dict__", None)
    if not isinstance(values, dict):
        return None
    by_name = {_normal(k): v for k, v in values.items() if isinstance(v, Tensor)}
    base = attr.lstrip("_")
    bases = [base, *_SHORT.get(base.lower(), ())]
    for b in bases:
        for form in _GRAD_FORMS:
            value = by_name.get(_normal(form.format(b)))
            if value is not None and value is not tensor and value.shape == tensor.shape:
                return value
    return None
