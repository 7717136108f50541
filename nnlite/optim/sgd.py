"""Stochastic gradient descent, optionally with momentum, step for step as torch's optim.SGD."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import Tensor

from nnlite.optim.flat import FlatLayout
from nnlite.optim.optimizer import Optimizer, _check_rate


class SGD(Optimizer):
    r"""Implements stochastic gradient descent (optionally with momentum).

    With learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau` and weight
    decay :math:`\lambda`, each step updates every parameter :math:`\theta` from its gradient
    :math:`g` as

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1}
                && \text{if } \lambda \neq 0 \\
            b_t &\leftarrow \begin{cases} g_t & t = 1 \\
                \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases}
                && \text{if } \mu \neq 0 \\
            g_t &\leftarrow \begin{cases} g_t + \mu b_t & \text{nesterov} \\
                b_t & \text{otherwise} \end{cases}
                && \text{if } \mu \neq 0 \\
            \theta_t &\leftarrow \theta_{t-1} - \gamma g_t
        \end{aligned}

    performing the operations of torch's single-tensor implementation in the same order, so the
    parameters are bit-identical to torch.optim.SGD's. The momentum buffer :math:`b` is kept in
    ``state[i]["momentum_buffer"]``; the gradient tensors are never modified.

    Args:
        params (iterable): (parameter, gradient) pairs, e.g. ``model.param()``.
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-3, as torch 2.x).
        momentum (float, optional): momentum factor :math:`\mu` (default: 0).
        dampening (float, optional): dampening for momentum :math:`\tau` (default: 0).
        weight_decay (float, optional): L2 penalty :math:`\lambda` (default: 0).
        nesterov (bool, optional): enables Nesterov momentum (default: False).

    Example:
        >>> optimizer = nnlite.optim.SGD(model.param(), lr=0.1, momentum=0.9)
        >>> optimizer.zero_grad()
        >>> criterion(model(x), t)
        >>> model.backward(criterion.backward())
        >>> optimizer.step()
    """

    def __init__(
        self,
        params: Iterable[tuple[Tensor, Tensor]],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        _check_rate("SGD", "lr", lr, f"Invalid learning rate: {lr}")
        _check_rate("SGD", "momentum", momentum, f"Invalid momentum value: {momentum}")
        _check_rate(
            "SGD", "dampening", dampening, f"Invalid dampening value: {dampening}", signed=True
        )
        _check_rate(
            "SGD", "weight_decay", weight_decay, f"Invalid weight_decay value: {weight_decay}"
        )
        if not isinstance(nesterov, bool):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, index: int, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        buf = self.state.get(index, {}).get("momentum_buffer") if group["momentum"] != 0 else None

        def keep(new: Tensor) -> None:
            self.state.setdefault(index, {})["momentum_buffer"] = new

        self._sgd(param, grad, buf, keep, group)

    def _flat_update(self, flat: FlatLayout, group: dict[str, Any]) -> bool:
        if group["momentum"] == 0:
            self._sgd(flat.params, flat.grads, None, None, group)
            return True
        buf = flat.state_buffer(self.state, "momentum_buffer")
        if buf is None and any(
            state.get("momentum_buffer") is not None for state in self.state.values()
        ):
            return False

        def keep(new: Tensor) -> None:
            flat.keep(self.state, "momentum_buffer", new, flat.views(new))

        self._sgd(flat.params, flat.grads, buf, keep, group)
        return True

    @staticmethod
    def _sgd(
        param: Tensor,
        grad: Tensor,
        buf: Tensor | None,
        keep: Callable[[Tensor], None] | None,
        group: dict[str, Any],
    ) -> None:
        """One step on ``param`` (one parameter, or the flat buffer of all of them).

        ``buf`` is the momentum buffer, None before the first step, when ``keep`` stores the new
        one (both None without momentum).
        """
        # NOTE: the operations and their order are torch.optim.sgd._single_tensor_sgd's, for
        # bit-identical parameters; elementwise, so the flat buffers give the same bits too.
        weight_decay = group["weight_decay"]
        momentum = group["momentum"]
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        if momentum != 0:
            if buf is None:
                buf = grad.clone()
                keep(buf)
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            if group["nesterov"]:
                grad = grad.add(buf, alpha=momentum)
            else:
                grad = buf
        param.add_(grad, alpha=-group["lr"])
