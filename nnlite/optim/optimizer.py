"""The base class of nnlite optimizers: (parameter, gradient) pairs in, state kept by index."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

# Options torch.optim keeps in its parameter groups that nnlite does not implement, with the values
# meaning "off". A torch state_dict carrying them at these values loads; any other value is refused.
_TORCH_ONLY_OPTIONS = {
    "maximize": (False,),
    "foreach": (None, False),
    "differentiable": (False,),
    "fused": (None, False),
    "capturable": (False,),
    "decoupled_weight_decay": (False,),
}


def _as_pairs(params: Iterable[tuple[Tensor, Tensor]], owner: str) -> list[tuple[Tensor, Tensor]]:
    """Materialise ``params`` and check that it holds (parameter, gradient) pairs of tensors."""
    if isinstance(params, Tensor):
        raise TypeError(
            f"{owner} expects an iterable of (parameter, gradient) pairs such as model.param(), "
            f"but got a single {torch.typename(params)}"
        )
    if isinstance(params, Mapping):
        raise TypeError(
            f"{owner} expects an iterable of (parameter, gradient) pairs such as model.param(), "
            f"but got a {type(params).__name__}; parameter groups are not supported"
        )
    pairs = list(params)
    if len(pairs) == 0:
        raise ValueError("optimizer got an empty parameter list")
    for i, pair in enumerate(pairs):
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(t, Tensor) for t in pair)
        ):
            raise TypeError(
                f"{owner} expects (parameter, gradient) pairs of tensors such as model.param(), "
                f"but item {i} is {_describe(pair)}"
            )
        param, grad = pair
        if param.requires_grad or grad.requires_grad:
            raise TypeError(
                f"{owner}: parameter {i} (or its gradient) requires grad, as a torch.nn.Parameter "
                f"does; nnlite updates plain tensors and never builds a graph. Pass an nnlite "
                f"module's model.param(), and load torch's values with model.load_state_dict"
            )
        if not param.is_floating_point():
            raise TypeError(
                f"{owner} can only optimize floating-point parameters, but parameter {i} has "
                f"dtype {param.dtype}"
            )
        if grad.shape != param.shape or grad.dtype != param.dtype or grad.device != param.device:
            raise ValueError(
                f"{owner}: the gradient of parameter {i} must match the parameter's shape, dtype "
                f"and device, but the parameter is {_describe(param)} and the gradient is "
                f"{_describe(grad)}"
            )
    first_index: dict[int, int] = {}
    for i, (param, _) in enumerate(pairs):
        if id(param) in first_index:
            raise ValueError(
                f"{owner}: parameter {i} is the same tensor as parameter {first_index[id(param)]}, "
                "so it would be updated twice per step; pass each parameter once"
            )
        first_index[id(param)] = i
    return [(param, grad) for param, grad in pairs]


# Where each parameter starts in the flat buffers, in bytes: torch's CPU allocator aligns every
# tensor to 64 bytes, and matrix products may round differently on differently aligned operands.
_ALIGNMENT = 64


class _FlatLayout:
    """Parameters and gradients as views of two 1-D buffers, each view 64-byte aligned.

    Elementwise updates then run once on :attr:`params` and :attr:`grads` instead of once per
    parameter, with the same bits (the padding between views is zero and stays zero). The layout
    holds while every parameter and gradient still points where it was put; :meth:`intact`
    checks that (``Module.to`` or an assignment to ``.data`` moves a tensor).
    """

    def __init__(self, params: list[Tensor], grads: list[Tensor]) -> None:
        self.spans = _spans(params)
        size = self.spans[-1][1]
        self.params = _buffer_at(params[0], size)
        self.grads = _buffer_at(grads[0], size)
        self._params, self._grads = params, grads
        self._param_pointers = list(map(Tensor.data_ptr, params))
        self._grad_pointers = list(map(Tensor.data_ptr, grads))

    def intact(self) -> bool:
        """Whether every parameter and gradient is still its view of the flat buffers."""
        return (
            self.grads_intact() and list(map(Tensor.data_ptr, self._params)) == self._param_pointers
        )

    def grads_intact(self) -> bool:
        """Whether every gradient is still its view of the flat gradient buffer."""
        return list(map(Tensor.data_ptr, self._grads)) == self._grad_pointers

    def views(self, flat: Tensor) -> list[Tensor]:
        """Split a buffer shaped like :attr:`params` into views shaped like the parameters."""
        return [flat[start:end].view(shape) for start, end, shape in self.spans]


def flatten_parameters(params: Iterable[tuple[Tensor, Tensor]]) -> None:
    r"""Move (parameter, gradient) pairs into two flat buffers, so optimizers step them at once.

    Each parameter becomes a view of one contiguous buffer and each gradient a view of another
    (every view 64-byte aligned, as torch allocates tensors, the padding zero), by swapping their
    ``.data`` as :meth:`nnlite.Module.to` does: the tensor objects, their values and the module
    holding them stay the same; their memory moves. An optimizer built on pairs laid out so then
    zeroes the gradients and updates all parameters with a handful of tensor operations instead
    of a handful per parameter, with the same bits. Its state tensors are views of flat buffers
    too. If a tensor moves afterwards (``model.to(torch.float64)``, an assignment to ``.data``),
    the optimizer notices and goes back to updating parameters one by one.

    Args:
        params (iterable): (parameter, gradient) pairs, e.g. ``model.param()``.

    Raises:
        ValueError: the tensors differ in dtype or device, are empty or non-contiguous, or share
            memory (views of another tensor), so they cannot be moved without changing what
            their owner sees.

    Example:
        >>> nnlite.optim.flatten_parameters(model.param())
        >>> optimizer = nnlite.optim.Adam(model.param())
    """
    pairs = _as_pairs(params, "flatten_parameters")
    param_list = [param for param, _ in pairs]
    grad_list = [grad for _, grad in pairs]
    if _flat_layout(param_list, grad_list) is not None:
        return
    problem = _unflattenable(param_list + grad_list)
    if problem is not None:
        raise ValueError(f"flatten_parameters cannot move the tensors: {problem}")
    spans = _spans(param_list)
    first = param_list[0]
    flat_params = first.new_zeros(spans[-1][1])
    flat_grads = first.new_zeros(spans[-1][1])
    for (start, end, shape), param, grad in zip(spans, param_list, grad_list, strict=True):
        param_view = flat_params[start:end].view(shape)
        grad_view = flat_grads[start:end].view(shape)
        param_view.copy_(param.detach())
        grad_view.copy_(grad.detach())
        param.data = param_view
        grad.data = grad_view


def _unflattenable(tensors: list[Tensor]) -> str | None:
    """Why ``tensors`` cannot each be moved into a flat buffer, or None if they can."""
    first = tensors[0]
    for tensor in tensors:
        if tensor.dtype != first.dtype or tensor.device != first.device:
            return (
                f"they mix {_describe(first)} and {_describe(tensor)}; convert the module to one "
                "dtype and device first"
            )
        if tensor.numel() == 0 or not tensor.is_contiguous():
            return f"{_describe(tensor)} is empty or non-contiguous"
    storages = {t.untyped_storage().data_ptr() for t in tensors}
    if len(storages) != len(tensors) or not all(
        t.storage_offset() == 0 and t.untyped_storage().nbytes() == t.numel() * t.element_size()
        for t in tensors
    ):
        return (
            "some of them share memory with other tensors (views), which would stop seeing them; "
            "pass tensors that own their memory"
        )
    return None


def _flat_layout(params: list[Tensor], grads: list[Tensor]) -> _FlatLayout | None:
    """The flat layout ``params`` and ``grads`` are in, or None if they are not in one.

    They are when :func:`flatten_parameters` put them there, or another layout exactly like it
    (one dtype and device, one buffer each, every view where :func:`_spans` puts it).
    """
    tensors = params + grads
    first = tensors[0]
    if not all(
        t.dtype == first.dtype and t.device == first.device and t.is_contiguous() and t.numel()
        for t in tensors
    ):
        return None
    if _laid_out(params) and _laid_out(grads):
        return _FlatLayout(params, grads)
    return None


def _spans(tensors: list[Tensor]) -> list[tuple[int, int, torch.Size]]:
    """Each tensor's (start, end, shape) in a flat buffer, every start 64-byte aligned."""
    step = max(1, _ALIGNMENT // tensors[0].element_size())
    spans = []
    start = 0
    for tensor in tensors:
        spans.append((start, start + tensor.numel(), tensor.shape))
        start = -(-(start + tensor.numel()) // step) * step
    return spans


def _laid_out(tensors: list[Tensor]) -> bool:
    """Whether ``tensors`` sit in one storage where :func:`_spans` puts them, aligned."""
    storage = tensors[0].untyped_storage().data_ptr()
    base = tensors[0].data_ptr()
    if base % _ALIGNMENT:
        return False
    size = tensors[0].element_size()
    return all(
        tensor.untyped_storage().data_ptr() == storage and tensor.data_ptr() == base + start * size
        for (start, _, _), tensor in zip(_spans(tensors), tensors, strict=True)
    )


def _buffer_at(first: Tensor, size: int) -> Tensor:
    """A 1-D tensor of ``size`` elements over ``first``'s memory, from ``first``'s start."""
    flat = torch.empty(0, dtype=first.dtype, device=first.device)
    return flat.set_(first.untyped_storage(), first.storage_offset(), (size,))


def _check_rate(
    owner: str, name: str, value: object, message: str, *, signed: bool = False
) -> None:
    """Refuse a hyper-parameter that is not a finite number (>= 0 unless ``signed``).

    ``message`` is torch's, for the values torch refuses too.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{owner}: {name} must be a float, got {value!r} of type {type(value).__name__}; "
            f"e.g. {owner}(model.param(), {name}=0.01)"
        )
    # Written so that nan fails: nan is neither >= 0 nor finite.
    if not ((signed or value >= 0.0) and math.isfinite(value)):
        raise ValueError(message)


def _scalar_dtype() -> torch.dtype:
    """The dtype torch.optim gives scalar state such as Adam's step: float64 only by default."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    if isinstance(value, (tuple, list)):
        kinds = ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of length {len(value)} ({kinds})"
    return f"a {type(value).__name__}"


class Optimizer:
    r"""Base class for nnlite optimizers.

    An optimizer holds ``(parameter, gradient)`` pairs, as :meth:`nnlite.Module.param` returns them,
    and updates each parameter IN PLACE from its gradient, so the module that owns the tensors
    sees the new values. There is one parameter group, ``param_groups[0]``: a dict holding the
    hyperparameters (``"lr"`` among them, which a learning-rate scheduler changes between steps)
    and, under ``"params"``, the parameter tensors. Per-parameter state (momentum buffers, moment
    estimates) lives in :attr:`state`, keyed by the parameter's index in the pair list, which is
    also how torch numbers parameters in the state_dict of torch's optimizers.

    Args:
        params (iterable): (parameter, gradient) pairs, e.g. ``model.param()``. It is read once.
        defaults (dict): the hyperparameters of the single parameter group.
    """

    def __init__(self, params: Iterable[tuple[Tensor, Tensor]], defaults: dict[str, Any]) -> None:
        self._check_hyperparameters(defaults)
        pairs = _as_pairs(params, type(self).__name__)
        self.defaults = defaults
        self._params = [param for param, _ in pairs]
        self._grads = [grad for _, grad in pairs]
        self.param_groups: list[dict[str, Any]] = [{"params": list(self._params), **defaults}]
        self.state: dict[int, dict[str, Tensor]] = {}
        self._flat = _flat_layout(self._params, self._grads)
        # For each state key kept flat: the buffer and the views of it that state[i][key] holds.
        self._flat_state: dict[str, tuple[Tensor, list[Tensor]]] = {}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} (", "Parameter Group 0"]
        for key in sorted(k for k in self.param_groups[0] if k != "params"):
            lines.append(f"    {key}: {self.param_groups[0][key]}")
        lines.append(")")
        return "\n".join(lines)

    def zero_grad(self) -> None:
        """Set every gradient to zero in place, so pairs taken earlier stay valid."""
        if self._flat is not None and self._flat.grads_intact():
            self._flat.grads.zero_()
            return
        for grad in self._grads:
            grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): a function that recomputes the loss and the gradients
                (forward, backward) and returns the loss; it is called before the update.
        """
        loss = closure() if closure is not None else None
        group = self.param_groups[0]
        if self._flat is not None and self._flat.intact() and self._flat_update(self._flat, group):
            return loss
        for index, (param, grad) in enumerate(zip(self._params, self._grads, strict=True)):
            self._update(index, param, grad, group)
        return loss

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        """Refuse hyper-parameters that would corrupt every parameter (torch's messages)."""

    def _required_state(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        """The keys every parameter's state must hold once it has any, for ``group``."""
        return ()

    def _update(self, index: int, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    def _flat_update(self, flat: _FlatLayout, group: dict[str, Any]) -> bool:
        """Update all parameters at once through ``flat``; return False to update one by one.

        Subclasses do the same operations as :meth:`_update` on the flat buffers, which gives the
        same bits: each element goes through the same elementwise operations.
        """
        return False

    def _flat_state_buffer(self, key: str) -> Tensor | None:
        """The flat buffer whose views are ``state[i][key]`` for every parameter ``i``.

        State tensors that are not views of one buffer yet (loaded, or created one by one) are
        copied into a new buffer and replaced by its views. Returns None when some parameter has
        no such state, or the tensors cannot share a buffer: the step then goes one by one.
        """
        known = self._flat_state.get(key)
        if known is not None:
            flat, views = known
            if all(self.state.get(index, {}).get(key) is view for index, view in enumerate(views)):
                return flat
        values = [self.state.get(index, {}).get(key) for index in range(len(self._params))]
        if not all(isinstance(value, Tensor) for value in values):
            return None
        first = values[0]
        if key == "step":
            # NOTE: one step count for all parameters, as the float computed once per step is.
            if not all(
                v.dim() == 0 and v.dtype == first.dtype and v.device == first.device for v in values
            ):
                return None
            flat = torch.stack([v.detach() for v in values])
            if not bool((flat == flat[0]).all()):
                return None
            self._keep_flat_state(key, flat, list(flat.unbind()))
            return flat
        params = self._flat.params if self._flat is not None else None
        if params is None or not all(
            v.shape == p.shape and v.dtype == params.dtype and v.device == params.device
            for v, p in zip(values, self._params, strict=True)
        ):
            return None
        flat = torch.zeros_like(params)
        views = self._flat.views(flat)
        for view, value in zip(views, values, strict=True):
            view.copy_(value.detach())
        self._keep_flat_state(key, flat, views)
        return flat

    def _keep_flat_state(self, key: str, flat: Tensor, views: list[Tensor]) -> None:
        """Make ``views`` of ``flat`` the parameters' ``state[i][key]``, in parameter order."""
        for index, view in enumerate(views):
            self.state.setdefault(index, {})[key] = view
        self._flat_state[key] = (flat, views)

    def state_dict(self) -> dict[str, Any]:
        """Return the optimizer state in the shape of torch's :meth:`Optimizer.state_dict`.

        ``{"state": {index: {...}}, "param_groups": [{..., "params": [0, 1, ...]}]}``. As in torch,
        the state tensors are the optimizer's own, not copies.
        """
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self._params)))
        return {
            "state": {index: dict(state) for index, state in self.state.items()},
            "param_groups": [group],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state returned by :meth:`state_dict` (nnlite's or a torch.optim twin's).

        Hyperparameters are taken from the saved group. Moment buffers are copied to each
        parameter's dtype and device (unlike torch, never shared with ``state_dict``); Adam's
        ``step`` keeps its saved dtype and device, as torch keeps it.

        Raises:
            ValueError: the number of groups or parameters differs, a hyperparameter is missing,
                or the saved group enables an option nnlite does not implement.
        """
        name = type(self).__name__
        if not (
            isinstance(state_dict, Mapping)
            and isinstance(state_dict.get("state"), Mapping)
            and isinstance(state_dict.get("param_groups"), (list, tuple))
        ):
            raise TypeError(
                f"{name}.load_state_dict expects a dict with 'state' (a dict) and 'param_groups' "
                f"(a list), as optimizer.state_dict() returns, got {_describe(state_dict)}"
                + (
                    f" with keys {sorted(map(str, state_dict))}"
                    if isinstance(state_dict, Mapping)
                    else ""
                )
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != 1:
            raise ValueError("loaded state dict has a different number of parameter groups")
        saved = dict(saved_groups[0])
        if "params" not in saved:
            raise ValueError("loaded state dict's parameter group lacks 'params' (the indices)")
        saved_ids = list(saved.pop("params"))
        if len(saved_ids) != len(self._params):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                f"optimizer's group ({len(saved_ids)} saved, {len(self._params)} here)"
            )
        for key, off_values in _TORCH_ONLY_OPTIONS.items():
            if key in saved and key not in self.defaults:
                value = saved.pop(key)
                if not any(value is off for off in off_values):
                    raise ValueError(
                        f"cannot load a state with {key}={value!r}: nnlite's {name} does not "
                        f"implement {key}; save it with {key}={off_values[0]!r}"
                    )
        missing = [key for key in self.defaults if key not in saved]
        if missing:
            raise ValueError(f"loaded state dict lacks the {name} hyperparameters {missing}")
        self._check_hyperparameters(saved)
        required = self._required_state(saved)
        index_of = {saved_id: index for index, saved_id in enumerate(saved_ids)}
        state: dict[int, dict[str, Tensor]] = {}
        for saved_id, saved_state in state_dict["state"].items():
            if saved_id not in index_of:
                raise ValueError(f"loaded state dict has state for unknown parameter {saved_id!r}")
            index = index_of[saved_id]
            param = self._params[index]
            lacking = [key for key in required if key not in saved_state]
            if lacking:
                raise ValueError(
                    f"loaded state dict lacks {lacking} in the state of parameter {index} (it "
                    f"holds {sorted(saved_state)}); {name} needs {list(required)} once a "
                    f"parameter has state: load a state saved by the same optimizer"
                )
            for key, value in saved_state.items():
                if key == "step":
                    if isinstance(value, Tensor) and value.numel() != 1:
                        raise ValueError(
                            f"loaded state dict has a step of shape {tuple(value.shape)} for "
                            f"parameter {index}; a step count is one number"
                        )
                elif isinstance(value, Tensor) and value.shape != param.shape:
                    raise ValueError(
                        f"loaded state dict has {key} of shape {tuple(value.shape)} for "
                        f"parameter {index} of shape {tuple(param.shape)}; it was saved for "
                        f"another model (or another parameter order)"
                    )
            state[index] = {
                key: _cast_state(key, value, param) for key, value in saved_state.items()
            }
        self.param_groups = [{"params": list(self._params), **saved}]
        self.state = state
        self._flat_state = {}
        if self._flat is not None and self._flat.intact():
            for key in {key for values in state.values() for key in values}:
                self._flat_state_buffer(key)


def _cast_state(key: str, value: Any, param: Tensor) -> Any:
    if key == "step":
        # NOTE: torch keeps Adam's step count as saved: a CPU scalar tensor of the default dtype.
        if isinstance(value, Tensor):
            return value.detach().clone()
        return torch.tensor(float(value), dtype=_scalar_dtype())
    if not isinstance(value, Tensor):
        return value
    return value.detach().to(dtype=param.dtype, device=param.device, copy=True)
