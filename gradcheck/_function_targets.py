"""The command line's function targets: ``layers.py:affine`` finds ``affine_forward`` and
``affine_backward``; ``layers.py:conv`` the ``_naive`` pair (or ``_fast``, or any suffix);
``layers.py:conv(conv_param={"stride": 1, "pad": 0})`` passes literal keywords; ``layers.py``
lists every pair and ``*_loss`` function the file defines. Each becomes a
:class:`~gradcheck.targets.Target` that builds a :class:`~gradcheck.functional.FunctionPair`.
"""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Callable
from typing import Any

from gradcheck._adapt import CannotAdapt
from gradcheck._derivative_pairs import as_function_pair, derivative_partner
from gradcheck.functional import (
    _BACKWARD,
    _FORWARD,
    _LOSS,
    _SUFFIXES,
    PARAM_DEFAULTS,
    FunctionPair,
    _array_names,
)
from gradcheck.targets import Target, TargetError

__all__ = ["file_targets", "function_targets"]


def _functions(namespace: types.ModuleType) -> dict[str, Callable[..., Any]]:
    return {k: v for k, v in vars(namespace).items() if callable(v) and not inspect.isclass(v)}


def _parse(text: str, spec: str) -> tuple[str, dict[str, Any]]:
    """``conv(conv_param={"pad": 0})`` -> ``("conv", {"conv_param": {"pad": 0}})``."""
    head, paren, rest = text.partition("(")
    if not paren:
        return head.strip(), {}
    try:
        node = ast.parse("f(" + rest, mode="eval").body
    except SyntaxError as error:
        raise TargetError(f"cannot parse the arguments of target {spec!r} ({error.msg})") from None
    assert isinstance(node, ast.Call)
    if node.args:
        raise TargetError(
            f"target {spec!r} passes arguments by position; name each non-array argument, "
            'e.g. \'layers.py:conv(conv_param={"stride": 1, "pad": 1})\' (arrays are drawn: '
            "give their shapes with --shape)"
        )
    kwargs = {}
    for keyword in node.keywords:
        try:
            kwargs[str(keyword.arg)] = ast.literal_eval(keyword.value)
        except ValueError:
            raise TargetError(
                f"argument {ast.unparse(keyword)!r} in target {spec!r} is not a literal: use "
                "numbers, strings, True/False/None, tuples, lists, dicts"
            ) from None
    return head.strip(), kwargs


def _partner(functions: dict[str, Any], name: str) -> tuple[str, str] | None:
    """The (forward, backward) pair ``name`` belongs to, when ``name`` is one of them."""
    match = _FORWARD.match(name)
    if match:
        stem, suffix = match["stem"], match["suffix"]
        for backward in (f"{stem}_backward{suffix}", f"{stem}_backward"):
            if backward in functions:
                return name, backward
        return None
    match = _BACKWARD.match(name)
    if match:
        stem, suffix = match["stem"], match["suffix"]
        for forward in (f"{stem}_forward{suffix}", f"{stem}_forward"):
            if forward in functions:
                return forward, name
    return None


def _by_stem(functions: dict[str, Any], stem: str) -> tuple[str, str] | None:
    """``conv`` -> ``conv_forward``/``conv_backward``, else the ``_naive`` pair, then ``_fast``,
    then any other suffix pair."""
    suffixes = list(_SUFFIXES) + sorted(
        m["suffix"]
        for n in functions
        if (m := _FORWARD.match(n)) and m["stem"] == stem and m["suffix"] not in _SUFFIXES
    )
    for suffix in suffixes:
        forward, backward = f"{stem}_forward{suffix}", f"{stem}_backward{suffix}"
        if forward in functions and backward in functions:
            return forward, backward
    return None


def _targets(
    label: str,
    shown: str,
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None,
    kwargs: dict[str, Any],
    note: str | None = None,
) -> list[Target]:
    """One target per setting of the defaulted non-array arguments (``conv_param`` twice)."""
    settings = [dict(kwargs)]
    missing = [n for n in _array_names(forward, kwargs) if n in PARAM_DEFAULTS]
    for name in missing:
        settings = [{**s, name: d} for s in settings for d in PARAM_DEFAULTS[name]]
    targets = []
    for setting in settings:
        shown_args = ", ".join(f"{k}={v!r}" for k, v in setting.items())
        name = label + shown + (f"({shown_args})" if shown_args else "")
        try:
            pair = FunctionPair(forward, backward, kwargs=setting, label=name)
        except CannotAdapt as exc:
            targets.append(Target(name, error=f"cannot be checked: {exc}"))
            continue
        if note:
            pair.notes.append(note)
        defaulted = [k for k in setting if k in missing]
        if defaulted:
            pair.notes.append(
                "defaulted (pass your own in the target): "
                + ", ".join(f"{k}={setting[k]!r}" for k in defaulted)
            )

        def build(pair: FunctionPair = pair, setting: dict[str, Any] = setting) -> Any:
            fresh = FunctionPair(forward, backward, kwargs=setting, label=pair.label)
            fresh.notes = list(pair.notes)
            return fresh

        targets.append(Target(name, build=build))
    return targets


