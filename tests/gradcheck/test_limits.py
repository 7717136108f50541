"""Tests for gradcheck/limits.py: TARGETs beyond the parser's bounds and options out of range are
refused before anything runs, naming the value."""

from __future__ import annotations

import json

import pytest

from gradcheck import limits
from gradcheck.cli import main


def json_main(capsys, *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


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


def test_one_shape_given_alone_is_bounded_too():
    from argparse import Namespace

    args = Namespace(eps=None, atol=None, rtol=None, seed=0, shape=(10**7, 100), input_range=None)
    assert "is too large" in limits.option_problems(args)[0]
