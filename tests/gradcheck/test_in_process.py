"""Tests for gradcheck/in_process.py (--no-isolate): output captured, JSON kept clean at the
descriptor, Ctrl-C told apart from a module's KeyboardInterrupt."""

from __future__ import annotations

import json
from pathlib import Path

from gradcheck.cli import main

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"


def target(name: str) -> str:
    return f"{HOSTILE}:{name}"


def json_main(capsys, *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_json_in_process_works_without_usable_descriptors(capsys, monkeypatch):
    from gradcheck import in_process

    def no_dup(fd):
        raise OSError("no descriptors")

    monkeypatch.setattr(in_process.os, "dup", no_dup)
    status, document = json_main(capsys, "nnlite.Tanh", "--no-isolate")
    assert status == 0 and document["targets"][0]["status"] == "pass"


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
