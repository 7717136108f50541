"""Sequential: modules chained one after the other."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

from nnlite.module import Module


class Sequential(Module):
    r"""Chains modules: ``forward`` runs them first to last, ``backward`` last to first.

    .. math::
        y = f_n(\cdots f_2(f_1(x))), \qquad
        \frac{\partial \ell}{\partial x} =
            J_{f_1}^T \cdots J_{f_n}^T \frac{\partial \ell}{\partial y}

    Supports indexing (an int gives the module, a slice a new ``Sequential`` sharing the modules),
    ``len``, iteration and nesting. Parameters are named ``"0.weight"``, ``"2.bias"``, ... as in
    torch.

    Args:
        *modules: the modules, in the order the input flows through them.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not all(callable(getattr(module, m, None)) for m in ("forward", "backward")):
                raise TypeError(
                    f"Sequential: argument {index} must be a module with forward and backward, "
                    f"got {module!r} of type {type(module).__name__}"
                )
        self._modules = list(modules)

    def forward(self, input: Tensor) -> Tensor:
        for module in self._modules:
            input = module.forward(input)
        return input

    def backward(self, grad_output: Tensor) -> Tensor:
        for module in reversed(self._modules):
            grad_output = module.backward(grad_output)
        return grad_output

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((str(i), m) for i, m in enumerate(self._modules))

    def append(self, module: Module) -> Sequential:
        self._modules.append(module)
        return self

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return Sequential(*self._modules[index])
        return self._modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules)
