"""The command line under random argument lists and TARGET strings (Hypothesis): the exit status
is 0, 1 or 2, ``--json`` prints exactly one JSON document, and gradcheck never shows a traceback
of its own. ``main([...])`` runs in-process (``--no-isolate``); a few real subprocesses run the
default, isolated path."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradcheck.cli import main

HOSTILE = Path(__file__).parent / "corpus" / "hostile.py"
ROOT = Path(__file__).parents[2]

#: Targets that finish quickly in-process whatever they do (no hangs, crashes or blow-ups).
KNOWN = [
    "nnlite.Tanh",
    "nnlite.Linear(2, 3)",
    "nnlite.Linear(0, 3)",
    "nnlite.Linear(3, 0)",
    "nnlite.MSELoss",
    "nnlite.Sequential(nnlite.Linear(2, 3), nnlite.ReLU())",
    "nnlite.Linear",
    "nnlite.Lineer",
    "nnlite.Dropout(1.5)",
    "os.system('true')",
    "torch.nn.Tanh",
    "no_such_module_xyz",
    f"{HOSTILE}:Tanh",
    f"{HOSTILE}:ExitsInForward",
    f"{HOSTILE}:ExitsInBackward",
    f"{HOSTILE}:ExitsInConstructor",
    f"{HOSTILE}:InterruptsInBackward",
    f"{HOSTILE}:RaisesUnprintable",
    f"{HOSTILE}:ShapeChanges",
    f"{HOSTILE}:SparseOutput",
    f"{HOSTILE}:ResizesInput",
    f"{HOSTILE}:ParamRaisesLater",
    f"{HOSTILE}:ReturnsHugeOutput",
    f"{HOSTILE}:NoSuchClass",
    f"{HOSTILE}:Tanh(1, 2)",
    "missing_file.py",
    "missing_file.py:Layer",
]

_NAMES = st.sampled_from(["nnlite.Linear", "nnlite.Tanh", "nnlite.Sequential", "os.system", "a.b"])
_LITERALS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=5).map(repr),
    st.sampled_from(["True", "None", "[]", "{}", "(1,)", "-" * 30 + "1", "9" * 200, "**x", "*y"]),
)
_EXPRESSIONS = st.recursive(
    _LITERALS | _NAMES,
    lambda inner: st.builds(
        lambda name, args: f"{name}({', '.join(args)})", _NAMES, st.lists(inner, max_size=3)
    ),
    max_leaves=6,
)
TARGETS = st.one_of(st.sampled_from(KNOWN), _EXPRESSIONS, st.text(max_size=40))

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e300", "0", "1e-7", "0.5", "", "abc", "1,2"]),
)
_SHAPES = st.one_of(
    st.lists(st.integers(0, 5), min_size=1, max_size=4).map(lambda s: ",".join(map(str, s))),
    st.sampled_from(["10**12,10**12", "1000000000000,1000000000000", "x", "", "-1,3", "4x3"]),
)
_OPTIONS = st.one_of(
    st.tuples(st.sampled_from(["--eps", "--atol", "--rtol", "--timeout"]), _NUMBERS),
    st.tuples(st.just("--seed"), st.integers(-(2**70), 2**70).map(str) | _NUMBERS),
    st.tuples(st.just("--shape"), _SHAPES),
    st.tuples(st.just("--range"), st.tuples(_NUMBERS, _NUMBERS).map(",".join)),
    st.tuples(st.just("--target"), st.sampled_from(["like", "class", "onehot", "prob", "x"])),
    st.tuples(st.just("--dtype"), st.sampled_from(["float64", "float32", "float16", "int8"])),
    st.tuples(st.just("--mode"), st.sampled_from(["auto", "full", "fast", "slow"])),
    st.tuples(st.just("--batch-dim"), st.sampled_from(["0", "1", "2", "x"])),
    st.tuples(st.just("-j"), st.sampled_from(["1", "2", "0", "-3", "x"])),
    st.tuples(st.just("--memory-limit"), st.sampled_from(["300M", "2G", "1K", "x", "1e9"])),
    st.sampled_from(["--eval", "--json", "-q", "-v", "--target-first", "--bogus", "--"]).map(
        lambda flag: (flag,)
    ),
)
ARGV = st.tuples(st.lists(TARGETS, max_size=3), st.lists(_OPTIONS, max_size=4)).map(
    lambda parts: [*parts[0], *(token for option in parts[1] for token in option)]
)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def _check(argv: list[str], status: int, out: str, err: str) -> None:
    assert status in (0, 1, 2), (argv, status)
    options = argv[: argv.index("--")] if "--" in argv else argv
    if "--json" in options:
        document = json.loads(out)  # exactly one document, nothing else on stdout
        assert document["exit_status"] == status
    elif "-v" not in options:  # -v shows the module's own tracebacks, by design
        assert "Traceback (most recent call last)" not in out + err, (argv, out, err)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ARGV)
def test_random_command_lines_in_process_exit_0_1_or_2_without_a_checker_traceback(argv):
    argv = [*argv, "--no-isolate"] if "--" not in argv else argv
    status, out, err = _run(argv)
    _check(argv, status, out, err)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TARGETS, min_size=2, max_size=4), st.booleans())
def test_random_targets_in_a_real_isolated_run_exit_0_1_or_2(targets, as_json):
    argv = [*targets, "--timeout", "5", *(["--json"] if as_json else [])]
    result = subprocess.run(
        [sys.executable, "-m", "gradcheck", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    _check(argv, result.returncode, result.stdout, result.stderr)
