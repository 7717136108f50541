"""Checkpoints: a state saved mid-training continues the same trajectory in the other framework.

A checkpoint (model state_dict, optimizer state_dict, batch-order generator) is written with
``torch.save`` after 4 epochs, loaded into a fresh network of the other framework, and training
goes on side by side with the framework that never stopped. The resumed run must then end
exactly where an uninterrupted run ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conformance.harness import SideBySide
from conformance.spec import Config
from conformance.twins import build_nnlite_model, build_torch_model, side

CONFIGS = {
    "sgd-nesterov-dropout": Config(
        activation="tanh",
        loss="mse",
        optimizer_options={"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
        dropout=0.2,
    ),
    # Checkpoints promise the same trajectory to the bit, so they use exact modules; ELU is only
    # bounded (see bounds.py).
    "sgd-dampening-f64": Config(
        activation="sigmoid",
        loss="mse",
        optimizer_options={"lr": 0.05, "momentum": 0.9, "dampening": 0.1},
        dtype=torch.float64,
    ),
    "adam-amsgrad": Config(
        activation="leaky_relu",
        loss="mse",
        optimizer="adam",
        optimizer_options={"lr": 3e-3, "weight_decay": 1e-3, "amsgrad": True},
    ),
    "adam-ce": Config(
        activation="relu", loss="ce", optimizer="adam", optimizer_options={"lr": 3e-3}
    ),
}
BEFORE, AFTER = 4, 4


def _small(config: Config) -> Config:
    return config.replace(train_size=200, test_size=200, epochs=BEFORE + AFTER)


def _save(framework: str, twins: SideBySide, path: Path) -> None:
    half = twins.nn if framework == "nnlite" else twins.th
    torch.save(
        {
            "model": half.model.state_dict(),
            "optimizer": half.optimizer.state_dict(),
            "generator": half.generator.get_state(),
        },
        path,
    )


def _resume(framework: str, config: Config, path: Path):  # noqa: ANN202 - a twins.Side
    checkpoint = torch.load(path)
    build = build_nnlite_model if framework == "nnlite" else build_torch_model
    model = build(config).to(config.dtype)
    model.load_state_dict(checkpoint["model"])
    resumed = side(framework, config, model)
    resumed.optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.generator.set_state(checkpoint["generator"])
    return resumed


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize(
    "saved_by, loaded_by",
    [("nnlite", "torch"), ("torch", "nnlite")],
    ids=["nnlite-to-torch", "torch-to-nnlite"],
)
def test_checkpoint_resumes_the_same_trajectory_in_the_other_framework(
    config: Config, saved_by: str, loaded_by: str, tmp_path: Path
) -> None:
    config = _small(config)
    uninterrupted = SideBySide(config)
    uninterrupted.run()

    twins = SideBySide(config)
    twins.run(BEFORE)
    path = tmp_path / "checkpoint.pt"
    _save(saved_by, twins, path)
    resumed = _resume(loaded_by, config, path)
    if loaded_by == "torch":
        twins.th = resumed
    else:
        twins.nn = resumed
    twins.compare_parameters()
    twins.compare_optimizers()
    twins.run(AFTER)  # raises at the first epoch where the resumed side leaves the other's path

    assert twins.history.th_loss == uninterrupted.history.th_loss
    assert twins.history.nn_test_accuracy == uninterrupted.history.nn_test_accuracy
    final = dict(uninterrupted.th.model.named_parameters())
    for name, parameter, _ in twins.nn.model.named_param():
        assert torch.equal(parameter, final[name]), f"{name} ended elsewhere than uninterrupted"
