"""Reach any module through one interface: forward, backward, parameters with their gradients.

Recognised, in this order:

1. ``torch.nn.Module``: run through autograd, as a reference (autograd is used here, in the
   checker, never inside nnlite).
2. The course protocol: ``forward(*inputs)``, ``backward(*grad_output)`` returning the input
   gradient and ADDING into the parameter gradients, and the parameters from the first of
   ``named_param()`` (name, tensor, gradient triples), ``param()``, ``param`` (a property or
   attribute), ``parameters()``, ``params()``. Each item may be a ``(tensor, gradient)`` pair
   (tuple or list), a ``(name, tensor, gradient)`` triple, or a Parameter-like object with
   ``.data`` (a tensor) and ``.grad`` (a tensor or ``None``); a generator works too.

A loss is the same protocol with ``forward(prediction, target)`` returning a scalar and
``backward()`` taking no gradient (see :func:`is_loss`).

Anything else needs a small adapter that the user writes: an object with ``forward``,
``backward`` and ``param()`` as above that calls into their code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

_PARAM_SOURCES = ("named_param", "param", "parameters", "params")


def is_loss(module: Any) -> bool:
    """Return whether ``module`` is a loss: ``forward(prediction, target)``, ``backward()``.

    A ``torch.nn`` loss (``torch.nn.modules.loss._Loss``) is a loss; so is any module whose class
    (or a base class) is named ``...Loss``, and any whose ``backward`` takes no argument.

    Args:
        module: the module to classify.
    """
    if isinstance(module, torch.nn.Module):
        return isinstance(module, torch.nn.modules.loss._Loss)
    if any(cls.__name__.endswith("Loss") for cls in type(module).__mro__):
        return True
    backward = getattr(module, "backward", None)
    if backward is None:
        return False
    try:
        signature = inspect.signature(backward)
    except (TypeError, ValueError):
        return False
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return False
    return True


@dataclass
class Param:
    """One parameter as the checker sees it.

    Attributes:
        name: a name from the module (``weight``, ``0.bias``) or the index in its list.
        tensor: the tensor whose storage the module reads (promoted and perturbed in place).
        read_grad: returns the gradient tensor now held for it (``None`` if none yet).
        holder: the Parameter-like object holding ``.data`` and ``.grad``, or ``None``.
    """

    name: str
    tensor: Tensor
    read_grad: Callable[[], Tensor | None]
    holder: Any = None


class Adapted:
    """A module reached through the course protocol (see the module docstring)."""

    def __init__(self, module: Any) -> None:
        for method in ("forward", "backward"):
            if not callable(getattr(module, method, None)):
                raise TypeError(
                    f"{_describe(module)} has no {method}() method; gradcheck needs "
                    "forward(*inputs) "
                    "and backward(*grad_output) (the course protocol), a torch.nn.Module, or a "
                    "small adapter object providing forward, backward and param()"
                )
        self.module = module
        self.is_loss = is_loss(module)
        self._names: dict[int, str] = {}

    def forward(self, *args: Any) -> Any:
        return self.module.forward(*args)

    def backward(self, grad: Tensor | None) -> Any:
        if self.is_loss:
            return self.module.backward()
        return self.module.backward(grad)

    def params(self) -> list[Param]:
        """Return the parameters, fetched afresh (a module may rebind its gradient tensors)."""
        items = _param_items(self.module)
        params: list[Param] = []
        seen: set[int] = set()
        for index, item in enumerate(items):
            param = _to_param(self.module, index, item, self._names)
            if id(param.tensor) not in seen:
                seen.add(id(param.tensor))
                params.append(param)
        return params

    def train(self, mode: bool) -> None:
        if callable(getattr(self.module, "train", None)):
            self.module.train(mode)
        else:
            self.module.training = mode

    @property
    def training(self) -> bool | None:
        return getattr(self.module, "training", None)

    def promote(self) -> Callable[[], None]:
        """Promote parameters and gradients to float64 in place; return the undo function."""
        return _promote_params(self.params())


class TorchAdapted(Adapted):
    """A ``torch.nn.Module`` run through autograd, as a reference implementation."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.is_loss = is_loss(module)
        self._graph: tuple[Tensor, list[Tensor]] | None = None

    def forward(self, *args: Any) -> Any:
        leaves = [
            a.detach().requires_grad_() if isinstance(a, Tensor) and a.is_floating_point() else a
            for a in args
        ]
        if self.is_loss:
            leaves[1:] = args[1:]
        with torch.enable_grad():
            out = self.module(*leaves)
        self._graph = (out, leaves)
        return out.detach()

    def backward(self, grad: Tensor | None) -> Any:
        if self._graph is None:
            raise RuntimeError(f"{_describe(self.module)}: backward called before forward")
        out, leaves = self._graph
        inputs = [a for a in leaves if isinstance(a, Tensor) and a.requires_grad]
        params = [p for p in self.module.parameters() if p.requires_grad]
        if grad is None:
            grad = torch.ones_like(out)
        grads = torch.autograd.grad(
            out, inputs + params, grad, retain_graph=True, allow_unused=True
        )
        for p, g in zip(params, grads[len(inputs) :], strict=True):
            if g is None:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            p.grad.add_(g)
        input_grads = [
            torch.zeros_like(a) if g is None else g
            for a, g in zip(inputs, grads[: len(inputs)], strict=True)
        ]
        return input_grads[0] if len(input_grads) == 1 else tuple(input_grads)

    def params(self) -> list[Param]:
        return [
            Param(name, p, (lambda p=p: p.grad), holder=None)
            for name, p in self.module.named_parameters()
        ]

    def promote(self) -> Callable[[], None]:
        saved = []
        for p in self.module.parameters():
            saved.append((p, p.data, p.grad))
            p.grad = None
            p.data = _float64_copy(p.data)
        for b in self.module.buffers():
            saved.append((b, b.data, None))
            if b.is_floating_point():
                b.data = _float64_copy(b.data)

        def undo() -> None:
            for t, data, grad in saved:
                t.data = data
                if isinstance(t, torch.nn.Parameter):
                    t.grad = grad

        return undo


