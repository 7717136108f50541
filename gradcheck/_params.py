"""Where a module lists its parameters, and what each listed item is.

The forms recognised are tabled in :mod:`gradcheck._adapt`; this file turns them into
:class:`Param` objects (a tensor, and how to read its gradient now). :mod:`gradcheck._promote`
converts them to the check's dtype and back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from gradcheck._grad_names import _GRAD_WORDS, _PARAMETER_NAMES, _grad_attribute
from gradcheck._walk import find_name, locate

__all__ = ["ADAPTER", "CannotAdapt", "Param", "layers_of", "list_params", "lists_params"]

_PARAM_SOURCES = ("named_param", "param", "parameters", "params")

ADAPTER = """write an adapter with the course protocol that calls into your code, e.g.

    class Adapter:
        def __init__(self, layer):
            self.layer = layer
        def forward(self, x):
            return self.layer.fprop(x)           # your forward
        def backward(self, grad):
            return self.layer.bprop(grad)        # your backward: returns d loss / d input
        def param(self):
            return [(self.layer.w, self.layer.dw)]   # (parameter, gradient) pairs

and check Adapter(YourLayer(...))"""


class CannotAdapt(TypeError):
    """The module's form is not one the checker understands: it cannot be checked as it is."""


@dataclass
class Param:
    """One parameter as the checker sees it.

    Attributes:
        name: a name from the module (``weight``, ``0.bias``) or the index in its list.
        tensor: the tensor whose storage the module reads (converted and perturbed in place).
        read_grad: returns the gradient tensor now held for it (``None`` if none yet).
        holder: the Parameter-like object holding ``.data`` and ``.grad``, or ``None``.
        kind: how the gradient is reached: ``"pair"`` (param() hands out the gradient tensor
            itself, so an optimizer may hold it), ``"holder"``, ``"attribute"``, ``".grad"``.
    """

    name: str
    tensor: Tensor
    read_grad: Callable[[], Tensor | None]
    holder: Any = None
    kind: str = "pair"


# ---------------------------------------------------------------------------------------------
# Parameters: where they are listed, and what each listed item is
# ---------------------------------------------------------------------------------------------


def _param_items(module: Any) -> list[Any] | None:
    """The raw items the module lists as parameters; None when it has no way to list them."""
    for source in _PARAM_SOURCES:
        if not hasattr(type(module), source) and source not in getattr(module, "__dict__", {}):
            continue
        value = getattr(module, source)
        if callable(value) and not isinstance(value, list | tuple | dict):
            value = value()
        if value is None:
            return []
        if isinstance(value, dict):
            return [(str(k), v) for k, v in value.items()]
        if isinstance(value, Tensor):
            return [value]
        if not isinstance(value, Iterable):
            raise CannotAdapt(
                f"{_describe(module)}.{source} returned a {type(value).__name__}; expected a "
                f"list of parameters. Otherwise {ADAPTER}"
            )
        items = list(value)
        if source == "named_param":
            return [tuple(item) for item in items]
        return items
    return None


def _is_tensor_pair(item: Any) -> bool:
    return isinstance(item, tuple | list) and all(isinstance(t, Tensor) for t in item)


def _interpret(module: Any, items: list[Any], names: dict[int, str]) -> list[Param]:
    """Turn what ``param()`` listed into parameters (see the table in the module docstring)."""
    if items and all(isinstance(item, Tensor) for item in items):
        return _tensor_list(module, items, names)
    params: list[Param] = []
    for index, item in enumerate(items):
        params.extend(_item(module, index, item, names))
    return params


def _not_made(grad: Any) -> bool:
    """A gradient placeholder backward replaces with a tensor: ``None``, or the number 0."""
    return grad is None or (
        isinstance(grad, int | float) and not isinstance(grad, bool) and grad == 0
    )


