"""Tests for gradcheck/cli.py: ``main([...])`` called directly, and one real subprocess."""

from __future__ import annotations

import io
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gradcheck.cli as gradcheck_cli
import nnlite
from gradcheck.cli import main
from gradcheck.targets import is_abstract, is_module_class

STUDENT = '''
import torch


class Tanh:
    """The derivative written as 1 - y instead of 1 - y**2."""

    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y)

    def param(self):
        return []


class GoodTanh(Tanh):
    def backward(self, grad):
        return grad * (1 - self.y**2)


class Linear:
    """Correct values, but the weight gradient is rebound instead of accumulated."""

    def __init__(self, in_features, out_features):
        self.in_features = in_features
        self.weight = torch.linspace(-1, 1, out_features * in_features).reshape(out_features, -1)
        self.weight_grad = torch.zeros_like(self.weight)

    def forward(self, x):
        self.x = x
        return x @ self.weight.T

    def backward(self, grad):
        self.weight_grad = grad.T @ self.x
        return grad @ self.weight

    def param(self):
        return [(self.weight, self.weight_grad)]


class Crash(GoodTanh):
    def backward(self, grad):
        raise RuntimeError("boom in backward")
'''


@pytest.fixture
def student(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    path = tmp_path / "student_layers.py"
    path.write_text(STUDENT)
    yield path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def run(capsys, *argv: str) -> tuple[int, str]:
    """main() in-process: these tests are about verdicts and printing; test_isolation.py and
    test_hostile.py run the default, isolated path."""
    status = main([*argv, "--no-isolate"])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


# ---------------------------------------------------------------------------------- verdicts


def test_every_nnlite_module_and_loss_passes(capsys):
    status, out = run(capsys, "nnlite")
    assert status == 0, out
    passed = [line.split()[1] for line in out.splitlines() if line.startswith("PASS")]
    classes = [n for n in nnlite.__all__ if is_module_class(getattr(nnlite, n))]
    expected = [f"nnlite.{n}" for n in classes if not is_abstract(getattr(nnlite, n))]
    assert [name.partition("(")[0] for name in passed] == expected
    assert {"nnlite.Linear(3, 4)", "nnlite.BCELoss", "nnlite.Dropout"} <= {
        line[6:].partition("  ")[0] for line in out.splitlines()
    }
    assert out.splitlines()[-1].startswith(f"{len(expected)} passed, 0 failed, ")


def test_passing_target_line_shows_the_worst_error_against_its_tolerance(capsys):
    status, out = run(capsys, "nnlite.Tanh")
    assert status == 0
    assert out.startswith("PASS  nnlite.Tanh  worst error ")
    assert "<= tol " in out and "(input_gradient: input)" in out


def test_wrong_derivative_fails_with_where_and_how_much(capsys, student):
    status, out = run(capsys, f"{student}:Tanh")
    assert status == 1
    head, *details = out.splitlines()
    assert head.startswith(f"FAIL  {student}:Tanh")
    assert "failed: input_gradient" in head
    detail = "\n".join(details)
    assert "input_gradient: backward disagrees with autograd" in detail
    assert "autograd " in detail and " vs backward " in detail and "> tolerance" in detail
    assert "finite differences along the difference side with autograd" in detail
    assert "input[" in detail


def test_overwritten_gradient_fails_the_accumulation_check(capsys, student):
    status, out = run(capsys, f"{student}:Linear(3, 2)")
    assert status == 1
    assert "failed: accumulation" in out
    assert "accumulation: weight" in out


def test_one_failure_among_passes_exits_1_and_counts_both(capsys, student):
    status, out = run(capsys, f"{student}:GoodTanh", f"{student}:Tanh")
    assert status == 1
    assert out.splitlines()[-1].startswith("1 passed, 1 failed in ")


def test_exception_in_the_module_is_a_failure_with_its_traceback(capsys, student):
    status, out = run(capsys, f"{student}:Crash")
    assert status == 1
    assert f"FAIL  {student}:Crash  failed: backward" in out
    assert "RuntimeError: boom in backward" in out
    status, out = run(capsys, "-v", f"{student}:Crash")
    assert 'raise RuntimeError("boom in backward")' in out, "-v shows the whole traceback"


# ------------------------------------------------------------------- targets that cannot run


def test_class_needing_arguments_exits_2_showing_how_to_pass_them(capsys):
    status, out = run(capsys, "nnlite.Linear")
    assert status == 2
    assert "ERROR nnlite.Linear" in out
    assert "needs constructor arguments (in_features, out_features)" in out
    assert "'nnlite.Linear(3, 4)'" in out


def test_unimportable_target_exits_2_with_the_reason(capsys):
    status, out = run(capsys, "nnlite.Lineer")
    assert status == 2
    assert "did you mean 'nnlite.Linear'" in out


def test_constructor_error_exits_2_with_the_modules_message(capsys):
    status, out = run(capsys, "nnlite.Dropout(1.5)")
    assert status == 2
    assert "dropout probability has to be between 0 and 1, but got 1.5" in out


def test_unconstructible_target_wins_over_a_failed_check(capsys, student):
    status, _ = run(capsys, f"{student}:Tanh", "no_such_module_xyz.Layer")
    assert status == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nnlite.Tanh", "--shape", "4,x"], "shape must be comma-separated positive integers"),
        (["nnlite.Tanh", "--shape", "0,3"], "shape sizes must be positive"),
        (["nnlite.Tanh", "--range", "1,0"], "range needs LO < HI"),
        (["nnlite.Tanh", "--range", "low,high"], "range must be LO,HI"),
        (["nnlite.Tanh", "--eps", "tiny"], "expected a number, got 'tiny'"),
        (["nnlite.Tanh", "--mode", "quick"], "invalid choice: 'quick'"),
        (["nnlite.Tanh", "--atol", "-1"], "expected a number >= 0"),
        (["nnlite.Tanh", "-q", "-v"], "not allowed with argument"),
        ([], "the following arguments are required: TARGET"),
        (["nnlite.Tanh", "--eps", "0"], "--eps is a relative step, 0 < eps < 1"),
        (["nnlite.Tanh", "--eps", "inf"], "got inf"),
        (["nnlite.Tanh", "--atol", "inf"], "--atol must be from 0 to 1 (default 1e-5)"),
        (["nnlite.Tanh", "--atol", "nan"], "expected a number >= 0, got 'nan'"),
        (["nnlite.Tanh", "--rtol", "1e300"], "--rtol must be from 0 to 1 (default 1e-3)"),
        (["nnlite.Tanh", "--atol", "0", "--rtol", "0"], "--atol 0 with --rtol 0 accepts no"),
        (["nnlite.Tanh", "--seed", str(2**64)], "--seed must be from 0 to 4294967295"),
        (["nnlite.Tanh", "--seed", "-1"], "--seed must be from 0 to 4294967295"),
        (["nnlite.Tanh", "--shape", f"{10**12},{10**12}"], "is too large (10000000000000000"),
        (["nnlite.Tanh", "--shape", "9" * 5000], "shape must be comma-separated"),
        (["nnlite.Tanh", "--range=-inf,inf"], "--range needs finite values"),
        (["nnlite.Tanh", "--timeout", "0"], "--timeout is seconds per target, 0 < timeout"),
        (["nnlite.Tanh", "--timeout", "inf"], "--timeout is seconds per target"),
        (["nnlite.Tanh", "-j", "0"], "-j is how many targets run at once, 1 to 256, got 0"),
        (["nnlite.Tanh", "--memory-limit", "lots"], "expected a size such as 300M or 2G"),
        (["nnlite.Tanh", "--memory-limit", "1K"], "a size from 16M to 1T"),
        (["nnlite.Tanh", "--max-memory", "lots"], "--max-memory: max_memory must be a size"),
        (
            ["nnlite.Tanh", "--max-memory", "1e999"],
            "at most 1T (such as 512M or 2G), got '1e999'",
        ),
        (
            ["nnlite.Tanh", "--max-memory", "2T"],
            "at most 1T (such as 512M or 2G), got '2T'",
        ),
        (["nnlite.Tanh", "--junit-xml", "no/such/folder/r.xml"], "needs a file name in an"),
        (["nnlite.Tanh", "--jso"], "unrecognized arguments: --jso"),
    ],
    ids=[
        "shape-not-integer",
        "shape-zero",
        "range-reversed",
        "range-not-numbers",
        "eps-not-number",
        "mode",
        "atol",
        "quiet-verbose",
        "none",
        "eps-zero",
        "eps-inf",
        "atol-inf",
        "atol-nan",
        "rtol-huge",
        "zero-tolerances",
        "seed-2**64",
        "seed-negative",
        "shape-huge",
        "shape-5000-digits",
        "range-infinite",
        "timeout-zero",
        "timeout-inf",
        "jobs-zero",
        "memory-not-a-size",
        "memory-tiny",
        "max-memory-not-a-size",
        "max-memory-infinite",
        "max-memory-huge",
        "junit-no-folder",
        "no-abbreviations",
    ],
)
def test_usage_errors_exit_2_with_the_reason(capsys, argv, message):
    status, out = run(capsys, *argv)
    assert status == 2
    assert message in out


