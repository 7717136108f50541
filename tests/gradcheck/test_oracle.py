"""gradcheck.oracle: backward against autograd's differentiation of forward."""

from __future__ import annotations

import pytest
import torch

import gradcheck
import nnlite
from gradcheck.cli import main
from tests.gradcheck.corpus import broken, conv, correct, numpy_modules, oracle_cases, scale

VALIDATED = "autograd, validated by finite differences along 2 directions"


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
    with pytest.raises(
        ValueError, match="oracle must be one of auto, finite-differences, autograd, got 'torch'"
    ):
        gradcheck.check(correct.Tanh(), oracle="torch")


def test_the_oracles_tolerance_is_printed_as_rounding_level():
    report = gradcheck.check(correct.Tanh(), _x(4, 3), oracle="autograd")
    text = report.worst.describe()
    assert "autograd " in text and " vs backward " in text and "(rounding level: atol" in text
    assert report.worst.rtol == pytest.approx(1024 * 2.0**-52)


def test_an_input_forward_detaches_is_named_and_judged_by_finite_differences():
    # nnlite never builds a graph: its Linear detaches the input (the weight still has a path).
    report = gradcheck.check(nnlite.Linear(3, 4), _x(5, 3), oracle="autograd")
    assert report.passed
    assert _modes(report)["weight"] == "autograd" and _modes(report)["input"] != "autograd"
    assert any("autograd finds no path from input to the output" in n for n in report.notes)


# -- oracle="auto", the default: autograd once finite differences confirm it -------------------


def _oracles(report):
    return {t.tensor: t.oracle for c in report.checks for t in c.tensors if c.name.endswith("nt")}


@pytest.mark.parametrize(
    ("factory", "shape"), [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT]
)
def test_by_default_validated_autograd_judges_every_tensor_of_a_correct_module(factory, shape):
    report = gradcheck.check(factory(), _x(*shape))
    assert report.passed, report
    assert report.options["oracle"] == "auto"
    assert set(_modes(report).values()) == {"autograd"}
    assert set(_oracles(report).values()) == {VALIDATED}
    assert not report.notes


@pytest.mark.parametrize(
    ("factory", "shape"),
    [
        (lambda: correct.Linear(3, 4), (5, 3)),
        (correct.Tanh, (4, 3)),
        (lambda: correct.BatchNorm(3), (6, 3)),
        (lambda: conv.block(width=2), (2, 3, 5, 5)),
    ],
    ids=["linear", "tanh", "batchnorm", "conv_block"],
)
def test_auto_validates_autograd_in_float32_too(factory, shape):
    x = gradcheck.make_input(shape, dtype=torch.float32)
    report = gradcheck.check(factory(), x, dtype=torch.float32)
    assert report.passed, report
    assert set(_oracles(report).values()) == {VALIDATED}


# A 0.5% error in one entry: autograd sees it at once, finite differences confirm it.
HALF_PERCENT = [
    ("linear_weight", lambda: scale.LinearWeightEntryOff(40, 40), (8, 40), "weight"),
    (
        "conv_weight",
        lambda: conv.block(width=4, first=conv.Conv2dWrongWeightEntry),
        (1, 3, 6, 6),
        "modules.0.weight",
    ),
    ("elementwise", lambda: scale.TanhOneEntryOff(index=123), (30, 30), "input"),
]


@pytest.mark.parametrize(
    ("factory", "shape", "tensor"), [c[1:] for c in HALF_PERCENT], ids=[c[0] for c in HALF_PERCENT]
)
def test_auto_catches_half_a_percent_in_one_entry(factory, shape, tensor):
    report = gradcheck.check(factory(), _x(*shape))
    failed = [t.tensor for c in report.failures for t in c.tensors if not t.passed]
    assert failed == [tensor], report
    # autograd was trusted (validated) and flagged the tensor; finite differences judged it.
    passed = {t.oracle for c in report.checks for t in c.tensors if t.passed}
    assert passed <= {VALIDATED}


@pytest.mark.parametrize(
    "factory",
    [lambda: oracle_cases.StandardizeDetachedMean(), lambda: oracle_cases.BatchNormDetachedMean(3)],
    ids=["standardize", "batchnorm"],
)
def test_a_detached_batch_mean_with_a_backward_that_ignores_it_fails_under_auto(factory):
    x = _x(6, 3)
    # Unvalidated, autograd is fooled: it sees the same constant mean as the backward.
    assert gradcheck.check(factory(), x.clone(), oracle="autograd").passed
    report = gradcheck.check(factory(), x.clone())
    assert not report[gradcheck.INPUT_GRADIENT].passed, report
    assert _modes(report)["input"] != "autograd"
    note = next(n for n in report.notes if n.startswith("finite differences judged every"))
    assert "disagree with autograd along a random direction" in note
    assert "forward hides a step from autograd" in note


