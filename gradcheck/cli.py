"""The command line: ``python -m gradcheck TARGET...`` (also installed as ``gradcheck``).

A thin shell over :func:`gradcheck.check`: it resolves each TARGET (see :mod:`gradcheck.targets`),
draws an input, runs the check and prints one line per target. Exit status: 0 when every target
passes, 1 when any check fails, 2 for usage errors and for targets that cannot be imported or
constructed (2 wins over 1: something could not even be checked).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from gradcheck.inputs import DEFAULT_BATCH, DEFAULT_FEATURES
from gradcheck.targets import Target, TargetError, resolve

__all__ = ["main"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

_DTYPES = ("float64", "float32", "float16")
_TARGET_KINDS = ("like", "class", "onehot", "prob")

_EPILOG = f"""\
targets:
  pkg.mod.Class                 constructed with no arguments
  'pkg.mod.Class(3, 4, bias=False)'   literal arguments (quote them in the shell)
  'nnlite.Sequential(nnlite.Linear(2, 3), nnlite.Tanh())'   nested classes
  path/to/file.py:Class         a class in a file (its folder goes first on sys.path)
  path/to/file.py               every module class the file defines, and its
                                function pairs (f_forward/f_backward) and *_loss functions
  'layers.py:conv(conv_param={{"stride": 1, "pad": 0}})'   a CS231n pair, with its
                                non-array arguments; --shape once per array argument
  nnlite                        every module and loss a package exports (its __all__)

In package mode, in_features-like constructor arguments get D (the input's last
dimension), out_features-like ones D + 1, and a container taking *modules gets the
chain Sequential(Linear(D, D + 1), Tanh(), Linear(D + 1, D)). BCE losses get
predictions in (0.05, 0.95) and probability targets, cross-entropy losses class
targets, unless --range / --target say otherwise.

The input is N x D with N = {DEFAULT_BATCH} and D = the module's in_features (for a
container, its first layer's) or {DEFAULT_FEATURES}, unless --shape is given.

exit status: 0 all passed, 1 a check failed, 2 usage error or a target that cannot
be imported or constructed. Colour only on a terminal and never with NO_COLOR set.
"""


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shape must be comma-separated positive integers such as 4,3, got {text!r}"
        ) from None
    if not shape or any(size < 1 for size in shape):
        raise argparse.ArgumentTypeError(f"shape sizes must be positive, got {text!r}")
    return shape


def _range(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"range must be LO,HI with LO < HI, such as 0.05,0.95, got {text!r}"
        ) from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"range needs LO < HI, got {text!r}")
    return low, high


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Check hand-written backward passes against finite differences.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("targets", nargs="+", metavar="TARGET", help="what to check (see below)")
    parser.add_argument(
        "--shape",
        type=_shape,
        action="append",
        metavar="N,D",
        help=f"input shape (default: {DEFAULT_BATCH},D with D from the module, else "
        f"{DEFAULT_FEATURES}); repeat it for each array argument of a function pair, in order",
    )
    parser.add_argument(
        "--target",
        choices=_TARGET_KINDS,
        dest="target_kind",
        help="a loss's targets: like the prediction, class indices, one-hot rows or "
        "probability rows (default: by loss, see below)",
    )
    parser.add_argument(
        "--range",
        type=_range,
        metavar="LO,HI",
        dest="input_range",
        help="range of input values (default: -2,2; 0.05,0.95 for a BCE loss)",
    )
    parser.add_argument(
        "--target-first",
        action="store_const",
        const=True,
        help="the loss's forward takes (target, prediction) (default: read from its "
        "parameter names)",
    )
    parser.add_argument(
        "--batch-dim",
        type=int,
        choices=(0, 1),
        help="the input's batch dimension: 1 for modules whose inputs are (features, batch) "
        "(default: 0)",
    )
    parser.add_argument(
        "--dtype",
        choices=_DTYPES,
        default="float64",
        help="the dtype the check computes in (float64); float32 checks a module written "
        "in float32, with steps and tolerances for float32",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "full", "fast"),
        help="full Jacobian, random projections (fast), or by size (auto, the default)",
    )
    parser.add_argument(
        "--eps", type=_positive, help="relative finite-difference step (default: by dtype)"
    )
    parser.add_argument("--atol", type=_positive, help="absolute tolerance (1e-5; float32: 1e-4)")
    parser.add_argument("--rtol", type=_positive, help="relative tolerance (1e-3; float32: 1e-2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for inputs and checks (0)")
    parser.add_argument("--eval", action="store_true", help="check in eval mode")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only failures and summary")
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="full report for every target"
    )
    return parser


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What happened to one target: ``status`` is pass, fail, error or skipped."""

    name: str
    status: str
    reason: str = ""
    report: Any = None
    seconds: float = 0.0


