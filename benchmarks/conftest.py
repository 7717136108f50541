"""Shared setup of the benchmarks: one thread, the short mode, and throughput in ``extra_info``."""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

import pytest
import torch

# Both frameworks run on one thread, so that a ratio compares the code, not the core count.
torch.set_num_threads(1)


def _steady_allocator() -> None:
    """Keep freed memory in the process, for both frameworks alike.

    glibc's malloc decides from the process's history whether a freed 9.5 MiB tensor goes back
    to the kernel (its mmap and trim thresholds move as blocks are freed): in some benchmark
    processes every step at batch 100,000 then pays ~144k page faults for fresh pages (53-65 ms
    a step instead of 33-38), in others none, depending on which benchmarks ran before. Fixed
    thresholds (large blocks from the heap, the heap never trimmed) take that history out of
    the timings; the memory benchmarks run in fresh processes with their own setting.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to steady
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest: every tensor of a step
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


_steady_allocator()

SHORT_MODE = {
    "benchmark_min_rounds": 5,
    "benchmark_max_time": "0.05",
    "benchmark_warmup": False,
}
"""pytest-benchmark options that ``--bench-short`` sets: at least 5 rounds, about 50 ms each."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-short",
        action="store_true",
        help="short mode for CI: 5 rounds and ~50 ms per benchmark, 1 memory sample per framework",
    )


def pytest_configure(config: pytest.Config) -> None:
    # pytest-benchmark reads its options in its own (trylast) pytest_configure, after this one.
    if config.getoption("bench_short"):
        for name, value in SHORT_MODE.items():
            setattr(config.option, name, value)
    json_path = config.getoption("benchmark_json", default=None)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _burn_in() -> None:
    """Run both frameworks' steps for about a second before the first benchmark.

    The first benchmark of a process otherwise runs on a cold machine (clock speed, caches, lazy
    initialisation in torch's dispatcher): it measured 1.9x where it measures 3.1x warm.
    """
    from benchmarks.twins import FRAMEWORKS, OPTIMIZERS, dataset, training_step

    inputs, targets = dataset(25)
    deadline = time.perf_counter() + 1.0
    steps = [training_step(f, o) for f in FRAMEWORKS for o in OPTIMIZERS]
    while time.perf_counter() < deadline:
        for step in steps:
            step(inputs, targets)


@pytest.fixture
def short_mode(request: pytest.FixtureRequest) -> bool:
    """Whether the run is in the short mode (``--bench-short``)."""
    return bool(request.config.getoption("bench_short"))


@pytest.fixture
def record(benchmark):  # noqa: ANN001, ANN201 (pytest-benchmark's fixture has no public type)
    """Store, after the benchmark ran, the framework, the work of one call and its throughput.

    ``work`` is what one call processes (samples, or Jacobian entries); the throughput is taken at
    the median time, and ``benchmarks/ratios.py`` can recompute it from any saved statistic.
    """

    def record(framework: str, work: int, unit: str, **info: object) -> None:
        benchmark.extra_info.update(framework=framework, work=work, unit=unit, **info)
        if benchmark.stats is not None:  # None under --benchmark-disable
            benchmark.extra_info["throughput"] = work / benchmark.stats.stats.median

    return record
