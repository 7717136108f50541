"""The grid: nnlite and torch.nn trained side by side agree at every epoch, to the bit."""

from __future__ import annotations

import pytest

from conformance.grid import grid_cases
from conformance.harness import run
from conformance.spec import Config

CASES = grid_cases()


@pytest.mark.parametrize("config", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_nnlite_trains_like_torch_nn_epoch_by_epoch(config: Config) -> None:
    history = run(config)
    assert len(history.nn_loss) == config.epochs