def _item(module: Any, index: int, item: Any, names: dict[int, str]) -> list[Param]:
    if item is None:
        return []
    if isinstance(item, tuple | list):
        if not item or all(x is None for x in item):  # [(None, None)]: a parameterless layer
            return []
        if len(item) == 3 and isinstance(item[0], str) and isinstance(item[1], Tensor):
            name, tensor, grad = item
            return [Param(name, tensor, lambda: grad)]
        if len(item) == 2 and isinstance(item[0], str):  # a dict's (name, value)
            return [_named(module, item[0], item[1], names, index)]
        if _is_tensor_pair(item):
            return _tensor_tuple(module, list(item), names, index)
        if len(item) == 2 and isinstance(item[0], Tensor) and _not_made(item[1]):
            tensor = item[0]  # a pair whose gradient backward has not made yet (None, or 0)
            return [Param(_name_of(module, tensor, names, str(index)), tensor, lambda: None)]
        if len(item) == 2 and all(_boxed(x) is not None for x in item):
            return [_boxed_pair(module, item[0], item[1], names, str(index))]
        if all(_holder_tensor(x) is not None for x in item):
            return [_holder(module, x, names, f"{index}.{i}") for i, x in enumerate(item)]
        if all(isinstance(x, tuple | list | dict) for x in item):  # one list per layer
            return [p for x in item for p in _item(module, index, x, names)]
        raise _unknown_item(module, index, item)
    if isinstance(item, Tensor):
        return _tensor_list(module, [item], names)
    if _holder_tensor(item) is not None:
        return [_holder(module, item, names, str(index))]
    if isinstance(item, dict):
        found = _dict_pair(item)
        if found is not None:
            key, grad_key = found
            tensor = item[key]
            name = _name_of(module, tensor, names, str(index))
            return [Param(name, tensor, lambda: item.get(grad_key), holder=None, kind="holder")]
        # {name: parameter} (an OrderedDict of Parameter objects; empty for a ReLU)
        return [
            p for key, value in item.items() for p in _item(module, index, (str(key), value), names)
        ]
    if isinstance(item, Iterator):  # a generator of a child's parameters
        return [p for x in item for p in _item(module, index, x, names)]
    raise _unknown_item(module, index, item)


_GRAD_METHODS = ("grad", "grads", "gradient", "gradients", "get_grads", "get_gradients")
_VALUE_KEYS = ("value", "data", "param", "params", "weight", "tensor", "w", "p", "val")
_GRAD_KEYS = ("grad", "gradient", "grads", "dw", "g", "d", "dvalue")


def _dict_pair(item: dict) -> tuple[str, str] | None:
    """The keys of a ``{"value": w, "grad": dw}`` parameter dict, if it is one."""
    value = next((k for k in _VALUE_KEYS if isinstance(item.get(k), Tensor)), None)
    grad = next((k for k in _GRAD_KEYS if k in item), None)
    return (value, grad) if value is not None and grad is not None else None


def _named(module: Any, name: str, value: Any, names: dict[int, str], index: int) -> Param:
    if isinstance(value, Tensor):
        names.setdefault(id(value), name)
        return _tensor_list(module, [value], names)[0]
    if _holder_tensor(value) is not None:
        names.setdefault(id(value), name)
        return _holder(module, value, names, name)
    if _is_tensor_pair(value) and len(value) == 2:
        tensor, grad = value
        return Param(name, tensor, lambda: grad)
    raise _unknown_item(module, index, value)


def _unknown_item(module: Any, index: int, item: Any) -> CannotAdapt:
    if isinstance(item, tuple | list):
        what = f"a {type(item).__name__} of length {len(item)} holding " + ", ".join(
            type(x).__name__ for x in item
        )
    else:
        what = f"a {type(item).__name__}"
    return CannotAdapt(
        f"{_describe(module)}: parameter item {index} is {what}; gradcheck understands "
        "(tensor, gradient) pairs, (name, tensor, gradient) triples, flat [w, dw, b, db] lists, "
        "(w, b, dw, db) tuples, objects with .data or .value and .grad, and tensors whose "
        f"gradient is in .grad or an attribute named after them. Otherwise {ADAPTER}"
    )


def _holder_tensor(item: Any) -> Tensor | None:
    """The tensor of a Parameter-like object (``.data`` or ``.value``, and a ``.grad``)."""
    if isinstance(item, Tensor) or not hasattr(item, "grad"):
        return None
    for attr in ("data", "value"):
        value = getattr(item, attr, None)
        if isinstance(value, Tensor):
            return value
    return None


def _boxed(item: Any) -> Tensor | None:
    """The tensor of a box without a gradient of its own (``.value`` or ``.data``, no
    ``.grad``): one of a ``[Parameter(w), Parameter(dw)]`` pair."""
    if isinstance(item, Tensor) or hasattr(item, "grad"):
        return None
    for attr in ("value", "data"):
        value = getattr(item, attr, None)
        if isinstance(value, Tensor):
            return value
    return None