def test_a_gate_computed_under_no_grad_with_a_backward_that_ignores_it_fails_under_auto():
    x = _x(4, 3)
    assert gradcheck.check(oracle_cases.SiLUNoGradGate(), x.clone(), oracle="autograd").passed
    report = gradcheck.check(oracle_cases.SiLUNoGradGate(), x.clone())
    assert not report[gradcheck.INPUT_GRADIENT].passed, report


def test_a_hidden_step_with_a_right_backward_passes_by_finite_differences():
    report = gradcheck.check(oracle_cases.StandardizeDetachedMeanRightBackward(), _x(6, 3))
    assert report.passed, report
    assert set(_oracles(report).values()) == {"finite differences"}
    assert any("disagree with autograd along a random direction" in n for n in report.notes)


@pytest.mark.parametrize(
    ("module", "shape", "reason"),
    [
        (numpy_modules.Dense(3, 4), None, "forward runs on numpy arrays"),
        (nnlite.Tanh(), (4, 3), "autograd cannot follow forward"),
        (nnlite.Linear(3, 4), (5, 3), "autograd finds no path from input to the output"),
        (oracle_cases.SoftplusThroughArray(), (4, 3), "forward raised RuntimeError"),
        (scale.TanhNoGrad(), (4, 3), "autograd cannot follow forward"),
        (broken.ReLUMutatesInput(), (4, 3), "forward writes into its input"),
    ],
    ids=["numpy", "nnlite_tanh", "nnlite_linear", "raises", "no_grad", "in_place"],
)
def test_auto_falls_back_to_finite_differences_quietly_where_autograd_cannot_follow(
    module, shape, reason
):
    report = gradcheck.check(module) if shape is None else gradcheck.check(module, _x(*shape))
    assert report.passed or isinstance(module, broken.ReLUMutatesInput), report
    assert set(_oracles(report).values()) == {"finite differences"}
    assert not any("oracle" in n or "autograd" in n for n in report.notes)
    tensors = [t for c in report.checks for t in c.tensors if c.name.endswith("nt")]
    assert all(f"finite differences judged it, as {reason}" in t.sensitivity_note for t in tensors)


def test_a_kink_on_every_direction_falls_back_instead_of_failing():
    x = torch.zeros(4, 3, dtype=torch.float64)
    x[0] = 1.0  # the other entries sit on |x|'s kink: every direction crosses one
    report = gradcheck.check(oracle_cases.AbsReLU(), x)
    assert report.passed, report
    result = report[gradcheck.INPUT_GRADIENT].tensors[0]
    assert result.oracle == "finite differences"
    assert "4 of 4 random directions crossed a kink" in result.sensitivity_note


def test_the_validated_oracle_and_its_sensitivity_are_reported():
    report = gradcheck.check(correct.Linear(3, 4), _x(5, 3))
    result = report[gradcheck.PARAMETER_GRADIENT].tensors[0]
    assert result.to_dict()["oracle"] == VALIDATED
    assert "weight autograd: every gradient entry against autograd" in (
        report[gradcheck.PARAMETER_GRADIENT].message
    )
    assert "validated by finite differences along 2 random directions (a difference of" in (
        result.sensitivity_note
    )
    assert result.describe().endswith(VALIDATED)
    assert result.sensitivity < 1e-9


def test_a_named_finite_difference_mode_is_not_overridden_by_auto():
    report = gradcheck.check(correct.Linear(3, 4), _x(5, 3), mode="vjp")
    assert set(_modes(report).values()) == {"vjp"}
    assert set(_oracles(report).values()) == {"finite differences"}


def test_finite_differences_alone_when_asked():
    report = gradcheck.check(correct.Linear(3, 4), _x(5, 3), oracle="finite-differences")
    assert report.passed
    assert set(_modes(report).values()) == {"full"}


def test_the_cli_defaults_to_auto_and_takes_the_three_oracles(capsys):
    target = "tests/gradcheck/corpus/oracle_cases.py:StandardizeDetachedMean"
    assert main([target, "--shape", "6,3", "--no-isolate"]) == 1
    out = capsys.readouterr().out
    assert "finite differences judged every tensor, as they disagree with autograd" in out
    assert main([target, "--shape", "6,3", "--no-isolate", "--oracle", "autograd"]) == 0
    capsys.readouterr()
    assert main(["tests/gradcheck/corpus/correct.py:Tanh", "--no-isolate", "-v"]) == 0
    assert VALIDATED in capsys.readouterr().out


def test_finite_differences_along_the_disagreement_settle_it_for_autograd():
    report = gradcheck.check(
        oracle_cases.LinearInputEntryOff(), gradcheck.make_input((16, 30)), max_full=15_000
    )
    result = report[gradcheck.INPUT_GRADIENT]
    assert not result.passed
    assert result.message.startswith("backward disagrees with autograd for input")
    assert "analytical = 1.005 x numerical" in result.message
    assert any(
        "finite differences along the difference side with autograd" in n for n in report.notes
    )
    # The parameters' gradients are right, and still pass.
    assert report[gradcheck.PARAMETER_GRADIENT].passed
