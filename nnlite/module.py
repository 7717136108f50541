"""The base class every nnlite layer and loss derives from, and the contract they share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not match, as torch reports it."""

    missing_keys: list[str]
    unexpected_keys: list[str]


_CONVENTIONAL_CACHE_ATTRS = ("_input", "_output", "_mask", "_target", "_diff", "_log_probs")
_DECLARATIONS = {
    "forward": (("_output_is_fresh", False), ("_forward_in_place", False), ("_cache_attrs", None)),
    "backward": (
        ("_grad_is_fresh", False),
        ("_backward_in_place", False),
        ("_backward_options", frozenset()),
    ),
}
"""The class attributes that describe each method, and their defaults."""


class Module:
    r"""Base class for all nnlite modules: layers, containers and losses.

    The contract, stated once for every subclass:

    * ``forward(*input)`` computes the output from fresh tensors, never mutating its input, and
      caches what ``backward`` needs under names that say what they are (``self._input``,
      ``self._output``, ``self._mask``).
    * ``backward(*gradwrtoutput)`` takes the gradient of the loss with respect to the output of the
      last ``forward`` and returns the gradient with respect to its input. It never mutates the
      gradient it receives nor the tensor ``forward`` returned. It ADDS the gradient of every
      parameter into that parameter's gradient tensor, so gradients accumulate across calls until
      :meth:`zero_grad`.
    * ``param()`` returns ``(parameter, gradient)`` pairs in the order
      ``torch.nn.Module.parameters()`` gives for the same network. The tensors are the module's
      own: an optimizer built on them updates the module, and :meth:`zero_grad` and :meth:`to`
      work in place, so pairs taken earlier stay valid.

    A subclass lists the attribute names of its parameters in ``_param_names``; the gradient of
    parameter ``name`` lives in the attribute ``name + "_grad"``. A parameter set to ``None`` (a
    ``Linear`` without bias) is skipped. Containers override :meth:`named_children`.

    A subclass also declares, in class attributes, what a container may do with the tensors it
    hands over (all ``False`` by default), so that :class:`~nnlite.Sequential` reads them and
    stays a plain loop:

    * ``_output_is_fresh``: ``forward`` returns a new tensor that nothing else holds, the module
      included; the next module may compute in it.
    * ``_grad_is_fresh``: the same for what ``backward`` returns.
    * ``_forward_in_place``: the module has ``_forward_owned(input)``, its ``forward`` computed
      in the memory of an input handed over to it.
    * ``_backward_in_place``: the module has ``_backward_owned(grad)``, likewise for ``backward``.
    * ``_backward_options``: the keyword options its ``backward`` accepts (``"input_grad"``,
      ``"free_cache"``, ``"accumulate"``; see :meth:`nnlite.Sequential.backward`).

    A declaration describes the methods of the class that makes it: a subclass that overrides
    ``forward`` (or ``backward``) and does not declare again gets the defaults for that method,
    and its cache (``_cache_attrs``) becomes the conventional names it may use.

    nnlite never builds an autograd graph: every computation is a plain tensor operation, and the
    results are the same whether autograd is globally on or off.
    """

    _param_names: tuple[str, ...] = ()
    _cache_attrs: tuple[str, ...] | None = None
    """The attributes holding what ``forward`` caches for ``backward``. ``None``, for a subclass
    that does not say: whichever of the conventional names (``_input``, ``_output``, ...) it has."""
    _output_is_fresh = False
    _grad_is_fresh = False
    _forward_in_place = False
    _backward_in_place = False
    _backward_options: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # What a base declared about its forward or backward says nothing of an override.
        declared = cls.__dict__
        for method, attributes in _DECLARATIONS.items():
            if method in declared:
                for attribute, default in attributes:
                    if attribute not in declared:
                        setattr(cls, attribute, default)

    def __init__(self) -> None:
        self.training = True

    # ------------------------------------------------------------------------------------- protocol
    def forward(self, *input: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(*input)")

    def backward(self, *gradwrtoutput: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement backward(*gradwrtoutput)")

    def __call__(self, *input: Tensor) -> Tensor:
        return self.forward(*input)

    def param(self) -> list[tuple[Tensor, Tensor]]:
        """Return the ``(parameter, gradient)`` pairs of this module and its children."""
        return [(p, g) for _, p, g in self.named_param()]

    def named_param(self, prefix: str = "") -> list[tuple[str, Tensor, Tensor]]:
        """Return ``(name, parameter, gradient)`` triples, names as in torch's ``state_dict``."""
        triples = [(prefix + name, p, g) for name, p, g in self._own_params()]
        for child_name, child in self.named_children():
            triples.extend(child.named_param(f"{prefix}{child_name}."))
        return triples

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero, in place."""
        for _, _, grad in self.named_param():
            grad.zero_()

    # ------------------------------------------------------------------------------------ structure
    def named_children(self) -> Iterator[tuple[str, Module]]:
        return iter(())

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator[Module]:
        """Yield this module and, depth first, every module below it."""
        yield self
        for child in self.children():
            yield from child.modules()

    def train(self, mode: bool = True) -> Module:
        """Put this module and its children in training mode (``mode=True``) or evaluation mode."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Put this module and its children in evaluation mode: ``train(False)``."""
        return self.train(False)

    # ---------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Tensor]:
        """Return the parameters by torch.nn's keys (``0.weight``, ``0.bias``, ...).

        As in torch, the values share storage with the module's parameters: clone them to keep a
        snapshot that later training will not change.
        """
        return {name: p for name, p, _ in self.named_param()}

    def load_state_dict(
        self, state_dict: Mapping[str, Tensor], strict: bool = True
    ) -> IncompatibleKeys:
        """Copy parameters from ``state_dict`` (torch.nn's keys) into this module, in place.

        Values are converted to each parameter's dtype and device. With ``strict=True`` any missing
        or unexpected key raises; a shape mismatch always raises, naming the key and both shapes.
        Nothing is copied unless every key passes.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}."
            )
        own = {name: p for name, p, _ in self.named_param()}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                keys = ", ".join(f'"{k}"' for k in unexpected)
                errors.append(f"Unexpected key(s) in state_dict: {keys}. ")
            if missing:
                keys = ", ".join(f'"{k}"' for k in missing)
                errors.append(f"Missing key(s) in state_dict: {keys}. ")
        converted = []
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            if not isinstance(value, Tensor):
                errors.append(
                    f'While copying the parameter named "{name}", expected a Tensor, '
                    f"got {type(value).__name__}. "
                )
            elif value.shape != param.shape:
                errors.append(
                    f"size mismatch for {name}: copying a param with shape {value.shape} from "
                    f"checkpoint, the shape in current model is {param.shape}."
                )
            elif value.is_complex() or value.dtype == torch.bool:
                errors.append(
                    f'While copying the parameter named "{name}", expected real numbers, got '
                    f"a {value.dtype} tensor; convert it with .float() first. "
                )
            else:
                try:
                    # detach: a torch Parameter copied as it is would make this one a graph node.
                    converted.append(
                        (param, value.detach().to(dtype=param.dtype, device=param.device))
                    )
                except (RuntimeError, NotImplementedError) as error:
                    errors.append(f'While copying the parameter named "{name}": {error} ')
        if errors:
            details = "\n\t".join(errors)
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t{details}"
            )
        # Every value is converted before the first copy: a failure leaves the module unchanged.
        for param, value in converted:
            param.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Convert parameters and gradients in place, as ``Tensor.to`` takes dtype and device.

        The tensor objects are kept (their data is swapped), so pairs from :meth:`param` held by an
        optimizer see the conversion. Cached forward state is dropped. Only floating-point dtypes
        are accepted, as in torch.nn; nothing changes if a tensor cannot be converted.
        """
        dtypes = [a for a in (*args, kwargs.get("dtype")) if isinstance(a, torch.dtype)]
        dtypes += [a.dtype for a in args if isinstance(a, Tensor)]
        for dtype in dtypes:
            if not dtype.is_floating_point:
                raise TypeError(
                    f"nn.Module.to only accepts floating point dtypes, but got desired "
                    f"dtype={dtype}; nnlite computes in floating point, e.g. "
                    f"model.to(torch.float64)"
                )
        tensors = [
            t for module in self.modules() for _, p, g in module._own_params() for t in (p, g)
        ]
        converted = [t.data.to(*args, **kwargs) for t in tensors]
        done: list[tuple[Tensor, Tensor]] = []
        try:
            for tensor, new in zip(tensors, converted, strict=True):
                old, tensor.data = tensor.data, new
                done.append((tensor, old))
        except RuntimeError as error:
            for tensor, old in done:
                tensor.data = old
            raise RuntimeError(
                f"{type(self).__name__}.to cannot convert its tensors in place ({error}); build "
                f"the module there instead, e.g. Linear(2, 25, device=..., dtype=...)"
            ) from error
        for module in self.modules():
            module._clear_cache()
        return self

    def double(self) -> Module:
        return self.to(torch.float64)

    def float(self) -> Module:
        return self.to(torch.float32)

    # ----------------------------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = self.extra_repr().split("\n") if self.extra_repr() else []
        for name, child in self.named_children():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        name = type(self).__name__
        if not lines:
            return f"{name}()"
        if len(lines) == 1 and not list(self.named_children()):
            return f"{name}({lines[0]})"
        body = "\n  ".join(lines)
        return f"{name}(\n  {body}\n)"

    # -------------------------------------------------------------------------------------- helpers
    def _own_params(self) -> Iterator[tuple[str, Tensor, Tensor]]:
        for name in self._param_names:
            p = getattr(self, name)
            if p is not None:
                yield name, p, getattr(self, name + "_grad")

    def _clear_cache(self) -> None:
        """Drop what ``forward`` cached: the attributes in ``_cache_attrs`` become ``None``."""
        attrs = self._cache_attrs
        if attrs is None:
            attrs = tuple(attr for attr in _CONVENTIONAL_CACHE_ATTRS if hasattr(self, attr))
        for attr in attrs:
            setattr(self, attr, None)

    def _saved(self, value: Tensor | None) -> Tensor:
        """Return a tensor cached by ``forward``, or fail clearly if ``forward`` has not run."""
        if value is None:
            raise RuntimeError(
                f"{self!r}: backward() called before forward(), or after a backward that freed "
                f"the forward cache (Sequential.backward(..., free_cache=True)); run forward first"
            )
        return value

    def _check_input(self, input: Any, name: str = "input") -> Tensor:
        """Reject non-tensors and non-floating tensors, naming the module and the value.

        Returns the tensor, detached from autograd if it requires a gradient: nnlite never builds
        a graph, whatever it is given (one would grow with every step).
        """
        if not isinstance(input, Tensor):
            raise TypeError(
                f"{self!r}.forward expected a torch.Tensor as {name}, got {type(input).__name__}"
            )
        if not input.is_floating_point():
            raise TypeError(
                f"{self!r}.forward expected a floating-point {name}, got dtype {input.dtype}; "
                f"convert it with .float() or .double()"
            )
        return input.detach() if input.requires_grad else input

    def _check_grad(self, grad: Any, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """Reject an upstream gradient whose type, shape or dtype does not match the output's.

        Returns the gradient, detached from autograd if it requires one (see :meth:`_check_input`).
        """
        if not isinstance(grad, Tensor):
            raise TypeError(
                f"{self!r}.backward expected a torch.Tensor gradient, got {type(grad).__name__}"
            )
        if grad.shape != shape:
            raise ValueError(
                f"{self!r}.backward expected a gradient of the output's shape {tuple(shape)}, "
                f"got shape {tuple(grad.shape)}"
            )
        if grad.dtype != dtype:
            raise TypeError(
                f"{self!r}.backward expected a gradient of dtype {dtype} (the output's), "
                f"got {grad.dtype}"
            )
        return grad.detach() if grad.requires_grad else grad
