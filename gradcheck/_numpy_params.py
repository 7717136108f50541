"""Where a numpy module keeps its arrays, its parameters and their gradients.

:mod:`gradcheck._numpy` reads a numpy module through these: the arrays it holds (to convert and
restore them), the parameters it exposes (a listing method, or arrays named like parameters)
with the gradients kept beside them, and the backward that takes a learning rate and updates
the weights itself (refused, with the adapter to write).
"""

from __future__ import annotations

import inspect
import numbers
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradcheck._grad_names import _GRAD_FORMS, _SHORT
from gradcheck._params import CannotAdapt
from gradcheck._walk import children

__all__ = [
    "Summed",
    "attribute",
    "is_object",
    "pairs",
    "put",
    "refuse_learning_rate",
    "scan",
    "short",
    "walk",
]

#: A backward parameter that makes backward take an optimizer step itself.
_STEP = re.compile(r"^(lr|learning_?rate|eta|step_?size|alpha|optimi[sz]er|optim)$", re.IGNORECASE)
#: Array attribute names of parameters (a numpy module without ``param()``).
_PARAMETER = re.compile(
    r"^_?(w|b|weights?|bias(es)?|gamma|beta|kernels?|filters?)\d*$", re.IGNORECASE
)


def walk(obj: Any, depth: int = 3) -> list[tuple[Any, str, Any]]:
    """Every ``(container, key, value)`` under ``obj`` whose value is an array or a tensor."""
    found: list[tuple[Any, str, Any]] = []
    seen: set[int] = set()

    def walk(container: Any, level: int) -> None:
        if id(container) in seen or level > depth:
            return
        seen.add(id(container))
        for key, value in children(container):
            if isinstance(value, np.ndarray | Tensor):
                found.append((container, key, value))
            elif isinstance(value, dict | list | tuple) or is_object(value):
                walk(value, level + 1)

    walk(obj, 0)
    return found


def is_object(value: Any) -> bool:
    return hasattr(value, "__dict__") and not isinstance(
        value, type | types.ModuleType | types.FunctionType | types.MethodType
    )


