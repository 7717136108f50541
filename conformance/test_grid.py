"""The grid: nnlite and torch.nn trained side by side agree at every epoch, to the bit.

Every activation x loss x optimizer x dropout x dtype x batch size, 30 epochs each, on the seeds'
network and the disk dataset, nnlite trained through ``nnlite.training.train_epoch``. Run it
spread over every core with pytest-xdist: ``pytest -n auto conformance/test_grid.py``
(conftest.py orders the cases longest first).
"""

from __future__ import annotations

import pytest

from conformance.bounds import needs_resync
from conformance.grid import grid_cases, in_sample
from conformance.harness import run
from conformance.spec import Config

CASES = [
    pytest.param(config, id=case_id, marks=[pytest.mark.grid_sample] if in_sample(case_id) else [])
    for case_id, config in grid_cases()
]


@pytest.mark.grid
@pytest.mark.parametrize("config", CASES)
def test_nnlite_trains_like_torch_nn_epoch_by_epoch(config: Config) -> None:
    run(config, resync=needs_resync(config))
