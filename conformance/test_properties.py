"""Hypothesis: conformance holds for random depths, widths, activations, hyperparameters, seeds.

Each example trains a small random network a few epochs and compares the two frameworks after
every mini-batch step (loss, gradients, parameters, optimizer state), not only per epoch.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.harness import SideBySide
from conformance.spec import ACTIVATIONS, LOSSES, Config


@st.composite
def configs(draw: st.DrawFn) -> Config:
    loss = draw(st.sampled_from(LOSSES))
    optimizer = draw(st.sampled_from(["sgd", "adam"]))
    if optimizer == "sgd":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = momentum > 0 and draw(st.booleans())
        options = {
            "lr": draw(st.floats(1e-3, 0.3)),
            "momentum": momentum,
            "dampening": 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1, 0.5])),
            "weight_decay": draw(st.sampled_from([0.0, 1e-4, 1e-2])),
            "nesterov": nesterov,
        }
    else:
        beta1 = draw(st.sampled_from([0.0, 0.5, 0.9]))
        beta2 = draw(st.sampled_from([0.9, 0.99, 0.999]))
        options = {
            "lr": draw(st.floats(1e-4, 3e-2)),
            "betas": (beta1, beta2),
            "eps": draw(st.sampled_from([1e-8, 1e-6, 1e-3])),
            "weight_decay": draw(st.sampled_from([0.0, 1e-4, 1e-2])),
            "amsgrad": draw(st.booleans()),
        }
    outputs = 1 if loss == "bce" else draw(st.integers(2, 4))
    if loss == "mse" and draw(st.booleans()):
        outputs = 1
    train_size = draw(st.integers(1, 48))
    return Config(
        activation=draw(st.sampled_from(ACTIVATIONS)),
        loss=loss,
        optimizer=optimizer,
        optimizer_options=options,
        dropout=draw(st.sampled_from([0.0, 0.1, 0.5])),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        batch_size=draw(st.integers(1, 2 * train_size)),
        epochs=draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 2**31 - 1)),
        hidden=tuple(draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))),
        outputs=outputs,
        train_size=train_size,
        test_size=draw(st.integers(1, 32)),
        shuffle=draw(st.booleans()),
        standardize=train_size > 1 and draw(st.booleans()),
        negative_slope=draw(st.sampled_from([0.01, 0.2])),
        alpha=draw(st.sampled_from([1.0, 0.5])),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs())
def test_random_networks_train_identically_step_by_step(config: Config) -> None:
    SideBySide(config).run(every_step=True)
