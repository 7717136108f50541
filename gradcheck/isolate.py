"""Each target in a child process of its own: an exit, a crash, a hang or a memory blow-up in
the user's code ends that child, never the run.

The children are forked from the command line's process after torch and the checker are
imported, so each starts in milliseconds. A child resolves its TARGET again (modules are built
with torch's generator seeded alike, so every child sees the same weights), checks one module,
and sends the :class:`gradcheck.runner.Outcome` back through a pipe. Its stdout and stderr go to
another pipe (what the module prints is captured, bounded, and reported with its target); stdin
is ``/dev/null``. Limits, set in the child before any user code runs:

- time: the parent kills the child's process group after ``timeout`` seconds of one stage
  (importing and constructing, then checking), and a CPU-time limit backs that up;
- memory: an address-space limit (``RLIMIT_AS``) of the interpreter's own size at the fork plus
  ``memory_limit`` bytes, never above a limit this process already runs under;
- no core dumps, and the child dies with its parent (``PR_SET_PDEATHSIG`` on Linux).

A child that dies is reported with how and when: ``killed by signal 11 (SIGSEGV) during backward
(input_gradient check)``, ``timed out after 60 s during forward (forward check)``. The phase comes
from :data:`gradcheck.runner.PHASE`, mirrored into memory shared with the parent.

Isolation protects the run from accidents, not from code written to attack the checker: the
child runs as you, with your files.
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gradcheck._child import (
    _HEADER,
    _IMPORTED,
    _PHASE_BYTES,
    _child,
    _Job,
)
from gradcheck.runner import Outcome, Planned

__all__ = ["available", "run_isolated"]

_OUTPUT_BYTES = 64 * 1024
_CONTROL_BYTES = 64 * 1024 * 1024


def available() -> bool:
    """Whether targets can run in child processes here (``os.fork``: Linux, macOS, BSDs)."""
    return hasattr(os, "fork")


@dataclass
class _Child:
    pid: int
    job: _Job
    control: int
    output: int
    phase: mmap.mmap
    deadline: float
    control_data: bytearray = field(default_factory=bytearray)
    output_data: bytearray = field(default_factory=bytearray)
    output_dropped: int = 0
    #: The target whose outcome the child owes (None: the plan, for a resolving child).
    current: int | None = None
    planned: bool = False
    timed_out: bool = False
    control_open: bool = True
    output_open: bool = True
    #: When the result pipe closed: the child has a second to exit before it is killed.
    closed_at: float | None = None


# ---------------------------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------------------------


def _start(job: _Job, settings: dict, running: dict[int, _Child]) -> _Child:
    control_r, control_w = os.pipe()
    output_r, output_w = os.pipe()
    phase = mmap.mmap(-1, _PHASE_BYTES)
    phase[:6] = b"start\0"
    settings = dict(settings)
    settings["close"] = [control_r, output_r] + [
        fd for c in running.values() for fd in (c.control, c.output)
    ]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with warnings.catch_warnings():  # 3.12+ warns when threads exist; the child execs no C
        warnings.simplefilter("ignore", DeprecationWarning)  # code that holds their locks
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _child(job, control_w, output_w, phase, settings)
    os.close(control_w)
    os.close(output_w)
    for fd in (control_r, output_r):
        os.set_blocking(fd, False)
    child = _Child(pid, job, control_r, output_r, phase, time.monotonic() + settings["timeout"])
    child.current = job.target_index
    return child


def _read(fd: int) -> bytes | None:
    """What is there to read; b"" at end of file, None when nothing is ready."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None


def _drain_output(child: _Child) -> None:
    while child.output_open:
        data = _read(child.output)
        if data is None:
            return
        if not data:
            child.output_open = False
            return
        room = _OUTPUT_BYTES - len(child.output_data)
        child.output_data += data[: max(room, 0)]
        child.output_dropped += max(len(data) - max(room, 0), 0)


