"""Numpy modules behind the checker's torch interface, sharing memory both ways.

The session keeps float64 torch tensors; this adapter hands the module ``tensor.numpy()`` views
of them (so the checker's in-place perturbation, mutation detection and restoration work as for
torch modules) and wraps what the module returns with ``torch.from_numpy`` (so a backward that
writes into the upstream gradient, or into what forward returned, is seen). Parameters and their
gradients are read as numpy arrays through the same kind of views.

What a numpy module may look like, with no adapter:

========================  ===================================================================
what                      forms recognised
========================  ===================================================================
a numpy module            its class holds float ndarrays (and no tensors), or is defined in a
                          file that imports numpy and not torch
the parameters            ``param()``/``params()``/``parameters()``/``get_params()`` (or such an
                          attribute) returning ``(array, gradient)`` pairs (read as the course
                          protocol: gradients add up), a dict with a sibling ``grads`` dict, or
                          arrays alone; with none of these, float arrays named like parameters
                          (``W``, ``W1``, ``b``, ``weights``, ``biases``, ``gamma``, ``beta``,
                          ``kernel``), also in child layers
gradients by name         ``dW``, ``dw``, ``grad_W``, ``W_grad``, ``dweights``, ``dbiases``, ...:
                          read after each backward, the numpy convention (backward sets them;
                          gradcheck adds them up itself)
the output                what forward returns; when None, ``self.output``, ``self.out``, ...
the input gradient        what backward returns; when None, ``self.dinputs``, ``self.dx``, ...
a per-sample loss         forward(prediction, target) returning one loss per sample (the loss
                          is ``calculate()``, or their mean) and ``backward(dvalues, y_true)``
                          setting ``self.dinputs``; a softmax fused with its loss
a learning rate           ``backward(grad, lr)`` of a layer without parameters: called with 0;
                          with parameters it updates them itself and cannot be checked
========================  ===================================================================

numpy's global generator is seeded before every forward as torch's is (a dropout draws the same
mask each time), seeded differently before every backward (a backward that draws random numbers
shows up as non-deterministic, while one that replays the mask forward cached passes), and left
as the caller had it after the check.
"""

from __future__ import annotations

import inspect
import numbers
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradcheck._adapt import Adapted, CannotAdapt, Param
from gradcheck._numpy_params import (
    Summed,
    attribute,
    grad_by_name,
    pairs,
    put,
    refuse_learning_rate,
    scan,
    short,
    walk,
)
from gradcheck._protocol import required_names
from gradcheck.inputs import loss_defaults

__all__ = [
    "NumpyAdapted",
    "is_numpy_module",
    "numpy_views",
    "refuse_learning_rate",
    "seed_numpy",
    "to_tensor",
    "to_tensors",
]

_LISTINGS = ("param", "params", "parameters", "get_params")
_GRAD_DICTS = ("grads", "gradients", "dparams", "d_params", "param_grads", "grad")
#: Where a forward that returns None keeps its output; a backward its input gradient.
_OUTPUT_NAMES = ("output", "out", "outputs", "y", "a", "activation", "result", "z")
_INPUT_GRAD_NAMES = ("dinputs", "dinput", "dx", "grad_input", "input_grad", "delta")


def seed_numpy(offset: int = 0) -> None:
    """Seed numpy's global generator from torch's (which the session seeds before a forward)."""
    np.random.seed((torch.initial_seed() + offset) % 2**32)


def numpy_views(args: tuple[Any, ...]) -> list[Any]:
    """Each tensor as a numpy array sharing its memory; anything else as it is."""
    return [a.numpy() if isinstance(a, Tensor) else a for a in args]


def to_tensor(value: Any) -> Any:
    """An array, numpy scalar or Python number as a tensor, sharing the array's memory where
    numpy allows it; anything else as it is (the session reports what it cannot use)."""
    if isinstance(value, np.generic) or (
        isinstance(value, numbers.Real) and not isinstance(value, bool)
    ):
        value = np.asarray(value)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
        return value
    if value.flags.writeable and value.dtype.isnative:
        try:
            return torch.from_numpy(value)
        except (TypeError, ValueError):  # negative strides
            pass
    return torch.from_numpy(np.array(value, dtype=value.dtype.newbyteorder("=")))


