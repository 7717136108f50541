"""TARGET text -> a small tree of dotted names, calls and literals, never evaluated.

Call arguments go through :func:`ast.literal_eval`; lists and tuples holding calls become
:class:`Items`. Nothing here imports or calls anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMS", "Call", "Items", "TargetError", "format_target", "parse_target"]

FORMS = (
    "expected 'pkg.mod.Class', 'pkg.mod.Class(literal, args)', 'path/to/file.py:Class', "
    "'path/to/file.py' or a package name such as 'nnlite'"
)


class TargetError(Exception):
    """A TARGET that cannot be parsed, imported or constructed (the CLI exits with status 2)."""


# ---------------------------------------------------------------------------------------------
# Parsing: TARGET text -> a small tree of dotted names, calls and literals (never evaluated)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """``name(*args, **kwargs)`` where every argument is a literal or another ``Call``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    called: bool = False


@dataclass(frozen=True)
class Items:
    """A list or tuple argument holding calls: ``Sequential([Linear(2, 3), Tanh()])``."""

    items: tuple[Any, ...]
    kind: type = list


def _dotted(node: ast.AST, spec: str) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TargetError(
            f"cannot use {ast.unparse(node)!r} in target {spec!r}: only dotted names such as "
            "'pkg.mod.Class' can be called"
        )
    parts.append(node.id)
    return ".".join(reversed(parts))


def _argument(node: ast.AST, spec: str) -> Any:
    if isinstance(node, ast.Call):
        return _call(node, spec)
    if isinstance(node, ast.Starred):
        raise TargetError(f"*-arguments are not supported in target {spec!r}; write them out")
    if isinstance(node, ast.List | ast.Tuple) and any(
        isinstance(child, ast.Call) for child in ast.walk(node)
    ):
        kind = list if isinstance(node, ast.List) else tuple
        return Items(tuple(_argument(element, spec) for element in node.elts), kind)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise TargetError(
            f"argument {ast.unparse(node)!r} in target {spec!r} is not a literal: use numbers, "
            "strings, True/False/None, tuples, lists, dicts, or calls of dotted class names"
        ) from None


def _call(node: ast.AST, spec: str) -> Call:
    if not isinstance(node, ast.Call):
        return Call(_dotted(node, spec))
    args = tuple(_argument(arg, spec) for arg in node.args)
    kwargs = []
    for keyword in node.keywords:
        if keyword.arg is None:
            raise TargetError(f"**-arguments are not supported in target {spec!r}; write them out")
        kwargs.append((keyword.arg, _argument(keyword.value, spec)))
    return Call(_dotted(node.func, spec), args, tuple(kwargs), called=True)


def parse_target(text: str, spec: str) -> Call:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise TargetError(f"cannot parse target {spec!r} ({error.msg}): {FORMS}") from None
    return _call(tree.body, spec)


def format_target(value: Any) -> str:
    if isinstance(value, Items):
        inner = ", ".join(format_target(item) for item in value.items)
        if value.kind is list:
            return f"[{inner}]"
        return f"({inner},)" if len(value.items) == 1 else f"({inner})"
    if isinstance(value, Call):
        if not value.called:
            return value.name
        parts = [format_target(arg) for arg in value.args]
        parts += [f"{key}={format_target(arg)}" for key, arg in value.kwargs]
        return f"{value.name}({', '.join(parts)})"
    return repr(value)


# ---------------------------------------------------------------------------------------------
