"""Hypothesis: conformance holds for random depths, widths, activations, hyperparameters, seeds.

Each example trains a small random network a few epochs and compares the two frameworks after
every mini-batch step (loss, gradients, parameters, optimizer state), not only per epoch. nnlite
trains through ``nnlite.training.train_step``, as its users do. A configuration that
``bounds.py`` only bounds is compared as its bounds were measured: from re-aligned states.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conformance.bounds import needs_resync
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


# Counterexamples found by exploring (HYPOTHESIS_PROFILE=dev), kept as explicit cases.
_SGD = {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False}
COLUMN_MAJOR_INPUT = Config(
    # A 1 x 1 hidden activation is "column-major" to autograd, which then computes the input
    # gradient of the next Linear as (W^T @ grad^T)^T: nnlite's was 1 ulp off until it did too.
    activation="tanh",
    loss="bce",
    optimizer="sgd",
    optimizer_options={"lr": 0.25, **_SGD},
    batch_size=1,
    epochs=1,
    seed=0,
    hidden=(1, 12),
    outputs=1,
    train_size=1,
    test_size=1,
    shuffle=False,
)
ELU_CANCELLATION = Config(
    activation="elu",
    loss="mse",
    optimizer="sgd",
    optimizer_options={"lr": 0.038206856092233114, **_SGD, "momentum": 0.9},
    batch_size=1,
    epochs=1,
    seed=0,
    hidden=(1,),
    outputs=2,
    train_size=41,
    test_size=1,
    shuffle=True,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configs())
@example(config=COLUMN_MAJOR_INPUT)
def test_random_networks_train_identically_step_by_step(config: Config) -> None:
    SideBySide(config, resync=needs_resync(config)).run(every_step=True)


@pytest.mark.xfail(
    needs_resync(ELU_CANCELLATION),
    strict=True,
    reason="known limit while bounds.py bounds ELU: torch's ELU kernel calls the C library's "
    "expm1/exp on the scalar tail of each chunk (1-2 ulps from SLEEF's values); in a network "
    "with one hidden unit at batch 1, MSE's (output - target) cancels and turns that into a "
    "2e-4 relative gradient difference, past the norm-wise bound",
)
def test_elu_network_whose_loss_cancels_trains_identically() -> None:
    # Found by exploring: exact ELU must hold here too, where any ulp would be amplified.
    SideBySide(ELU_CANCELLATION).run(every_step=True)


# Found by `python -m conformance` (seed 002, MSE / SGD / ReLU, run 3): at lr 0.1 the training
# overflows in the first epoch; nnlite's ReLU backward once gave inf * 0 = NaN there, where torch's
# threshold_backward selects 0. The twins must agree even on a diverging run.
RELU_OVERFLOW = Config(
    activation="relu",
    loss="mse",
    optimizer="sgd",
    optimizer_options={"lr": 0.1},
    batch_size=25,
    epochs=1,
    seed=2,
    standardize=True,
    weight_init="xavier_normal_gain",
)


def test_relu_network_that_overflows_trains_identically() -> None:
    SideBySide(RELU_OVERFLOW).run(every_step=True)