def to_tensors(result: Any) -> Any:
    """What a backward returned, with its arrays as tensors (a tuple stays a tuple)."""
    if isinstance(result, tuple | list):
        return tuple(to_tensor(r) for r in result)
    return to_tensor(result)


def _uses(module: types.ModuleType | None) -> tuple[bool, bool]:
    """Whether a Python module's globals hold numpy, and torch (or a part of torch)."""
    if module is None:
        return False, False
    values = list(vars(module).values())
    numpy = any(v is np for v in values)
    torch_ = any(
        isinstance(v, types.ModuleType) and v.__name__.split(".")[0] == "torch" for v in values
    )
    return numpy, torch_


def is_numpy_module(module: Any) -> bool:
    """Whether ``module`` computes on numpy arrays: it holds float ndarrays and no tensors, or,
    holding neither, its class (or else the nearest base class whose file imports only one of
    the two) is defined in a file that imports numpy and not torch."""
    if isinstance(module, torch.nn.Module | Adapted) or inspect.isclass(module):
        return False
    kinds = {type(v) for _, _, v in walk(module, depth=2)}
    if any(issubclass(k, Tensor) for k in kinds):
        return False
    if any(issubclass(k, np.ndarray) for k in kinds):
        return True
    for cls in type(module).__mro__:  # the first class whose file imports one of the two
        numpy, torch_ = _uses(sys.modules.get(cls.__module__))
        if numpy != torch_:
            return numpy
    return False


#: A per-sample loss's backward names its second parameter so.
_TARGET_NAMES = frozenset({"y", "y_true", "target", "targets", "labels", "label", "t", "truth"})


