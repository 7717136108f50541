"""The check's dtype and back: a module's parameters, gradients and held tensors converted in
place (same Python objects, new storage), and the function that restores them exactly."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gradcheck._params import Param
from gradcheck._walk import children

__all__ = ["converted", "promote"]


def converted(t: Tensor, dtype: torch.dtype) -> Tensor:
    return torch.empty(t.shape, dtype=dtype, device=t.device).copy_(t.detach())


def _held_tensors(module: Any, depth: int = 4) -> list[Tensor]:
    """Every floating tensor the module holds in its attributes, lists and dicts (and theirs)."""
    found: dict[int, Tensor] = {}
    seen: set[int] = set()

    def walk(obj: Any, level: int) -> None:
        if id(obj) in seen or level > depth:
            return
        seen.add(id(obj))
        for _, value in children(obj):
            if isinstance(value, Tensor):
                if value.is_floating_point() and value.layout == torch.strided:
                    found.setdefault(id(value), value)
            elif value is not None and not isinstance(value, str | bytes | numbers.Number):
                walk(value, level + 1)

    walk(module, 0)
    return list(found.values())


def promote(module: Any, params: list[Param], dtype: torch.dtype) -> Callable[[], None]:
    """Swap the storage of parameters, gradients and held tensors for ``dtype`` copies, keeping
    the Python objects; return the undo function."""
    saved: list[tuple[Any, ...]] = []
    done: set[int] = set()

    def convert(t: Tensor) -> None:
        if id(t) in done or not t.is_floating_point():
            return
        done.add(id(t))
        saved.append(("data", t, t.data))
        if t.dtype != dtype:
            t.data = converted(t.data, dtype)

    for p in params:
        convert(p.tensor)
        grad = p.read_grad()
        if p.holder is not None and isinstance(grad, Tensor):
            saved.append(("attr", p.holder, grad))
            p.holder.grad = converted(grad, dtype)
            done.add(id(grad))
        elif isinstance(grad, Tensor):
            convert(grad)
    for t in _held_tensors(module):
        convert(t)

    def undo() -> None:
        for kind, obj, value in reversed(saved):
            if kind == "data":
                obj.data = value
            else:
                obj.grad = value

    return undo
