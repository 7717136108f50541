"""``--no-isolate``: every target checked in this process, for a debugger.

What the targets print is captured per target (Python's streams; with
:func:`fd_stdout_to_stderr`, what C code writes to descriptor 1 goes to stderr), so stdout stays
the checker's. A real Ctrl-C (SIGINT) stops the run after the target it interrupts; a
``KeyboardInterrupt`` the module raises is only that target's error. Nothing here survives an
``os._exit`` or a crash of the interpreter: that is what :mod:`gradcheck.isolate` is for.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from gradcheck.runner import Outcome, plan, run_target, tracking

__all__ = ["fd_stdout_to_stderr", "run_in_process"]


@contextlib.contextmanager
def _captured(into: list[str]) -> Iterator[None]:
    """Send what the target's code prints to a buffer (in-process), never to our stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            yield
        finally:
            into.append(buffer.getvalue())


@contextlib.contextmanager
def _interrupts(flag: list[bool]) -> Iterator[None]:
    """Tell a real Ctrl-C (SIGINT, which sets ``flag``) from a ``KeyboardInterrupt`` the
    module raises: the first stops the run after the current target, the second is that
    target's error."""

    def interrupted(signum: int, frame: Any) -> None:
        flag.append(True)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, interrupted)
    except ValueError:  # not the main thread: Ctrl-C stops the target only
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_in_process(
    specs: Sequence[str], *, resolving: dict[str, Any], seed: int, options: dict[str, Any]
) -> list[Outcome]:
    """Resolve and check every TARGET in ``specs`` in this process (the arguments are those of
    :func:`gradcheck.isolate.run_isolated`). Torch's global generator is seeded with ``seed``
    before each TARGET is resolved, so modules that draw their initial weights from it (an
    nnlite or torch ``Linear``) get the same weights as in a child; the caller's generator
    state is restored afterwards."""
    import torch

    outcomes = []
    stopped: list[bool] = []
    with torch.random.fork_rng(devices=[]), tracking(), _interrupts(stopped):
        for spec in specs:
            if stopped:
                outcomes.append(Outcome(spec, "error", "not checked: interrupted (Ctrl-C)"))
                continue
            try:
                _spec(spec, resolving, seed, options, stopped, outcomes)
            except KeyboardInterrupt:  # Ctrl-C outside the module's code
                stopped.append(True)
                outcomes.append(Outcome(spec, "error", "interrupted (Ctrl-C)"))
    return outcomes


def _spec(
    spec: str,
    resolving: dict[str, Any],
    seed: int,
    options: dict[str, Any],
    stopped: list[bool],
    outcomes: list[Outcome],
) -> None:
    """Check ``spec``'s modules, appending each outcome as it comes (so that a Ctrl-C keeps
    those already made)."""
    printed: list[str] = []
    with _captured(printed):
        planned, targets = plan(spec, seed, resolving)
    for entry, target in zip(planned, targets or [None] * len(planned), strict=True):
        if stopped:
            outcomes.append(Outcome(entry.name, "error", "not checked: interrupted (Ctrl-C)"))
        elif entry.status != "check":
            outcomes.append(Outcome(entry.name, entry.status, entry.reason))
        else:
            with _captured(printed):
                outcomes.append(run_target(target, options))
            outcomes[-1].output = "".join(printed)
            printed.clear()


@contextlib.contextmanager
def fd_stdout_to_stderr() -> Iterator[None]:
    """In-process, send what C code or ``os.write(1, ...)`` prints to stderr while targets
    run, so that stdout holds only our output."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError):  # no usable descriptors (an embedding host): nothing to do
        yield
        return
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
