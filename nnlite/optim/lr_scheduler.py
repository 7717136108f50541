"""Learning-rate schedules that produce the very floats of torch.optim.lr_scheduler's twins."""

from __future__ import annotations

from typing import Any

from nnlite.optim.optimizer import Optimizer

__all__ = ["ExponentialLR", "LRScheduler", "StepLR"]


class LRScheduler:
    r"""Base class for learning-rate schedulers.

    A scheduler rewrites ``optimizer.param_groups[0]["lr"]`` each time :meth:`step` is called, once
    per epoch after the optimizer's steps. As in torch, the rate is updated in the chainable form
    (the current rate times a factor), so the sequence of Python floats is torch's, bit for bit.

    Args:
        optimizer (Optimizer): the nnlite optimizer whose learning rate is scheduled.
        last_epoch (int, optional): index of the last epoch; ``-1`` (default) starts a fresh
            schedule from the optimizer's current rate, which is saved as ``"initial_lr"``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(
                f"last_epoch must be an int >= -1 (-1 starts a fresh schedule), got {last_epoch!r}"
            )
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                        "scheduler with last_epoch >= 0; load the optimizer's saved state first"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = True
        self._step_count = 0
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """Compute the learning rates of the next epoch (use :meth:`get_last_lr` to read them)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_lr")

    def get_last_lr(self) -> list[float]:
        """Return the learning rates the last :meth:`step` set, one per parameter group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule by one epoch and write the new rate into the optimizer."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Return the scheduler's state: every attribute except the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`state_dict`."""
        self.__dict__.update(state_dict)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    r"""Decays the learning rate by ``gamma`` every ``step_size`` epochs.

    .. math::
        \gamma_{e} = \begin{cases} \gamma_{e-1} \cdot \text{gamma}
            & \text{if } e > 0 \text{ and } e \bmod \text{step\_size} = 0 \\
            \gamma_{e-1} & \text{otherwise} \end{cases}

    Args:
        optimizer (Optimizer): wrapped optimizer.
        step_size (int): period of learning rate decay, in epochs (calls to :meth:`step`).
        gamma (float, optional): multiplicative factor of learning rate decay (default: 0.1).
        last_epoch (int, optional): the index of the last epoch (default: -1).

    Example:
        >>> scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
        >>> for epoch in range(100):
        ...     train_epoch(...)
        ...     scheduler.step()
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(
                f"step_size must be a positive int (epochs between decays), got {step_size!r}"
            )
        _check_gamma(gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Compute the learning rates of the next epoch (use :meth:`get_last_lr` to read them)."""
        # NOTE: torch's chainable form, current rate times gamma, gives the same float sequence.
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


class ExponentialLR(LRScheduler):
    r"""Decays the learning rate by ``gamma`` every epoch.

    .. math::
        \gamma_{e} = \gamma_{e-1} \cdot \text{gamma}

    Args:
        optimizer (Optimizer): wrapped optimizer.
        gamma (float): multiplicative factor of learning rate decay.
        last_epoch (int, optional): the index of the last epoch (default: -1).
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        _check_gamma(gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        """Compute the learning rates of the next epoch (use :meth:`get_last_lr` to read them)."""
        # NOTE: torch's chainable form, current rate times gamma, gives the same float sequence.
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]


def _check_gamma(gamma: float) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma >= 0:
        raise ValueError(
            f"gamma must be a non-negative number (the factor the rate is multiplied by), "
            f"got {gamma!r}"
        )
