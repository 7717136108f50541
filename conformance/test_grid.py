"""The grid: nnlite and torch.nn trained side by side agree at every epoch, to the bit.

Every activation x loss x optimizer x dropout x dtype x batch size, 30 epochs each, on the seeds'
network and the disk dataset. The selected cases run up front on every core (see conftest.py);
each test then reports its own case.
"""

from __future__ import annotations

import pytest

from conformance.grid import grid_cases, run_case
from conformance.spec import Config

CASES = grid_cases()


@pytest.mark.grid
@pytest.mark.parametrize("config", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_nnlite_trains_like_torch_nn_epoch_by_epoch(
    config: Config, grid_outcomes: dict[str, str | None], request: pytest.FixtureRequest
) -> None:
    case = request.node.callspec.id
    failure = grid_outcomes[case] if case in grid_outcomes else run_case(config)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