def _boxed_pair(
    module: Any, box: Any, grad_box: Any, names: dict[int, str], fallback: str
) -> Param:
    """``[Parameter(w), Parameter(dw)]``: the gradient box's tensor, read afresh (a box may
    rebind it: ``self.value = self.value + d``)."""
    tensor = _boxed(box)
    assert tensor is not None
    key = id(box)
    if key not in names:
        names[key] = find_name(module, box) or find_name(module, tensor) or fallback
    return Param(names[key], tensor, lambda: _boxed(grad_box), holder=None, kind="holder")


def _holder(module: Any, item: Any, names: dict[int, str], fallback: str) -> Param:
    tensor = _holder_tensor(item)
    assert tensor is not None
    key = id(item)
    if key not in names:
        names[key] = find_name(module, item) or find_name(module, tensor) or fallback
    return Param(names[key], tensor, lambda: item.grad, holder=item, kind="holder")


def _name_of(module: Any, tensor: Tensor, names: dict[int, str], fallback: str) -> str:
    """The attribute path holding ``tensor`` (found once, cached), else ``fallback``."""
    key = id(tensor)
    if key not in names:
        names[key] = find_name(module, tensor) or ""
    return names[key] or fallback


def _looks_like_grad(module: Any, tensor: Tensor, names: dict[int, str]) -> bool:
    name = _name_of(module, tensor, names, "")
    return bool(name) and bool(_GRAD_WORDS.search(name.rsplit(".", 1)[-1]))


def _tensor_tuple(
    module: Any, item: list[Tensor], names: dict[int, str], index: int
) -> list[Param]:
    """One tuple of tensors: ``(w, dw)``, ``(w, b, dw, db)``, ``(w, dw, b, db)``, or ``(w, b)``
    with the gradients elsewhere."""
    paired = _pair_up(module, item, names, str(index), lenient=len(item) == 2)
    return paired if paired is not None else _tensor_list(module, item, names)


