"""Tests for gradcheck/isolate.py, runner.py, junit.py and limits.py: targets in child processes
give the verdicts they give in-process, in any order of -j, with JSON, JUnit and the final table
of verdicts; the parent survives whatever a child sends or does."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradcheck import isolate, limits
from gradcheck.cli import main
from gradcheck.runner import PHASE, Outcome, tracking

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"
BROKEN = Path(__file__).parent / "corpus" / "broken.py"


def target(name: str) -> str:
    return f"{HOSTILE}:{name}"


def json_main(capsys, *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def reports(document: dict) -> list[tuple]:
    return [(t["target"], t["status"], t["report"]) for t in document["targets"]]


def test_isolated_parallel_and_in_process_runs_give_the_same_reports(capsys):
    argv = ["nnlite", "nnlite.Linear(2, 3)"]
    _, isolated = json_main(capsys, *argv)
    _, parallel = json_main(capsys, *argv, "-j", "2")
    _, in_process = json_main(capsys, *argv, "--no-isolate")
    assert reports(isolated) == reports(parallel) == reports(in_process)
    assert [t["status"] for t in isolated["targets"]].count("pass") == 12


def test_final_table_lists_every_verdict_after_the_details(capsys):
    status = main([target("Tanh"), target("ExitsInBackward"), f"{BROKEN}:TanhWrongDerivative"])
    out = capsys.readouterr().out
    assert status == 2
    table = out[out.index("verdicts:") :].splitlines()
    assert table[1].startswith(f"  PASS  {target('Tanh')}")
    assert table[2].startswith(f"  ERROR {target('ExitsInBackward')}")
    assert table[3].startswith("  FAIL  ") and table[3].endswith("input_gradient")
    assert table[4].startswith("1 passed, 1 failed, 1 could not be checked in ")


def test_no_table_when_everything_passes(capsys):
    assert main(["nnlite.Tanh", "nnlite.ReLU"]) == 0
    assert "verdicts:" not in capsys.readouterr().out


def test_junit_report_has_a_testcase_per_target_and_a_failure_per_failed_check(capsys, tmp_path):
    path = tmp_path / "gradcheck.xml"
    argv = [target("Tanh"), target("PrintsEverywhere"), target("ExitsInBackward")]
    status = main([*argv, f"{BROKEN}:TanhWrongDerivative", "nnlite", "-v"])
    main([*argv, "--junit-xml", str(path), f"{BROKEN}:TanhWrongDerivative", "nnlite"])
    capsys.readouterr()
    assert status == 2
    suite = ET.parse(path).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert len(cases) == int(suite.get("tests")) == 4 + 16
    failure = cases[f"{BROKEN}:TanhWrongDerivative"].findall("failure")
    assert [f.get("type") for f in failure] == ["input_gradient"]
    assert "numerical" in failure[0].text and "analytical" in failure[0].text
    assert "SystemExit: 3" in cases[target("ExitsInBackward")].find("error").get("message")
    assert "forward called" in cases[target("PrintsEverywhere")].find("system-out").text
    assert cases["nnlite.Module"].find("skipped") is not None
    assert cases[target("Tanh")].find("failure") is None
    assert suite.get("errors") == "1" and suite.get("failures") == "1"


def test_junit_text_drops_characters_xml_cannot_hold(capsys, tmp_path):
    module = tmp_path / "noisy.py"
    module.write_text(
        "import sys, torch\n\n"
        "class Noisy:\n"
        "    def forward(self, x):\n"
        "        print('bell \\x07 nul \\x00 done')\n"
        "        self.y = torch.tanh(x)\n"
        "        return self.y\n\n"
        "    def backward(self, grad):\n"
        "        return grad * (1 - self.y**2)\n"
    )
    path = tmp_path / "out.xml"
    assert main([f"{module}:Noisy", "--junit-xml", str(path)]) == 0
    capsys.readouterr()
    out = ET.parse(path).getroot().find("testsuite/testcase/system-out").text
    assert "bell \ufffd nul \ufffd done" in out


def test_usage_errors_are_one_json_document_with_json(capsys):
    status, document = json_main(capsys, "nnlite.Tanh", "--atol", "inf")
    assert status == 2 and document["exit_status"] == 2 and document["targets"] == []
    assert "--atol must be from 0 to 1" in document["error"]
    status, document = json_main(capsys, "nnlite.Tanh", "--no-such-option")
    assert status == 2 and "unrecognized arguments: --no-such-option" in document["error"]
    status = main(["--help", "--json"])
    assert status == 0 and "path/to/file.py:Class" in json.loads(capsys.readouterr().out)["help"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("nnlite.Linear(" + "9" * 1000 + ", 3)", "holds a number of 1000 digits (at most 100)"),
        ("nnlite.Linear(" + "-" * 300 + "1, 3)", "nests too deep (300 levels, at most 16)"),
        ("nnlite.Linear(" * 40 + ")" * 40, "nests too deep (40 levels"),
        (".".join(["a"] * 3000), "too long"),
        (".".join(["a"] * 40), "a dotted name of 40 parts"),
        ("x" * 300, "a dotted name of 1 parts and 300 characters"),
        ("nnlite.Tanh\0", "holds a NUL character"),
    ],
    ids=["digits", "unary-minus", "nested-calls", "long", "many-parts", "long-part", "nul"],
)
def test_targets_beyond_the_parser_bounds_are_refused_and_the_rest_run(capsys, spec, words):
    status, document = json_main(capsys, spec, "nnlite.Tanh", "--no-isolate")
    assert status == 2
    first, second = document["targets"]
    assert first["status"] == "error" and words in first["reason"]
    assert second["status"] == "pass"


def test_a_file_target_keeps_its_path_out_of_the_expression_bounds():
    assert limits.target_problem("some/dir_123456789012345678901234567890/layers.py") is None
    assert "digits" in limits.target_problem("layers.py:Layer(" + "1" * 200 + ")")


def test_memory_sizes_parse_with_units():
    assert limits.parse_size("300M") == 300 << 20
    assert limits.parse_size("1.5g") == 3 << 29
    assert limits.parse_size("536870912") == 512 << 20
    with pytest.raises(ValueError, match="expected a size such as 300M"):
        limits.parse_size("x" * 100)


def test_the_child_memory_follows_the_checkers_budget_when_there_is_one():
    from argparse import Namespace

    from gradcheck.cli import _child_memory

    assert _child_memory(Namespace(memory_limit=300 << 20)) == 300 << 20
    assert _child_memory(Namespace(memory_limit=None)) == 3 << 30
    assert _child_memory(Namespace(memory_limit=None, max_memory="4G")) == 9 << 30


def test_an_unreadable_result_from_a_child_is_that_targets_error(capsys, monkeypatch):
    def garbage(data):
        raise ValueError("not a result")

    monkeypatch.setattr(isolate.pickle, "loads", garbage)
    status, document = json_main(capsys, "nnlite.Tanh")
    assert status == 2
    entry = document["targets"][0]
    assert entry["status"] == "error" and "nnlite.Tanh" in entry["target"]
    assert "unreadable result" in entry["output"]


def test_ctrl_c_ends_the_run_with_every_unfinished_target_reported(capsys, monkeypatch):
    calls = []

    def interrupted(*args):
        calls.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(isolate.select, "select", interrupted)
    status, document = json_main(capsys, "nnlite.Tanh", "nnlite.ReLU")
    assert calls and status == 2
    assert [(t["target"], t["status"]) for t in document["targets"]] == [
        ("nnlite.Tanh", "error"),
        ("nnlite.ReLU", "error"),
    ]
    assert "interrupted (Ctrl-C)" in document["targets"][1]["reason"]


def test_a_child_that_named_other_modules_is_an_error(capsys, tmp_path):
    module = tmp_path / "shifty.py"
    module.write_text(
        "import os, torch\n\n"
        "class Tanh:\n"
        "    def forward(self, x):\n"
        "        self.y = torch.tanh(x)\n"
        "        return self.y\n\n"
        "    def backward(self, grad):\n"
        "        return grad * (1 - self.y**2)\n\n\n"
        "class ReLU(Tanh):\n"
        "    pass\n\n\n"
        "__all__ = ['Tanh', 'ReLU'] if os.getpid() % 2 else ['ReLU', 'Tanh']\n"
    )
    outcomes = isolate.run_isolated(
        [str(module)] * 4,
        resolving={"features": 3, "channels": None},
        seed=0,
        options={},
        timeout=30,
    )
    capsys.readouterr()
    statuses = {o.status for o in outcomes}
    assert statuses <= {"pass", "error"}
    for outcome in outcomes:
        if outcome.status == "error":
            assert "named other modules in its own process" in outcome.reason


def test_phases_name_the_call_into_the_module_and_are_restored_after():
    import gradcheck
    from gradcheck import _adapt
    from tests.gradcheck.corpus.hostile import Tanh

    seen = []
    PHASE.sink = seen.append
    try:
        with tracking():
            gradcheck.check(Tanh())
    finally:
        PHASE.sink = None
    assert "forward (forward check)" in seen and "backward (backward check)" in seen
    assert not hasattr(_adapt.Adapted.forward, "__wrapped__")


def test_outcomes_pickle_with_their_reports():
    import pickle

    import gradcheck
    from tests.gradcheck.corpus.hostile import Tanh

    outcome = Outcome("t", "pass", report=gradcheck.check(Tanh()))
    assert pickle.loads(pickle.dumps(outcome)).report.to_dict() == outcome.report.to_dict()


# ----------------------------------------------------- the child's side, run in this process


def _fake_child(control: int = -1) -> isolate._Child:
    import mmap

    return isolate._Child(0, isolate._Job(0, "x"), control, -1, mmap.mmap(-1, 512), 0.0)


def _child_messages(job: isolate._Job) -> list:
    import io
    import os

    read, write = os.pipe()
    settings = {"seed": 0, "resolving": {"features": 3, "channels": None}, "options": {}}
    try:
        isolate._child_job(job, write, settings, [io.StringIO()])
    finally:
        os.close(write)
    child = _fake_child(read)
    messages = isolate._messages(child)
    os.close(read)
    return messages


def test_a_resolving_child_sends_the_plan_then_its_first_targets_outcome():
    (kind, _, planned), (kind2, index, outcome) = _child_messages(isolate._Job(0, "nnlite"))
    assert kind == "plan" and kind2 == "outcome"
    assert planned[index].status == "check" and outcome.name == planned[index].name
    assert outcome.status == "pass"


def test_a_resolving_child_of_a_target_with_nothing_to_check_sends_only_the_plan():
    [(kind, _, planned)] = _child_messages(isolate._Job(0, "nnlite.Lineer"))
    assert kind == "plan" and planned[0].status == "error"


def test_a_child_that_resolves_another_module_than_planned_says_so():
    [(_, _, outcome)] = _child_messages(isolate._Job(0, "nnlite", 1, "nnlite.Other"))
    assert outcome.status == "error" and "named other modules" in outcome.reason


def test_a_report_that_does_not_pickle_is_sent_as_text():
    import os

    class Unpicklable:
        def __reduce__(self):
            raise TypeError("no")

        def __str__(self):
            return "the report as text"

    read, write = os.pipe()
    isolate._send(write, ("outcome", 0, Outcome("t", "fail", report=Unpicklable())))
    os.close(write)
    [(_, _, outcome)] = isolate._messages(_fake_child(read))
    os.close(read)
    assert outcome.report is None and outcome.detail == "the report as text"


def test_a_partial_message_waits_for_the_rest():
    child = _fake_child()
    child.control_open = False
    child.control_data += (100).to_bytes(8, "big") + b"half"
    assert isolate._messages(child) == []


def test_too_much_data_from_a_child_is_that_targets_error(capsys, monkeypatch):
    monkeypatch.setattr(isolate, "_CONTROL_BYTES", 10)
    status, document = json_main(capsys, "nnlite.Tanh")
    assert status == 2 and "more data than any report" in document["targets"][0]["output"]


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (40, "killed by signal 40"),
        (24, "killed by signal 24 (SIGXCPU) during start (its CPU-time limit)"),
        (3 << 8, "the process exited with status 3 during start"),
    ],
    ids=["realtime-signal", "cpu-limit", "exit"],
)
def test_how_a_child_died_is_said_in_words(status, words):
    assert words in isolate._death(_fake_child(), status, 60)


def test_the_address_space_is_unknown_without_proc(monkeypatch):
    def no_proc(*args, **kwargs):
        raise OSError("no /proc")

    monkeypatch.setattr(isolate, "open", no_proc, raising=False)
    assert isolate._vm_size() == 0


def test_a_memory_blow_up_in_a_child_names_the_limit(capsys):
    # The child's address space is capped at its size plus 100 MB before the module runs.
    status, document = json_main(capsys, target("GrowsAListInForward"), "--memory-limit", "100M")
    assert status == 2
    reason = document["targets"][0]["reason"]
    assert "out of memory in forward" in reason and "100 MB beyond the interpreter" in reason


# ------------------------------------------------------------------- the parent's last resorts


def test_a_failure_of_gradcheck_itself_is_a_message_never_a_traceback(capsys, monkeypatch):
    import gradcheck.cli as cli

    def broken(args):
        raise RuntimeError("internal")

    monkeypatch.setattr(cli, "_outcomes", broken)
    assert main(["nnlite.Tanh"]) == 2
    assert "gradcheck failed: RuntimeError: internal (please report it)" in capsys.readouterr().err
    status, document = json_main(capsys, "nnlite.Tanh")
    assert status == 2 and "RuntimeError: internal" in document["error"]


def test_json_in_process_works_without_usable_descriptors(capsys, monkeypatch):
    from gradcheck import in_process

    def no_dup(fd):
        raise OSError("no descriptors")

    monkeypatch.setattr(in_process.os, "dup", no_dup)
    status, document = json_main(capsys, "nnlite.Tanh", "--no-isolate")
    assert status == 0 and document["targets"][0]["status"] == "pass"


def test_a_junit_file_is_never_left_half_written(tmp_path, monkeypatch):
    from gradcheck import junit

    def refuse(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(junit.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        junit.write_junit(str(tmp_path / "r.xml"), [Outcome("t", "pass")], 0.0)
    assert list(tmp_path.iterdir()) == []


def test_junit_failures_carry_the_modules_traceback(capsys, tmp_path):
    path = tmp_path / "r.xml"
    main([target("RaisesUnprintable"), "--junit-xml", str(path)])
    capsys.readouterr()
    failure = ET.parse(path).getroot().find("testsuite/testcase/failure")
    assert failure.get("type") == "backward" and "Traceback" in failure.text


def test_one_shape_given_alone_is_bounded_too():
    from argparse import Namespace

    args = Namespace(eps=None, atol=None, rtol=None, seed=0, shape=(10**7, 100), input_range=None)
    assert "is too large" in limits.option_problems(args)[0]


def test_run_target_reports_a_constructor_failing_afresh_and_exits_from_anywhere():
    from gradcheck.runner import describe_exit, run_target
    from gradcheck.targets import Target, TargetError

    def fails():
        raise TargetError("constructing X() failed: ValueError: no")

    assert run_target(Target("X()", build=fails), {}).reason.startswith("constructing X()")
    assert describe_exit(MemoryError()) == "ran out of memory (MemoryError)"
    assert describe_exit(ValueError("v")) == "raised ValueError: v"

    def exits():
        raise KeyboardInterrupt

    assert "raised KeyboardInterrupt during" in run_target(Target("Y", build=exits), {}).reason


def test_a_module_gradcheck_cannot_understand_is_an_error_not_a_failure(capsys, tmp_path):
    module = tmp_path / "odd.py"
    module.write_text(
        "class Odd:\n"
        "    def forward(self, x):\n"
        "        return x\n\n"
        "    def backward(self, grad):\n"
        "        return grad\n\n"
        "    def param(self):\n"
        "        return [object()]\n"
    )
    status, document = json_main(capsys, f"{module}:Odd")
    assert status == 2 and document["targets"][0]["reason"].startswith("cannot be checked: ")


def test_ctrl_c_in_process_stops_after_the_current_target(capsys, tmp_path):
    module = tmp_path / "pressed.py"
    module.write_text(
        "import signal, torch\n\n"
        "class Pressed:\n"
        "    def forward(self, x):\n"
        "        signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C here\n\n"
        "    def backward(self, grad):\n"
        "        return grad\n"
    )
    argv = ["nnlite.Tanh", f"{module}:Pressed", "nnlite", "nnlite.ReLU", "--no-isolate"]
    status, document = json_main(capsys, *argv)
    statuses = [(t["status"], t["reason"]) for t in document["targets"]]
    assert status == 2
    assert statuses[0][0] == "pass"
    assert statuses[1][0] == "error" and "KeyboardInterrupt" in statuses[1][1]
    assert statuses[2:] == [("error", "not checked: interrupted (Ctrl-C)")] * 2


def test_without_fork_targets_run_in_process_and_say_so(capsys, monkeypatch):
    monkeypatch.setattr(isolate, "available", lambda: False)
    assert main(["nnlite.Tanh"]) == 0
    assert "no os.fork on this system" in capsys.readouterr().err


def test_ctrl_c_in_process_between_targets_stops_the_run(capsys, monkeypatch):
    from gradcheck import in_process

    def pressed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(in_process, "plan", pressed)
    status, document = json_main(capsys, "nnlite.Tanh", "nnlite.ReLU", "--no-isolate")
    assert status == 2
    assert [t["reason"] for t in document["targets"]] == [
        "interrupted (Ctrl-C)",
        "not checked: interrupted (Ctrl-C)",
    ]


def test_in_process_a_memory_error_and_a_module_it_cannot_understand_are_errors(capsys, tmp_path):
    module = tmp_path / "needy.py"
    module.write_text(
        "class Needy:\n"
        "    def forward(self, x):\n"
        "        raise MemoryError('simulated')\n\n"
        "    def backward(self, grad):\n"
        "        return grad\n\n\n"
        "class Odd:\n"
        "    def forward(self, x):\n"
        "        return x\n\n"
        "    def backward(self, grad):\n"
        "        return grad\n\n"
        "    def param(self):\n"
        "        return [object()]\n"
    )
    status, document = json_main(capsys, f"{module}:Needy", f"{module}:Odd", "--no-isolate")
    needy, odd = document["targets"]
    assert status == 2
    assert needy["status"] == "error" and "out of memory in forward" in needy["reason"]
    assert odd["status"] == "error" and odd["reason"].startswith("cannot be checked: ")


def test_in_process_runs_outside_the_main_thread_too(capsys):
    import threading

    statuses = []
    thread = threading.Thread(target=lambda: statuses.append(main(["nnlite.Tanh", "--no-isolate"])))
    thread.start()
    thread.join(timeout=60)
    capsys.readouterr()
    assert statuses == [0]


def test_a_closed_pipe_on_stdout_ends_the_run_quietly(tmp_path):
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "gradcheck", "nnlite.Tanh", "nnlite.Linear(2, 3)", "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    process.stdout.close()  # like `| head -0`: nobody reads the report
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0
    assert b"Traceback" not in err
