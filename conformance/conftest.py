"""Shared set-up of the conformance suites: one thread per case, the longest grid cases first.

pytest-xdist spreads the cases over processes (``pytest -n auto conformance``, or ``-n 8`` and
xdist's remote workers on more machines). Every worker collects the same items in the order set
here, so the scheduler hands out the longest cases first and the short ones fill the gaps at the
end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from conformance.grid import case_cost


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "grid: a case of the conformance grid (test_grid.py)")
    config.addinivalue_line(
        "markers",
        "grid_sample: the slice of the grid that CI's coverage run takes (see grid.py)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Puts the grid's cases first, longest first (a stable sort: the rest keep their order)."""

    def cost(item: pytest.Item) -> float:
        if item.get_closest_marker("grid") is None:
            return 0.0
        return -case_cost(item.callspec.params["config"])

    items.sort(key=cost)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Runs each conformance case on one thread.

    The networks are tiny, so threads only add overhead; one thread also keeps the BLAS
    reductions in one fixed order for both frameworks.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