def test_package_exports_that_cannot_be_constructed_exit_2(capsys, tmp_path, monkeypatch):
    package = tmp_path / "pickynn"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from torch.nn import Tanh\n\n\n"
        "class Conv(Tanh):\n"
        "    def __init__(self, vocabulary):\n"
        "        super().__init__()\n\n\n"
        "__all__ = ['Conv', 'Tanh']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    status, out = run(capsys, "pickynn")
    assert status == 2
    assert "PASS  pickynn.Tanh" in out
    assert "ERROR pickynn.Conv" in out and "e.g. 'pickynn.Conv(VOCABULARY)'" in out
    sys.modules.pop("pickynn", None)  # imported here only with --no-isolate


def test_help_exits_0_and_documents_the_target_forms(capsys):
    status, out = run(capsys, "--help")
    assert status == 0
    assert "path/to/file.py:Class" in out and "exit status" in out


# ---------------------------------------------------------------------------------- options


def json_run(capsys, *argv: str) -> tuple[int, dict]:
    status = main([*argv, "--json", "--no-isolate"])
    return status, json.loads(capsys.readouterr().out)


def test_json_is_one_document_with_a_report_per_target(capsys, student):
    status, document = json_run(capsys, "nnlite.Tanh", f"{student}:Tanh", "nnlite.Lineer")
    assert status == 2 and document["exit_status"] == 2 and document["passed"] is False
    by_status = {t["status"]: t for t in document["targets"]}
    assert by_status["pass"]["report"]["passed"] is True
    failed = by_status["fail"]["report"]
    assert [c["name"] for c in failed["checks"] if not c["passed"]] == ["input_gradient"]
    assert "did you mean" in by_status["error"]["reason"]


