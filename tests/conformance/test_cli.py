"""``python -m conformance``: bad options exit 2 with a message; a real run writes the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--activation", "swish"], "unknown activation 'swish'; choose from relu, tanh"),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--epochs", "-3"], "--epochs must be a positive integer, got -3"),
        (["--runs", "0"], "--runs must be a positive integer, got 0"),
        (["--experiment", "007"], "unknown experiment '007'; choose from 000, 001, 002, 003, 004"),
        (["--experiment", "002", "--activation", "elu"], "no configuration of experiment(s) 002"),
        (["--experiment", "004", "--activation", "tanh"], "no configuration of experiment(s) 004"),
        (["--epochs", "ten"], "invalid int value: 'ten'"),
    ],
    ids=[
        "unknown-activation",
        "zero-epochs",
        "negative-epochs",
        "zero-runs",
        "unknown-experiment",
        "activation-not-in-experiment",
        "activation-not-in-seed-004",
        "non-integer-epochs",
    ],
)
def test_bad_option_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*argv, "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_folder_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as caught:
        main(["--out", str(blocker / "report")])
    assert caught.value.code == 2
    assert f"cannot write the report to --out '{blocker / 'report'}'" in capsys.readouterr().err


def test_module_run_writes_table_json_seed_page_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["--experiment", "002", "--activation", "relu", "--runs", "2", "--epochs", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "conformance", *argv, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "| 002 | CE / SGD / ReLU |" in result.stdout
    assert "[4/8]" in result.stderr.replace(" ", "")  # progress lines
    table = json.loads((out / "table.json").read_text())
    assert [row["configuration"] for row in table["rows"]] == [
        "MSE / SGD / ReLU",
        "MSE / Adam / ReLU",
        "CE / SGD / ReLU",
        "CE / Adam / ReLU",
    ]
    assert all(row["runs"] == 2 and row["config"]["epochs"] == 2 for row in table["rows"])
    assert all(row["exact"] for row in table["rows"]), table["rows"]
    for name in (
        "table.md",
        "seed-002.md",
        "loss-curves-seed-002.png",
        "decision-map-seed-002.png",
    ):
        assert (out / name).stat().st_size > 0, name
    page = (out / "seed-002.md").read_text()
    assert "## What it did not state, and what these runs chose" in page
    assert "![seed 002 decision map](decision-map-seed-002.png)" in page
    assert "[seed 002](seed-002.md)" in (out / "table.md").read_text()
