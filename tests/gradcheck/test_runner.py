"""Tests for gradcheck/runner.py: phases name the call into the module, outcomes pickle, and a
target's build or check never lets anything escape."""

from __future__ import annotations

from gradcheck.runner import PHASE, Outcome, tracking


def test_phases_name_the_call_into_the_module_and_are_restored_after():
    import gradcheck
    from gradcheck import _adapt
    from tests.gradcheck.corpus.hostile import Tanh

    seen = []
    PHASE.sink = seen.append
    try:
        with tracking():
            gradcheck.check(Tanh())
    finally:
        PHASE.sink = None
    assert "forward (forward check)" in seen and "backward (backward check)" in seen
    assert not hasattr(_adapt.Adapted.forward, "__wrapped__")


def test_outcomes_pickle_with_their_reports():
    import pickle

    import gradcheck
    from tests.gradcheck.corpus.hostile import Tanh

    outcome = Outcome("t", "pass", report=gradcheck.check(Tanh()))
    assert pickle.loads(pickle.dumps(outcome)).report.to_dict() == outcome.report.to_dict()


def test_run_target_reports_a_constructor_failing_afresh_and_exits_from_anywhere():
    from gradcheck.runner import describe_exit, run_target
    from gradcheck.targets import Target, TargetError

    def fails():
        raise TargetError("constructing X() failed: ValueError: no")

    assert run_target(Target("X()", build=fails), {}).reason.startswith("constructing X()")
    assert describe_exit(MemoryError()) == "ran out of memory (MemoryError)"
    assert describe_exit(ValueError("v")) == "raised ValueError: v"

    def exits():
        raise KeyboardInterrupt

    assert "raised KeyboardInterrupt during" in run_target(Target("Y", build=exits), {}).reason


def test_an_exception_from_the_modules_code_is_attributed_to_it(tmp_path, monkeypatch):
    from gradcheck.runner import run_target
    from gradcheck.targets import resolve

    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    module = tmp_path / "custom.py"
    module.write_text(
        "class MyExit(BaseException):\n"
        "    pass\n\n\n"
        "class RaisesBase:\n"
        "    def forward(self, x):\n"
        "        raise MyExit('custom base exception')\n\n"
        "    def backward(self, grad):\n"
        "        return grad\n"
    )
    [found] = resolve(f"{module}:RaisesBase")
    with tracking():
        outcome = run_target(found, {})
    assert outcome.status == "error"
    assert outcome.reason == "the module raised MyExit: custom base exception during forward"
