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

    Tensors that pass only between its modules are reused where the modules declare it (see
    :class:`~nnlite.Module`): a module with an in-place forward (ReLU, Tanh, Sigmoid) after one
    whose output is fresh (Linear) computes in that output, and a module with an in-place
    backward (ReLU) after one whose gradient is fresh masks that gradient in place. Nothing the
    caller passed in or gets back is ever written, and a ``forward`` or ``backward`` replaced on
    an instance (a wrapper may keep what it returns) is always called as it is.

    Args:
        *modules: the modules, in the order the input flows through them.
    """

    _backward_options = frozenset({"input_grad", "free_cache", "accumulate"})

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
        """Decide, from what the modules declare, which calls may reuse the tensor they get."""
        modules = self._modules
        # forward: module i gets what module i - 1 returned; backward: what module i + 1 did.
        self._forward_plan = [
            i > 0 and _declares(modules[i - 1], "_output_is_fresh")
            and _declares(module, "_forward_in_place")
            for i, module in enumerate(modules)
        ]  # fmt: skip
        self._backward_plan = [
            i + 1 < len(modules) and _declares(modules[i + 1], "_grad_is_fresh")
            and _declares(module, "_backward_in_place")
            for i, module in enumerate(modules)
        ]  # fmt: skip
        # (module, the module whose output it may compute in, or None), first to last.
        self._forward_steps = [
            (module, modules[i - 1] if self._forward_plan[i] else None)
            for i, module in enumerate(modules)
        ]
        self._backward_steps: dict[tuple[bool, bool, bool], list] = {}  # by backward's options

    def _plan_backward(self, free_cache: bool, input_grad: bool, accumulate: bool) -> list:
        """The backward steps for these options, last module first, made once and kept.

        Each is ``(module, giver, options)``: ``giver`` the module whose fresh gradient the module
        may mask in place (or None), ``options`` the keywords its backward declares and these
        options ask for (None for an object that is not a Module: called as it is).
        """
        modules = self._modules
        steps = []
        for index in range(len(modules) - 1, -1, -1):
            module = modules[index]
            if not isinstance(module, Module):
                steps.append((module, None, None))
                continue
            accepts = type(module)._backward_options
            options = {}
            if not (input_grad or index > 0) and "input_grad" in accepts:
                options["input_grad"] = False
            if free_cache and "free_cache" in accepts:
                options["free_cache"] = True
            if not accumulate and "accumulate" in accepts:
                options["accumulate"] = False
            giver = modules[index + 1] if self._backward_plan[index] else None
            steps.append((module, giver, options))
        self._backward_steps[free_cache, input_grad, accumulate] = steps
        return steps

    def forward(self, input: Tensor) -> Tensor:
        for module, giver in self._forward_steps:
            # A forward replaced on an instance (a wrapper may keep what it returns, or expect
            # its own code to run, which no class declaration can say) is called as it is.
            if (
                giver is not None
                and "forward" not in giver.__dict__
                and "forward" not in module.__dict__
            ):
                input = module._forward_owned(input)
            else:
                input = module.forward(input)
        return input

    def backward(
        self,
        grad_output: Tensor,
        *,
        free_cache: bool = False,
        input_grad: bool = True,
        accumulate: bool = True,
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
            accumulate: with ``False``, the modules that can (a ``Linear`` or a ``Sequential``)
                overwrite their parameter gradients instead of adding into them, as autograd sets
                the ``.grad`` that ``zero_grad`` set to ``None``; call it right after
                ``zero_grad``, as :func:`nnlite.training.train_step` does. Default: ``True``.
        """
        steps = self._backward_steps.get((free_cache, input_grad, accumulate))
        if steps is None:
            steps = self._plan_backward(free_cache, input_grad, accumulate)
        for module, giver, options in steps:
            if options is None:  # not a Module: nothing declared, called as it is
                grad_output = module.backward(grad_output)
                continue
            replaced = "backward" in module.__dict__  # a wrapper, as in forward
            if giver is not None and not replaced and "backward" not in giver.__dict__:
                grad_output = module._backward_owned(grad_output)
            elif options and not replaced:
                grad_output = module.backward(grad_output, **options)
            else:
                grad_output = module.backward(grad_output)
            if free_cache:
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
        if isinstance(module, Module) and any(inner is self for inner in module.modules()):
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


def _declares(module: object, attribute: str) -> bool:
    """Whether ``module``'s class declares ``attribute`` (see :class:`~nnlite.Module`)."""
    return isinstance(module, Module) and getattr(type(module), attribute)


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
