"""Shared set-up of the conformance suites: one thread per case, the grid run on every core."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

from conformance.grid import case_cost, run_case
from conformance.spec import Config

WORKERS_VARIABLE = "NNLITE_CONFORMANCE_WORKERS"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "grid: a grid case; selected cases run up front in worker processes"
    )


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


def _workers() -> int:
    value = os.environ.get(WORKERS_VARIABLE)
    if value is None:
        return min(2, os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"{WORKERS_VARIABLE} must be a positive integer, got {value!r}")
    return int(value)


def _init_worker() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def grid_outcomes(request: pytest.FixtureRequest) -> dict[str, str | None]:
    """Runs every selected grid case once, spread over worker processes (one per core).

    Maps each case's test id to ``None`` (the twins agreed) or the failure report. With one
    worker (``NNLITE_CONFORMANCE_WORKERS=1``) the cases run in this process, one per test.
    """
    workers = _workers()
    items = [item for item in request.session.items if item.get_closest_marker("grid")]
    if workers == 1 or len(items) < 2 * workers:
        return {}
    cases: dict[str, Config] = {item.callspec.id: item.callspec.params["config"] for item in items}
    order = sorted(cases, key=lambda case: -case_cost(cases[case]))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures = {case: pool.submit(run_case, cases[case]) for case in order}
        return {case: future.result() for case, future in futures.items()}
