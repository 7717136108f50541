"""Shared set-up of the conformance suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


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
