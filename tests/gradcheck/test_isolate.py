"""Tests for gradcheck/isolate.py: targets in child processes give the verdicts they give
in-process, in any order of -j; a child's death is said in words; the parent survives whatever a
child sends or does. The child's side runs in this process too (coverage does not follow a
fork)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradcheck import _child, isolate
from gradcheck.cli import main
from gradcheck.runner import Outcome

pytestmark = pytest.mark.isolated  # these tests are about the child processes

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"


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


def _fake_child(control: int = -1) -> isolate._Child:
    import mmap

    return isolate._Child(0, _child._Job(0, "x"), control, -1, mmap.mmap(-1, 512), 0.0)


def _child_messages(job: _child._Job) -> list:
    import io
    import os

    read, write = os.pipe()
    settings = {"seed": 0, "resolving": {"features": 3, "channels": None}, "options": {}}
    try:
        _child._child_job(job, write, settings, [io.StringIO()])
    finally:
        os.close(write)
    child = _fake_child(read)
    messages = isolate._messages(child)
    os.close(read)
    return messages


def test_a_resolving_child_sends_the_plan_then_its_first_targets_outcome():
    (kind, _, planned), (kind2, index, outcome) = _child_messages(_child._Job(0, "nnlite"))
    assert kind == "plan" and kind2 == "outcome"
    assert planned[index].status == "check" and outcome.name == planned[index].name
    assert outcome.status == "pass"


def test_a_resolving_child_of_a_target_with_nothing_to_check_sends_only_the_plan():
    [(kind, _, planned)] = _child_messages(_child._Job(0, "nnlite.Lineer"))
    assert kind == "plan" and planned[0].status == "error"


def test_a_child_that_resolves_another_module_than_planned_says_so():
    [(_, _, outcome)] = _child_messages(_child._Job(0, "nnlite", 1, "nnlite.Other"))
    assert outcome.status == "error" and "named other modules" in outcome.reason


def test_a_report_that_does_not_pickle_is_sent_as_text():
    import os

    class Unpicklable:
        def __reduce__(self):
            raise TypeError("no")

        def __str__(self):
            return "the report as text"

    read, write = os.pipe()
    _child._send(write, ("outcome", 0, Outcome("t", "fail", report=Unpicklable())))
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

    monkeypatch.setattr(_child, "open", no_proc, raising=False)
    assert _child._vm_size() == 0


def test_a_memory_blow_up_in_a_child_names_the_limit(capsys):
    # The child's address space is capped at its size plus 100 MB before the module runs.
    status, document = json_main(capsys, target("GrowsAListInForward"), "--memory-limit", "100M")
    assert status == 2
    reason = document["targets"][0]["reason"]
    assert "out of memory in forward" in reason and "100 MB beyond the interpreter" in reason


def test_without_fork_targets_run_in_process_and_say_so(capsys, monkeypatch):
    monkeypatch.setattr(isolate, "available", lambda: False)
    assert main(["nnlite.Tanh"]) == 0
    assert "no os.fork on this system" in capsys.readouterr().err


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
