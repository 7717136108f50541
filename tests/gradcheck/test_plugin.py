"""Tests for gradcheck/pytest_plugin.py, run inside pytester's own pytest sessions."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

# pytester's in-process runs unload every module first imported inside them; torch cannot be
# imported twice in one process (the second import crashes), so import it out here first.
import torch  # noqa: F401

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


def test_importing_the_plugin_does_not_import_torch():
    code = (
        "import sys, gradcheck.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


USER_TESTS = """
from user_layers import GoodTanh, SlightlyScaledTanh, WrongTanh


def test_good_tanh(gradcheck):
    report = gradcheck(GoodTanh(), gradcheck.make_input((3, 2)))
    assert report.passed


def test_wrong_tanh(gradcheck):
    gradcheck(WrongTanh(), gradcheck.make_input((3, 2)))


def test_wrong_tanh_is_reported(gradcheck):
    report = gradcheck.check(WrongTanh(), gradcheck.make_input((3, 2)))
    assert not report.passed


def test_scaled_tanh(gradcheck):
    gradcheck(SlightlyScaledTanh(), gradcheck.make_input((3, 2)))


def test_scaled_tanh_with_tight_rtol(gradcheck):
    gradcheck(SlightlyScaledTanh(), gradcheck.make_input((3, 2)), rtol=1e-3)


def test_helpers_are_the_librarys(gradcheck):
    import torch

    import gradcheck as library

    x = gradcheck.make_input((3, 2), seed=1)
    assert torch.equal(x, library.make_input((3, 2), seed=1))
    target = gradcheck.make_target(x, kind="class")
    assert torch.equal(target, library.make_target(x, kind="class"))
"""


def outcomes(result) -> dict[str, str]:
    """Each inner test's outcome by name, from the ``-rA`` short summary."""
    found = {}
    for line in result.stdout.lines:
        word, _, rest = line.partition(" test_user.py::")
        if rest:
            found[rest.split()[0]] = word
    return found


def test_fixture_passes_correct_modules_and_fails_wrong_ones_with_the_report(pytester):
    pytester.makepyfile(user_layers=USER_MODULES, test_user=USER_TESTS)
    result = pytester.runpytest("-rA")
    assert outcomes(result) == {
        "test_good_tanh": "PASSED",
        "test_wrong_tanh": "FAILED",
        "test_wrong_tanh_is_reported": "PASSED",
        "test_scaled_tanh": "FAILED",
        "test_scaled_tanh_with_tight_rtol": "FAILED",
        "test_helpers_are_the_librarys": "PASSED",
    }
    result.stdout.fnmatch_lines(
        [
            ">*gradcheck(WrongTanh(), gradcheck.make_input((3, 2)))",
            "E*GradcheckError: gradcheck *WrongTanh*: FAILED *",
            "E*input*autograd * vs backward *, error * > tolerance *",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str(), "the helper's frame must be hidden"


def test_command_line_options_feed_the_fixture_and_keywords_override_them(pytester):
    pytester.makepyfile(user_layers=USER_MODULES, test_user=USER_TESTS)
    result = pytester.runpytest("-rA", "--gradcheck-rtol=0.05", "--gradcheck-mode=full")
    found = outcomes(result)
    assert found["test_scaled_tanh"] == "PASSED"
    assert found["test_scaled_tanh_with_tight_rtol"] == "FAILED"
    result.stdout.fnmatch_lines(["gradcheck: mode=full, rtol=0.05"])


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
    pytester.makeini("[pytest]\ngradcheck_mode = quick\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*gradcheck_mode must be one of auto, full, fast, got 'quick'*"])


def test_readme_plugin_example_runs(pytester):
    from tests.gradcheck.test_strategies import readme_example

    pytester.makepyfile(test_readme=readme_example("## pytest plugin"))
    pytester.runpytest().assert_outcomes(passed=2)
