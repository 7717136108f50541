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
    assert limits.parse_size("512") == 512 << 20
    with pytest.raises(ValueError, match="expected a size such as 300M"):
        limits.parse_size("x" * 100)


def test_the_child_memory_follows_the_checkers_budget_when_there_is_one():
    from argparse import Namespace

    from gradcheck.cli import _child_memory

    assert _child_memory(Namespace(memory_limit=300 << 20)) == 300 << 20
    assert _child_memory(Namespace(memory_limit=None)) == 3 << 30
    assert _child_memory(Namespace(memory_limit=None, max_memory=4 << 30)) == 9 << 30


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
