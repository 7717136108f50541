"""Tests for gradcheck/junit.py: one testcase per target, one failure per failed check, text XML
can hold, and a file never half written."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradcheck.cli import main
from gradcheck.runner import Outcome

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"
BROKEN = Path(__file__).parent / "corpus" / "broken.py"


def target(name: str) -> str:
    return f"{HOSTILE}:{name}"


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
    assert "autograd" in failure[0].text and "vs backward" in failure[0].text
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
