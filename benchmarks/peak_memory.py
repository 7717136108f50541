"""Peak memory of one training step of the seeds' network, measured in a fresh process.

Usage (from the repository root; prints one JSON object)::

    python -m benchmarks.peak_memory nnlite sgd 100000

torch's CPU allocator keeps no statistics, so the step is measured by the kernel: the process
builds the network, optimizer and batch, takes one warm-up step at batch 1 (lazy initialisation,
optimizer state), resets the resident-set high-water mark (``5`` written to
``/proc/self/clear_refs``), takes one step on the whole batch and reports ``VmHWM`` minus the
``VmRSS`` it had just before: the memory the step added at its peak. Linux only.

glibc raises its mmap threshold as large blocks are freed, so where a tensor's memory comes from
(fresh pages or a reused heap) and hence the peak would depend on the process's history: the
same step measured 67 to 100 MiB. The process therefore runs with a fixed threshold
(``MALLOC_MMAP_THRESHOLD_``, re-executing itself if it is not set): every block above 128 KiB
is its own mapping, returned when freed, and the high-water mark follows the live tensors to
within a few pages, run after run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmarks.twins import FRAMEWORKS, OPTIMIZERS, dataset, training_step

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MMAP_THRESHOLD = "131072"
"""glibc's default initial mmap threshold (128 KiB), fixed instead of dynamic."""


def available() -> bool:
    """Whether this system can reset and read the resident-set high-water mark."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _status_bytes(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            value, unit = line.split()[1:3]
            assert unit == "kB", f"unexpected unit {unit!r} for {field} in {_STATUS}"
            return int(value) * 1024
    raise RuntimeError(f"{_STATUS} has no {field} line; peak memory needs Linux")


def measure(framework: str, optimizer: str, batch: int) -> dict[str, int | str]:
    """Build, warm up and take one step in this process; return the step's peak in bytes."""
    torch.set_num_threads(1)
    inputs, targets = dataset(batch)
    step = training_step(framework, optimizer)
    step(inputs[:1], targets[:1])  # the first step allocates gradients and optimizer state
    baseline = _status_bytes("VmRSS")
    _CLEAR_REFS.write_text("5")
    step(inputs, targets)
    peak = _status_bytes("VmHWM")
    return {
        "framework": framework,
        "optimizer": optimizer,
        "batch": batch,
        "baseline_bytes": baseline,
        "peak_bytes": peak - baseline,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the measurement as JSON; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_memory", description=__doc__)
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("optimizer", choices=OPTIMIZERS)
    parser.add_argument("batch", type=int)
    args = parser.parse_args(argv)
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
        command = [sys.executable, "-m", "benchmarks.peak_memory"]
        os.execve(sys.executable, [*command, args.framework, args.optimizer, str(args.batch)], env)
    if not available():
        print("peak_memory: error: /proc/self/clear_refs is not writable here", file=sys.stderr)
        return 2
    print(json.dumps(measure(args.framework, args.optimizer, args.batch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
