"""``python -m conformance``: the seeds' experiments in nnlite and torch.nn, side by side."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from conformance.seeds import SEEDS
from conformance.spec import ACTIVATIONS

EXPERIMENTS = tuple(SEEDS)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description=(
            "Reproduce the five course reports' experiments (seeds 000-004), each with its own "
            "stated setup, in nnlite and torch.nn side by side; write the table (Markdown, "
            "JSON), a page per seed and the plots to --out."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("conformance-report"),
        help="folder for table.md, table.json, the seed pages and PNGs (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 runs per configuration and a few epochs (each seed's quick_epochs), under a "
        "minute, instead of the seeds' own runs and epochs",
    )
    parser.add_argument(
        "--runs",
        type=int,
        help="runs per configuration (default: each seed's own, 5-20; 2 with --quick)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="epochs for every configuration (default: each seed's own, 7 to 10,000)",
    )
    parser.add_argument(
        "--activation",
        action="append",
        metavar="NAME",
        help=f"only these activations (repeatable): {', '.join(ACTIVATIONS)}",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        metavar="SEED",
        help=f"only these seeds' experiments (repeatable): {', '.join(EXPERIMENTS)}",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the report; returns the exit status (2 for bad options)."""
    from conformance import report

    parser = build_parser()
    args = parser.parse_args(argv)
    for name in args.activation or ():
        if name not in ACTIVATIONS:
            parser.error(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    for name in args.experiment or ():
        if name not in EXPERIMENTS:
            parser.error(f"unknown experiment {name!r}; choose from {', '.join(EXPERIMENTS)}")
    for option in ("runs", "epochs"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be a positive integer, got {value}")
    problem = _unwritable(args.out)
    if problem is not None:
        parser.error(f"cannot write the report to --out {str(args.out)!r}: {problem}")

    experiments = args.experiment or list(EXPERIMENTS)
    rows = []
    for seed in (SEEDS[name] for name in EXPERIMENTS if name in experiments):
        rows += report.rows_for([seed], args.epochs or (seed.quick_epochs if args.quick else None))
    if args.activation:
        rows = [row for row in rows if row.config.activation in args.activation]
        if not rows:
            parser.error(
                f"no configuration of experiment(s) {', '.join(experiments)} uses "
                f"activation(s) {', '.join(args.activation)}"
            )

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    runs = args.runs or (2 if args.quick else None)
    started = time.perf_counter()
    try:
        results = report.run_rows(
            rows,
            runs if runs is not None else (lambda row: SEEDS[row.seed].runs),
            progress=report.stderr_progress,
        )
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    runs_text = str(runs) if runs is not None else "each seed's own number of"
    written = report.write_report(
        results, args.out, runs=runs_text, seconds=seconds, quick=args.quick
    )
    print(report.markdown_table(results))
    print(report.explanations(results), end="")
    total = sum(len(r.nn_test_accuracy) for r in results)
    print(f"{len(rows)} configurations, {total} runs in each framework, in {seconds:.1f}s; wrote:")
    for path in written:
        print(f"  {path}")
    return 0


def _unwritable(folder: Path) -> str | None:
    # Creates the folder and a scratch file in it; returns why that failed, or None.
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
