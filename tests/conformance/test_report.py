"""The report's table: exact or not, published within our mean +- 2 std, and why not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conformance.report import RowResult, explanations, markdown_table, seed_page, write_report
from conformance.seeds import SEEDS, Row
from conformance.spec import Config

ROW = Row("002", "CE / SGD / ReLU", Config(), (97.4, 0.9), note="The rate was tuned.")


def _result(accuracies: list[float], row: Row = ROW, **largest: float) -> RowResult:
    result = RowResult(row, nn_test_accuracy=accuracies, th_test_accuracy=list(accuracies))
    result.largest_difference = {"loss": 0.0, "parameter": 0.0, **largest}
    result.nn_loss_curves = result.th_loss_curves = [[0.5, 0.25]]
    return result


@pytest.mark.parametrize(
    "accuracies, within",
    [([96.0, 98.0], True), ([90.0, 91.0], False), ([97.4, 97.4], True), ([97.3, 97.3], False)],
    ids=["inside", "outside", "equal-without-spread", "off-without-spread"],
)
def test_within_compares_the_published_mean_with_two_deviations(
    accuracies: list[float], within: bool
) -> None:
    assert _result(accuracies).within is within


def test_within_is_undecided_without_a_published_number() -> None:
    row = Row("004", "constant", Config(), None, claim="loss within 1e-6")
    result = _result([50.0, 50.0], row)
    assert result.within is None
    assert "| loss within 1e-6 | — |" in markdown_table([result])


def test_table_says_exact_or_names_the_largest_differences() -> None:
    table = markdown_table([_result([96.0, 98.0]), _result([96.0, 98.0], loss=6e-8)])
    first, second = table.splitlines()[2:]
    assert first == ("| 002 | CE / SGD / ReLU | 97.0 ± 1.4 | 97.0 ± 1.4 | yes | 97.4 ± 0.9 | yes |")
    assert "| no (largest \\|Δ\\|: loss 6e-08) |" in second


def test_every_row_outside_two_deviations_is_explained_with_its_note() -> None:
    text = explanations([_result([96.0, 98.0]), _result([90.0, 91.0]), _result([80.0, 81.0])])
    lines = text.splitlines()
    assert lines[0] == (
        "- seed 002, CE / SGD / ReLU: published 97.4 ± 0.9, ours 90.5 ± 0.7 (2 std: 89.1 to 91.9)"
    )
    assert lines[1].startswith("- seed 002, CE / SGD / ReLU: published 97.4 ± 0.9, ours 80.5")
    assert text.count("Why: The rate was tuned.") == 1


def test_single_published_run_reads_as_one_run() -> None:
    row = Row("000", "MSE / SGD / Tanh", Config(), (74.8, None), note="No optimizer.")
    assert "| 74.8 (one run) |" in markdown_table([_result([90.0, 92.0], row)])


def test_seed_page_states_gaps_choices_results_and_plots() -> None:
    seed = SEEDS["003"]
    page = seed_page(seed, [_result([90.0, 91.0])], "2 runs.", "c.png", "m.png", "CE / SGD / Tanh")
    assert page.startswith("# Seed 003: ")
    assert "| sigmoid's slope | Scale(3) then Sigmoid in both frameworks" in page
    assert "Where the published number lies outside ours" in page
    assert "![seed 003 loss curves](c.png)" in page and "![seed 003 decision map](m.png)" in page


def test_write_report_writes_a_page_and_plots_per_seed(tmp_path: Path) -> None:
    result = _result([96.0, 98.0])
    result.maps = (torch.full((4, 4), 0.5), torch.full((4, 4), 0.5))
    written = write_report([result], tmp_path, runs="2", seconds=1.0, quick=True)
    names = sorted(path.name for path in written)
    assert names == [
        "decision-map-seed-002.png",
        "loss-curves-seed-002.png",
        "seed-002.md",
        "table.json",
        "table.md",
    ]
