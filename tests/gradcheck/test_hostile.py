"""Hostile modules (tests/gradcheck/corpus/hostile.py) against the command line: whatever a module
does, its target gets a verdict naming what happened and when, the other targets are still
checked, the exit status is 0, 1 or 2, and gradcheck never shows a traceback of its own.

Runs that could hurt the machine (memory blow-ups) run in a subprocess under a hard address-space
limit and a timeout; hangs under a 1 s --timeout.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from gradcheck.cli import main

pytestmark = pytest.mark.isolated  # these tests are about the child processes

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"
ROOT = Path(__file__).parents[2]


def target(name: str) -> str:
    return f"{HOSTILE}:{name}"


def json_main(capsys, *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


# (class, status, words the reason or failure must hold) in a child process of its own.
ISOLATED = [
    ("ExitsInForward", "error", r"called sys.exit\(0\) during forward|forward raised SystemExit"),
    ("ExitsInBackward", "error", r"sys.exit\(3\) during backward|backward raised SystemExit: 3"),
    (
        "ExitsInConstructor",
        "error",
        "ExitsInConstructor\\(\\) failed: SystemExit: constructor says goodbye",
    ),
    ("HardExitInBackward", "error", "the process exited with status 7 during backward"),
    ("InterruptsInBackward", "error", "raised KeyboardInterrupt during backward|backward raised K"),
    ("CrashesInForward", "error", r"interpreter crashed: killed by signal 11 \(SIGSEGV\) during f"),
    ("KillsItselfInForward", "error", r"killed by signal 9 \(SIGKILL\) during forward"),
    ("SpinsInForward", "error", "timed out after 1 s during forward"),
    ("SleepsInBackward", "error", "timed out after 1 s during backward"),
    ("PrintsForever", "error", "timed out after 1 s during forward"),
    ("ReadsStdinInForward", "fail", "forward raised EOFError"),
    ("RaisesUnprintable", "fail", "backward raised BadStr: <its message could not be printed>"),
    ("ParamRaisesLater", "fail", "listing parameters raised RuntimeError: param is gone"),
    ("ShapeChanges", "fail", "after \\(4, 3\\) for the same input shape|lost the batch"),
    ("SparseOutput", "fail", "forward returned a sparse_coo tensor; return a dense one"),
    ("MetaOutput", "fail", "forward returned a tensor on the meta device"),
    ("ResizesInput", "fail", "forward resized input 0 from \\(4, 3\\) to \\(1,\\)"),
    ("ReturnsHugeOutput", "fail", "lost the batch dimension"),
    ("ReplacesStdout", "pass", ""),
    ("PrintsEverywhere", "pass", ""),
]


def _said(entry: dict) -> str:
    """The reason, or the failed checks' messages."""
    report = entry["report"] or {"checks": []}
    messages = [c["message"] for c in report["checks"] if not c["passed"]]
    return "\n".join([entry["reason"] or "", *messages])


@pytest.mark.parametrize(("name", "status", "words"), ISOLATED, ids=[c[0] for c in ISOLATED])
def test_each_hostile_module_gets_a_verdict_saying_what_happened(capsys, name, status, words):
    timeout = "1" if "timed out" in words else "30"
    code, document = json_main(capsys, target(name), target("Tanh"), "--timeout", timeout)
    first, second = document["targets"]
    assert (first["target"], first["status"]) == (target(name), status), first
    assert re.search(words, _said(first)), _said(first)
    assert second["status"] == "pass", "the next target is still checked"
    assert code == document["exit_status"] == {"pass": 0, "fail": 1, "error": 2}[status]


@pytest.mark.parametrize("where", [[], ["--no-isolate"]], ids=["isolated", "in-process"])
def test_checker_failures_are_errors_with_the_traceback_under_verbose(capsys, monkeypatch, where):
    from gradcheck import checks

    # len(session) raises inside gradcheck's own code: a bug of the checker, not the module's.
    monkeypatch.setattr(checks, "_run", len)  # forked children inherit the patch
    status = main([target("Tanh"), "-v", *where])
    out = capsys.readouterr().out
    assert status == 2
    assert "ERROR" in out and "(-v shows the traceback)" in out
    assert "Traceback (most recent call last)" in out, "-v shows where the checker failed"


def test_output_of_a_module_is_captured_never_on_stdout(capsys):
    status, document = json_main(capsys, target("PrintsEverywhere"))
    assert status == 0
    output = document["targets"][0]["output"]
    assert "forward called" in output and "{not json" in output and "raw bytes on fd 1" in output


def test_output_of_a_module_goes_to_stderr_in_text_mode(capsys):
    assert main([target("PrintsEverywhere")]) == 0
    captured = capsys.readouterr()
    assert "forward called" not in captured.out
    assert f"----- {target('PrintsEverywhere')} printed:" in captured.err
    assert "raw bytes on fd 1" in captured.err


def test_endless_output_is_kept_bounded(capsys):
    _, document = json_main(capsys, target("PrintsForever"), "--timeout", "1")
    output = document["targets"][0]["output"]
    assert len(output) < 70_000
    assert "more bytes of output not kept" in output


def test_a_file_that_exits_or_hangs_when_imported_is_reported_and_the_rest_run(capsys, tmp_path):
    exits = tmp_path / "exits_on_import.py"
    exits.write_text("import sys\nprint('hello from import')\nsys.exit(4)\n")
    hangs = tmp_path / "hangs_on_import.py"
    hangs.write_text("while True:\n    pass\n")
    status, document = json_main(capsys, str(exits), str(hangs), "nnlite.Tanh", "--timeout", "1")
    assert status == 2
    first, second, third = document["targets"]
    assert first["status"] == "error" and "called sys.exit(4) during import of" in first["reason"]
    assert (
        second["status"] == "error" and "timed out after 1 s during import of" in second["reason"]
    )
    assert third["status"] == "pass"


