"""Tests of ``benchmarks/ratios.py`` on hand-made pytest-benchmark reports (no timing involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import ratios


def _bench(group: str, framework: str, seconds: float, work: int = 100, **info: object) -> dict:
    stats = {stat: seconds for stat in ratios.STATS}
    extra = {"framework": framework, "work": work, "unit": "samples/s", **info}
    return {"group": group, "name": f"{group}[{framework}]", "stats": stats, "extra_info": extra}


def _write(path: Path, benchmarks: list[dict]) -> Path:
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    return path


def test_ratio_is_nnlite_throughput_over_torch_throughput() -> None:
    (row,) = ratios.rows([_bench("infer-b1", "nnlite", 1.0), _bench("infer-b1", "torch", 2.0)])
    assert row.nnlite == 100.0 and row.torch == 50.0 and row.ratio == 2.0
    assert row.target is None and row.met is None


@pytest.mark.parametrize(
    ("group", "torch_seconds", "met"),
    [
        ("train-sgd-b1", 2.9, False),
        ("train-sgd-b1", 3.0, True),
        ("train-adam-b25", 3.1, True),
        ("train-sgd-b1000", 1.19, False),
        ("train-sgd-b1000", 1.2, True),
        ("train-adam-b100000", 0.99, False),
        ("train-adam-b100000", 1.0, True),
        ("gradcheck-full-network", 2.5, False),
        ("gradcheck-fast-network", 0.1, None),
    ],
    ids=lambda value: str(value),
)
def test_targets_follow_the_issue(group: str, torch_seconds: float, met: bool | None) -> None:
    pair = [_bench(group, "nnlite", 1.0), _bench(group, "torch", torch_seconds)]
    (row,) = ratios.rows(pair)
    assert row.met is met


def test_memory_ratio_is_nnlite_peak_over_torch_peak_and_must_not_exceed_one() -> None:
    pair = [
        _bench("memory-sgd-b100000", "nnlite", 9.0, peak_bytes=90),
        _bench("memory-sgd-b100000", "torch", 1.0, peak_bytes=100),
    ]
    (row,) = ratios.rows(pair)
    assert (row.unit, row.ratio, row.met) == ("bytes", 0.9, True)


def test_groups_without_both_frameworks_are_left_out() -> None:
    assert ratios.rows([_bench("infer-b1", "nnlite", 1.0), {"group": None, "extra_info": {}}]) == []


def test_statistic_is_chosen_by_name() -> None:
    mine, theirs = _bench("infer-b1", "nnlite", 1.0), _bench("infer-b1", "torch", 1.0)
    theirs["stats"]["median"] = 4.0
    assert ratios.rows([mine, theirs], stat="min")[0].ratio == 1.0
    assert ratios.rows([mine, theirs], stat="median")[0].ratio == 4.0
    with pytest.raises(ValueError, match="stat must be one of"):
        ratios.rows([mine, theirs], stat="p99")


def test_main_prints_the_table_and_fails_only_when_enforcing(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    report = _write(
        tmp_path / "run.json",
        [_bench("train-sgd-b1", "nnlite", 1.0), _bench("train-sgd-b1", "torch", 2.0)],
    )
    markdown = tmp_path / "out" / "ratios.md"
    assert ratios.main([str(report), "--markdown", str(markdown)]) == 0
    out = capsys.readouterr().out
    assert "train-sgd-b1" in out and "2.00" in out and "1 missed (train-sgd-b1)" in out
    assert markdown.read_text().splitlines()[2].startswith("| train-sgd-b1 | 100 samples/s |")
    assert ratios.main([str(report), "--enforce"]) == 1


def test_compare_shows_each_framework_new_over_old(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    old = _write(
        tmp_path / "old.json",
        [_bench("infer-b1", "nnlite", 2.0), _bench("infer-b1", "torch", 1.0)],
    )
    new = _write(
        tmp_path / "new.json",
        [_bench("infer-b1", "nnlite", 1.0), _bench("infer-b1", "torch", 1.0)],
    )
    assert ratios.main(["--compare", str(old), str(new)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("infer-b1"))
    assert line.split() == ["infer-b1", "2.00", "1.00", "0.50", "1.00"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"benchmarks": 3}', "has no 'benchmarks' list"),
        ('{"benchmarks": []}', "no group holds both"),
    ],
    ids=["missing", "not-json", "not-pytest-benchmark", "empty"],
)
def test_bad_input_exits_with_status_2_and_says_why(
    tmp_path: Path,
    capsys,
    content: str | None,
    message: str,  # noqa: ANN001
) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    assert ratios.main([str(path)]) == 2
    assert message in capsys.readouterr().err