def adapt(module: Any) -> Adapted:
    """Return ``module`` behind the checker's interface (see the module docstring)."""
    if isinstance(module, Adapted):
        return module
    if isinstance(module, torch.nn.Module):
        return TorchAdapted(module)
    return Adapted(module)


def _describe(module: Any) -> str:
    return type(module).__name__


def _param_items(module: Any) -> list[Any]:
    for source in _PARAM_SOURCES:
        if not hasattr(type(module), source) and source not in getattr(module, "__dict__", {}):
            continue
        value = getattr(module, source)
        if callable(value) and not isinstance(value, list | tuple):
            value = value()
        if value is None:
            continue
        items = list(value)
        if source == "named_param":
            return [tuple(item) for item in items]
        return items
    return []


def _to_param(module: Any, index: int, item: Any, names: dict[int, str]) -> Param:
    def name_of(*objects: Any) -> str:
        key = id(objects[0])
        if key not in names:
            found = (_find_name(module, o) for o in objects)
            names[key] = next((n for n in found if n), str(index))
        return names[key]

    if isinstance(item, tuple | list):
        if len(item) == 3 and isinstance(item[0], str):
            name, tensor, grad = item
            return _pair_param(name, tensor, grad)
        if len(item) == 2:
            tensor, grad = item
            return _pair_param(name_of(tensor), tensor, grad)
        raise TypeError(
            f"{_describe(module)}: parameter item {index} is a {type(item).__name__} of length "
            f"{len(item)}; expected a (tensor, gradient) pair, a (name, tensor, gradient) triple "
            "or an object with .data and .grad"
        )
    if isinstance(item, Tensor):
        return Param(name_of(item), item, lambda: item.grad, None)
    data = getattr(item, "data", None)
    if isinstance(data, Tensor) and hasattr(item, "grad"):
        return Param(name_of(item, data), data, lambda: item.grad, holder=item)
    raise TypeError(
        f"{_describe(module)}: parameter item {index} is a {type(item).__name__}; expected a "
        "(tensor, gradient) pair, a (name, tensor, gradient) triple or an object with .data and "
        ".grad"
    )


def _pair_param(name: str, tensor: Any, grad: Any) -> Param:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"parameter {name!r} is a {type(tensor).__name__}, not a tensor")
    return Param(name, tensor, lambda: grad, None)


def _find_name(module: Any, target: Any, depth: int = 4) -> str | None:
    """Return the attribute path under ``module`` holding ``target``, e.g. ``layers.0.weight``."""
    seen: set[int] = set()

    def walk(obj: Any, prefix: str, level: int) -> str | None:
        if id(obj) in seen or level > depth:
            return None
        seen.add(id(obj))
        if isinstance(obj, dict):
            children = [(str(k), v) for k, v in obj.items()]
        elif isinstance(obj, list | tuple):
            children = [(str(i), v) for i, v in enumerate(obj)]
        elif hasattr(obj, "__dict__") and not isinstance(obj, Tensor | type):
            children = [(k, v) for k, v in vars(obj).items() if not k.startswith("__")]
        else:
            return None
        for key, value in children:
            if value is target:
                return prefix + key.lstrip("_")
        for key, value in children:
            if isinstance(value, Tensor) or value is None:
                continue
            found = walk(value, prefix + key.lstrip("_") + ".", level + 1)
            if found:
                return found
        return None

    return walk(module, "", 0)


def _float64_copy(t: Tensor) -> Tensor:
    return torch.empty(t.shape, dtype=torch.float64).copy_(t.detach())


def _promote_params(params: list[Param]) -> Callable[[], None]:
    """Swap every parameter's (and gradient's) storage for a float64 copy, keeping the objects."""
    saved: list[tuple[Any, ...]] = []
    for p in params:
        saved.append(("data", p.tensor, p.tensor.data))
        p.tensor.data = _float64_copy(p.tensor.data)
        grad = p.read_grad()
        if p.holder is not None:
            saved.append(("attr", p.holder, grad))
            if isinstance(grad, Tensor):
                p.holder.grad = _float64_copy(grad)
        elif isinstance(grad, Tensor):
            saved.append(("data", grad, grad.data))
            grad.data = _float64_copy(grad.data)

    def undo() -> None:
        for kind, obj, value in reversed(saved):
            if kind == "data":
                obj.data = value
            else:
                obj.grad = value

    return undo
