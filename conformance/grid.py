"""The conformance grid: every activation, loss, optimizer, dropout, dtype and batch size."""

from __future__ import annotations

import itertools
from typing import Any

import torch

from conformance.bounds import needs_resync
from conformance.spec import ACTIVATIONS, LOSSES, Config

OPTIMIZER_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("sgd", {"lr": 0.05}),
    # torch.optim.SGD forbids Nesterov with dampening, so dampening gets its own preset.
    "sgd_nesterov_wd": (
        "sgd",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    ),
    "sgd_dampening_wd": (
        "sgd",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3},
    ),
    "adam": ("adam", {"lr": 1e-3}),
    "adam_wd_amsgrad": ("adam", {"lr": 1e-3, "weight_decay": 1e-3, "amsgrad": True}),
}
DROPOUTS = (0.0, 0.2)
DTYPES = {"f32": torch.float32, "f64": torch.float64}
BATCH_SIZES = (1, 25, 1000)
EPOCHS = 30

# Small training sets keep batch size 1 affordable (steps = points x epochs); batch 1000 needs
# 1000 points to mean anything. Test sets only cost one forward pass per epoch.
TRAIN_SIZE = {1: 50, 25: 250, 1000: 1000}
TEST_SIZE = {1: 200, 25: 250, 1000: 1000}

# CI's coverage run takes these (dropout, dtype, batch size) slices of the grid: every
# activation x loss x optimizer, once with dropout and shuffled mini-batches in float32, once
# full-batch in float64 (150 of the 900 cases). The whole grid runs on a second Python.
SAMPLE = {(0.2, "f32", 25), (0.0, "f64", 1000)}


def grid_cases() -> list[tuple[str, Config]]:
    """Every case of the grid as ``(readable id, config)``, e.g. ``"tanh-ce-adam-p0.2-f64-b25"``."""
    cases = []
    for activation, loss, preset, dropout, dtype_tag, batch_size in itertools.product(
        ACTIVATIONS, LOSSES, OPTIMIZER_PRESETS, DROPOUTS, DTYPES, BATCH_SIZES
    ):
        optimizer, options = OPTIMIZER_PRESETS[preset]
        config = Config(
            activation=activation,
            loss=loss,
            optimizer=optimizer,
            optimizer_options=options,
            dropout=dropout,
            dtype=DTYPES[dtype_tag],
            batch_size=batch_size,
            epochs=EPOCHS,
            train_size=TRAIN_SIZE[batch_size],
            test_size=TEST_SIZE[batch_size],
        )
        case_id = f"{activation}-{loss}-{preset}-p{dropout:g}-{dtype_tag}-b{batch_size}"
        cases.append((case_id, config))
    return cases


def in_sample(case_id: str) -> bool:
    """Whether the case belongs to :data:`SAMPLE`, the slice CI runs under coverage."""
    *_, dropout, dtype_tag, batch = case_id.split("-")
    return (float(dropout[1:]), dtype_tag, int(batch[1:])) in SAMPLE


def case_cost(config: Config) -> float:
    """A rough relative cost of a case (mini-batch steps), to start the longest cases first."""
    steps = -(-config.train_size // config.batch_size) * config.epochs
    # A re-aligned case (see bounds.py) compares and reloads the twins after every step.
    compared = 6.0 if needs_resync(config) else 1.0
    return (
        steps
        * compared
        * (1.3 if config.dropout else 1.0)
        * (1.5 if config.optimizer == "adam" else 1.0)
    )