class _PerSampleLoss:
    """What the protocol's validation sees of a per-sample loss: ``forward(prediction, target)``
    and a ``backward()`` of the loss (the adapter calls the real ``backward(dvalues, y)``)."""

    def forward(self, prediction: Any, target: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def backward(self) -> Any:  # pragma: no cover - never called
        raise NotImplementedError


class _IgnoredStep:
    """What the protocol's validation sees of a layer whose ``backward(grad, lr)`` ignores its
    learning rate: ``backward(grad)`` (the adapter passes ``lr=0`` to the real one)."""

    def forward(self, x: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:  # pragma: no cover - never called
        raise NotImplementedError


class NumpyAdapted(Adapted):
    """A module on numpy arrays reached through the checker's interface (module docstring)."""

    def __init__(
        self, module: Any, *, batch_dim: int | None = 0, target_first: bool | None = None
    ) -> None:
        #: A learning rate backward takes and, holding no parameters, ignores: passed as 0.
        self._step = refuse_learning_rate(module, numpy=True)
        # The protocol's own validation sees such a layer as the backward(grad) it amounts to.
        #: A loss in the "from scratch" book's style: forward returns per-sample losses (their
        #: mean is the loss, ``calculate()`` where it has one), backward(dvalues, y_true).
        backward = required_names(getattr(module, "backward", None))
        self._per_sample = (
            len(backward) == 2
            and len(required_names(getattr(module, "forward", None))) == 2
            and backward[1].lower() in _TARGET_NAMES
        )
        shown: Any = module
        if self._step:
            shown = _IgnoredStep()
        elif self._per_sample:
            shown = _PerSampleLoss()
        super().__init__(shown, batch_dim=batch_dim, target_first=target_first)
        self.module = module
        self._loss_args: list[Any] = []
        if self._per_sample:
            self.notes.append(
                "a per-sample loss: its value is "
                + (
                    "calculate(prediction, target)"
                    if hasattr(module, "calculate")
                    else "the mean of forward(prediction, target)"
                )
                + ", its gradient the dinputs of backward(dvalues, target)"
            )
        if self._step:
            self.notes.append(
                f"backward takes a learning rate ({self._step}) and the layer holds no "
                f"parameters: it was called with {self._step}=0"
            )
        self._summed: list[Summed] | None = None
        self._listing: str | None = None
        self._wrapped: dict[int, tuple[np.ndarray, Tensor]] = {}
        self._backwards = 0

    def loss_defaults(self) -> tuple[str, tuple[float, float] | None]:
        """A loss's target kind and input range: by its name, and a per-sample cross-entropy
        that is not fused with a softmax takes probabilities (the book's clips them)."""
        kind, input_range = loss_defaults(self.module)
        name = type(self.module).__name__.lower().replace("_", "")
        if self._per_sample and "crossentropy" in name and "softmax" not in name:
            note = "a cross-entropy on probabilities: predictions were drawn in (0.05, 0.95)"
            if note not in self.notes:
                self.notes.append(note)
            return kind, input_range or (0.05, 0.95)
        return kind, input_range

    # -- forward and backward ------------------------------------------------------------------

    def forward(self, *args: Any) -> Any:
        if self.target_first and len(args) == 2:
            args = (args[1], args[0])
        seed_numpy()
        arrays = numpy_views(args)
        if self._per_sample:
            self._loss_args = arrays
            calculate = getattr(self.module, "calculate", None)
            if callable(calculate):
                return to_tensor(calculate(*arrays))
            return to_tensor(np.mean(self.module.forward(*arrays)))
        out = self.module.forward(*arrays, **self.mode_keywords())
        if out is None:
            out = self._kept("forward", _OUTPUT_NAMES)
        return to_tensor(out)

    def backward(self, grad: Tensor | None) -> Any:
        summed = self._discover()
        for p in summed:
            p.before_backward()
        self._backwards += 1
        seed_numpy(7919 * self._backwards)
        if self._per_sample:
            # backward(dvalues, y_true): dvalues are what forward kept as its output (a softmax
            # fused with its loss), else the prediction forward was given.
            kept = vars(self.module).get("output")
            first = kept if isinstance(kept, np.ndarray) else self._loss_args[0]
            result = self.module.backward(first, self._loss_args[1])
        elif self.is_loss:
            result = self.module.backward()
        else:
            step = {self._step: 0.0} if self._step else {}
            result = self.module.backward(grad.numpy() if grad is not None else None, **step)
        for p in summed:
            p.after_backward()
        if result is None:
            result = self._kept("backward", _INPUT_GRAD_NAMES)
        return to_tensors(result)

    def _kept(self, method: str, names: tuple[str, ...]) -> Any:
        """The array a method that returned None stored under one of ``names``."""
        values = vars(self.module)
        by_name = {k.lower(): k for k in values}
        for name in names:
            key = by_name.get(name)
            if key is not None and isinstance(values[key], np.ndarray):
                where = "its output" if method == "forward" else "the input gradient"
                note = f"{method} returned None; {where} was read from self.{key}"
                if note not in self.notes:
                    self.notes.append(note)
                return values[key]
        return None

    # -- parameters ----------------------------------------------------------------------------

    def _wrap(self, array: np.ndarray) -> Tensor:
        """One tensor per array, the same object every time (identity tells rebinding)."""
        entry = self._wrapped.get(id(array))
        if entry is None or entry[0] is not array:
            entry = (array, to_tensor(array))
            self._wrapped[id(array)] = entry
        return entry[1]

    def _list(self) -> tuple[str, Any] | None:
        for source in _LISTINGS:
            if not hasattr(type(self.module), source) and source not in vars(self.module):
                continue
            value = getattr(self.module, source)
            if callable(value) and not isinstance(value, list | tuple | dict):
                value = value()
            return source, value
        return None

    def _discover(self) -> list[Summed]:
        """Find the parameters whose gradients the adapter sums (once)."""
        if self._summed is not None:
            return self._summed
        listed = self._list()
        summed: list[Summed] = []
        if listed is None or listed[1] is None:
            summed = scan(self.module, "")
        else:
            source, value = listed
            self._listing = source
            if isinstance(value, dict):
                summed = self._from_dict(source, value)
            elif isinstance(value, list | tuple) and all(isinstance(v, np.ndarray) for v in value):
                summed = self._from_arrays(source, list(value))
            elif not pairs(value):
                raise CannotAdapt(
                    f"{type(self.module).__name__}.{source} gave {type(value).__name__} "
                    f"{short(value)}; for a numpy module gradcheck understands (array, "
                    "gradient) pairs, a dict of arrays with a sibling `grads` dict, arrays it "
                    "can find as attributes (gradients named dW, dweights, W_grad, ...), or "
                    "arrays named like parameters with no param() at all"
                )
        self._summed = summed
        return summed

    def _from_dict(self, source: str, value: dict[Any, Any]) -> list[Summed]:
        module = self.module
        sibling = next((g for g in _GRAD_DICTS if isinstance(vars(module).get(g), dict)), None)

        def grads() -> dict[Any, Any]:
            return vars(module).get(sibling, {}) if sibling else vars(module)

        def array(key: Any) -> Callable[[], np.ndarray]:
            return lambda: (
                getattr(module, source)[key]
                if not callable(getattr(module, source))
                else getattr(module, source)()[key]
            )

        summed = []
        for key, v in value.items():
            if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
                continue
            if sibling:
                grad = lambda k=key: grads().get(k)  # noqa: E731
            else:
                grad = lambda k=key, a=v: grad_by_name(grads(), str(k), a)  # noqa: E731
            summed.append(Summed(str(key), array(key), grad))
        return summed

    def _from_arrays(self, source: str, arrays: list[np.ndarray]) -> list[Summed]:
        located = {id(v): (c, k) for c, k, v in walk(self.module, depth=2)}
        summed = []
        for i, a in enumerate(arrays):
            if id(a) not in located:
                raise CannotAdapt(
                    f"{type(self.module).__name__}.{source} item {i} is an array gradcheck "
                    "cannot find among the module's attributes, so it cannot find its gradient "
                    "either: return (array, gradient) pairs"
                )
            owner, key = located[id(a)]
            summed.append(attribute(owner, key, key))
        return summed

    def params(self) -> list[Param]:
        """Return the parameters, fetched afresh (a module may rebind its arrays)."""
        summed = self._discover()
        if summed or self._listing is None:
            return [
                Param(p.name, self._wrap(p.array()), p.read, kind=".grad")
                for p in summed
                if isinstance(p.array(), np.ndarray)
            ]
        listed = self._list()
        assert listed is not None
        params, seen = [], set()
        for i, (w, g) in enumerate(listed[1] or []):
            if id(w) in seen:
                continue
            seen.add(id(w))
            name = next((k for k, v in vars(self.module).items() if v is w), str(i))
            params.append(Param(name, self._wrap(w), (lambda g=g: self._wrap(g)), kind="pair"))
        return params

    def promote(self, dtype: torch.dtype = torch.float64) -> Callable[[], None]:
        """Rebind float arrays the module holds to ``dtype`` copies; return the undo, which also
        restores every array's values and numpy's generator."""
        target = torch.empty((), dtype=dtype).numpy().dtype
        state = np.random.get_state()
        saved = []
        for container, key, value in walk(self.module):
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                continue
            saved.append((container, key, value, value.copy()))
            if value.dtype != target and not isinstance(container, tuple):
                put(container, key, value.astype(target))
        self._wrapped.clear()
        self._summed = None
        try:
            self._discover()  # a listing gradcheck cannot read: cannot be checked, said now
        except CannotAdapt:
            self._undo(saved, state)
            raise

        return lambda: self._undo(saved, state)

    def _undo(self, saved: list[tuple[Any, str, np.ndarray, np.ndarray]], state: Any) -> None:
        for container, key, original, values in reversed(saved):
            if original.flags.writeable:
                np.copyto(original, values)
            if not isinstance(container, tuple):
                put(container, key, original)
        np.random.set_state(state)
        self._wrapped.clear()
