"""What the command line accepts: every option in range and every TARGET bounded, checked
before anything runs, each refusal naming the value and the fix.

Nothing here imports torch or the user's code: the command line calls :func:`option_problems`
and :func:`target_problem` first, so a bad run ends in milliseconds with a usage error (exit 2).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

__all__ = [
    "MAX_TARGET_CHARS",
    "option_problems",
    "parse_size",
    "target_problem",
]

#: The longest TARGET accepted (a path and a call), in characters.
MAX_TARGET_CHARS = 4096
_MAX_DIGITS = 100
_MAX_NESTING = 16
_MAX_NAME_PARTS = 32
_MAX_NAME_CHARS = 200
#: Bounds on options: a seed torch and numpy both take, input sizes a check can hold.
MAX_SEED = 2**32 - 1
_MAX_DIMS = 6
_MAX_SIZE = 10**7
_MAX_ENTRIES = 10**8
_MAX_RANGE = 1e6
_MAX_TIMEOUT = 7 * 24 * 3600
_MAX_JOBS = 256
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``300M``, ``2G``, ``1.5GB``, ``536870912`` (bytes, as ``--max-memory`` reads it) ->
    bytes; ValueError otherwise."""
    match = _SIZE.fullmatch(text) if len(text) < 40 else None
    if match is None:
        raise ValueError(f"expected a size such as 300M or 2G, got {text!r}")
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not 16 << 20 <= size <= 1 << 40:
        raise ValueError(f"a size from 16M to 1T, got {text!r}")
    return int(size)


def _expression(spec: str) -> str:
    """The part of a TARGET that is parsed as Python (after ``file.py:``, or all of it)."""
    path, sep, rest = spec.rpartition(".py:")
    if sep:
        return rest
    return "" if spec.endswith(".py") else spec


def target_problem(spec: str) -> str | None:
    """Why ``spec`` is refused before it is parsed or imported, or None when it is in bounds."""
    if len(spec) > MAX_TARGET_CHARS:
        return (
            f"target of {len(spec)} characters is too long (at most {MAX_TARGET_CHARS}): name a "
            "file or a class, with short literal arguments"
        )
    if "\0" in spec:
        return f"target {spec[:60]!r} holds a NUL character"
    text = _expression(spec)
    shown = spec if len(spec) <= 80 else spec[:77] + "..."
    digits = max((len(m) for m in re.findall(r"\d+", text)), default=0)
    if digits > _MAX_DIGITS:
        return (
            f"target {shown!r} holds a number of {digits} digits (at most {_MAX_DIGITS}): "
            "constructor arguments are sizes and rates, write them plainly"
        )
    depth = deepest = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        deepest = max(deepest, depth)
    signs = max((len(m.replace(" ", "")) for m in re.findall(r"[-+~][-+~ ]*", text)), default=0)
    if deepest > _MAX_NESTING or signs > _MAX_NESTING:
        return (
            f"target {shown!r} nests too deep ({max(deepest, signs)} levels, at most "
            f"{_MAX_NESTING}): write the arguments plainly"
        )
    for name in re.findall(r"[A-Za-z_][\w.]*", text):
        parts = name.split(".")
        if len(parts) > _MAX_NAME_PARTS or any(len(p) > _MAX_NAME_CHARS for p in parts):
            return (
                f"target {shown!r} holds a dotted name of {len(parts)} parts and "
                f"{len(name)} characters (at most {_MAX_NAME_PARTS} parts of "
                f"{_MAX_NAME_CHARS}): name the class as 'pkg.mod.Class'"
            )
    return None


def _finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)


def option_problems(args: Any) -> list[str]:
    """Every option of the parsed ``args`` that is out of range, as messages that name the
    value and what to pass instead (empty when all are fine)."""
    problems = []
    eps, atol, rtol = args.eps, args.atol, args.rtol
    if eps is not None and not (_finite(eps) and 0 < eps < 1):
        problems.append(
            f"--eps is a relative step, 0 < eps < 1 (such as 1e-6; default by dtype), got {eps!r}"
        )
    if atol is not None and not (_finite(atol) and 0 <= atol <= 1):
        problems.append(
            f"--atol must be from 0 to 1 (default 1e-5): a larger absolute tolerance accepts "
            f"almost any gradient, got {atol!r}"
        )
    if rtol is not None and not (_finite(rtol) and 0 <= rtol <= 1):
        problems.append(
            f"--rtol must be from 0 to 1 (default 1e-3): a larger relative tolerance accepts "
            f"any gradient, got {rtol!r}"
        )
    if atol == 0 and rtol == 0:
        problems.append("--atol 0 with --rtol 0 accepts no rounding at all: raise one of them")
    if not 0 <= args.seed <= MAX_SEED:
        problems.append(f"--seed must be from 0 to {MAX_SEED} (2**32 - 1), got {args.seed}")
    shapes = args.shape or []
    if shapes and isinstance(shapes[0], int):  # one shape rather than one per input
        shapes = [shapes]
    for shape in shapes:
        entries = math.prod(shape)
        if len(shape) > _MAX_DIMS or max(shape) > _MAX_SIZE or entries > _MAX_ENTRIES:
            problems.append(
                f"--shape {','.join(map(str, shape))} is too large ({entries} entries): "
                f"at most {_MAX_DIMS} sizes of up to {_MAX_SIZE}, {_MAX_ENTRIES} entries in all; "
                "gradients are checked on small inputs such as 4,3"
            )
    if args.input_range is not None:
        low, high = args.input_range
        if not all(_finite(v) and abs(v) <= _MAX_RANGE for v in (low, high)):
            problems.append(
                f"--range needs finite values within +-{_MAX_RANGE:g}, got {low!r},{high!r}"
            )
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not (_finite(timeout) and 0 < timeout <= _MAX_TIMEOUT):
        problems.append(
            f"--timeout is seconds per target, 0 < timeout <= {_MAX_TIMEOUT} (default 60), got "
            f"{timeout!r}"
        )
    jobs = getattr(args, "jobs", 1)
    if not 1 <= jobs <= _MAX_JOBS:
        problems.append(f"-j is how many targets run at once, 1 to {_MAX_JOBS}, got {jobs}")
    budget = getattr(args, "max_memory", None)
    if budget is not None:
        from gradcheck.budget import parse_memory  # the checker's own reading of it

        try:
            if parse_memory(budget) > 1 << 40:
                raise OverflowError
        except ValueError as error:
            problems.append(f"--max-memory: {error}")
        except OverflowError:
            problems.append(f"--max-memory is at most 1T (such as 512M or 2G), got {budget!r}")
    junit = getattr(args, "junit_xml", None)
    if junit is not None:
        folder = os.path.dirname(os.path.abspath(junit))
        if os.path.isdir(junit) or not os.path.isdir(folder):
            problems.append(
                f"--junit-xml {junit!r}: needs a file name in an existing folder, such as "
                "report.xml"
            )
    return problems