def test_shape_dtype_mode_seed_and_eval_reach_the_check(capsys):
    argv = ["nnlite.Dropout(0.5)", "--shape", "2,5", "--dtype", "float32", "--mode", "fast"]
    status, document = json_run(capsys, *argv, "--seed", "7", "--eval", "--atol", "1e-6")
    assert status == 0
    options = document["targets"][0]["report"]["options"]
    assert options["input_shapes"] == [[2, 5]]
    assert (options["mode"], options["seed"], options["train"], options["atol"]) == (
        "fast",
        7,
        False,
        1e-6,
    )


def test_runs_are_reproducible_and_leave_torch_generator_alone(capsys):
    torch.manual_seed(99)
    state = torch.random.get_rng_state()
    _, first = json_run(capsys, "nnlite.Linear(3, 4)")
    _, second = json_run(capsys, "nnlite.Linear(3, 4)")
    assert first["targets"][0]["report"] == second["targets"][0]["report"]
    assert torch.equal(state, torch.random.get_rng_state())


def test_input_features_follow_the_module_when_no_shape_is_given(capsys):
    _, document = json_run(capsys, "nnlite.Sequential(nnlite.Linear(5, 2), nnlite.Tanh())")
    assert document["targets"][0]["report"]["options"]["input_shapes"] == [[4, 5]]


def test_loss_target_kind_and_range_options(capsys):
    status, _ = json_run(capsys, "nnlite.CrossEntropyLoss", "--target", "prob")
    assert status == 0
    status, document = json_run(capsys, "nnlite.BCELoss", "--range", "0.2,0.8")
    assert status == 0
    assert document["options"]["input_range"] == [0.2, 0.8]


def test_quiet_shows_only_failures_and_the_summary(capsys, student):
    status, out = run(capsys, "-q", "nnlite.Tanh", f"{student}:Tanh")
    assert status == 1
    assert "PASS" not in out and "FAIL" in out


