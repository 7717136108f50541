"""Where the time of nnlite's training step goes: cProfile and torch.profiler, one thread.

Usage (from the repository root)::

    python -m benchmarks.profile_step --batch 25 --optimizer sgd --steps 2000
    python -m benchmarks.profile_step --batch 1000 --framework torch --ops

cProfile shows the Python functions (``--top`` of them by own time); ``--ops`` adds torch's
profiler table of the tensor operations each step calls. Both slow the step down; the split,
not the total, is what they tell.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Sequence

import torch

from benchmarks.twins import FRAMEWORKS, OPTIMIZERS, dataset, training_step


def main(argv: Sequence[str] | None = None) -> int:
    """Profile ``--steps`` training steps and print the tables; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--framework", choices=FRAMEWORKS, default="nnlite")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25, help="functions to show (default: 25)")
    parser.add_argument("--ops", action="store_true", help="also run torch.profiler")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.steps < 1:
        parser.error(f"--batch and --steps must be >= 1, got {args.batch} and {args.steps}")

    torch.set_num_threads(1)
    inputs, targets = dataset(args.batch)
    step = training_step(args.framework, args.optimizer)
    for _ in range(10):
        step(inputs, targets)

    start = time.perf_counter()
    for _ in range(args.steps):
        step(inputs, targets)
    per_step = (time.perf_counter() - start) / args.steps
    print(
        f"{args.framework} {args.optimizer} batch {args.batch}: {per_step * 1e6:.1f} us per step "
        f"unprofiled, {args.batch / per_step:,.0f} samples/s"
    )

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        step(inputs, targets)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(args.top)

    if args.ops:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(min(args.steps, 200)):
                step(inputs, targets)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