#: The check() options the command line passes on, when (and only when) the user gave them.
_CHECK_OPTIONS = (
    "target_kind",
    "target_first",
    "input_range",
    "shape",
    "batch_dim",
    "mode",
    "eps",
    "atol",
    "rtol",
)


def _check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options for :func:`gradcheck.check`: those the user gave; check() decides the rest."""
    import torch

    options = {
        name: getattr(args, name) for name in _CHECK_OPTIONS if getattr(args, name) is not None
    }
    if args.shape:  # one --shape is the input's shape; several, one per input
        options["shape"] = args.shape[0] if len(args.shape) == 1 else args.shape
    options["dtype"] = getattr(torch, args.dtype)
    options["seed"] = args.seed
    if args.eval:
        options["train"] = False
    return options


def _run(target: Target, args: argparse.Namespace) -> _Outcome:
    import gradcheck

    assert target.build is not None
    started = time.perf_counter()
    module = target.build()
    try:
        report = gradcheck.check(module, **_check_options(args))
    except (TypeError, ValueError) as error:  # options the checker rejects: a usage error
        return _Outcome(target.name, "error", f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    if not report.checkable:
        return _Outcome(
            target.name, "error", f"cannot be checked: {report.unsupported}", report, seconds
        )
    status = "pass" if report.passed else "fail"
    return _Outcome(target.name, status, report=report, seconds=seconds)


def _outcomes(args: argparse.Namespace) -> list[_Outcome]:
    """Resolve and check every target. Torch's global generator is seeded with ``--seed``
    before each TARGET is resolved, so modules that draw their initial weights from it (an
    nnlite or torch ``Linear``) get the same weights on every run; the caller's generator state
    is restored afterwards."""
    import torch

    features = args.shape[0][-1] if args.shape else DEFAULT_FEATURES
    with torch.random.fork_rng(devices=[]):
        return [
            outcome for spec in args.targets for outcome in _spec_outcomes(spec, features, args)
        ]


def _spec_outcomes(spec: str, features: int, args: argparse.Namespace) -> list[_Outcome]:
    import torch

    torch.manual_seed(args.seed)
    try:
        channels = args.shape[0][1] if args.shape and len(args.shape[0]) == 4 else None
        targets = resolve(spec, features=features, channels=channels)
    except TargetError as error:
        return [_Outcome(spec, "error", str(error))]
    outcomes = []
    for target in targets:
        if target.skipped:
            outcomes.append(_Outcome(target.name, "skipped", target.skipped))
        elif target.error:
            outcomes.append(_Outcome(target.name, "error", target.error))
        else:
            outcomes.append(_run(target, args))
    return outcomes


def _exit_status(outcomes: Sequence[_Outcome]) -> int:
    statuses = {outcome.status for outcome in outcomes}
    if "error" in statuses:
        return EXIT_USAGE
    return EXIT_FAIL if "fail" in statuses else EXIT_PASS


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------

_COLOURS = {"pass": "32", "fail": "31", "error": "33", "skipped": "2"}
_LABELS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def _use_colour(stream: TextIO) -> bool:
    """Colour on a terminal only, never with NO_COLOR set (https://no-color.org)."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, status: str, colour: bool) -> str:
    return f"\033[{_COLOURS[status]}m{text}\033[0m" if colour else text


def _worst(report: Any) -> str:
    """``worst error 1.2e-11 <= tol 1.0e-05 (input_gradient: weight)``, or empty."""
    worst = report.worst
    if worst is None or None in (worst.numerical, worst.analytical, worst.tolerance):
        return ""
    check = next((c.name for c in report.checks if any(t is worst for t in c.tensors)), "")
    error = abs(worst.numerical - worst.analytical)
    verdict = "<=" if worst.passed else ">"
    return f"worst error {error:.1e} {verdict} tol {worst.tolerance:.1e} ({check}: {worst.tensor})"


def _summary(report: Any) -> str:
    """The verdict's detail: the worst gradient entry, and the failed checks by name."""
    failed = [c.name for c in report.failures]
    worst = _worst(report)
    if not failed:
        return worst
    if report.worst is not None and not report.worst.passed:
        return f"{worst}; failed: {', '.join(failed)}"
    return f"failed: {', '.join(failed)}"


def _failure_lines(report: Any, verbose: bool) -> list[str]:
    """What failed and where: the check and its message, then each failing tensor's worst entry
    (index, numerical vs analytical, error vs tolerance); the module's traceback with -v."""
    lines = []
    for check in report.failures:
        first, *rest = (check.message or "failed").rstrip().splitlines() or ["failed"]
        lines.append(f"{check.name}: {first}")
        lines.extend(f"  {line}" for line in rest)
        lines.extend(f"  {tensor.describe()}" for tensor in check.tensors if not tensor.passed)
        if check.traceback:
            trace = check.traceback.rstrip().splitlines()
            lines.extend(f"  {line}" for line in (trace if verbose else trace[-1:]))
    return lines


def _print_text(outcomes: Sequence[_Outcome], args: argparse.Namespace, seconds: float) -> None:
    out = sys.stdout
    colour = _use_colour(out)
    width = min(max((len(o.name) for o in outcomes), default=0), 40)
    for outcome in outcomes:
        if outcome.status == "skipped" and not args.verbose:
            continue
        if outcome.status == "pass" and args.quiet:
            continue
        label = _paint(f"{_LABELS[outcome.status]:<5}", outcome.status, colour)
        detail = outcome.reason if outcome.report is None else _summary(outcome.report)
        print(f"{label} {outcome.name:<{width}}  {detail}".rstrip(), file=out)
        if outcome.status == "fail":
            print(_indent("\n".join(_failure_lines(outcome.report, args.verbose))), file=out)
        elif outcome.report is not None and args.verbose:
            print(_indent(str(outcome.report)), file=out)
    counts = {s: sum(o.status == s for o in outcomes) for s in _LABELS}
    summary = f"{counts['pass']} passed, {counts['fail']} failed"
    if counts["error"]:
        summary += f", {counts['error']} could not be checked"
    if counts["skipped"]:
        summary += f", {counts['skipped']} skipped"
    print(f"{summary} in {seconds:.1f}s", file=out)


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" if line else "" for line in text.splitlines())


def _print_json(outcomes: Sequence[_Outcome], args: argparse.Namespace, status: int) -> None:
    options = {
        key: value
        for key, value in vars(args).items()
        if key not in ("targets", "json", "quiet", "verbose")
    }
    document = {
        "passed": status == EXIT_PASS,
        "exit_status": status,
        "options": options,
        "targets": [
            {
                "target": outcome.name,
                "status": outcome.status,
                "reason": outcome.reason or None,
                "seconds": round(outcome.seconds, 4),
                "report": outcome.report.to_dict() if outcome.report is not None else None,
            }
            for outcome in outcomes
        ],
    }
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (``sys.argv[1:]`` when None) and return the exit status.

    Args:
        argv: the arguments after the program name.

    Returns:
        0 when every target passes, 1 when any check fails, 2 for usage errors and targets that
        cannot be imported or constructed.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # argparse exits on --help (0) and usage errors (2)
        return int(exit.code or 0)
    started = time.perf_counter()
    outcomes = _outcomes(args)
    status = _exit_status(outcomes)
    try:
        if args.json:
            _print_json(outcomes, args, status)
        else:
            _print_text(outcomes, args, time.perf_counter() - started)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into head: stop writing, keep the exit status
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return status
