"""Reach any module through one interface: forward, backward, parameters with their gradients.

What the checker understands with no adapter (the README shows this table):

========================  ===================================================================
what                      forms recognised
========================  ===================================================================
the two methods           ``forward`` and ``backward``, or ``fprop``, ``backprop``, ``bprop``,
                          ... in their place (:func:`gradcheck._protocol.alias_methods`); a
                          required mode flag (``forward(inputs, training)``) is passed
the parameters            the first of ``named_param()``, ``param()``, ``param`` (a property
                          or attribute), ``parameters()``, ``params()``, ``params``; a list,
                          tuple, generator or dict; nothing at all for a parameterless layer
one parameter             a ``(tensor, gradient)`` pair (``None`` or ``0`` until backward);
                          a ``(name, tensor, gradient)`` triple; a flat list
                          ``[w, dw, b, db]``; one tuple per layer ``(w, b, dw, db)`` or
                          ``(w, dw, b, db)``; an object with ``.data`` or ``.value`` and
                          ``.grad``; boxes ``[Box(w), Box(dw)]``; a tensor alone, its gradient
                          in ``.grad`` or in an attribute named after it (``weight_grad``,
                          ``grad_weight``, ``dw`` for ``w``, ``dl_dw``, ``dW``, ...)
no ``param()`` at all     tensors named like parameters (``weight``, ``w``, ``bias``, ...)
                          with a gradient attribute named after them; else the parameters of
                          the layers it holds, by path (``transforms.0.w``)
the output                what forward returns; when it returns ``None``, the tensor it
                          stored (``self.output``, ``self.out``, ...)
the input gradient        what backward returns; a container returning ``None`` has its
                          parameter gradients checked and a note says the input's was not
a loss                    ``forward(prediction, target)`` and a ``backward`` that needs no
                          argument, whatever the class is called (or a name ending in
                          ``Loss``); ``forward(target, prediction)`` when its parameter names
                          say so, or with ``target_first=True``; one ``(prediction, target)``
                          tuple; a value returned as a Python or numpy float, or the loss
                          object itself (``self.loss``); a backward that hands its gradient to
                          a :class:`~gradcheck.sink.GradientSink`
``torch.nn.Module``       run through autograd, as a reference
========================  ===================================================================

Anything else is refused with :class:`CannotAdapt`, whose message shows the adapter to write.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gradcheck._params import ADAPTER, CannotAdapt, Param, list_params, lists_params
from gradcheck._promote import converted, promote
from gradcheck._protocol import (
    _first_parameter,
    _is_target_first,
    _mode_flag,
    _refuse_fed_network,
    _refuse_unusual_backward,
    _required_positional,
    _signature,
    alias_methods,
    is_loss,
)
from gradcheck.sink import sink_of

__all__ = ["Adapted", "CannotAdapt", "Param", "TorchAdapted", "adapt", "is_loss"]


#: Names of an output kept in an attribute by a forward that returns None, most likely first.
_OUTPUT_NAMES = ("output", "out", "y", "result", "activation", "activations", "a", "z", "h")
_SINK_NOTE = (
    "backward() returned nothing; the gradient it handed to its network (a GradientSink) was "
    "checked"
)
#: Attributes holding the value of a loss whose forward returns the loss object itself.
_LOSS_VALUES = ("loss", "value", "cost", "loss_value", "error", "l", "result")


class Adapted:
    """A module reached through the course protocol (see the module docstring)."""

    packed = False
    mode_flag: str | None = None
    mode = True

    def __init__(
        self, module: Any, *, batch_dim: int | None = 0, target_first: bool | None = None
    ) -> None:
        for method in ("forward", "backward"):
            if not callable(getattr(module, method, None)):
                raise CannotAdapt(
                    f"{_describe(module)} has no {method}() method; gradcheck needs "
                    "forward(*inputs) and backward(*grad_output) (the course protocol), a "
                    f"torch.nn.Module, or an adapter: {ADAPTER}"
                )
        self.module = module
        self.is_loss = is_loss(module)
        _refuse_unusual_backward(module, self.is_loss)
        if self.is_loss:
            _refuse_fed_network(module)
        self.batch_dim = batch_dim
        self.target_first = (
            bool(target_first)
            if target_first is not None
            else (self.is_loss and _is_target_first(module))
        )
        #: What the adapter worked out about the module, for the report.
        self.notes: list[str] = []
        if self.is_loss and self.target_first and target_first is None:
            self.notes.append(
                "forward's parameters name the target first: it was called as "
                "forward(target, prediction)"
            )
        #: A loss whose forward takes one ``(prediction, target)`` tuple.
        self.packed = self.is_loss and _required_positional(module.forward) == [
            _first_parameter(module.forward)
        ]
        if self.packed:
            self.notes.append(
                "forward takes one argument: it was called as forward((prediction, target))"
            )
        #: A forward that requires its mode (``forward(self, inputs, training)``): passed as a
        #: keyword, True unless the check runs in eval mode.
        self.mode_flag = _mode_flag(module.forward)
        self.mode = True
        if self.mode_flag:
            self.notes.append(
                f"forward requires {self.mode_flag}: it was passed {self.mode_flag}=True "
                "(False with eval)"
            )
        self._names: dict[int, str] = {}
        self._output_attr: str | None = None

    def mode_keywords(self) -> dict[str, bool]:
        """The keyword a forward that requires its mode is given, else none."""
        return {self.mode_flag: self.mode} if self.mode_flag else {}

    # -- forward and backward ------------------------------------------------------------------

    def forward(self, *args: Any) -> Any:
        if self.target_first and len(args) == 2:
            args = (args[1], args[0])
        if self.packed and len(args) == 2:
            args = (tuple(args),)
        if self._output_attr is not None:
            self.module.forward(*args, **self.mode_keywords())
            return getattr(self.module, self._output_attr, None)
        before = _tensor_attributes(self.module)
        out = self.module.forward(*args, **self.mode_keywords())
        if out is None:
            return self._stored_output(before)
        if self.is_loss and out is self.module:  # loss = criterion(out, y); loss.backward()
            out = self._loss_value()
        if self.is_loss and isinstance(out, numbers.Real) and not isinstance(out, bool):
            note = f"the loss returned a {type(out).__name__}; it was read as a 0-dim tensor"
            if note not in self.notes:
                self.notes.append(note)
            return torch.tensor(float(out), dtype=torch.get_default_dtype())
        if self.is_loss and type(out).__module__ == "numpy" and getattr(out, "shape", None) == ():
            return torch.tensor(float(out), dtype=torch.get_default_dtype())
        return out

    def _stored_output(self, before: dict[str, int]) -> Tensor | None:
        """The tensor a forward that returned None stored: a new one, by the likeliest name."""
        after = _tensor_attributes(self.module)
        fresh = [name for name, key in after.items() if before.get(name) != key]
        if not fresh:
            return None
        ranked = sorted(
            fresh,
            key=lambda n: (
                _OUTPUT_NAMES.index(n.lstrip("_").lower())
                if n.lstrip("_").lower() in _OUTPUT_NAMES
                else len(_OUTPUT_NAMES)
            ),
        )
        if len(fresh) > 1 and ranked[0].lstrip("_").lower() not in _OUTPUT_NAMES:
            return None
        self._output_attr = ranked[0]
        self.notes.append(
            f"forward returned None; its output was read from self.{ranked[0]}, the tensor it "
            "stored (return it to make the module usable in a Sequential)"
        )
        return getattr(self.module, ranked[0])

    def _loss_value(self) -> Any:
        """The value of a loss whose forward returned the loss object itself: the one-number
        attribute named like a loss value (``self.loss``, ``self.value``, ...)."""
        values = getattr(self.module, "__dict__", {})
        for name in _LOSS_VALUES:
            value = values.get(name)
            if (isinstance(value, Tensor) and value.numel() == 1) or isinstance(value, float):
                note = (
                    f"forward returned the loss object itself; its value was read from self.{name}"
                )
                if note not in self.notes:
                    self.notes.append(note)
                return value
        raise TypeError(
            f"{_describe(self.module)}.forward returned the loss object itself, and none of "
            f"its attributes {', '.join(_LOSS_VALUES)} holds one number: return the loss value"
        )

    def backward(self, grad: Tensor | None) -> Any:
        if self.is_loss:
            result = self.module.backward()
            sink = sink_of(self.module)
            if sink is not None and sink.grad is not None:
                # backward() handed its gradient to the network, here a GradientSink.
                if result is None and _SINK_NOTE not in self.notes:
                    self.notes.append(_SINK_NOTE)
                result, sink.grad = sink.grad, None
            return result
        return self.module.backward(grad)

    # -- parameters ----------------------------------------------------------------------------

    def params(self) -> list[Param]:
        """Return the parameters, fetched afresh (a module may rebind its gradient tensors).

        A loss has none: what a loss's ``param()`` lists (its value, its gradient) is noted and
        left alone."""
        params = list_params(self.module, self._names)
        if params and not lists_params(self.module) and "." in params[0].name:
            holders = ", ".join(sorted({f"self.{p.name.split('.')[0]}" for p in params}))
            note = f"no param(): the parameters of the layers it holds ({holders}) were checked"
            if note not in self.notes:
                self.notes.append(note)
        if self.is_loss and params:
            note = (
                f"the loss's param() lists {', '.join(p.name for p in params)}; a loss has no "
                "parameters, so they were not checked"
            )
            if note not in self.notes:
                self.notes.append(note)
            return []
        return params

    def train(self, mode: bool) -> None:
        self.mode = mode
        train = getattr(self.module, "train", None)
        evaluate = getattr(self.module, "eval", None)
        if callable(train) and _signature(train) is not None and _signature(train).parameters:
            train(mode)
        elif mode and callable(train):
            train()
        elif not mode and callable(evaluate):
            evaluate()
        else:
            self.module.training = mode

    @property
    def training(self) -> bool | None:
        value = getattr(self.module, "training", None)
        return value if isinstance(value, bool) else None

    def promote(self, dtype: torch.dtype = torch.float64) -> Callable[[], None]:
        """Convert parameters, gradients and every floating tensor the module holds to ``dtype``
        in place (same objects, new storage); return the function that undoes it."""
        return promote(self.module, self.params(), dtype)


class TorchAdapted(Adapted):
    """A ``torch.nn.Module`` run through autograd, as a reference implementation."""

    def __init__(self, module: torch.nn.Module, *, batch_dim: int | None = 0) -> None:
        self.module = module
        self.is_loss = is_loss(module)
        self.batch_dim = batch_dim
        self.target_first = False
        self.notes = []
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
            Param(name, p, (lambda p=p: p.grad), holder=p, kind="holder")
            for name, p in self.module.named_parameters()
        ]

    def promote(self, dtype: torch.dtype = torch.float64) -> Callable[[], None]:
        saved = []
        for p in self.module.parameters():
            saved.append((p, p.data, p.grad))
            p.grad = None
            p.data = converted(p.data, dtype)
        for b in self.module.buffers():
            saved.append((b, b.data, None))
            if b.is_floating_point():
                b.data = converted(b.data, dtype)

        def undo() -> None:
            for t, data, grad in saved:
                t.data = data
                if isinstance(t, torch.nn.Parameter):
                    t.grad = grad

        return undo


def adapt(
    module: Any,
    *,
    batch_dim: int | None = 0,
    target_first: bool | None = None,
    numpy: bool | None = None,
) -> Adapted:
    """Return ``module`` behind the checker's interface (see the module docstring).

    A module on numpy arrays (see :mod:`gradcheck._numpy`; ``numpy=True`` insists, ``False``
    refuses) is reached through views that share memory with the checker's tensors.

    Raises:
        CannotAdapt: the module has no forward or backward, or its backward takes a learning
            rate and updates its weights itself.
    """
    if isinstance(module, Adapted):
        return module
    if isinstance(module, torch.nn.Module):
        return TorchAdapted(module, batch_dim=batch_dim)
    from gradcheck._loss_pairs import LossPairAdapted, loss_pair
    from gradcheck._numpy import NumpyAdapted, is_numpy_module, refuse_learning_rate

    pair = loss_pair(module)
    if pair is not None:
        return LossPairAdapted(module, pair)

    aliased = alias_methods(module)  # backprop() for backward(), fprop() for forward()
    if numpy if numpy is not None else is_numpy_module(module):
        adapted: Adapted = NumpyAdapted(module, batch_dim=batch_dim, target_first=target_first)
    else:
        refuse_learning_rate(module)  # before the protocol's checks: its message has an adapter
        adapted = Adapted(module, batch_dim=batch_dim, target_first=target_first)
    if aliased:
        adapted.notes.insert(0, aliased)
    return adapted


def _describe(module: Any) -> str:
    return type(module).__name__


def _tensor_attributes(module: Any) -> dict[str, int]:
    """The module's own tensor attributes, as ``name -> id``: what forward rebinds shows."""
    values = getattr(module, "__dict__", {})
    return {k: id(v) for k, v in values.items() if isinstance(v, Tensor)}