def _take_output(child: _Child) -> str:
    """What the child printed since the last take; what a first child's imports printed is
    labelled as such (the child marks its end)."""
    _drain_output(child)
    data = bytes(child.output_data)
    imported, marked, rest = data.partition(_IMPORTED)
    if marked:
        label = f"[printed while importing {child.job.spec}]\n" if imported.strip() else ""
        data = label.encode() + imported + rest if label else rest
    text = data.decode("utf-8", "replace")
    if child.output_dropped:
        text += f"\n[... {child.output_dropped} more bytes of output not kept]\n"
    child.output_data.clear()
    child.output_dropped = 0
    return text


def _phase(child: _Child) -> str:
    raw = bytes(child.phase[:_PHASE_BYTES]).split(b"\0", 1)[0]
    return raw.decode("utf-8", "replace") or "start"


def _death(child: _Child, status: int, timeout: float) -> str:
    """How the child ended, in words, and in which phase."""
    when = f"during {_phase(child)}"
    if child.timed_out:
        return f"timed out after {timeout:g} s {when} (--timeout raises the limit)"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        text = f"killed by signal {number} ({name}) {when}"
        if number == signal.SIGSEGV:
            text = f"the interpreter crashed: {text}"
        elif number == signal.SIGKILL:
            text += " (out of memory, or killed from outside)"
        elif number == getattr(signal, "SIGXCPU", None):
            text += " (its CPU-time limit)"
        return text
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"the process exited with status {code} {when} (os._exit, or the interpreter failed)"


def _messages(child: _Child) -> list[Any]:
    """Every complete message the child has sent so far."""
    messages = []
    while child.control_open:
        data = _read(child.control)
        if data is None:
            break
        if not data:
            child.control_open = False
            break
        child.control_data += data
        if len(child.control_data) > _CONTROL_BYTES:
            raise ValueError("more data than any report")
    while len(child.control_data) >= _HEADER:
        size = int.from_bytes(child.control_data[:_HEADER], "big")
        if len(child.control_data) < _HEADER + size:
            break
        payload = bytes(child.control_data[_HEADER : _HEADER + size])
        del child.control_data[: _HEADER + size]
        messages.append(pickle.loads(payload))  # noqa: S301 - our own child, see the docstring
    return messages


