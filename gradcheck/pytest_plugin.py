"""pytest plugin: the ``gradcheck`` fixture and ``--gradcheck-*`` options.

Installed with the package (entry point ``pytest11``), so any test can ask for the fixture::

    def test_my_tanh_backward(gradcheck):
        gradcheck(MyTanh(), gradcheck.make_input((4, 3)))

On failure the assertion message is the report: which check failed, on which tensor, where, and
numerical vs analytical values. ``--gradcheck-mode``, ``--gradcheck-atol`` and
``--gradcheck-rtol`` (or the ini keys ``gradcheck_mode``, ``gradcheck_atol``, ``gradcheck_rtol``)
set the defaults that a call's own keyword arguments override.

This module is imported by every pytest run in an environment where nnlite is installed, so it
must stay cheap: torch and the checker are imported only when the fixture is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from torch import Tensor

    from gradcheck.report import Report

__all__ = ["GradcheckFixture"]

_MODES = ("auto", "full", "fast")
_OPTIONS = {"mode": str, "atol": float, "rtol": float}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradient checks with gradcheck")
    group.addoption(
        "--gradcheck-mode",
        choices=_MODES,
        default=None,
        help="default mode for the gradcheck fixture: full Jacobian, fast projections, or auto",
    )
    group.addoption("--gradcheck-atol", type=float, default=None, help="default absolute tolerance")
    group.addoption("--gradcheck-rtol", type=float, default=None, help="default relative tolerance")
    parser.addini("gradcheck_mode", "default gradcheck mode (auto, full, fast)", default="")
    parser.addini("gradcheck_atol", "default gradcheck absolute tolerance", default="")
    parser.addini("gradcheck_rtol", "default gradcheck relative tolerance", default="")


def _defaults(config: pytest.Config) -> dict[str, Any]:
    """Options from the command line, else from the ini file; unset ones are left out so the
    checker's own documented defaults apply."""
    defaults: dict[str, Any] = {}
    for name, convert in _OPTIONS.items():
        value = config.getoption(f"--gradcheck-{name}")
        if value is None:
            text = config.getini(f"gradcheck_{name}")
            if not text:
                continue
            try:
                value = convert(text)
            except ValueError:
                raise pytest.UsageError(
                    f"ini option gradcheck_{name} must be a {convert.__name__}, got {text!r}"
                ) from None
        defaults[name] = value
    if "mode" in defaults and defaults["mode"] not in _MODES:
        raise pytest.UsageError(
            f"gradcheck_mode must be one of {', '.join(_MODES)}, got {defaults['mode']!r}"
        )
    return defaults


def pytest_report_header(config: pytest.Config) -> str | None:
    defaults = _defaults(config)
    if not defaults:
        return None
    return "gradcheck: " + ", ".join(f"{k}={v}" for k, v in sorted(defaults.items()))


class GradcheckFixture:
    """What the ``gradcheck`` fixture gives a test: call it to assert a module's gradients.

    Args:
        defaults: options every call starts from (from ``--gradcheck-*``); a call's own keyword
            arguments override them.
    """

    def __init__(self, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)

    def __call__(self, module: Any, *inputs: Tensor, **options: Any) -> Report:
        """Check ``module`` on ``inputs`` like :func:`gradcheck.check`; fail the test with the
        report as the message if any check fails.

        Returns:
            The report, when every check passed.

        Raises:
            GradcheckError: an ``AssertionError`` whose message is the report.
        """
        __tracebackhide__ = True
        import gradcheck

        report = gradcheck.check(module, *inputs, **{**self.defaults, **options})
        if not report.passed:
            raise gradcheck.GradcheckError(report)
        return report

    def check(self, module: Any, *inputs: Tensor, **options: Any) -> Report:
        """Run the checks without failing the test; the report says what passed."""
        import gradcheck

        return gradcheck.check(module, *inputs, **{**self.defaults, **options})

    @staticmethod
    def make_input(shape: tuple[int, ...], **options: Any) -> Tensor:
        """Same as :func:`gradcheck.make_input`."""
        import gradcheck

        return gradcheck.make_input(shape, **options)

    @staticmethod
    def make_target(prediction: Tensor, **options: Any) -> Tensor:
        """Same as :func:`gradcheck.make_target`."""
        import gradcheck

        return gradcheck.make_target(prediction, **options)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(self.defaults.items()))
        return f"<gradcheck fixture ({options or 'checker defaults'})>"


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> GradcheckFixture:
    """Assert that a module's backward matches finite differences; the failure message is the
    report. Call it as ``gradcheck(module, *inputs, **options)``; options as
    :func:`gradcheck.check`, with defaults from ``--gradcheck-mode/-atol/-rtol``."""
    return GradcheckFixture(_defaults(request.config))
