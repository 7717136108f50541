"""The command line's targets run in the test process unless a test is marked ``isolated``.

``main([...])`` checks each target in a forked child by default. Coverage does not follow a fork
(what a child runs is never measured), and forking the test process for every call costs
seconds, so tests about verdicts, targets and printing run their targets in-process, as
``--no-isolate`` does. The tests about isolation itself (``test_isolate.py``,
``test_hostile.py``) are marked ``isolated`` and fork as users' runs do.
"""

from __future__ import annotations

import sys

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "isolated: main() checks targets in child processes, as a user's run does"
    )


@pytest.fixture(autouse=True)
def _targets_in_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("isolated") is not None:
        return
    from gradcheck import isolate
    from gradcheck.in_process import run_in_process

    def in_process(specs, *, resolving, seed, options, **limits):
        return run_in_process(specs, resolving=resolving, seed=seed, options=options)

    monkeypatch.setattr(isolate, "run_isolated", in_process)


@pytest.fixture
def isolated_imports(monkeypatch):
    """Undo what resolving file targets adds to sys.path and sys.modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]
