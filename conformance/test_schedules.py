"""Learning-rate schedules: nnlite's StepLR and ExponentialLR decay exactly as torch's do.

The harness compares the learning rate after every epoch's schedule step, and through it the
whole training trajectory.
"""

from __future__ import annotations

import pytest

from conformance.harness import SideBySide
from conformance.spec import Config

SCHEDULES = {
    "step-sgd-momentum": Config(
        optimizer_options={"lr": 0.1, "momentum": 0.9},
        schedule="step",
        schedule_options={"step_size": 3, "gamma": 0.5},
    ),
    "step-adam": Config(
        optimizer="adam",
        optimizer_options={"lr": 3e-3},
        schedule="step",
        schedule_options={"step_size": 1, "gamma": 0.7},
    ),
    "exponential-sgd": Config(
        optimizer_options={"lr": 0.2},
        schedule="exponential",
        schedule_options={"gamma": 0.9},
    ),
    "exponential-adam-amsgrad": Config(
        optimizer="adam",
        optimizer_options={"lr": 1e-2, "amsgrad": True, "weight_decay": 1e-3},
        schedule="exponential",
        schedule_options={"gamma": 0.95},
    ),
}


@pytest.mark.parametrize("config", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_schedule_decays_and_trains_like_torch(config: Config) -> None:
    config = config.replace(loss="mse", train_size=200, test_size=200, epochs=12)
    twins = SideBySide(config)
    twins.run()
    lr = twins.nn.optimizer.param_groups[0]["lr"]
    initial = config.optimizer_options["lr"]
    assert lr < initial, f"the schedule never decayed the learning rate from {initial}"
    assert twins.nn.scheduler.get_last_lr() == twins.th.scheduler.get_last_lr()


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9, 0.99, 1 / 3])
@pytest.mark.parametrize("step_size", [1, 2, 7])
def test_step_lr_sequence_equals_torch_over_many_epochs(step_size: int, gamma: float) -> None:
    config = Config(
        optimizer_options={"lr": 0.1},
        schedule="step",
        schedule_options={"step_size": step_size, "gamma": gamma},
    )
    _assert_same_lr_sequence(config, epochs=60)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9, 0.99, 1 / 3])
def test_exponential_lr_sequence_equals_torch_over_many_epochs(gamma: float) -> None:
    config = Config(
        optimizer="adam",
        optimizer_options={"lr": 1e-3},
        schedule="exponential",
        schedule_options={"gamma": gamma},
    )
    _assert_same_lr_sequence(config, epochs=60)


def _assert_same_lr_sequence(config: Config, epochs: int) -> None:
    # Steps the schedules alone (no training), to cover many epochs cheaply.
    from conformance.twins import build_sides

    nn, th = build_sides(config)
    for epoch in range(1, epochs + 1):
        nn.optimizer.step()
        th.optimizer.step()
        nn.scheduler.step()
        th.scheduler.step()
        nn_lr, th_lr = nn.optimizer.param_groups[0]["lr"], th.optimizer.param_groups[0]["lr"]
        assert nn_lr == th_lr, f"epoch {epoch}: nnlite lr {nn_lr!r}, torch lr {th_lr!r}"
        assert nn.scheduler.get_last_lr() == th.scheduler.get_last_lr()