# --------------------------------------------------------------------------------- in-process

IN_PROCESS = [
    ("ExitsInForward", "error", r"called sys.exit\(0\) during forward|forward raised SystemExit"),
    ("ExitsInBackward", "error", r"sys.exit\(3\) during backward|backward raised SystemExit: 3"),
    (
        "ExitsInConstructor",
        "error",
        "ExitsInConstructor\\(\\) failed: SystemExit: constructor says goodbye",
    ),
    ("InterruptsInBackward", "error", "raised KeyboardInterrupt during backward|backward raised K"),
    ("RaisesUnprintable", "fail", "<its message could not be printed>"),
    ("ShapeChanges", "fail", "after \\(4, 3\\) for the same input shape|lost the batch"),
    ("SparseOutput", "fail", "forward returned a sparse_coo tensor; return a dense one"),
    ("ResizesInput", "fail", "forward resized input 0 from \\(4, 3\\) to \\(1,\\)"),
    ("ParamRaisesLater", "fail", "param is gone"),
]


@pytest.mark.parametrize(("name", "status", "words"), IN_PROCESS, ids=[c[0] for c in IN_PROCESS])
def test_in_process_exits_and_interrupts_from_the_module_are_reported(capsys, name, status, words):
    code, document = json_main(capsys, target(name), target("Tanh"), "--no-isolate")
    first, second = document["targets"]
    assert first["status"] == status and re.search(words, _said(first)), first
    assert second["status"] == "pass"
    assert code == {"pass": 0, "fail": 1, "error": 2}[status]


def test_in_process_json_stays_valid_when_the_module_writes_to_the_descriptor(capfd):
    status = main([target("PrintsEverywhere"), "--no-isolate", "--json"])
    captured = capfd.readouterr()
    document = json.loads(captured.out)
    assert status == 0
    assert "forward called" in document["targets"][0]["output"]
    assert "raw bytes on fd 1" in captured.err, "C-level writes go to stderr"


def test_in_process_a_file_exiting_on_import_is_an_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    exits = tmp_path / "exits_here.py"
    exits.write_text("raise SystemExit('bye')\n")
    status, document = json_main(capsys, str(exits), "nnlite.Tanh", "--no-isolate")
    assert status == 2
    assert "called sys.exit('bye') during import of" in document["targets"][0]["reason"]
    assert document["targets"][1]["status"] == "pass"


# ------------------------------------------------------------------ memory, under a hard limit


def _limited(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return preexec


@pytest.mark.parametrize("name", ["AllocatesInForward", "GrowsAListInForward"])
def test_memory_blow_ups_end_at_the_limit_and_the_rest_run(name):
    result = subprocess.run(
        [sys.executable, "-m", "gradcheck", target(name), target("Tanh")]
        + ["--memory-limit", "300M", "--json", "--timeout", "30"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        preexec_fn=_limited(3 << 30),  # the whole run, whatever happens: 3 GB of address space
    )
    document = json.loads(result.stdout)
    assert result.returncode == 2, result.stderr
    first, second = document["targets"]
    assert first["status"] == "error"
    assert "out of memory in forward" in first["reason"]
    assert "a target may use 300 MB beyond the interpreter" in first["reason"]
    assert second["status"] == "pass"
    assert "Traceback" not in result.stderr


def test_the_child_limit_is_never_above_the_limit_the_run_has(monkeypatch):
    from gradcheck import _child

    monkeypatch.setattr(resource, "getrlimit", lambda which: (2 << 30, 4 << 30))
    assert _child._child_limit(10 << 30) == 2 << 30
    monkeypatch.setattr(
        resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )
    assert _child._child_limit(1 << 30) == _child._vm_size() + (1 << 30)


# ------------------------------------------------------------------------------- zero sizes


@pytest.mark.parametrize(
    "spec", ["nnlite.Linear(0, 3)", "nnlite.Linear(3, 0)", "nnlite.Sequential(nnlite.Linear(0, 2))"]
)
def test_zero_size_modules_pass_with_an_input_of_their_size(capsys, spec):
    status, document = json_main(capsys, spec, "--no-isolate")
    assert status == 0, document["targets"][0]
    assert document["targets"][0]["report"]["options"]["input_shapes"][0][-1] == int(
        spec.split("(")[-1].split(",")[0]
    )


ZERO_SIZES = {
    "Tanh-(0, 3)": (lambda nn: nn.Tanh(), (0, 3)),
    "Tanh-(4, 0)": (lambda nn: nn.Tanh(), (4, 0)),
    "Linear(3, 2)-(0, 3)": (lambda nn: nn.Linear(3, 2), (0, 3)),
    "Linear(0, 2)-(4, 0)": (lambda nn: nn.Linear(0, 2), (4, 0)),
    "Linear(3, 0)-(4, 3)": (lambda nn: nn.Linear(3, 0), (4, 3)),
}


@pytest.mark.parametrize("mode", ["auto", "full"])  # vjp and fast still misjudge empty Jacobians
@pytest.mark.parametrize("case", ZERO_SIZES)
def test_zero_size_inputs_are_checked_not_crashed_on(case, mode):
    import torch

    import gradcheck
    import nnlite

    make, shape = ZERO_SIZES[case]
    report = gradcheck.check(make(nnlite), torch.zeros(shape, dtype=torch.float64), mode=mode)
    assert report.passed, report
