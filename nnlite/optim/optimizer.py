"""The base class of nnlite optimizers: (parameter, gradient) pairs in, state kept by index."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from nnlite.optim._pairs import as_pairs, describe
from nnlite.optim.flat import FlatLayout

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
        pairs = as_pairs(params, type(self).__name__)
        self.defaults = defaults
        self._params = [param for param, _ in pairs]
        self._grads = [grad for _, grad in pairs]
        self.param_groups: list[dict[str, Any]] = [{"params": list(self._params), **defaults}]
        self.state: dict[int, dict[str, Tensor]] = {}
        self._flat = FlatLayout.find(self._params, self._grads)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} (", "Parameter Group 0"]
        for key in sorted(k for k in self.param_groups[0] if k != "params"):
            lines.append(f"    {key}: {self.param_groups[0][key]}")
        lines.append(")")
        return "\n".join(lines)

    def zero_grad(self) -> None:
        """Set every gradient to zero in place, so pairs taken earlier stay valid."""
        if self._flat is not None and self._flat.grads_in_force():
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
        flat = self._flat
        if flat is not None and flat.in_force() and self._flat_update(flat, group):
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

    def _flat_update(self, flat: FlatLayout, group: dict[str, Any]) -> bool:
        """Update all parameters at once through ``flat``; return False to update one by one.

        Subclasses do the same operations as :meth:`_update` on the flat buffers, which gives the
        same bits: each element goes through the same elementwise operations.
        """
        return False

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
                f"(a list), as optimizer.state_dict() returns, got {describe(state_dict)}"
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
        if self._flat is not None:
            self._flat.forget_state()
            if self._flat.in_force():
                for key in {key for values in state.values() for key in values}:
                    self._flat.state_buffer(state, key)


def _cast_state(key: str, value: Any, param: Tensor) -> Any:
    if key == "step":
        # NOTE: torch keeps Adam's step count as saved: a CPU scalar tensor of the default dtype.
        if isinstance(value, Tensor):
            return value.detach().clone()
        return torch.tensor(float(value), dtype=_scalar_dtype())
    if not isinstance(value, Tensor):
        return value
    return value.detach().to(dtype=param.dtype, device=param.device, copy=True)
