"""The child side of :mod:`gradcheck.isolate`: what a forked child does, from the fork to its
``os._exit``, and the messages it sends the parent.

A child sets its limits, redirects its streams into the parent's pipes, resolves its TARGET
again and checks one module; what it prints goes to the output pipe, what it found (the plan,
then one :class:`gradcheck.runner.Outcome`) to the control pipe, each message a pickle behind an
8-byte length.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import pickle
import signal
import sys
from dataclasses import dataclass
from typing import Any

from gradcheck.runner import PHASE, Outcome, plan, run_target, tracking

#: Bytes of the shared memory the child mirrors its phase into.
_PHASE_BYTES = 512
#: Bytes of a message's length header.
_HEADER = 8

#: Written by a first child between what its imports printed and what its checks print.
_IMPORTED = b"\0gradcheck:imported\0"


@dataclass
class _Job:
    spec_index: int
    spec: str
    #: The target to check; None: resolve the spec, then check its first module.
    target_index: int | None = None
    name: str = ""


def _send(fd: int, message: Any) -> None:
    try:
        data = pickle.dumps(message)
    except Exception:  # a report holding something that does not pickle: send its text
        kind, index, outcome = message
        outcome.detail = (outcome.detail + "\n" + str(outcome.report)).strip()
        outcome.report = None
        data = pickle.dumps((kind, index, outcome))
    data = len(data).to_bytes(_HEADER, "big") + data
    while data:
        data = data[os.write(fd, data) :]


def _vm_size() -> int:
    """This process's address space in bytes (0 where /proc is not available)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child_limit(extra: int) -> int:
    """The address-space limit of a child: its size now plus ``extra``, never above the limit
    this process already runs under."""
    import resource  # POSIX only, like os.fork

    limit = _vm_size() + extra
    for bound in resource.getrlimit(resource.RLIMIT_AS):
        if bound != resource.RLIM_INFINITY:
            limit = min(limit, bound)
    return limit


# The three functions below run only in a forked child, where coverage does not follow;
# tests/gradcheck/test_isolation.py and test_hostile.py check what they do from outside.


def _set_limits(memory_limit: int | None, timeout: float) -> None:  # pragma: no cover
    import resource

    infinity = resource.RLIM_INFINITY
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit is not None:
        limit = _child_limit(memory_limit)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = int(2 * timeout) + 10  # a backstop: the parent's clock ends hangs first
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if soft == infinity or cpu < soft:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard if hard != infinity else cpu + 5))


def _die_with_parent(parent: int) -> None:  # pragma: no cover
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the CPU-time limit still ends a hang
        pass
    if os.getppid() != parent:
        os._exit(0)


def _child(  # pragma: no cover
    job: _Job, control: int, output: int, phase: mmap.mmap, settings: dict
) -> None:
    """The child's whole life after the fork; it never returns."""
    status = 0
    try:
        os.setpgid(0, 0)
        _die_with_parent(settings["parent"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        for fd in (devnull, output, *settings["close"]):
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        streams = [
            open(fd, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
            for fd in (1, 2)
        ]
        sys.stdout, sys.stderr = streams
        import faulthandler

        faulthandler.enable(streams[1])

        def mirror(text: str) -> None:
            data = text.encode("utf-8", "replace")[: _PHASE_BYTES - 1]
            phase[: len(data) + 1] = data + b"\0"

        PHASE.sink = mirror
        _set_limits(settings["memory_limit"], settings["timeout"])
        with tracking():
            _child_job(job, control, settings, streams)
    except BaseException:  # the harness itself failed: the parent reports the exit status
        status = 70
    finally:
        os._exit(status)


def _child_job(job: _Job, control: int, settings: dict, streams: list[Any]) -> None:
    index = job.target_index
    if index is None:
        planned, targets = plan(job.spec, settings["seed"], settings["resolving"])
    else:  # its imports printed in the first child already: once is enough
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            planned, targets = plan(job.spec, settings["seed"], settings["resolving"])
    if index is None:
        for stream in streams:  # what the imports printed, then the mark that ends it
            stream.flush()
        os.write(1, _IMPORTED)
        _send(control, ("plan", None, planned))
        index = next((k for k, p in enumerate(planned) if p.status == "check"), None)
        if index is None:
            return
    elif index >= len(planned) or planned[index].name != job.name:
        outcome = Outcome(
            job.name,
            "error",
            f"{job.spec!r} named other modules in its own process (its exports or their order "
            "depend on something outside the module): check it with --no-isolate",
        )
        _send(control, ("outcome", index, outcome))
        return
    outcome = run_target(targets[index], settings["options"])
    for stream in streams:  # ours: the module may have replaced sys.stdout
        stream.flush()
    _send(control, ("outcome", index, outcome))
