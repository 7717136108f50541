"""The conformance grid: every activation, loss, optimizer, dropout, dtype and batch size."""

from __future__ import annotations

import itertools
from typing import Any

import torch

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


def run_case(config: Config) -> str | None:
    """Runs one grid case; returns ``None`` when the twins agree, else the failure report.

    Picklable and self-contained, so a worker process can run it.
    """
    import traceback

    from conformance.bounds import needs_resync
    from conformance.compare import ConformanceError
    from conformance.harness import run

    try:
        run(config, resync=needs_resync(config))
    except ConformanceError as error:
        return str(error)
    except Exception:  # noqa: BLE001 - reported to the parent process as the test's failure
        return traceback.format_exc()
    return None


def case_cost(config: Config) -> float:
    """A rough relative cost of a case (mini-batch steps), to start the longest cases first."""
    steps = -(-config.train_size // config.batch_size) * config.epochs
    return steps * (1.3 if config.dropout else 1.0) * (1.5 if config.optimizer == "adam" else 1.0)