def function_targets(text: str, namespace: types.ModuleType, label: str) -> list[Target] | None:
    """The targets of ``file.py:TEXT`` when TEXT names functions; None when it names a class
    (or nothing the file holds), for the class resolution to handle.

    TEXT is ``forward,backward``, a forward or backward name (its partner is found), a stem
    (``affine``, ``conv``: ``_forward``/``_backward``, then ``_naive``, ``_fast`` suffixes) or a
    loss (``softmax_loss``), optionally followed by literal keyword arguments.
    """
    spec = label + text
    head = text.partition("(")[0].strip()
    found = _named(_functions(namespace), head, namespace, label, spec)
    if found is None:
        return None
    shown, forward, backward, note = found
    return _targets(label, shown, forward, backward, _parse(text, spec)[1], note)


def _named(
    functions: dict[str, Any], head: str, namespace: types.ModuleType, label: str, spec: str
) -> tuple[str, Callable[..., Any], Callable[..., Any] | None, str | None] | None:
    """What ``head`` names: ``(shown, forward, backward, note)``; None when not functions."""
    if "," in head:
        names = [n.strip() for n in head.split(",")]
        if len(names) != 2 or not all(names):
            raise TargetError(f"target {spec!r}: name two functions, 'forward,backward'")
        for n in names:
            if n not in functions:
                raise TargetError(f"{label}{n}: the file has no function {n!r}")
        if derivative_partner(functions, names[0]) == tuple(names):
            return (head, *as_function_pair(functions[names[0]], functions[names[1]]))
        return head, functions[names[0]], functions[names[1]], None
    obj = getattr(namespace, head, None)
    if obj is not None and head not in functions:
        return None  # a class, or an instance: the class resolution's
    pair = _by_stem(functions, head) if obj is None else _partner(functions, head)
    if pair is not None:
        forward, backward = pair
        shown = forward if _partner(functions, forward) == pair else ",".join(pair)
        return shown, functions[forward], functions[backward], None
    derived = derivative_partner(functions, head) if obj is not None else None
    if derived is not None:  # mse and mse_prime, sigmoid and sigmoid_derivative
        return (derived[0], *as_function_pair(*(functions[n] for n in derived)))
    if obj is not None and _LOSS.search(head):
        return head, obj, None, None
    return None  # nothing, or a function of another kind: the class resolution says which


def file_targets(namespace: types.ModuleType, label: str) -> list[Target]:
    """Every pair and loss a file defines, in the order it defines them."""
    functions = {
        k: v
        for k, v in _functions(namespace).items()
        if getattr(v, "__module__", None) == namespace.__name__
    }
    found: list[tuple[int, str, Any]] = []
    for name, function in functions.items():
        line = getattr(getattr(function, "__code__", None), "co_firstlineno", 0)
        pair = _partner(functions, name)
        if pair is not None and pair not in [p for _, _, p in found]:
            forward, backward = pair
            if name == forward or _partner(functions, forward) != pair:
                shown = forward if _partner(functions, forward) == pair else ",".join(pair)
                found.append((line, shown, pair))
        elif pair is None and (derived := derivative_partner(functions, name)) is not None:
            if name == derived[0]:  # listed once, under the function's name
                found.append((line, name, ("derivative", *derived)))
        elif pair is None and _LOSS.search(name):
            found.append((line, name, (name, None)))
    targets = []
    for _, shown, pair in sorted(found, key=lambda f: f[0]):
        if pair[0] == "derivative":
            forward, backward, note = as_function_pair(functions[pair[1]], functions[pair[2]])
            targets.extend(_targets(label, shown, forward, backward, {}, note))
            continue
        forward, backward = pair
        targets.extend(
            _targets(
                label,
                shown,
                functions[forward],
                functions[backward] if backward else None,
                {},
            )
        )
    return targets
