"""The command line: ``python -m gradcheck TARGET...`` (also installed as ``gradcheck``).

A thin shell over :func:`gradcheck.check`: it validates every option and TARGET
(:mod:`gradcheck.limits`), resolves each TARGET (:mod:`gradcheck.targets`; importing a file or
module runs its code), checks each module in a child process of its own
(:mod:`gradcheck.isolate`, or in this process with ``--no-isolate``) and prints one line per
target (or one JSON document, and a JUnit file). Exit status: 0 when every target passes, 1 when
any check fails, 2 for usage errors and for targets that cannot be imported, constructed or
checked (2 wins over 1: something could not even be checked).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from gradcheck import isolate, limits
from gradcheck.in_process import fd_stdout_to_stderr, run_in_process
from gradcheck.inputs import DEFAULT_BATCH, DEFAULT_FEATURES
from gradcheck.junit import write_junit
from gradcheck.runner import Outcome
from gradcheck.verdicts import EXIT_FAIL, EXIT_PASS, EXIT_USAGE, print_json, print_text, write_json

__all__ = ["main"]


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

A FILE or module TARGET is imported, and so executed, as `python FILE` would
run it (but not its `if __name__ == "__main__":` block): only name code you would
run. Each target runs in a child process of its own, with --timeout and
--memory-limit; an exit, crash, hang or memory blow-up there is that target's
ERROR, and the other targets are still checked. What targets print goes to
stderr (with --json: into the document), never to stdout.

exit status: 0 all passed, 1 a check failed, 2 usage error or a target that cannot
be imported, constructed or checked (an exit, a crash, a timeout, out of memory).
Colour only on a terminal and never with NO_COLOR set.
"""

#: Seconds one target may take by default (importing and constructing, then its check).
DEFAULT_TIMEOUT = 60.0
#: Memory a child may add by default, beyond the interpreter's own: the checker's budget
#: (--max-memory, 1 GB by default) twice over, plus 1 GB for the module.
_DEFAULT_CHILD_MEMORY = 3 << 30


class _UsageError(Exception):
    """A bad command line: argparse's message, raised instead of exiting."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit; we decide
        raise _UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise _UsageError(message or "") if status else SystemExit(0)


def _memory(text: str) -> int:
    try:
        return limits.parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--memory-limit: {error} (a number alone is bytes)"
        ) from None


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
    parser = _Parser(
        prog="gradcheck",
        description="Check hand-written backward passes against finite differences.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
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
        "--numpy",
        action="store_const",
        const=True,
        help="check the module on numpy arrays (default: decided from what it holds and what "
        "its file imports)",
    )
    parser.add_argument(
        "--batch-dim",
        choices=("0", "1", "none"),
        help="the input's batch dimension: 1 for modules whose inputs are (features, batch), "
        "none for modules that take one sample with no batch dimension, a (C, H, W) image "
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
        choices=("auto", "full", "vjp", "fast"),
        help="full Jacobian, entry-wise vector-Jacobian products (vjp), random projections "
        "(fast), or per tensor by size and --max-memory (auto, the default)",
    )
    parser.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory the gradient comparison may use, e.g. 512M, 2G (default 1G)",
    )
    parser.add_argument(
        "--oracle",
        choices=("auto", "finite-differences", "autograd"),
        help="what backward is compared with: autograd's differentiation of forward once finite "
        "differences confirm it along random directions, else finite differences (auto, the "
        "default); finite differences alone; autograd without the confirmation",
    )
    parser.add_argument(
        "--eps", type=_positive, help="relative finite-difference step (default: by dtype)"
    )
    parser.add_argument("--atol", type=_positive, help="absolute tolerance (1e-5; float32: 1e-4)")
    parser.add_argument("--rtol", type=_positive, help="relative tolerance (1e-3; float32: 2e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed for inputs and checks (0)")
    parser.add_argument("--eval", action="store_true", help="check in eval mode")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout, in every case"
    )
    parser.add_argument(
        "--junit-xml", metavar="FILE", help="also write a JUnit report (one testcase per target)"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="check N targets at once, each in its own process (1)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"the most one target may take to import and construct, then to check "
        f"({DEFAULT_TIMEOUT:g}); not with --no-isolate",
    )
    parser.add_argument(
        "--memory-limit",
        type=_memory,
        metavar="SIZE",
        help="memory one target's process may add to the interpreter's own, such as 500M "
        "or 2G (default: 1G + 2 x --max-memory, never above a limit gradcheck runs under)",
    )
    parser.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="check targets in this process (for a debugger): no timeout or memory limit, and "
        "an exit or crash of the interpreter ends the run",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only failures and summary")
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="full report for every target"
    )
    return parser


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


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
    "max_memory",
    "oracle",
    "numpy",
)


def _check_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options for :func:`gradcheck.check`: those the user gave; check() decides the rest."""
    import torch

    options = {
        name: getattr(args, name) for name in _CHECK_OPTIONS if getattr(args, name) is not None
    }
    if args.batch_dim is not None:
        options["batch_dim"] = None if args.batch_dim == "none" else int(args.batch_dim)
    if args.shape:  # one --shape is the input's shape; several, one per input
        options["shape"] = args.shape[0] if len(args.shape) == 1 else args.shape
    options["dtype"] = getattr(torch, args.dtype)
    options["seed"] = args.seed
    if args.eval:
        options["train"] = False
    return options