def _pair_up(
    module: Any, items: list[Tensor], names: dict[int, str], prefix: str, *, lenient: bool
) -> list[Param] | None:
    """Parameters paired with gradients by position, ``[w, dw, b, db]`` (interleaved) or
    ``[w, b, dw, db]`` (halves), when the shapes pair up and the gradients' names say they are
    gradients (``dw``, ``grad_b``, ...); a lone ``(w, dw)`` of one shape needs no names. None
    when they do not pair."""
    n = len(items)
    if n < 2 or n % 2:
        return None
    grads = [_looks_like_grad(module, t, names) for t in items]
    named = [bool(_name_of(module, t, names, "")) for t in items]
    orders = (
        ([(i, i + 1) for i in range(0, n, 2)], "interleaved"),
        ([(i, i + n // 2) for i in range(n // 2)], "halves"),
    )
    for pairs, _ in orders:
        same = all(items[a].shape == items[b].shape for a, b in pairs)
        # A lone (b, db) whose gradient lost a dimension ((1, n) and (n,)) or was reduced to
        # a number (its name says it is a gradient): still a pair, and the gradient_shape
        # check says what is wrong with it.
        lone = n == 2 and lenient and (items[0].numel() == items[1].numel() or grads[1])
        if not same and not lone:
            continue
        says = all(grads[b] and not grads[a] for a, b in pairs)
        unnamed = not any(named[b] for _, b in pairs)
        if says or lenient or unnamed:
            return [
                Param(
                    _name_of(module, items[a], names, f"{prefix}.{k}" if prefix else str(k)),
                    items[a],
                    (lambda g=items[b]: g),
                )
                for k, (a, b) in enumerate(pairs)
            ]
    return None


def _grad_method(module: Any, items: list[Tensor]) -> list[Param] | None:
    """Gradients from a method beside ``param()``: ``grad()``, ``grads()``, ``gradients()``,
    returning one tensor per parameter, in order and of the same shapes."""
    for name in _GRAD_METHODS:
        method = getattr(module, name, None)
        if not callable(method):
            continue
        try:
            grads = list(method())
        except Exception:
            continue
        if len(grads) == len(items) and all(
            isinstance(g, Tensor) and g.shape == t.shape for g, t in zip(grads, items, strict=True)
        ):
            return [
                Param(
                    find_name(module, t) or str(i),
                    t,
                    (lambda m=method, i=i: _nth(m, i)),
                    kind="method",
                )
                for i, t in enumerate(items)
            ]
    return None


def _nth(method: Callable[[], Any], i: int) -> Tensor | None:
    try:
        grads = list(method())
    except Exception:
        return None
    return grads[i] if i < len(grads) and isinstance(grads[i], Tensor) else None


def _tensor_list(module: Any, items: list[Tensor], names: dict[int, str]) -> list[Param]:
    """A list of tensors alone: gradients in attributes named after them; else paired by
    position (``[w, dw, b, db]``, ``[w, b, dw, db]``); else from a ``grad()`` method; else
    their ``.grad``."""
    located = [locate(module, t) for t in items]
    attribute_grads = [
        loc is not None and _grad_attribute(loc[0], loc[1], t) is not None
        for t, loc in zip(items, located, strict=True)
    ]
    if not all(attribute_grads):
        found = _pair_up(module, items, names, "", lenient=False) or _grad_method(module, items)
        if found is not None:
            return found
    params = []
    for i, (t, loc) in enumerate(zip(items, located, strict=True)):
        name = _name_of(module, t, names, str(i))
        if loc is None:
            params.append(Param(name, t, (lambda t=t: t.grad), kind=".grad"))
            continue
        owner, attr = loc
        # The attribute may not be there yet (backward makes it): look again each time.
        params.append(
            Param(
                name,
                t,
                (lambda o=owner, a=attr, t=t: _attribute_or_grad(o, a, t)),
                kind="attribute" if attribute_grads[i] else ".grad",
            )
        )
    return params


def _attribute_or_grad(owner: Any, attr: str, tensor: Tensor) -> Tensor | None:
    found = _grad_attribute(owner, attr, tensor)
    return found if found is not None else tensor.grad


def _named_parameters(module: Any) -> list[Param]:
    """A module with no ``param()``: tensors named like parameters with a gradient attribute."""
    params = []
    for attr in _PARAMETER_NAMES:
        for name in (attr, "_" + attr, attr.upper(), attr.capitalize()):
            value = getattr(module, "__dict__", {}).get(name)
            if isinstance(value, Tensor) and value.is_floating_point():
                grad = _grad_attribute(module, name, value)
                if grad is not None:
                    params.append(
                        Param(
                            name,
                            value,
                            (lambda o=module, a=name, t=value: _grad_attribute(o, a, t)),
                            kind="attribute",
                        )
                    )
                break
    return params


def list_params(module: Any, names: dict[int, str], _depth: int = 0) -> list[Param]:
    """The module's parameters, each once, read afresh (a module may rebind its gradients).

    Args:
        module: the module.
        names: a cache of the names found for tensors and holders, kept across calls.
    """
    found = _param_items(module)
    if found is not None:
        params = _interpret(module, found, names)
    else:
        params = _named_parameters(module) or _layer_parameters(module, names, _depth)
    unique: list[Param] = []
    seen: set[int] = set()
    for param in params:
        if id(param.tensor) not in seen:
            seen.add(id(param.tensor))
            unique.append(param)
    return unique


def lists_params(module: Any) -> bool:
    """Whether the module lists its parameters itself (``param()``, ``parameters()``, ...)."""
    return any(
        hasattr(type(module), source) or source in getattr(module, "__dict__", {})
        for source in _PARAM_SOURCES
    )


def layers_of(module: Any) -> list[tuple[str, Any]]:
    """The layers a container without ``param()`` holds: ``(path, layer)`` for each object
    with ``forward`` and ``backward`` in its attributes or in lists, tuples or dicts of them
    (``self.transforms = args``), in order."""
    found = []
    for key, value in getattr(module, "__dict__", {}).items():
        items = (
            list(value.items())
            if isinstance(value, dict)
            else list(enumerate(value))
            if isinstance(value, list | tuple)
            else [(None, value)]
        )
        for index, item in items:
            if item is not module and _is_layer(item):
                found.append((key if index is None else f"{key}.{index}", item))
    return found


def _is_layer(obj: Any) -> bool:
    return not isinstance(obj, type) and all(
        callable(getattr(obj, m, None)) for m in ("forward", "backward")
    )


def _layer_parameters(module: Any, names: dict[int, str], depth: int) -> list[Param]:
    """A container with no ``param()`` of its own: its layers' parameters, named by path."""
    if depth >= 4:  # a layer may hold its container back
        return []
    params = []
    for path, layer in layers_of(module):
        try:
            found = list_params(layer, names, depth + 1)
        except CannotAdapt:
            continue
        for p in found:
            p.name = f"{path}.{p.name}"
            params.append(p)
    return params


def _describe(module: Any) -> str:
    return type(module).__name__
