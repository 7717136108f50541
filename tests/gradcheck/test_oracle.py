"""gradcheck.oracle: backward against autograd's differentiation of forward."""

from __future__ import annotations

import pytest

import gradcheck
import nnlite
from tests.gradcheck.corpus import broken, conv, correct, scale


def _x(*shape: int):
    return gradcheck.make_input(shape)


def _modes(report):
    return {t.tensor: t.mode for c in report.checks for t in c.tensors if c.name.endswith("nt")}


CORRECT = [
    ("linear", lambda: correct.Linear(3, 4), (5, 3)),
    ("softmax", correct.Softmax, (4, 5)),
    ("standardize", correct.Standardize, (6, 3)),
    ("conv_block", lambda: conv.block(width=2), (2, 3, 5, 5)),
    ("mse", correct.MSELoss, (4, 3)),
]


@pytest.mark.parametrize(
    ("factory", "shape"), [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT]
)
def test_correct_modules_agree_with_autograd_at_rounding_level(factory, shape):
    report = gradcheck.check(factory(), _x(*shape), oracle="autograd")
    assert report.passed, report
    assert set(_modes(report).values()) == {"autograd"}
    assert report.worst.ratio < 1
    assert report.options["oracle"] == "autograd"


def test_the_oracle_catches_what_finite_differences_catch():
    report = gradcheck.check(broken.TanhWrongDerivative(), oracle="autograd")
    assert not report[gradcheck.INPUT_GRADIENT].passed


def test_the_oracle_catches_a_wrong_derivative_at_a_tiny_scale():
    report = gradcheck.check(scale.ScaledTanh(1e-6, factor=1.5), _x(4, 3), oracle="autograd")
    assert not report[gradcheck.INPUT_GRADIENT].passed
    assert "analytical = 1.5 x numerical" in report[gradcheck.INPUT_GRADIENT].message


@pytest.mark.parametrize(
    ("module", "reason"),
    [
        (scale.TanhNoGrad(), "autograd cannot follow forward"),
        (scale.TanhThroughNumpy(), "forward raised RuntimeError"),
        (broken.ReLUMutatesInput(), "forward writes into its input"),
    ],
    ids=["no_grad", "numpy", "in_place_on_input"],
)
def test_forwards_autograd_cannot_follow_fall_back_to_finite_differences(module, reason):
    report = gradcheck.check(module, _x(4, 3), oracle="autograd")
    assert "autograd" not in _modes(report).values()
    note = next(n for n in report.notes if n.startswith("oracle autograd not used"))
    assert reason in note


def test_a_step_hidden_from_autograd_does_not_make_correct_code_wrong():
    report = gradcheck.check(
        scale.TanhDetachedDerivativeCache(scale=3.0), _x(4, 3), oracle="autograd"
    )
    assert report.passed
    assert any("autograd disagreed with backward for input" in n for n in report.notes)


def test_an_unknown_oracle_is_refused():
    with pytest.raises(ValueError, match="oracle must be one of finite-differences, autograd"):
        gradcheck.check(correct.Tanh(), oracle="torch")


def test_the_oracles_tolerance_is_printed_as_rounding_level():
    report = gradcheck.check(correct.Tanh(), _x(4, 3), oracle="autograd")
    text = report.worst.describe()
    assert "numerical" in text and "(rounding level: atol" in text
    assert report.worst.rtol == pytest.approx(1024 * 2.0**-52)


def test_an_input_forward_detaches_is_named_and_judged_by_finite_differences():
    # nnlite never builds a graph: its Linear detaches the input (the weight still has a path).
    report = gradcheck.check(nnlite.Linear(3, 4), _x(5, 3), oracle="autograd")
    assert report.passed
    assert _modes(report)["weight"] == "autograd" and _modes(report)["input"] != "autograd"
    assert any("autograd finds no path from input to the output" in n for n in report.notes)