def put(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[next(k for k in container if str(k) == key)] = value
    elif isinstance(container, list):
        container[int(key)] = value
    else:
        setattr(container, key, value)


def _parameter_names(module: Any) -> list[str]:
    return [k for k, v in vars(module).items() if _PARAMETER.match(k) and _is_float(v)]


def _is_float(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    return isinstance(value, Tensor) and value.is_floating_point()


def _harmless(default: Any) -> bool:
    """A learning-rate default under which backward takes no step (None or 0)."""
    return default is None or (isinstance(default, numbers.Number) and default == 0)


def refuse_learning_rate(module: Any, *, numpy: bool = False) -> str | None:
    """Refuse a module whose backward takes a learning rate (or an optimizer) and updates its own
    weights: the gradients are never where they can be read. The message shows the adapter.

    A numpy layer that holds no parameters (an activation of that style) cannot take a step:
    the name of the learning rate is returned, for backward to be called with it set to 0.
    """
    try:
        signature = inspect.signature(module.backward)
    except (AttributeError, TypeError, ValueError):
        return None
    for p in signature.parameters.values():
        if not _STEP.match(p.name) or _harmless(p.default):
            continue
        names = _parameter_names(module)
        if not names and numpy:
            return p.name
        if not names:
            raise CannotAdapt(
                f"{type(module).__name__}.backward{signature} takes a learning rate ({p.name}) "
                f"that gradcheck does not pass: give it a default of 0 ({p.name}=0; a layer "
                "without parameters ignores it), or check an adapter whose backward(grad) "
                f"calls backward(grad, {p.name}=0)"
            )
        numpy = any(isinstance(v, np.ndarray) for v in vars(module).values())
        copy, zeros = (".copy()", "np.zeros_like") if numpy else (".clone()", "torch.zeros_like")
        own = ", ".join(f"self.layer.{n}" for n in names)
        olds = ", ".join(f"{n}" for n in names)
        lines = [
            "class Adapter:  # one step with learning rate 1, read back as gradients, undone",
            "    def __init__(self, layer):",
            "        self.layer = layer",
            f"        self.w = [{own}]  # the arrays gradcheck perturbs",
            f"        self.g = [{zeros}(w) for w in self.w]",
            "    def forward(self, x):",
            "        return self.layer.forward(x)",
            "    def backward(self, grad):",
            f"        before = [w{copy} for w in self.w]",
            f"        dx = self.layer.backward(grad, {p.name}=1.0)",
            f"        after = [{own}]",
            "        for g, w, b, a in zip(self.g, self.w, before, after):",
            "            g += b - a  # w <- w - 1.0 * dL/dw",
            "            w[...] = b  # undo the step",
            f"        {own}{',' if len(names) == 1 else ''} = self.w",
            "        return dx",
            "    def param(self):",
            "        return list(zip(self.w, self.g))",
        ]
        adapter = "\n".join("    " + line for line in lines)
        raise CannotAdapt(
            f"{type(module).__name__}.backward{signature} takes a learning rate ({p.name}) and "
            f"updates {olds} itself: its gradients are never kept where they can be read. "
            "gradcheck needs a backward that returns the input gradient and leaves the "
            f"parameter gradients to read. Write an adapter, e.g.\n\n{adapter}\n\nand check "
            f"Adapter({type(module).__name__}(...))"
        )


def _normal(name: str) -> str:
    return name.replace("_", "").lower()


def grad_by_name(values: dict[str, Any], name: str, array: Any) -> np.ndarray | None:
    """The gradient kept beside parameter ``name`` in ``values``, by name (any shape: a wrong
    shape is the gradient_shape check's to report)."""
    arrays = {_normal(str(k)): v for k, v in values.items() if isinstance(v, np.ndarray)}
    base = name.lstrip("_")
    for b in (base, *_SHORT.get(base.lower(), ())):
        for form in _GRAD_FORMS:
            value = arrays.get(_normal(form.format(b)))
            if value is not None and value is not array:
                return value
    return None


@dataclass
class Summed:
    """A parameter whose gradient the module sets on each backward (the numpy convention):
    the adapter zeroes the module's array before backward and adds it into ``buffer`` after, so
    the session sees gradients that add up, as the course protocol's do."""

    name: str
    array: Callable[[], np.ndarray]
    grad: Callable[[], np.ndarray | None]
    buffer: Tensor | None = None
    seen: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def before_backward(self) -> None:
        g = self.grad()
        if isinstance(g, np.ndarray) and g.flags.writeable:
            g[...] = 0

    def after_backward(self) -> None:
        g = self.grad()
        if not isinstance(g, np.ndarray):
            return
        dtype = torch.from_numpy(np.zeros(0, dtype=g.dtype)).dtype if g.dtype.kind == "f" else None
        if dtype is None:
            return
        if self.buffer is None or self.buffer.shape != g.shape or self.buffer.dtype != dtype:
            self.buffer = torch.zeros(g.shape, dtype=dtype)
        self.buffer += torch.from_numpy(np.array(g))
        self.seen = (g, g.copy())

    def read(self) -> Tensor | None:
        g = self.grad()
        if self.seen is not None and isinstance(g, np.ndarray) and self.buffer is not None:
            if g is not self.seen[0] or not np.array_equal(g, self.seen[1]):
                # Changed outside backward (the module's own zero_grad): follow it.
                self.buffer.copy_(torch.from_numpy(np.array(g, dtype=self.seen[1].dtype)))
                self.seen = (g, g.copy())
        return self.buffer


def pairs(value: Any) -> bool:
    if not isinstance(value, list | tuple):
        return False
    return all(
        isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(a, np.ndarray) for a in v)
        for v in value
    )


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def attribute(owner: Any, key: str, name: str) -> Summed:
    def array() -> np.ndarray:
        return vars(owner)[key]

    def grad() -> np.ndarray | None:
        return grad_by_name(vars(owner), key, array())

    return Summed(name, array, grad)


def scan(module: Any, prefix: str, depth: int = 2) -> list[Summed]:
    """Arrays named like parameters, in the module and the layers it holds."""
    found = []
    for key, value in vars(module).items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and _PARAMETER.match(key):
            found.append(attribute(module, key, prefix + key))
    if depth == 0:
        return found
    for key, value in vars(module).items():
        layers = value if isinstance(value, list | tuple) else [value]
        for i, layer in enumerate(layers):
            if is_object(layer) and callable(getattr(layer, "forward", None)):
                where = f"{key}.{i}." if isinstance(value, list | tuple) else f"{key}."
                found.extend(scan(layer, prefix + where, depth - 1))
    return found