def test_verbose_shows_full_reports_and_skipped_exports(capsys):
    status, out = run(capsys, "-v", "nnlite")
    assert status == 0
    assert "SKIP  nnlite.Module" in out and "abstract base" in out
    assert "gradcheck Tanh(): passed" in out


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    main(["nnlite.Tanh"])
    assert "\033[32mPASS" in terminal.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    main(["nnlite.Tanh"])
    assert "\033[" not in terminal.getvalue()

    monkeypatch.delenv("NO_COLOR")
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stdout", plain)
    main(["nnlite.Tanh"])
    assert "\033[" not in plain.getvalue() and plain.getvalue().startswith("PASS")


def test_module_entry_point_exits_with_the_status_main_returns(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gradcheck", "nnlite.Lineer"])
    with pytest.raises(SystemExit) as exit:
        runpy.run_path(
            str(Path(gradcheck_cli.__file__).with_name("__main__.py")), run_name="__main__"
        )
    assert exit.value.code == 2
    assert "did you mean 'nnlite.Linear'" in capsys.readouterr().out


# --------------------------------------------------------------------------- real subprocess


def test_python_m_gradcheck_runs_as_a_program(student):
    result = subprocess.run(
        [sys.executable, "-m", "gradcheck", "nnlite.Tanh", f"{student}:Tanh", "--shape", "2,3"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "", "NO_COLOR": "1"},
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PASS  nnlite.Tanh")
    assert lines[1].startswith(f"FAIL  {student}:Tanh")
    assert lines[-1].startswith("1 passed, 1 failed in ")


# ------------------------------------------------------------------------------------ docs

README = (Path(gradcheck_cli.__file__).parent / "README.md").read_text()


def test_readme_and_help_say_that_naming_a_file_runs_it(capsys):
    assert "Naming a file or a module imports it, and importing runs its code" in README
    main(["--help"])
    assert "imported, and so executed" in capsys.readouterr().out


def test_readme_lists_every_command_line_option():
    section = README[README.index("## Command line") : README.index("## numpy modules")]
    options = [
        option
        for action in gradcheck_cli._parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    missing = [o for o in options if f"`{o}" not in section and f"{o}`" not in section]
    assert not missing, f"options the README does not show: {missing}"


# -------------------------------------------------------------- isolation-era behaviours


def test_usage_errors_are_one_json_document_with_json(capsys):
    status, document = json_run(capsys, "nnlite.Tanh", "--atol", "inf")
    assert status == 2 and document["exit_status"] == 2 and document["targets"] == []
    assert "--atol must be from 0 to 1" in document["error"]
    status, document = json_run(capsys, "nnlite.Tanh", "--no-such-option")
    assert status == 2 and "unrecognized arguments: --no-such-option" in document["error"]
    status = main(["--help", "--json"])
    assert status == 0 and "path/to/file.py:Class" in json.loads(capsys.readouterr().out)["help"]


def test_the_child_memory_follows_the_checkers_budget_when_there_is_one():
    from argparse import Namespace

    from gradcheck.cli import _child_memory

    assert _child_memory(Namespace(memory_limit=300 << 20)) == 300 << 20
    assert _child_memory(Namespace(memory_limit=None)) == 3 << 30
    assert _child_memory(Namespace(memory_limit=None, max_memory="4G")) == 9 << 30


def test_a_failure_of_gradcheck_itself_is_a_message_never_a_traceback(capsys, monkeypatch):
    import gradcheck.cli as cli

    def broken(args):
        raise RuntimeError("internal")

    monkeypatch.setattr(cli, "_outcomes", broken)
    assert main(["nnlite.Tanh"]) == 2
    assert "gradcheck failed: RuntimeError: internal (please report it)" in capsys.readouterr().err
    status, document = json_run(capsys, "nnlite.Tanh")
    assert status == 2 and "RuntimeError: internal" in document["error"]


def test_a_module_gradcheck_cannot_understand_is_an_error_not_a_failure(capsys, tmp_path):
    module = tmp_path / "odd.py"
    module.write_text(
        "class Odd:\n"
        "    def forward(self, x):\n"
        "        return x\n\n"
        "    def backward(self, grad):\n"
        "        return grad\n\n"
        "    def param(self):\n"
        "        return [object()]\n"
    )
    status, document = json_run(capsys, f"{module}:Odd")
    assert status == 2 and document["targets"][0]["reason"].startswith("cannot be checked: ")
