"""Tests for gradcheck/pytest_plugin.py, run inside pytester's own pytest sessions."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

USER_MODULES = """
import torch


class GoodTanh:
    def forward(self, x):
        self.y = torch.tanh(x)
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)

    def param(self):
        return []


class WrongTanh(GoodTanh):
    # The classic slip: the derivative of tanh written as 1 - y instead of 1 - y**2.
    def backward(self, grad):
        return grad * (1 - self.y)


class SlightlyScaledTanh(GoodTanh):
    # 2% too large everywhere: outside the default rtol (1e-3), inside rtol=0.05.
    def backward(self, grad):
        return 1.02 * grad * (1 - self.y**2)
"""


def test_plugin_is_registered_as_a_pytest11_entry_point():
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("gradcheck") == "gradcheck.pytest_plugin"


@pytest.mark.xfail(
    strict=True,
    reason="gradcheck/__init__.py imports torch eagerly; it needs lazy (PEP 562) exports so that "
    "every pytest run in an environment with nnlite installed does not pay for importing torch",
)
def test_importing_the_plugin_does_not_import_torch():
    code = (
        "import sys, gradcheck.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_fixture_passes_a_correct_module_and_returns_the_report(pytester):
    pytester.makepyfile(
        user_layers=USER_MODULES,
        test_user="""
from user_layers import GoodTanh


def test_good_tanh(gradcheck):
    report = gradcheck(GoodTanh(), gradcheck.make_input((3, 2)))
    assert report.passed
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_failure_message_is_the_report_and_the_helper_frame_is_hidden(pytester):
    pytester.makepyfile(
        user_layers=USER_MODULES,
        test_user="""
from user_layers import WrongTanh


def test_wrong_tanh(gradcheck):
    gradcheck(WrongTanh(), gradcheck.make_input((3, 2)))
""",
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">*gradcheck(WrongTanh(), gradcheck.make_input((3, 2)))",
            "E*GradcheckError: gradcheck *WrongTanh*: FAILED *",
            "E*input*numerical * vs analytical *, error * > tolerance *",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str()


def test_check_method_reports_without_failing_the_test(pytester):
    pytester.makepyfile(
        user_layers=USER_MODULES,
        test_user="""
from user_layers import WrongTanh


def test_wrong_tanh_is_reported(gradcheck):
    report = gradcheck.check(WrongTanh(), gradcheck.make_input((3, 2)))
    assert not report.passed
""",
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_command_line_tolerances_feed_the_fixture(pytester):
    pytester.makepyfile(
        user_layers=USER_MODULES,
        test_user="""
from user_layers import SlightlyScaledTanh


def test_scaled_tanh(gradcheck):
    gradcheck(SlightlyScaledTanh(), gradcheck.make_input((3, 2)))
""",
    )
    pytester.runpytest().assert_outcomes(failed=1)
    loose = pytester.runpytest("--gradcheck-rtol=0.05", "--gradcheck-mode=full")
    loose.assert_outcomes(passed=1)
    loose.stdout.fnmatch_lines(["gradcheck: mode=full, rtol=0.05"])


def test_keyword_arguments_override_command_line_defaults(pytester):
    pytester.makepyfile(
        user_layers=USER_MODULES,
        test_user="""
from user_layers import SlightlyScaledTanh


def test_scaled_tanh(gradcheck):
    assert gradcheck.defaults == {"rtol": 0.05}
    gradcheck(SlightlyScaledTanh(), gradcheck.make_input((3, 2)), rtol=1e-3)
""",
    )
    pytester.runpytest("--gradcheck-rtol=0.05").assert_outcomes(failed=1)


def test_ini_options_set_defaults(pytester):
    pytester.makeini("[pytest]\ngradcheck_mode = fast\ngradcheck_atol = 1e-4\n")
    pytester.makepyfile(
        test_user="""
def test_defaults(gradcheck):
    assert gradcheck.defaults == {"mode": "fast", "atol": 1e-4}
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gradcheck: atol=0.0001, mode=fast"])


def test_bad_options_are_usage_errors(pytester):
    pytester.makepyfile(test_user="def test_nothing(gradcheck):\n    pass\n")
    result = pytester.runpytest("--gradcheck-mode=quick")
    result.stderr.fnmatch_lines(["*--gradcheck-mode: invalid choice: 'quick'*"])
    assert result.ret == 4
    pytester.makeini("[pytest]\ngradcheck_rtol = tight\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*gradcheck_rtol must be a float, got 'tight'*"])


def test_readme_plugin_example_runs(pytester):
    from tests.gradcheck.test_strategies import readme_example

    pytester.makepyfile(test_readme=readme_example("## pytest plugin"))
    pytester.runpytest().assert_outcomes(passed=2)
