"""Flat buffers: every parameter a view of one buffer, every gradient a view of another.

An optimizer then zeroes the gradients and updates all parameters with a handful of tensor
operations instead of a handful per parameter, with the same bits (the updates are elementwise,
and the padding between views is zero and stays zero).

The one invariant: a :class:`FlatLayout` is in force while every parameter and gradient is still
the view of the buffers it was made (:meth:`FlatLayout.in_force`). ``Module.to`` or an
assignment to ``.data`` ends it, unseen by the optimizer, so the optimizer asks at the start of
each ``zero_grad`` and ``step`` (a comparison of addresses, about 1 us for the seeds' network)
and steps the parameters one by one once it no longer holds. Everything else here may assume it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from nnlite.optim._pairs import as_pairs, describe

# Where each parameter starts in the flat buffers, in bytes: torch's CPU allocator aligns every
# tensor to 64 bytes, and matrix products may round differently on differently aligned operands.
_ALIGNMENT = 64


class FlatLayout:
    """Parameters and gradients as views of two 1-D buffers, each view 64-byte aligned.

    Elementwise updates then run once on :attr:`params` and :attr:`grads` instead of once per
    parameter, with the same bits (the padding between views is zero and stays zero). The layout
    holds while every parameter and gradient still points where it was put (the module's
    invariant); :meth:`in_force` checks that.
    """

    def __init__(self, params: list[Tensor], grads: list[Tensor]) -> None:
        self.spans = _spans(params)
        size = self.spans[-1][1]
        self.params = _buffer_at(params[0], size)
        self.grads = _buffer_at(grads[0], size)
        self._params, self._grads = params, grads
        self._state: dict[str, tuple[Tensor, list[Tensor]]] = {}
        self._tensors = params + grads
        self._pointers = list(map(Tensor.data_ptr, self._tensors))
        self._grad_pointers = self._pointers[len(params) :]

    def in_force(self) -> bool:
        """Whether every parameter and gradient is still its view of the flat buffers."""
        return list(map(Tensor.data_ptr, self._tensors)) == self._pointers

    def grads_in_force(self) -> bool:
        """Whether every gradient is still its view of the flat gradient buffer."""
        return list(map(Tensor.data_ptr, self._grads)) == self._grad_pointers

    def views(self, flat: Tensor) -> list[Tensor]:
        """Split a buffer shaped like :attr:`params` into views shaped like the parameters."""
        return [flat[start:end].view(shape) for start, end, shape in self.spans]

    @classmethod
    def find(cls, params: list[Tensor], grads: list[Tensor]) -> FlatLayout | None:
        """The layout ``params`` and ``grads`` are in, or None if they are not in one.

        They are when :func:`flatten_parameters` put them there, or another layout exactly like
        it (one dtype and device, one buffer each, every view where :func:`_spans` puts it).
        """
        tensors = params + grads
        first = tensors[0]
        if not all(
            t.dtype == first.dtype and t.device == first.device and t.is_contiguous() and t.numel()
            for t in tensors
        ):
            return None
        if _laid_out(params) and _laid_out(grads):
            return cls(params, grads)
        return None

    # ---------------------------------------------------------------- optimizer state, kept flat
    def state_buffer(self, state: dict[int, dict[str, Tensor]], key: str) -> Tensor | None:
        """The flat buffer whose views are ``state[i][key]`` for every parameter ``i``.

        State tensors that are not views of one buffer yet (loaded, or created one by one) are
        copied into a new buffer and replaced by its views. Returns None when some parameter has
        no such state, or the tensors cannot share a buffer: the step then goes one by one.
        """
        known = self._state.get(key)
        if known is not None:
            buffer, views = known
            if all(state.get(index, {}).get(key) is view for index, view in enumerate(views)):
                return buffer
        values = [state.get(index, {}).get(key) for index in range(len(self.spans))]
        if not all(isinstance(value, Tensor) for value in values):
            return None
        first = values[0]
        if key == "step":
            # NOTE: one step count for all parameters, as the float computed once per step is.
            if not all(
                v.dim() == 0 and v.dtype == first.dtype and v.device == first.device for v in values
            ):
                return None
            buffer = torch.stack([v.detach() for v in values])
            if not bool((buffer == buffer[0]).all()):
                return None
            self.keep(state, key, buffer, list(buffer.unbind()))
            return buffer
        params = self.params
        if not all(
            v.shape == span[2] and v.dtype == params.dtype and v.device == params.device
            for v, span in zip(values, self.spans, strict=True)
        ):
            return None
        buffer = torch.zeros_like(params)
        views = self.views(buffer)
        for view, value in zip(views, values, strict=True):
            view.copy_(value.detach())
        self.keep(state, key, buffer, views)
        return buffer

    def new_state_buffer(self, state: dict[int, dict[str, Tensor]], key: str) -> Tensor:
        """A zero buffer shaped like the parameters, whose views become ``state[i][key]``."""
        buffer = torch.zeros_like(self.params)
        self.keep(state, key, buffer, self.views(buffer))
        return buffer

    def keep(
        self, state: dict[int, dict[str, Tensor]], key: str, buffer: Tensor, views: list[Tensor]
    ) -> None:
        """Make ``views`` of ``buffer`` the parameters' ``state[i][key]``, in parameter order."""
        for index, view in enumerate(views):
            state.setdefault(index, {})[key] = view
        self._state[key] = (buffer, views)

    def forget_state(self) -> None:
        """Drop the state buffers (the optimizer's state was replaced)."""
        self._state = {}


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
    pairs = as_pairs(params, "flatten_parameters")
    param_list = [param for param, _ in pairs]
    grad_list = [grad for _, grad in pairs]
    if FlatLayout.find(param_list, grad_list) is not None:
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
                f"they mix {describe(first)} and {describe(tensor)}; convert the module to one "
                "dtype and device first"
            )
        if tensor.numel() == 0 or not tensor.is_contiguous():
            return f"{describe(tensor)} is empty or non-contiguous"
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
