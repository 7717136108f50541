"""Walks of a module's attribute tree: which object holds a tensor, and under which name.

A parameter is named by where the module keeps it (``layers.0.weight``), and its gradient is
looked up beside it; both need the path from the module to the tensor, found here.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["children", "find_name", "locate"]


def locate(module: Any, target: Any, depth: int = 4) -> tuple[Any, str] | None:
    """The object and attribute name under ``module`` that hold ``target``."""
    seen: set[int] = set()

    def walk(obj: Any, level: int) -> tuple[Any, str] | None:
        if id(obj) in seen or level > depth:
            return None
        seen.add(id(obj))
        items = children(obj)
        for key, value in items:
            if value is target and hasattr(obj, "__dict__") and not isinstance(obj, dict):
                return obj, key
        for _, value in items:
            if isinstance(value, Tensor) or value is None:
                continue
            found = walk(value, level + 1)
            if found:
                return found
        return None

    return walk(module, 0)


def children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [(str(k), v) for k, v in obj.items()]
    if isinstance(obj, list | tuple):
        return [(str(i), v) for i, v in enumerate(obj)]
    if hasattr(obj, "__dict__") and not isinstance(obj, Tensor | type):
        return [(k, v) for k, v in vars(obj).items() if not k.startswith("__")]
    return []


def find_name(module: Any, target: Any, depth: int = 4) -> str | None:
    """Return the attribute path under ``module`` holding ``target``, e.g. ``layers.0.weight``."""
    seen: set[int] = set()

    def walk(obj: Any, prefix: str, level: int) -> str | None:
        if id(obj) in seen or level > depth:
            return None
        seen.add(id(obj))
        items = children(obj)
        for key, value in items:
            if value is target:
                return prefix + key.lstrip("_")
        for key, value in items:
            if isinstance(value, Tensor) or value is None:
                continue
            found = walk(value, prefix + key.lstrip("_") + ".", level + 1)
            if found:
                return found
        return None

    return walk(module, "", 0)
