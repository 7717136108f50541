"""Tests for gradcheck/verdicts.py: the final table of verdicts."""

from __future__ import annotations

from pathlib import Path

from gradcheck.cli import main

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"
BROKEN = Path(__file__).parent / "corpus" / "broken.py"


def target(name: str) -> str:
    return f"{HOSTILE}:{name}"


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
