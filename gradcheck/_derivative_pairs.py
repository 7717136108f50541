"""Functions written with their derivative beside them, as "from scratch" learners do:
``mse(y_true, y_pred)`` and ``mse_prime(y_true, y_pred)``, ``sigmoid(x)`` and
``sigmoid_derivative(x)``.

Each pair becomes the CS231n form :class:`~gradcheck.functional.FunctionPair` checks:

- two array arguments, a loss: ``loss(x, y) -> (value, gradient)``, the target first when the
  parameter names say so (``y_true``, ``target``, ...);
- one array argument, an elementwise function: ``forward(x) -> (f(x), x)`` and
  ``backward(dout, x) -> dout * f'(x)``. A derivative that is not elementwise (a softmax's
  Jacobian) is a different function of ``x``, and fails as it would in the user's chain rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gradcheck._protocol import _PREDICTION_NAMES, _TARGET_NAMES, required_names

__all__ = ["DERIVATIVE_PREFIXES", "DERIVATIVE_SUFFIXES", "as_function_pair", "derivative_partner"]

#: How a derivative's name follows its function's, most likely first.
DERIVATIVE_SUFFIXES = ("_prime", "_derivative", "_deriv", "_der", "_grad", "_gradient", "_d")
#: How it precedes it: ``dloss`` for ``loss``.
DERIVATIVE_PREFIXES = ("d_", "d")


def derivative_partner(functions: dict[str, Any], name: str) -> tuple[str, str] | None:
    """``(function, derivative)`` when ``name`` is either and both take the same one or two
    array arguments; None otherwise."""
    found = None
    for suffix in DERIVATIVE_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in functions:
            found = name[: -len(suffix)], name
        elif name + suffix in functions:
            found = name, name + suffix
        if found:
            break
    for prefix in DERIVATIVE_PREFIXES:
        if found:
            break
        if name.startswith(prefix) and name[len(prefix) :] in functions:
            found = name[len(prefix) :], name
        elif prefix + name in functions:
            found = name, prefix + name
    if found is None:
        return None
    value, derivative = found
    arrays = required_names(functions[value])
    if len(arrays) not in (1, 2) or len(required_names(functions[derivative])) != len(arrays):
        return None
    return value, derivative


def _named_like(wrapper: Callable[..., Any], names: list[str]) -> None:
    """Give ``wrapper`` the user's parameter names: the report names the tensors after them."""
    wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )


def _target_first(names: list[str]) -> bool:
    first, second = (n.lower() for n in names)
    return first in _TARGET_NAMES and second in _PREDICTION_NAMES and second not in _TARGET_NAMES


def as_function_pair(
    value: Callable[..., Any], derivative: Callable[..., Any]
) -> tuple[Callable[..., Any], Callable[..., Any] | None, str]:
    """``(forward, backward, note)`` in the CS231n form (``backward`` None: a loss)."""
    names = required_names(value)
    shown = f"{value.__name__}() and {derivative.__name__}()"
    if len(names) == 2:
        swap = _target_first(names)

        def loss(x, y):  # noqa: ANN001, ANN202 - the user's arrays
            args = (y, x) if swap else (x, y)
            return value(*args), derivative(*args)

        loss.__name__ = value.__name__
        loss.__wrapped__ = value  # type: ignore[attr-defined] - whose file says tensors or numpy
        _named_like(loss, [names[1], names[0]] if swap else names)  # the prediction first
        order = f"{names[0]} (the target) first" if swap else f"{names[1]} (the target) second"
        return loss, None, f"checked as a loss through {shown}, {order}"

    def forward(x):  # noqa: ANN001, ANN202
        return value(x), x

    def backward(dout, cache):  # noqa: ANN001, ANN202
        return dout * derivative(cache)

    _named_like(forward, names)
    forward.__name__ = f"{value.__name__}_forward"
    forward.__wrapped__ = value  # type: ignore[attr-defined]
    backward.__name__ = f"{value.__name__}_backward"
    return forward, backward, f"checked as an elementwise function through {shown}"
