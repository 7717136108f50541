"""gradcheck.report: verdicts, worst entry, text and JSON."""

from __future__ import annotations

import json
import math

import pytest

from gradcheck.report import CheckResult, GradcheckError, Report, TensorResult


def _tensor(name="weight", numerical=1.0, analytical=1.0, tolerance=1e-3, passed=True):
    return TensorResult(
        tensor=name,
        passed=passed,
        max_abs_error=abs(numerical - analytical),
        max_rel_error=abs(numerical - analytical) / abs(numerical),
        worst_index=((0, 1), (2, 3)),
        numerical=numerical,
        analytical=analytical,
        tolerance=tolerance,
        atol=1e-5,
        rtol=1e-3,
        entries=12,
    )


def test_a_report_passes_only_when_every_check_passes():
    assert not Report("m").passed
    assert Report("m", [CheckResult("forward", True)]).passed
    assert not Report("m", [CheckResult("forward", True), CheckResult("backward", False)]).passed


def test_worst_is_the_tensor_furthest_past_its_tolerance():
    near = _tensor("bias", 1.0, 1.0009, 1e-3)
    far = _tensor("weight", 2.0, 2.5, 2e-3, passed=False)
    report = Report("m", [CheckResult("parameter_gradient", False, "", [near, far])])
    assert report.worst is far
    assert far.ratio == pytest.approx(250.0)


def test_str_names_the_failures_and_the_worst_entry():
    far = _tensor("weight", 2.0, 2.5, 2e-3, passed=False)
    report = Report(
        "Linear(in_features=3, out_features=2, bias=True)",
        [
            CheckResult("forward", True),
            CheckResult("parameter_gradient", False, "backward disagrees", [far]),
            CheckResult("backward", False, "backward raised", [], "Traceback ...\nValueError: x"),
        ],
    )
    text = str(report)
    assert text.splitlines()[0] == (
        "gradcheck Linear(in_features=3, out_features=2, bias=True): FAILED 2 of 3 checks "
        "(parameter_gradient, backward)"
    )
    assert "weight[2, 3] -> output[0, 1]: numerical 2 vs analytical 2.5" in text
    assert "error 0.5 > tolerance 0.002" in text
    assert "ValueError: x" in text
    assert len(text.splitlines()) < 10


def test_str_of_a_passing_report_is_short():
    report = Report("Tanh()", [CheckResult("input_gradient", True, "", [_tensor("input")])])
    lines = str(report).splitlines()
    assert lines[0] == "gradcheck Tanh(): passed 1 checks"
    assert len(lines) == 2


def test_to_dict_is_json_ready_with_non_finite_values():
    broken = _tensor("input", 1.0, math.nan, math.inf, passed=False)
    report = Report("m", [CheckResult("input_gradient", False, "x", [broken])], {"eps": None})
    data = json.loads(json.dumps(report.to_dict()))
    tensor = data["checks"][0]["tensors"][0]
    assert tensor["analytical"] == "nan" and tensor["tolerance"] == "inf"
    assert tensor["worst_index"] == [[0, 1], [2, 3]]
    assert data["passed"] is False and data["options"] == {"eps": None}


def test_getitem_names_the_checks_that_ran():
    report = Report("m", [CheckResult("forward", True)])
    assert report["forward"].passed and "forward" in report
    with pytest.raises(KeyError, match="checks that ran: forward"):
        report["accumulation"]


def test_gradcheck_error_is_an_assertion_error_carrying_the_report():
    report = Report("m", [CheckResult("forward", False, "forward returned NoneType")])
    error = GradcheckError(report)
    assert isinstance(error, AssertionError) and error.report is report
    assert "forward returned NoneType" in str(error)


def test_kinks_add_up_over_tensors_and_checks():
    a, b = _tensor("input"), _tensor("weight")
    a.kinks_skipped, b.kinks_skipped = 2, 3
    report = Report("m", [CheckResult("input_gradient", True, "", [a, b])])
    assert report["input_gradient"].kinks_skipped == 5 and report.kinks_skipped == 5
    assert "5 entries skipped at kinks" in str(report)
