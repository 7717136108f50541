"""Check one TARGET and say what happened, whatever its code does.

The command line's unit of work, the same in-process (``--no-isolate``) and in a child process
(:mod:`gradcheck.isolate`): :func:`plan` resolves a TARGET string into the modules it names,
:func:`run_target` checks one of them. Neither lets anything escape: an exception, a
``SystemExit`` or a ``KeyboardInterrupt`` from the user's code, or a failure of the checker
itself, becomes that target's :class:`Outcome`, naming what happened and when (:data:`PHASE`:
import, constructor, forward, backward, ...).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PHASE", "Outcome", "Planned", "describe_exit", "plan", "run_target", "tracking"]


@dataclass
class Outcome:
    """What happened to one target: ``status`` is pass, fail, error or skipped.

    ``output`` is what the target's code printed (captured, never on stdout); ``detail`` the
    traceback of an exception the checker did not expect, shown with ``-v``.
    """

    name: str
    status: str
    reason: str = ""
    report: Any = None
    seconds: float = 0.0
    output: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Planned:
    """One module a TARGET names: ``status`` is check, skipped or error (with the reason)."""

    name: str
    status: str
    reason: str = ""


class Phase:
    """Where the current target is, in words; :mod:`gradcheck.isolate` mirrors it into memory
    the parent process reads when a child dies."""

    def __init__(self) -> None:
        self.text = "start"
        self.check = ""
        self.sink: Callable[[str], None] | None = None

    def set(self, text: str) -> None:
        self.text = text
        if self.sink is not None:
            self.sink(text)


#: The phase of the target being checked in this process.
PHASE = Phase()

#: Calls into the user's code, and how a phase names them.
_ACTIONS = (
    ("forward", "forward"),
    ("backward", "backward"),
    ("params", "listing parameters"),
    ("promote", "converting parameters"),
)


def _wrap(function: Callable, label: Callable[..., str]) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        PHASE.set(label(*args, **kwargs))
        return function(*args, **kwargs)

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


def _action(name: str) -> Callable[..., str]:
    return lambda *args, **kwargs: f"{name} ({PHASE.check} check)" if PHASE.check else name


def _session_call(function: Callable) -> Callable:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        check = kwargs.get("check", next((a for a in args if isinstance(a, str)), ""))
        PHASE.check = check
        return function(self, *args, **kwargs)

    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


@contextlib.contextmanager
def tracking() -> Iterator[None]:
    """Record in :data:`PHASE` each call into the user's code while the block runs.

    The checker's own call sites (the adapters' forward, backward, parameter listing, the
    session's calls naming the check, the constructor calls of targets) are wrapped for the
    block and restored after; the user's objects are never touched.
    """
    from gradcheck import _adapt, session, targets

    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, wrapped: Callable[[Callable], Callable]) -> None:
        original = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if callable(original):
            saved.append((owner, name, original))
            setattr(owner, name, wrapped(original))

    for cls in {getattr(_adapt, "Adapted", None), getattr(_adapt, "TorchAdapted", None)} - {None}:
        for method, label in _ACTIONS:
            patch(cls, method, lambda f, label=label: _wrap(f, _action(label)))
    session_class = getattr(session, "Session", None)
    for method in ("forward", "backward"):
        patch(session_class, method, _session_call)
    patch(targets, "_instantiate", lambda f: _wrap(f, _constructor))
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _constructor(value: Any, *args: Any, **kwargs: Any) -> str:
    name = getattr(value, "name", None)
    return f"constructor of {name}" if isinstance(name, str) else "constructor"


# ---------------------------------------------------------------------------------------------
# What happened
# ---------------------------------------------------------------------------------------------

_EXITS = re.compile(r"\braised (SystemExit|KeyboardInterrupt|GeneratorExit)\b")
_MEMORY = re.compile(r"MemoryError|can't allocate memory|not enough memory|out of memory", re.I)


def describe_exit(exc: BaseException) -> str:
    """What an exception that ends a program means here: ``called sys.exit(3)``, ..."""
    from gradcheck.session import exception_text

    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt"
    if isinstance(exc, MemoryError):
        return "ran out of memory (MemoryError)"
    return f"raised {exception_text(exc)}"


def _classify(name: str, report: Any, seconds: float) -> Outcome:
    """Pass, fail, or error: a module that tried to exit, ran out of memory, or that the checker
    cannot understand could not be checked (exit 2), which is not the same as wrong (exit 1)."""
    if not report.checkable:
        return Outcome(name, "error", f"cannot be checked: {report.unsupported}", report, seconds)
    for check in report.failures:
        message = _short(check.message or "").split("; not run after this failure")[0]
        if _EXITS.search(message):
            reason = f"the module tried to end the program in {check.name}: {message}"
            return Outcome(name, "error", reason, report, seconds)
        if _MEMORY.search(message):
            reason = f"out of memory in {check.name}: {message}"
            return Outcome(name, "error", reason, report, seconds)
    return Outcome(name, "pass" if report.passed else "fail", report=report, seconds=seconds)


def _short(text: str, limit: int = 300) -> str:
    """The first line of ``text``, at most ``limit`` characters (torch's messages run long)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _raised_by_module(exc: BaseException) -> bool:
    """Whether the innermost frame that is neither torch's nor the standard library's belongs to
    the user's code rather than to gradcheck."""
    package = os.path.dirname(os.path.abspath(__file__))
    library = (os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(_torch_file())))
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = os.path.abspath(frame.filename)
        if path.startswith(package + os.sep):
            return False
        if not path.startswith(library):
            return True
    return False