def _resolving(args: argparse.Namespace) -> dict[str, Any]:
    """The sizes :func:`gradcheck.targets.resolve` derives constructor arguments from."""
    features = args.shape[0][-1] if args.shape else DEFAULT_FEATURES
    channels = args.shape[0][1] if args.shape and len(args.shape[0]) == 4 else None
    return {"features": features, "channels": channels}


def _child_memory(args: argparse.Namespace) -> int:
    """What one child may add to its address space: --memory-limit, else derived from the
    checker's own budget (--max-memory) where the command line has one."""
    if args.memory_limit is not None:
        return args.memory_limit
    budget = getattr(args, "max_memory", None)
    if isinstance(budget, str):  # validated by limits.option_problems
        from gradcheck.budget import parse_memory

        budget = parse_memory(budget)
    if isinstance(budget, int) and budget > 0:
        return 2 * budget + (1 << 30)
    return _DEFAULT_CHILD_MEMORY


def _outcomes(args: argparse.Namespace) -> list[Outcome]:
    options = _check_options(args)
    if args.isolate and not isolate.available():
        print(
            "gradcheck: no os.fork on this system: targets run in this process, with no "
            "timeout or memory limit",
            file=sys.stderr,
        )
    if not args.isolate or not isolate.available():
        return run_in_process(
            args.targets, resolving=_resolving(args), seed=args.seed, options=options
        )
    return isolate.run_isolated(
        args.targets,
        resolving=_resolving(args),
        seed=args.seed,
        options=options,
        timeout=args.timeout,
        jobs=args.jobs,
        memory_limit=_child_memory(args),
    )


def _exit_status(outcomes: Sequence[Outcome]) -> int:
    statuses = {outcome.status for outcome in outcomes}
    if "error" in statuses:
        return EXIT_USAGE
    return EXIT_FAIL if "fail" in statuses else EXIT_PASS


def _wants_json(argv: Sequence[str]) -> bool:
    options = argv[: list(argv).index("--")] if "--" in argv else argv
    return "--json" in options


def _parse(argv: list[str], out: TextIO) -> argparse.Namespace | int:
    """The parsed and validated arguments, or the exit status once help or a usage error has
    been printed (as JSON with --json)."""
    parser = _parser()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            args = parser.parse_intermixed_args(argv)
        problems = limits.option_problems(args)
        if problems:
            raise _UsageError("; ".join(problems))
        if args.junit_xml:  # a module that changes directory in-process cannot move it
            args.junit_xml = os.path.abspath(args.junit_xml)
    except SystemExit:  # --help
        if _wants_json(argv):
            write_json({"passed": True, "exit_status": 0, "help": printed.getvalue()}, out)
        else:
            out.write(printed.getvalue())
        return EXIT_PASS
    except _UsageError as error:
        message = str(error).strip()
        if _wants_json(argv):
            document = {"passed": False, "exit_status": EXIT_USAGE, "error": message}
            write_json({**document, "targets": []}, out)
        else:
            print(f"{parser.format_usage()}gradcheck: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (``sys.argv[1:]`` when None) and return the exit status.

    Args:
        argv: the arguments after the program name.

    Returns:
        0 when every target passes, 1 when any check fails, 2 for usage errors and targets that
        cannot be imported, constructed or checked.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    out = sys.stdout  # ours: a target that replaces sys.stdout does not redirect the report
    try:
        args = _parse(argv, out)
        if isinstance(args, int):
            return args
        started = time.perf_counter()
        redirect = args.json and not (args.isolate and isolate.available())
        with fd_stdout_to_stderr() if redirect else contextlib.nullcontext():
            outcomes = _outcomes(args)
        status = _exit_status(outcomes)
        seconds = time.perf_counter() - started
        if args.junit_xml:
            write_junit(args.junit_xml, outcomes, seconds)
        if args.json:
            print_json(outcomes, args, status, out)
        else:
            print_text(outcomes, args, seconds, out)
        out.flush()
    except BrokenPipeError:  # e.g. piped into head: stop writing, keep the exit status
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except Exception as error:  # a failure of gradcheck itself: said plainly, never a traceback
        message = f"gradcheck failed: {type(error).__name__}: {error} (please report it)"
        if _wants_json(argv):
            write_json({"passed": False, "exit_status": EXIT_USAGE, "error": message}, out)
        else:
            print(message, file=sys.stderr)
        return EXIT_USAGE
    return status