def _kill(child: _Child) -> None:
    for kill, target in ((os.killpg, child.pid), (os.kill, child.pid)):
        try:
            kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_isolated(
    specs: Sequence[str],
    *,
    resolving: dict[str, Any],
    seed: int,
    options: dict[str, Any],
    timeout: float,
    jobs: int = 1,
    memory_limit: int | None = None,
) -> list[Outcome]:
    """Resolve and check every TARGET in ``specs``, each module in a child process.

    Args:
        specs: the TARGET strings.
        resolving: the keyword arguments of :func:`gradcheck.targets.resolve` (sizes for
            derived constructor arguments).
        seed: torch's generator is seeded with it before each TARGET is resolved.
        options: the keyword arguments of :func:`gradcheck.check`.
        timeout: seconds each stage of a child may take.
        jobs: children running at once.
        memory_limit: bytes a child may add to its address space; None: no limit of ours.

    Returns:
        One outcome per module, in the order of ``specs`` and of each TARGET's modules.
    """
    settings = {
        "resolving": resolving,
        "seed": seed,
        "options": options,
        "timeout": timeout,
        "memory_limit": memory_limit,
        "parent": os.getpid(),
    }
    plans: dict[int, list[Planned]] = {}
    imports: dict[int, str] = {}  # what a TARGET's imports printed, shown with its first module
    results: dict[tuple[int, int | None], Outcome] = {}
    pending = deque(_Job(i, spec, name=spec) for i, spec in enumerate(specs))
    running: dict[int, _Child] = {}

    def received(child: _Child, message: Any) -> None:
        kind, index, payload = message
        if kind == "plan":
            plans[child.job.spec_index] = payload
            checkable = [k for k, p in enumerate(payload) if p.status == "check"]
            child.planned = True
            child.current = checkable[0] if checkable else None
            child.deadline = time.monotonic() + timeout
            job = child.job
            pending.extend(
                _Job(job.spec_index, job.spec, k, payload[k].name) for k in checkable[1:]
            )
        else:
            payload.output = _take_output(child)
            if memory_limit and payload.status == "error" and "out of memory" in payload.reason:
                payload.reason += (
                    f" (a target may use {memory_limit >> 20} MB beyond the interpreter; "
                    "--memory-limit raises it)"
                )
            results[(child.job.spec_index, index)] = payload
            child.current = None

    def finished(child: _Child, status: int) -> None:
        owed = child.current is not None or (child.job.target_index is None and not child.planned)
        if owed:
            reason = _death(child, status, timeout)
            if child.planned or child.job.target_index is not None:
                name = plans[child.job.spec_index][child.current].name
            else:
                name = child.job.spec
            results[(child.job.spec_index, child.current)] = Outcome(
                name, "error", reason, output=_take_output(child)
            )
        elif child.planned:  # nothing to check: what its imports printed goes with the plan
            imports[child.job.spec_index] = _take_output(child)
        for fd in (child.control, child.output):
            os.close(fd)
        child.phase.close()
        del running[child.pid]

    def reap(child: _Child) -> None:
        """Collect a child whose result pipe closed; one that lingers a second is killed."""
        if child.closed_at is None:
            child.closed_at = time.monotonic()
        pid, status = os.waitpid(child.pid, os.WNOHANG)
        if pid == 0 and time.monotonic() - child.closed_at > 1.0:
            _kill(child)
            pid, status = os.waitpid(child.pid, 0)
        if pid:
            finished(child, status)

    try:
        while pending or running:
            while pending and len(running) < jobs:
                child = _start(pending.popleft(), settings, running)
                running[child.pid] = child
            now = time.monotonic()
            for child in list(running.values()):
                if now >= child.deadline and not child.timed_out:
                    child.timed_out = True
                    _kill(child)
            fds = [
                fd
                for c in running.values()
                for fd, open_ in ((c.control, c.control_open), (c.output, c.output_open))
                if open_
            ]
            waiting = [c.deadline for c in running.values() if not c.timed_out]
            wait = min(waiting, default=time.monotonic() + 0.01) - time.monotonic()
            if any(c.closed_at is not None for c in running.values()):
                wait = min(wait, 0.01)
            if fds:
                select.select(fds, [], [], max(wait, 0.0))
            else:
                time.sleep(max(min(wait, 0.01), 0.0))
            for child in list(running.values()):
                _drain_output(child)
                try:
                    for message in _messages(child):
                        received(child, message)
                except Exception as exc:  # what the child sent cannot be read
                    _kill(child)
                    child.control_open = False
                    child.output_data += f"\n[gradcheck: unreadable result: {exc!r}]\n".encode()
                if not child.control_open:
                    reap(child)
    except KeyboardInterrupt:
        for child in running.values():
            _kill(child)
            os.waitpid(child.pid, 0)
            key = (child.job.spec_index, child.current)
            results.setdefault(key, Outcome(child.job.name, "error", "interrupted (Ctrl-C)"))
        for job in pending:
            results.setdefault(
                (job.spec_index, job.target_index),
                Outcome(job.name, "error", "not checked: interrupted (Ctrl-C)"),
            )
    return _ordered(specs, plans, results, imports)


def _ordered(
    specs: Sequence[str],
    plans: dict[int, list[Planned]],
    results: dict[tuple[int, int | None], Outcome],
    imports: dict[int, str],
) -> list[Outcome]:
    """The outcomes in the order of ``specs`` and of each one's plan; what a TARGET's imports
    printed goes with its first outcome when no checked module took it."""
    outcomes = []
    for i, spec in enumerate(specs):
        if i not in plans:
            outcomes.append(results.get((i, None)) or Outcome(spec, "error", "not checked"))
            continue
        first = len(outcomes)
        for k, planned in enumerate(plans[i]):
            if planned.status != "check":
                outcomes.append(Outcome(planned.name, planned.status, planned.reason))
            else:
                outcomes.append(
                    results.get((i, k)) or Outcome(planned.name, "error", "not checked")
                )
        if i in imports and first < len(outcomes):
            outcomes[first].output = imports[i] + outcomes[first].output
    return outcomes