def _torch_file() -> str:
    import torch

    return torch.__file__ or ""


def _unexpected(name: str, exc: BaseException, started: float) -> Outcome:
    from gradcheck.session import exception_text

    if isinstance(exc, SystemExit | KeyboardInterrupt):
        reason = f"the module {describe_exit(exc)} during {PHASE.text}"
    elif isinstance(exc, MemoryError):
        reason = f"out of memory (MemoryError) during {PHASE.text}"
    elif _raised_by_module(exc):
        reason = f"the module raised {_short(exception_text(exc))} during {PHASE.text}"
    else:
        reason = (
            f"gradcheck could not check it: {_short(exception_text(exc))} during {PHASE.text} "
            "(-v shows the traceback)"
        )
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Outcome(name, "error", reason, seconds=time.perf_counter() - started, detail=detail)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def plan(spec: str, seed: int, resolving: dict[str, Any]) -> tuple[list[Planned], list[Any]]:
    """Resolve ``spec`` with torch's generator seeded with ``seed`` (so modules drawing their
    weights from it get the same ones in every process) and ``resolving`` (the keyword
    arguments of :func:`gradcheck.targets.resolve`); return what each module is to get, and the
    :class:`gradcheck.targets.Target` objects (one per planned entry)."""
    import torch

    from gradcheck.limits import target_problem
    from gradcheck.targets import TargetError, resolve

    problem = target_problem(spec)
    if problem:
        return [Planned(spec[:200], "error", problem)], []
    PHASE.check = ""
    PHASE.set(f"import of {spec}")
    torch.manual_seed(seed)
    try:
        targets = resolve(spec, **resolving)
    except TargetError as error:
        return [Planned(spec, "error", str(error))], []
    except BaseException as exc:  # the user's code ended the program, or the checker failed
        outcome = _unexpected(spec, exc, time.perf_counter())
        return [Planned(spec, "error", outcome.reason)], []
    planned = []
    for target in targets:
        if target.skipped:
            planned.append(Planned(target.name, "skipped", target.skipped))
        elif target.error:
            planned.append(Planned(target.name, "error", target.error))
        else:
            planned.append(Planned(target.name, "check"))
    return planned, targets


def run_target(target: Any, options: dict[str, Any]) -> Outcome:
    """Build ``target`` and check it with ``options`` (the keyword arguments of check())."""
    import gradcheck
    from gradcheck.targets import TargetError

    started = time.perf_counter()
    PHASE.check = ""
    try:
        PHASE.set(f"constructor of {target.name}")
        module = target.build()
        PHASE.set("the check")
        report = gradcheck.check(module, **options)
    except TargetError as error:  # constructing it afresh failed
        return Outcome(target.name, "error", str(error), seconds=time.perf_counter() - started)
    except BaseException as exc:  # whatever the module does, a report
        return _unexpected(target.name, exc, started)
    return _classify(target.name, report, time.perf_counter() - started)
