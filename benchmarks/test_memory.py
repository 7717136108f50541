"""Peak memory of a training step at batch 100,000: nnlite against torch.nn.

Each sample runs ``benchmarks/peak_memory.py`` in a fresh process (see there for the method); the
group's ratio is nnlite's peak over torch's, recorded in ``extra_info["peak_bytes"]``. The timing
pytest-benchmark shows for these groups is the subprocess's and means nothing.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import peak_memory
from benchmarks.twins import FRAMEWORKS, OPTIMIZERS

BATCH = 100_000
ROOT = Path(__file__).resolve().parents[1]


def _measure(framework: str, optimizer: str) -> dict[str, int]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.peak_memory", framework, optimizer, str(BATCH)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, f"peak_memory failed:\n{completed.stderr}"
    return json.loads(completed.stdout)


@pytest.mark.skipif(not peak_memory.available(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_peak_memory(benchmark, short_mode: bool, framework: str, optimizer: str) -> None:  # noqa: ANN001
    benchmark.group = f"memory-{optimizer}-b{BATCH}"
    samples: list[dict[str, int]] = []
    benchmark.pedantic(
        lambda: samples.append(_measure(framework, optimizer)),
        rounds=1 if short_mode else 3,
        iterations=1,
    )
    peaks = [sample["peak_bytes"] for sample in samples]
    benchmark.extra_info.update(
        framework=framework,
        work=BATCH,
        unit="bytes",
        peak_bytes=statistics.median(peaks),
        peak_bytes_samples=peaks,
        baseline_bytes=statistics.median(sample["baseline_bytes"] for sample in samples),
    )
