"""What the command line prints: one line per target, details of failures, the table of
verdicts and the summary; or one JSON document.

Plain functions of :class:`gradcheck.runner.Outcome` lists; nothing here runs a check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from gradcheck.runner import Outcome

__all__ = ["EXIT_FAIL", "EXIT_PASS", "EXIT_USAGE", "print_json", "print_text", "write_json"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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


def print_text(
    outcomes: Sequence[Outcome], args: argparse.Namespace, seconds: float, out: TextIO
) -> None:
    colour = _use_colour(out)
    width = min(max((len(o.name) for o in outcomes), default=0), 40)
    for outcome in outcomes:
        if outcome.status == "skipped" and not args.verbose:
            continue
        if outcome.status == "pass" and args.quiet:
            continue
        label = _paint(f"{_LABELS[outcome.status]:<5}", outcome.status, colour)
        detail = outcome.reason or _summary(outcome.report)
        print(f"{label} {outcome.name:<{width}}  {detail}".rstrip(), file=out)
        if outcome.status == "fail":
            print(_indent("\n".join(_failure_lines(outcome.report, args.verbose))), file=out)
        elif outcome.report is not None and args.verbose:
            print(_indent(str(outcome.report)), file=out)
        if outcome.detail and args.verbose:
            print(_indent(outcome.detail), file=out)
        if outcome.output:  # what the target printed: on stderr, so stdout stays ours
            _print_output(outcome, args.verbose)
        if outcome.report is not None and not args.verbose:
            # What the checker worked out or around (a stored output, an input gradient not
            # compared, another input shape): part of the verdict, so never hidden.
            for note in outcome.report.notes:
                print(_indent(f"note: {note}"), file=out)
    _print_table(outcomes, out, colour, args.quiet)
    counts = {s: sum(o.status == s for o in outcomes) for s in _LABELS}
    summary = f"{counts['pass']} passed, {counts['fail']} failed"
    if counts["error"]:
        summary += f", {counts['error']} could not be checked"
    if counts["skipped"]:
        summary += f", {counts['skipped']} skipped"
    print(f"{summary} in {seconds:.1f}s", file=out)


#: Lines of a target's own output shown on stderr without -v (a forward runs thousands of times).
_OUTPUT_LINES = 10


def _print_output(outcome: Outcome, verbose: bool) -> None:
    lines = outcome.output.rstrip("\n").splitlines()
    print(f"----- {outcome.name} printed:", file=sys.stderr)
    shown = lines if verbose else lines[:_OUTPUT_LINES]
    print("\n".join(shown), file=sys.stderr)
    if len(shown) < len(lines):
        print(
            f"----- {len(lines) - len(shown)} more lines (-v shows them; --json and "
            "--junit-xml keep them)",
            file=sys.stderr,
        )


def _print_table(outcomes: Sequence[Outcome], out: TextIO, colour: bool, quiet: bool) -> None:
    """Every target's verdict together, after the details, when some did not pass (with -q,
    only those)."""
    shown = [o for o in outcomes if o.status != "skipped"]
    if len(shown) < 2 or all(o.status == "pass" for o in shown):
        return
    if quiet:
        shown = [o for o in shown if o.status != "pass"]
    width = min(max(len(o.name) for o in shown), 50)
    print("verdicts:", file=out)
    for outcome in shown:
        label = _paint(f"{_LABELS[outcome.status]:<5}", outcome.status, colour)
        if outcome.status == "fail":
            why = ", ".join(c.name for c in outcome.report.failures)
        else:
            why = outcome.reason
        why = why if len(why) <= 70 else why[:67] + "..."
        print(f"  {label} {outcome.name:<{width}}  {why}".rstrip(), file=out)


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" if line else "" for line in text.splitlines())


def _jsonable(value: Any) -> Any:
    """``value`` with every float JSON cannot hold (inf, nan) as a string."""
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json(document: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(_jsonable(document), indent=2, default=str, allow_nan=False) + "\n")


def print_json(
    outcomes: Sequence[Outcome], args: argparse.Namespace, status: int, out: TextIO
) -> None:
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
                "output": outcome.output,
                "detail": outcome.detail or None,
            }
            for outcome in outcomes
        ],
    }
    write_json(document, out)
