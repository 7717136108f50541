"""Adam (and AMSGrad), step for step as torch's optim.Adam."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from nnlite.optim.flat import FlatLayout
from nnlite.optim.optimizer import Optimizer, _check_rate, _scalar_dtype


class Adam(Optimizer):
    r"""Implements the Adam algorithm (Kingma & Ba, 2014), with the AMSGrad variant.

    With learning rate :math:`\gamma`, betas :math:`(\beta_1, \beta_2)`, epsilon :math:`\epsilon`
    and weight decay :math:`\lambda`, step :math:`t` updates every parameter :math:`\theta` from
    its gradient :math:`g` as

    .. math::
        \begin{aligned}
            g_t &\leftarrow g_t + \lambda \theta_{t-1} && \text{if } \lambda \neq 0 \\
            m_t &\leftarrow m_{t-1} + (1 - \beta_1)(g_t - m_{t-1}) \\
            v_t &\leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
            \hat{v}_t &\leftarrow \max(\hat{v}_{t-1}, v_t) \text{ and } v_t \leftarrow \hat{v}_t
                && \text{if amsgrad} \\
            \theta_t &\leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}
                \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}
        \end{aligned}

    with :math:`m_0 = v_0 = \hat{v}_0 = 0`, performing the operations of torch's single-tensor
    implementation in the same order (the first moment by ``lerp_``, the bias corrections in
    Python floats), so the parameters are bit-identical to torch's optim.Adam. The state of
    parameter ``i`` is ``state[i]``: ``"step"`` (a CPU scalar tensor of the default float dtype,
    as torch keeps it), ``"exp_avg"`` (:math:`m`), ``"exp_avg_sq"`` (:math:`v`) and, with
    AMSGrad, ``"max_exp_avg_sq"`` (:math:`\hat{v}`). The gradient tensors are never modified.

    Args:
        params (iterable): (parameter, gradient) pairs, e.g. ``model.param()``.
        lr (float, optional): learning rate :math:`\gamma` (default: 1e-3).
        betas (tuple[float, float], optional): coefficients of the running averages of the
            gradient and of its square (default: (0.9, 0.999)).
        eps (float, optional): term added to the denominator for numerical stability
            (default: 1e-8).
        weight_decay (float, optional): L2 penalty :math:`\lambda` (default: 0).
        amsgrad (bool, optional): use the AMSGrad variant (default: False).
    """

    def __init__(
        self,
        params: Iterable[tuple[Tensor, Tensor]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
        }
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: Mapping[str, Any]) -> None:
        lr, betas, eps, weight_decay = (
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
        )
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(
                f"betas must be a pair (beta1, beta2), e.g. (0.9, 0.999), got {betas!r}"
            )
        _check_rate("Adam", "lr", lr, f"Invalid learning rate: {lr}")
        _check_rate("Adam", "eps", eps, f"Invalid epsilon value: {eps}")
        for index, beta in enumerate(betas):
            _check_rate("Adam", "betas", beta, f"Invalid beta parameter at index {index}: {beta}")
            if not beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
        _check_rate(
            "Adam", "weight_decay", weight_decay, f"Invalid weight_decay value: {weight_decay}"
        )
        if not all(isinstance(beta, float) for beta in betas):
            raise ValueError(
                f"betas must be two floats, got {tuple(type(b).__name__ for b in betas)}; "
                "write them as floats, e.g. betas=(0.9, 0.999)"
            )
        if not isinstance(group["amsgrad"], bool):
            raise TypeError(f"Adam: amsgrad must be True or False, got {group['amsgrad']!r}")

    def _required_state(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        keys = ("step", "exp_avg", "exp_avg_sq")
        return (*keys, "max_exp_avg_sq") if group["amsgrad"] else keys

    def _update(self, index: int, param: Tensor, grad: Tensor, group: dict[str, Any]) -> None:
        state = self.state.get(index)
        if state is None:
            state = {"step": torch.tensor(0.0, dtype=_scalar_dtype())}
            for key in _moment_keys(group):
                state[key] = torch.zeros_like(param, memory_format=torch.preserve_format)
            self.state[index] = state
        exp_avg = state["exp_avg"]
        if exp_avg.dtype is not param.dtype or exp_avg.device != param.device:
            # torch's own Adam fails here inside lerp_; SGD's momentum keeps its dtype, as torch's.
            raise RuntimeError(
                f"Adam: parameter {index} is {param.dtype} on {param.device} but its exp_avg is "
                f"{exp_avg.dtype} on {exp_avg.device}: the model was converted (model.to) after "
                f"the optimizer took a step. Build the optimizer after model.to(...), or convert "
                f"its state with optimizer.load_state_dict(optimizer.state_dict())"
            )
        step_t = state["step"]
        step_t += 1
        moments = [state[key] for key in _moment_keys(group)]
        _adam(param, grad, moments, step_t.item(), group)

    def _flat_update(self, flat: FlatLayout, group: dict[str, Any]) -> bool:
        if not self.state:
            steps = torch.zeros(len(flat.spans), dtype=_scalar_dtype())
            flat.keep(self.state, "step", steps, list(steps.unbind()))
            for key in _moment_keys(group):
                flat.new_state_buffer(self.state, key)
        steps = flat.state_buffer(self.state, "step")
        moments = [flat.state_buffer(self.state, key) for key in _moment_keys(group)]
        if steps is None or any(moment is None for moment in moments):
            return False
        # NOTE: every parameter's step tensor holds the same count, so the bias corrections are
        # computed once from the first.
        steps += 1
        _adam(flat.params, flat.grads, moments, self.state[0]["step"].item(), group)
        return True


def _moment_keys(group: Mapping[str, Any]) -> tuple[str, ...]:
    keys = ("exp_avg", "exp_avg_sq")
    return (*keys, "max_exp_avg_sq") if group["amsgrad"] else keys


def _adam(
    param: Tensor, grad: Tensor, moments: list[Tensor], step: float, group: Mapping[str, Any]
) -> None:
    """One step on ``param`` (one parameter, or the flat buffer of all of them) at count ``step``.

    ``moments`` are ``exp_avg``, ``exp_avg_sq`` and, with AMSGrad, ``max_exp_avg_sq``.

    NOTE: the operations and their order are torch's _single_tensor_adam (capturable=False), for
    bit-identical parameters; the bias corrections are Python floats computed from the count.
    Elementwise, so the flat buffers give the same bits.
    """
    exp_avg, exp_avg_sq = moments[:2]
    beta1, beta2 = group["betas"]
    lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if group["amsgrad"]:
        max_exp_avg_sq = moments[2]
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    else:
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)
