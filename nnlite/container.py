"""Sequential: modules chained one after the other."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

from nnlite.activation import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from nnlite.dropout import Dropout
from nnlite.linear import Linear
from nnlite.module import Module

# Exact types only: a subclass may keep what its forward or backward returns.
_FRESH_OUTPUT = frozenset({Linear})
"""Modules whose forward returns a new tensor that nothing else holds, the module included."""
_FRESH_GRAD = frozenset({Linear, ReLU, LeakyReLU, ELU, Tanh, Sigmoid, Dropout})
"""Modules whose backward returns such a tensor (ReLU's in-place backward returns the one it got,
which was fresh)."""
_FORWARD_IN_PLACE = frozenset({ReLU, Tanh, Sigmoid})
_BACKWARD_IN_PLACE = frozenset({ReLU})


class Sequential(Module):
    r"""Chains modules: ``forward`` runs them first to last, ``backward`` last to first.

    .. math::
        y = f_n(\cdots f_2(f_1(x))), \qquad
        \frac{\partial \ell}{\partial x} =
            J_{f_1}^T \cdots J_{f_n}^T \frac{\partial \ell}{\partial y}

    Supports indexing (an int gives the module, a slice a new ``Sequential`` sharing the modules),
    ``len``, iteration and nesting. Parameters are named ``"0.weight"``, ``"2.bias"``, ... as in
    torch.

    Tensors that pass only between its modules are reused where that changes no bit: a ReLU,
    Tanh or Sigmoid after a ``Linear`` computes its output in the ``Linear``'s (which nothing
    else holds), and a ReLU masks the gradient a ``Linear`` returned to it in place. Nothing
    the caller passed in or gets back is ever written.

    Args:
        *modules: the modules, in the order the input flows through them.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            _check_module(module, index, modules[:index])
        self._modules = list(modules)
        self._plan_reuse()

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._plan_reuse()  # a pickle from before the plan existed, or of another module list

    def _plan_reuse(self) -> None:
        """Decide, from the modules' types, which calls may reuse the tensor they are given."""
        kinds = [type(module) for module in self._modules]
        # forward: module i gets what module i - 1 returned; backward: what module i + 1 did.
        self._forward_in_place = [
            i > 0 and kinds[i - 1] in _FRESH_OUTPUT and kind in _FORWARD_IN_PLACE
            for i, kind in enumerate(kinds)
        ]
        self._backward_in_place = [
            i + 1 < len(kinds) and kinds[i + 1] in _FRESH_GRAD and kind in _BACKWARD_IN_PLACE
            for i, kind in enumerate(kinds)
        ]

    def forward(self, input: Tensor) -> Tensor:
        previous = None
        for module, in_place in zip(self._modules, self._forward_in_place, strict=True):
            # Not when either forward is replaced on the instance: a wrapper may keep what it
            # returns, or expect its own code to run.
            if in_place and "forward" not in previous.__dict__ and "forward" not in module.__dict__:
                input = module._forward_owned(input)
            else:
                input = module.forward(input)
            previous = module
        return input

    def backward(
        self, grad_output: Tensor, *, free_cache: bool = False, input_grad: bool = True
    ) -> Tensor | None:
        """Run the modules' backward, last to first; return the gradient of the input.

        Args:
            grad_output: the gradient of the loss with respect to the last forward's output.
            free_cache: drop each module's forward cache as soon as its backward has run, as
                autograd frees the tensors it saved: the step's peak memory then holds only
                what the modules still to go need. Backward can then run again only after a
                new forward. Default: ``False`` (the caches stay until the next forward).
            input_grad: with ``False``, return ``None`` and let the first module skip the
                gradient of its input where it can (a ``Linear`` or a ``Sequential``), as
                autograd skips the gradient of an input that does not require one, such as a
                batch of data. Default: ``True``.
        """
        modules, in_place = self._modules, self._backward_in_place
        for index in range(len(modules) - 1, -1, -1):
            module = modules[index]
            kind = type(module)
            if kind is Sequential and "backward" not in module.__dict__:
                grad_output = module.backward(
                    grad_output, free_cache=free_cache, input_grad=input_grad or index > 0
                )
            elif index == 0 and not input_grad and kind is Linear:
                grad_output = module.backward(grad_output, input_grad=False)
            elif (
                in_place[index]
                and "backward" not in modules[index + 1].__dict__
                and "backward" not in module.__dict__
            ):
                grad_output = module._backward_owned(grad_output)
            else:
                grad_output = module.backward(grad_output)
            if free_cache and isinstance(module, Module):
                module._clear_cache()
        return grad_output if input_grad else None

    def _clear_cache(self) -> None:
        for module in self._modules:
            if isinstance(module, Module):
                module._clear_cache()

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((str(i), m) for i, m in enumerate(self._modules))

    def append(self, module: Module) -> Sequential:
        _check_module(module, len(self._modules), self._modules)
        if any(inner is self for inner in module.modules()):
            raise ValueError(
                "Sequential.append: the module is or holds this Sequential, which would then "
                "run itself forever; append a new Sequential instead"
            )
        self._modules.append(module)
        self._plan_reuse()
        return self

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return Sequential(*self._modules[index])
        return self._modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)


def _check_module(module: object, index: int, before: list | tuple) -> None:
    """Refuse what cannot be a position of a Sequential, naming it and the fix."""
    if isinstance(module, type):
        raise TypeError(
            f"Sequential: argument {index} is the class {module.__name__}, not a module; "
            f"create one: {module.__name__}()"
        )
    if not all(callable(getattr(module, m, None)) for m in ("forward", "backward")):
        raise TypeError(
            f"Sequential: argument {index} must be a module with forward and backward, "
            f"got {module!r} of type {type(module).__name__}"
        )
    if not isinstance(module, Module):
        return
    # A module anywhere in the tree keeps its last forward for backward: used twice, the first
    # use would get the second's gradient, whether the second is beside it or nested deeper.
    first_use = {}
    for position, other in enumerate(before):
        if isinstance(other, Module):
            first_use.update({id(inner): position for inner in other.modules()})
    for inner in module.modules():
        if id(inner) in first_use:
            raise ValueError(
                f"Sequential: argument {index} is or holds the same {type(inner).__name__} object "
                f"as argument {first_use[id(inner)]} (or one inside it); a module keeps its last "
                f"forward for backward, so the first use would get the second's gradient. Give "
                f"each position its own instance, e.g. "
                f"Sequential(Linear(2, 25), ReLU(), Linear(25, 2), ReLU())"
            )
