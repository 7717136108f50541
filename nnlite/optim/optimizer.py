"""The base class of nnlite optimizers: (parameter, gradient) pairs in, state kept by index."""

from __future__ import annotations

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
    also how torch numbers parameters in :meth:`torch.optim.Optimizer.state_dict`.

    Args:
        params (iterable): (parameter, gradient) pairs, e.g. ``model.param()``. It is read once.
        defaults (dict): the hyperparameters of the single parameter group.
    """

    def __init__(self, params: Iterable[tuple[Tensor, Tensor]], defaults: dict[str, Any]) -> None:
        pairs = _as_pairs(params, type(self).__name__)
        self.defaults = defaults
        self._params = [param for param, _ in pairs]
        self._grads = [grad for _, grad in pairs]
        self.param_groups: list[dict[str, Any]] = [{"params": list(self._params), **defaults}]
        self.state: dict[int, dict[str, Tensor]] = {}

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} (", "Parameter Group 0"]
        for key in sorted(k for k in self.param_groups[0] if k != "params"):
            lines.append(f"    {key}: {self.param_groups[0][key]}")
        lines.append(")")
        return "\n".join(lines)

    def zero_grad(self) -> None:
        """Set every gradient to zero in place, so pairs taken earlier stay valid."""
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
        for index, (param, grad) in enumerate(zip(self._params, self._grads, strict=True)):
            self._update(index, param, grad, group)
        return loss

    def _update(self, index: int, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

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
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != 1:
            raise ValueError("loaded state dict has a different number of parameter groups")
        saved = dict(saved_groups[0])
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
        index_of = {saved_id: index for index, saved_id in enumerate(saved_ids)}
        state: dict[int, dict[str, Tensor]] = {}
        for saved_id, saved_state in state_dict["state"].items():
            if saved_id not in index_of:
                raise ValueError(f"loaded state dict has state for unknown parameter {saved_id!r}")
            param = self._params[index_of[saved_id]]
            state[index_of[saved_id]] = {
                key: _cast_state(key, value, param) for key, value in saved_state.items()
            }
        self.param_groups = [{"params": list(self._params), **saved}]
        self.state = state


def _cast_state(key: str, value: Any, param: Tensor) -> Any:
    if key == "step":
        # NOTE: torch keeps Adam's step count as saved: a CPU scalar tensor of the default dtype.
        if isinstance(value, Tensor):
            return value.clone()
        return torch.tensor(float(value), dtype=_scalar_dtype())
    if not isinstance(value, Tensor):
        return value
    return value.to(dtype=param.dtype, device=param.device, copy=True)
