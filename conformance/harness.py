"""Trains the nnlite and torch.nn twins side by side and compares them as they go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import nnlite.data
import nnlite.training
from conformance.bounds import bound_for
from conformance.compare import ConformanceError, check_tensor, difference
from conformance.spec import Config
from conformance.twins import Data, Side, build_sides, make_data


@dataclass
class History:
    """What each framework did, epoch by epoch (index 0 is before training)."""

    nn_loss: list[float] = field(default_factory=list)
    th_loss: list[float] = field(default_factory=list)
    nn_train_accuracy: list[float] = field(default_factory=list)
    th_train_accuracy: list[float] = field(default_factory=list)
    nn_test_accuracy: list[float] = field(default_factory=list)
    th_test_accuracy: list[float] = field(default_factory=list)
    largest_difference: dict[str, float] = field(default_factory=dict)
    """Largest absolute difference seen per kind of quantity ("loss", "parameter", ...)."""


class SideBySide:
    r"""An nnlite network and its torch.nn twin, trained on the same batches with the same masks.

    nnlite trains the way its users do: an epoch is one :func:`nnlite.training.train_epoch`, a
    step one :func:`nnlite.training.train_step`, accuracy is :func:`nnlite.training.accuracy`.
    torch.nn trains the way torch's users do: autograd and ``torch.optim``, its own batch slicing.

    Both sides see the same mini-batches: each draws its order from its own generator, seeded
    alike. Both draw the same dropout masks: before each side runs, torch's global generator is
    set to one saved state, and afterwards both sides must have left it in the same state.

    Args:
        config: the run to reproduce.
        check: raise :class:`~conformance.compare.ConformanceError` at the first disagreement
            beyond the configuration's bound (exact equality unless :mod:`conformance.bounds`
            lists one). With ``False``, only record the largest differences.
        sides: use these (nnlite, torch) sides instead of building fresh ones, e.g. to resume
            from a checkpoint.
        resync: in step-by-step mode, after comparing each step, load torch.nn's parameters and
            optimizer state into nnlite. For modules that are only bounded (see
            :mod:`conformance.bounds`), this compares every step from identical states, so the
            bound measures one step's error instead of a trajectory's chaos.
    """

    def __init__(
        self,
        config: Config,
        *,
        check: bool = True,
        sides: tuple[Side, Side] | None = None,
        resync: bool = False,
    ) -> None:
        self.config = config
        self.check = check
        self.resync = resync
        self.data: Data = make_data(config)
        self.nn, self.th = sides if sides is not None else build_sides(config)
        self.rng_state = torch.Generator().manual_seed(config.seed + 2).get_state()
        self.epoch = 0
        self.history = History()
        self._where = f"{config.id}: epoch 0"
        self.compare_parameters()

    def run(self, epochs: int | None = None, *, every_step: bool = False) -> History:
        """Trains ``epochs`` more epochs (default: the configured number), comparing each.

        Per epoch, the mean of the steps' losses (``train_epoch``'s return value) is compared,
        then the gradients, parameters and optimizer state. With ``every_step``, each step's
        loss, gradients, parameters and optimizer state are compared after every mini-batch.
        """
        if self.epoch == 0 and not self.history.nn_test_accuracy:
            self.evaluate()
        for _ in range(self.config.epochs if epochs is None else epochs):
            self.train_epoch(every_step=every_step)
        return self.history

    def train_epoch(self, *, every_step: bool = False) -> None:
        """Trains both sides one epoch, then compares and evaluates them."""
        self.epoch += 1
        outer_state = torch.get_rng_state()
        try:
            if every_step:
                nn_losses, th_losses = self._epoch_step_by_step()
                nn_loss, th_loss = _mean(nn_losses), _mean(th_losses)
            else:
                nn_loss = self._with_rng(self._nnlite_epoch)
                th_loss = _mean([self._torch_step(x, t) for x, t in self._torch_batches()])
                self._check_rng("the epoch")
        finally:
            torch.set_rng_state(outer_state)
        self._where = f"{self.config.id}: epoch {self.epoch}"
        self._compare_scalar("loss", "mean loss of the epoch's steps", nn_loss, th_loss)
        self.history.nn_loss.append(nn_loss)
        self.history.th_loss.append(th_loss)
        self.compare_gradients()
        self.compare_parameters()
        self.compare_optimizers()
        for side in (self.nn, self.th):
            if side.scheduler is not None:
                side.scheduler.step()
        self._compare_scalar(
            "lr",
            "learning rate",
            self.nn.optimizer.param_groups[0]["lr"],
            self.th.optimizer.param_groups[0]["lr"],
        )
        self.evaluate()

    def evaluate(self) -> None:
        """Compares both sides' outputs and accuracies on the training and test sets."""
        data = self.data
        for split, inputs, labels in (
            ("train", data.train_inputs, data.train_labels),
            ("test", data.test_inputs, data.test_labels),
        ):
            nn_out, th_out = predict(self.nn, inputs), predict(self.th, inputs)
            self._compare("output", f"{split} output (eval mode)", nn_out, th_out)
            nn_acc = nnlite.training.accuracy(self.nn.model, inputs, labels)
            with torch.no_grad():
                th_acc = nnlite.training.accuracy(self.th.model, inputs, labels)
            self._compare_scalar("accuracy", f"{split} accuracy", nn_acc, th_acc)
            getattr(self.history, f"nn_{split}_accuracy").append(nn_acc)
            getattr(self.history, f"th_{split}_accuracy").append(th_acc)

    def compare_parameters(self) -> None:
        """Compares every parameter, by torch.nn's name (``0.weight``, ...)."""
        nn_params = {name: p for name, p, _ in self.nn.model.named_param()}
        th_params = dict(self.th.model.named_parameters())
        self._same_names("parameters", nn_params, th_params)
        for name, th_param in th_params.items():
            self._compare("parameter", f"parameter {name}", nn_params[name], th_param)

    def compare_gradients(self) -> None:
        """Compares every parameter's gradient from the last backward pass."""
        nn_grads = {name: g for name, _, g in self.nn.model.named_param()}
        for name, th_param in self.th.model.named_parameters():
            if th_param.grad is None:
                raise ConformanceError(f"{self._where}: torch.nn has no gradient for {name}")
            self._compare("gradient", f"gradient of {name}", nn_grads[name], th_param.grad)

    def compare_optimizers(self) -> None:
        """Compares the optimizers' state (momentum buffers, Adam moments and step counts)."""
        nn_state = self.nn.optimizer.state_dict()["state"]
        th_state = self.th.optimizer.state_dict()["state"]
        names = [name for name, _ in self.th.model.named_parameters()]
        for index, th_entry in th_state.items():
            nn_entry = nn_state.get(index, {})
            for key, th_value in th_entry.items():
                if th_value is None:
                    continue
                label = f"optimizer {key} of {names[index]}"
                if key not in nn_entry or nn_entry[key] is None:
                    raise ConformanceError(f"{self._where}: nnlite's optimizer lacks {label}")
                nn_value = nn_entry[key]
                if key == "step":
                    self._compare_scalar("optimizer", label, float(nn_value), float(th_value))
                else:
                    self._compare("optimizer", label, nn_value, th_value)

    def _nnlite_epoch(self) -> float:
        side, data = self.nn, self.data
        return nnlite.training.train_epoch(
            side.model,
            side.criterion,
            side.optimizer,
            data.train_inputs,
            data.train_targets,
            self.config.batch_size,
            shuffle=self.config.shuffle,
            generator=side.generator,
        )

    def _nnlite_step(self, inputs: Tensor, targets: Tensor) -> float:
        side = self.nn
        return nnlite.training.train_step(
            side.model, side.criterion, side.optimizer, inputs, targets
        )

    def _torch_step(self, inputs: Tensor, targets: Tensor) -> float:
        side = self.th
        side.optimizer.zero_grad()
        loss = side.criterion(side.model(inputs), targets)
        loss.backward()
        side.optimizer.step()
        return loss.item()

    def _epoch_step_by_step(self) -> tuple[list[float], list[float]]:
        nn_losses, th_losses = [], []
        batches = zip(self._nnlite_batches(), self._torch_batches(), strict=True)
        for step, ((nn_x, nn_y), (th_x, th_y)) in enumerate(batches, start=1):
            self._where = f"{self.config.id}: epoch {self.epoch}, step {step}"
            self._compare("data", "mini-batch inputs", nn_x, th_x)
            nn_losses.append(self._with_rng(lambda x=nn_x, y=nn_y: self._nnlite_step(x, y)))
            th_losses.append(self._torch_step(th_x, th_y))
            self._check_rng("the step")
            self._compare_scalar(
                "loss", "loss", nn_losses[-1], th_losses[-1], dtype=self.config.dtype
            )
            self.compare_gradients()
            self.compare_parameters()
            self.compare_optimizers()
            if self.resync:
                self.nn.model.load_state_dict(self.th.model.state_dict())
                self.nn.optimizer.load_state_dict(self.th.optimizer.state_dict())
        return nn_losses, th_losses

    def _with_rng(self, work: Callable[[], Any]) -> Any:
        # Runs nnlite's part from the saved state, keeps where it left the generator, and rewinds
        # it so that torch.nn's part draws the very same dropout masks.
        torch.set_rng_state(self.rng_state)
        result = work()
        self._nn_rng_after = torch.get_rng_state()
        torch.set_rng_state(self.rng_state)
        return result

    def _check_rng(self, what: str) -> None:
        after = torch.get_rng_state()
        if not torch.equal(after, self._nn_rng_after):
            raise ConformanceError(
                f"{self._where}: nnlite and torch.nn drew a different amount of random numbers "
                f"from torch's global generator during {what}, so their dropout masks differ"
            )
        self.rng_state = after

    def _nnlite_batches(self) -> Any:
        data = self.data
        return nnlite.data.batches(
            data.train_inputs,
            data.train_targets,
            self.config.batch_size,
            shuffle=self.config.shuffle,
            generator=self.nn.generator,
        )

    def _torch_batches(self) -> Any:
        data, size = self.data, self.config.batch_size
        n = data.train_inputs.shape[0]
        if self.config.shuffle:
            order = torch.randperm(n, generator=self.th.generator)
            return (
                (data.train_inputs[i], data.train_targets[i])
                for i in (order[s : s + size] for s in range(0, n, size))
            )
        return (
            (data.train_inputs[s : s + size], data.train_targets[s : s + size])
            for s in range(0, n, size)
        )

    def _compare(self, kind: str, name: str, nn: Tensor, th: Tensor) -> None:
        bound = bound_for(self.config, kind)
        if self.check:
            diff = check_tensor(self._where, name, nn, th, bound)
        else:
            diff = difference(nn, th)
        largest = self.history.largest_difference
        largest[kind] = max(largest.get(kind, 0.0), diff)

    def _compare_scalar(
        self, kind: str, name: str, nn: float, th: float, dtype: torch.dtype = torch.float64
    ) -> None:
        # ``dtype``: the type the numbers were computed in (a step's loss.item() is a float32 in
        # float32 runs), so that a difference is reported in that type's ulps.
        self._compare(kind, name, torch.tensor(nn, dtype=dtype), torch.tensor(th, dtype=dtype))

    def _same_names(self, what: str, nn: dict[str, Any], th: dict[str, Any]) -> None:
        if list(nn) != list(th):
            raise ConformanceError(
                f"{self._where}: nnlite's {what} are {list(nn)}, torch.nn's are {list(th)}"
            )


def run(
    config: Config, *, every_step: bool = False, check: bool = True, resync: bool = False
) -> History:
    """Trains the twins of ``config`` for ``config.epochs`` epochs and returns their history.

    ``resync`` (which implies ``every_step``) re-aligns nnlite on torch.nn after every step.

    Raises:
        ConformanceError: when ``check`` and the two frameworks disagree.
    """
    sides = SideBySide(config, check=check, resync=resync)
    return sides.run(every_step=every_step or resync)


def predict(side: Side, inputs: Tensor) -> Tensor:
    model = side.model
    model.eval()
    try:
        if side.framework == "nnlite":
            return model(inputs)
        with torch.no_grad():
            return model(inputs)
    finally:
        model.train()


def _mean(losses: list[float]) -> float:
    # train_epoch's mean, so both sides' epoch losses are the same function of the step losses.
    return sum(losses) / len(losses)
