"""How each tensor's gradient is compared, chosen from a memory budget.

Three methods, from the most to the least sensitive, with what each holds in memory (float64,
8 bytes an entry; ``M`` output entries, ``n`` entries of the tensor, ``K`` random upstream
gradients, ``L`` random directions):

- ``full``: every Jacobian entry. The analytical Jacobian (``M x n``, one backward per output
  entry) and the numerical one, compared chunk by chunk: ``2 M n`` entries at most.
- ``vjp``: entry-wise vector-Jacobian products. ``K`` backwards give ``g_k . J[:, j]`` for every
  entry ``j``; the forwards the full mode makes (one per entry) give the numerical side of every
  ``j`` at once. ``K n`` per stored table (a handful of them) plus a chunk of outputs.
- ``fast``: ``K x L`` scalar projections ``g_k . J u_l``: ``(K + L) (n + M)``.

``mode="auto"`` takes, per tensor and independently of the others, ``full`` when its Jacobian has
at most ``max_full`` entries, the output at most :data:`FULL_MAX_OUTPUTS` (one backward each)
and it fits, else ``vjp`` when that fits, else ``fast``; a tensor that
fits no method is refused before anything runs, naming its size and the option to raise.
"""

from __future__ import annotations

import re

from gradcheck.behaviour import Unsupported

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "TooLarge",
    "choose",
    "chunk_rows",
    "format_bytes",
    "parse_memory",
]

#: Full mode runs one backward per output entry; beyond this many outputs the entry-wise
#: method (``K`` backwards) is far faster, and "auto" takes it.
FULL_MAX_OUTPUTS = 2048
#: The default budget: about 1 GB beyond the module's own memory.
DEFAULT_MAX_MEMORY = 1 << 30
_BYTES = 8
#: Tables of ``K x n`` the entry-wise method holds at its peak: the analytical gradients (as
#: backward gave them and stacked), the sums per entry, the comparison's tables and their
#: temporaries (measured in a subprocess by tests/gradcheck/test_scale.py).
_VJP_TABLES = 16
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class TooLarge(Unsupported):
    """A tensor whose gradient cannot be compared within the memory budget by any method."""


def parse_memory(text: str | int | float) -> int:
    """Return a size in bytes from ``1073741824``, ``"512M"``, ``"1.5G"`` or ``"2GB"``."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.fullmatch(
            r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)i?b?\s*", str(text), re.I
        )
        if not match:
            raise ValueError(
                f"max_memory must be a size in bytes such as 1073741824, '512M' or '1.5G', "
                f"got {text!r}"
            )
        value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not value >= 1 << 20:
        raise ValueError(f"max_memory must be at least 1M (1048576 bytes), got {text!r}")
    return int(value)


def format_bytes(size: float) -> str:
    """``1.5 GB``, ``12 MB``, ``640 kB``: a size as a reader wants it."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} bytes"


def full_bytes(M: int, n: int) -> int:
    """Peak of the full method: both Jacobians of one tensor."""
    return 2 * M * n * _BYTES


def vjp_bytes(M: int, n: int, K: int) -> int:
    """Peak of the entry-wise method with the smallest chunk (one row of outputs per forward)."""
    return (_VJP_TABLES * K * n + 4 * M + 3 * n) * _BYTES


def fast_bytes(M: int, n: int, K: int, L: int) -> int:
    """Peak of the projection method: directions, displacements, outputs and analytical rows."""
    return (3 * L * n + 5 * L * M + K * (n + M) + 3 * n) * _BYTES


def choose(
    mode: str, M: int, n: int, *, K: int, L: int, max_full: int, max_memory: int, name: str
) -> str:
    """Return ``"full"``, ``"vjp"`` or ``"fast"`` for one tensor (see the module docstring).

    Raises:
        TooLarge: when the method asked for (or every method, in auto mode) needs more than
            ``max_memory``; the message names the sizes and the option.
    """
    if M == 0 or n == 0:
        return "full"  # an empty Jacobian: nothing to compare, in any mode
    need = {
        "full": full_bytes(M, n),
        "vjp": vjp_bytes(M, n, K),
        "fast": fast_bytes(M, n, K, L),
    }
    if mode != "auto":
        if need[mode] <= max_memory:
            return mode
        method = mode
    else:
        if M * n <= max_full and M <= FULL_MAX_OUTPUTS and need["full"] <= max_memory:
            return "full"
        for method in ("vjp", "fast"):
            if need[method] <= max_memory:
                return method
    raise TooLarge(
        f"{name}: comparing the gradient of {n:,} entries against {M:,} outputs needs "
        f"{format_bytes(need[method])} in mode {mode!r}, over "
        f"max_memory={format_bytes(max_memory)}; "
        "raise it (max_memory=..., --max-memory 4G), use a smaller input, or mode='fast'"
    )


#: Arrays of one chunk's size the entry-wise sums hold at once (the outputs, their differences
#: reordered by sample, which changed, absolute values, squares, and the products' operands).
_CHUNK_COPIES = 12


def chunk_rows(M: int, max_memory: int, reserved: int) -> int:
    """How many rows of ``M`` outputs one chunk may hold once ``reserved`` bytes are taken (at
    most 256: larger chunks gain no speed)."""
    free = max(max_memory - reserved, 0)
    return max(1, min(256, free // (_CHUNK_COPIES * max(M, 1) * _BYTES)))


def refuse_inputs(sizes: list[int], *, K: int, L: int, max_memory: int) -> str | None:
    """Why inputs of these entry counts cannot be checked within ``max_memory``, or None.

    Asked before anything runs, when the output's size is not known yet: the least any method
    needs (projections, whatever the output) must fit.
    """
    for i, n in enumerate(sizes):
        need = fast_bytes(1, n, K, L)
        if need > max_memory:
            return (
                f"input {i} has {n:,} entries: comparing its gradient needs at least "
                f"{format_bytes(need)}, over max_memory={format_bytes(max_memory)}; raise it "
                "(max_memory=..., --max-memory 4G) or check a smaller input"
            )
    return None
