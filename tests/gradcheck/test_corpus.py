"""The checker against a corpus of modules: every broken one flagged by the right check, every
correct one passing."""

from __future__ import annotations

import pytest
import torch

import gradcheck
from tests.gradcheck.corpus import broken, correct


def _x(*shape: int, seed: int = 0, low: float = -2.0, high: float = 2.0) -> torch.Tensor:
    return gradcheck.make_input(shape, input_range=(low, high), seed=seed)


def _kinky_input() -> torch.Tensor:
    """Values exactly at the kink, a hair away from it on both sides, and ordinary ones."""
    return torch.tensor(
        [[0.0, 1e-12, -1e-12, 0.7], [-0.3, 0.0, 2e-7, -2e-7], [1e-9, 1.5, -1.5, 0.0]],
        dtype=torch.float64,
    )


# (id, factory, inputs, options)
CORRECT = [
    ("linear", lambda: correct.Linear(3, 4), (_x(5, 3),), {}),
    ("tanh", correct.Tanh, (_x(4, 3),), {}),
    ("sigmoid_large_inputs", correct.Sigmoid, (_x(4, 3, low=-30, high=30),), {}),
    ("relu", correct.ReLU, (_x(4, 3),), {}),
    ("relu_at_and_near_kinks", correct.ReLU, (_kinky_input(),), {}),
    ("elu", correct.ELU, (_x(4, 3),), {}),
    ("softmax_dense_jacobian", correct.Softmax, (_x(4, 5),), {}),
    ("standardize_batch_statistics", correct.Standardize, (_x(6, 3),), {}),
    ("batchnorm_with_parameters", lambda: correct.BatchNorm(3), (_x(6, 3),), {}),
    ("values_spanning_12_orders", lambda: correct.WideRange(7), (_x(3, 7),), {}),
    ("dropout_random_mask", correct.Dropout, (_x(6, 5),), {}),
    (
        "network_with_relu_and_dropout",
        lambda: correct.Sequential(
            correct.Linear(3, 8, seed=1),
            correct.ReLU(),
            correct.Dropout(0.3),
            correct.Linear(8, 8, seed=2),
            correct.Tanh(),
            correct.Linear(8, 2, seed=3),
        ),
        (_x(5, 3),),
        {},
    ),
    ("param_as_property", lambda: correct.LinearParamProperty(3, 2), (_x(4, 3),), {}),
    ("parameters_generator", lambda: correct.LinearParameters(3, 2), (_x(4, 3),), {}),
    ("parameter_objects", lambda: correct.LinearParameterObjects(3, 2), (_x(4, 3),), {}),
    ("linear_fast_mode", lambda: correct.Linear(6, 5), (_x(4, 6),), {"mode": "fast"}),
    ("softmax_fast_mode", correct.Softmax, (_x(4, 5),), {"mode": "fast"}),
    ("mse_loss", correct.MSELoss, (_x(4, 3),), {}),
    ("bce_loss", correct.BCELoss, (), {}),
    ("cross_entropy_loss_class_targets", correct.CrossEntropyLoss, (_x(4, 5),), {}),
]

# (id, factory, inputs, options, the check that must fail)
BROKEN = [
    ("wrong_derivative", broken.TanhWrongDerivative, (), {}, gradcheck.INPUT_GRADIENT),
    ("twice_the_gradient", broken.SigmoidTwiceTheGradient, (), {}, gradcheck.INPUT_GRADIENT),
    ("wrong_on_negative_side", broken.ELUMissingAlpha, (), {}, gradcheck.INPUT_GRADIENT),
    ("wrong_sign_on_negatives", broken.LeakyReLUWrongSignOnNegatives, (), {}, "input_gradient"),
    (
        "transposed_weight_gradient_of_square_linear",
        lambda: broken.LinearTransposedWeightGradient(3, 3),
        (_x(4, 3),),
        {},
        gradcheck.PARAMETER_GRADIENT,
    ),
    (
        "bias_gradient_averaged",
        lambda: broken.LinearBiasGradientAveraged(3, 2),
        (_x(4, 3),),
        {},
        gradcheck.PARAMETER_GRADIENT,
    ),
    (
        "bias_gradient_from_one_sample",
        lambda: broken.LinearBiasGradientFromOneSample(3, 2),
        (_x(4, 3),),
        {},
        gradcheck.PARAMETER_GRADIENT,
    ),
    (
        "one_input_jacobian_entry_off_by_half_a_percent",
        lambda: broken.LinearOneEntryOffByHalfAPercent(3, 4),
        (_x(2, 3),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "one_weight_jacobian_entry_off_by_half_a_percent",
        lambda: broken.LinearOneWeightEntryOffByHalfAPercent(3, 4),
        (_x(2, 3),),
        {},
        gradcheck.PARAMETER_GRADIENT,
    ),
    (
        "one_entry_off_by_five_in_fast_mode",
        lambda: broken.LinearOneEntryOffByFive(40, 40),
        (_x(4, 40),),
        {"mode": "fast"},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "dropout_backward_without_mask",
        broken.DropoutBackwardWithoutMask,
        (_x(6, 5),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "dropout_backward_without_scale",
        broken.DropoutBackwardWithoutScale,
        (_x(6, 5),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    ("forward_mutates_input", broken.ReLUMutatesInput, (), {}, gradcheck.INPUT_MUTATION),
    (
        "backward_mutates_upstream_gradient",
        broken.ReLUMutatesUpstreamGradient,
        (),
        {},
        gradcheck.GRAD_OUTPUT_MUTATION,
    ),
    ("backward_mutates_output", broken.SigmoidMutatesOutput, (), {}, gradcheck.OUTPUT_MUTATION),
    (
        "gradient_rebound_not_accumulated",
        lambda: broken.LinearOverwritesGradient(3, 2),
        (),
        {},
        gradcheck.ACCUMULATION,
    ),
    (
        "gradient_copied_not_accumulated",
        lambda: broken.LinearCopiesIntoGradient(3, 2),
        (),
        {},
        gradcheck.ACCUMULATION,
    ),
    (
        "gradient_reset_by_forward",
        lambda: broken.LinearZeroesGradientInForward(3, 2),
        (),
        {},
        gradcheck.ACCUMULATION,
    ),
    (
        "parameter_object_grad_assigned",
        lambda: broken.ParameterObjectsOverwriteGrad(3, 2),
        (),
        {},
        gradcheck.ACCUMULATION,
    ),
    ("random_noise_in_backward", broken.TanhNoisyBackward, (), {}, gradcheck.DETERMINISM),
    ("backward_depends_on_call_count", broken.TanhCountsCalls, (), {}, gradcheck.DETERMINISM),
    (
        "transposed_output",
        lambda: broken.LinearTransposedOutput(3, 2),
        (_x(4, 3),),
        {},
        gradcheck.OUTPUT_SHAPE,
    ),
    (
        "ignores_upstream_gradient",
        broken.TanhIgnoresUpstreamGradient,
        (),
        {},
        gradcheck.LINEARITY,
    ),
    (
        "gradient_summed_over_batch",
        broken.TanhGradientSummedOverBatch,
        (),
        {},
        gradcheck.GRADIENT_SHAPE,
    ),
    (
        "batch_statistics_cross_terms_dropped",
        broken.StandardizeWithoutCrossSampleTerms,
        (_x(6, 3),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "softmax_cross_terms_dropped",
        broken.SoftmaxDiagonalOnly,
        (_x(4, 5),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "sequential_backward_in_forward_order",
        broken.SequentialBackwardInForwardOrder,
        (_x(4, 3),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    ("forward_returns_none", broken.TanhForwardReturnsNone, (), {}, gradcheck.FORWARD),
    (
        "backward_raises",
        lambda: broken.LinearBackwardRaises(3, 2),
        (_x(4, 3),),
        {},
        gradcheck.BACKWARD,
    ),
    ("backward_returns_none", broken.TanhBackwardReturnsNone, (), {}, gradcheck.BACKWARD),
    ("mse_not_divided_by_n", broken.MSELossNotDividedByN, (), {}, gradcheck.INPUT_GRADIENT),
    (
        "bce_wrong_sign_on_negative_class",
        broken.BCELossWrongSignOnNegativeClass,
        (),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "cross_entropy_wrong_sign_on_target_class",
        broken.CrossEntropyLossWrongSignOnTargetClass,
        (_x(4, 5),),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
]


@pytest.mark.parametrize(
    ("factory", "inputs", "options"),
    [pytest.param(f, i, o, id=name) for name, f, i, o in CORRECT],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correct_module_passes(factory, inputs, options, seed):
    report = gradcheck.check(factory(), *inputs, seed=seed, **options)
    assert report.passed, str(report)


@pytest.mark.parametrize(
    ("factory", "inputs", "options", "expected"),
    [pytest.param(f, i, o, e, id=name) for name, f, i, o, e in BROKEN],
)
def test_broken_module_is_flagged_by_the_right_check(factory, inputs, options, expected):
    report = gradcheck.check(factory(), *inputs, **options)
    failed = [c.name for c in report.failures]
    assert expected in failed, str(report)


def test_module_casting_to_float32_cannot_be_checked_in_float64_and_the_cast_is_named():
    report = gradcheck.check(broken.TanhCastsToFloat32())
    assert not report.checkable and not report.passed
    assert "casts explicitly (broken.py:" in report.unsupported
    assert "torch.tanh(x).float()" in report.unsupported
    assert "--dtype float32" in report.unsupported


def test_module_casting_to_float32_passes_when_checked_in_float32():
    report = gradcheck.check(broken.TanhCastsToFloat32(), dtype=torch.float32)
    assert report.passed, str(report)
    assert report.options["dtype"] == "float32"


def test_kinks_are_counted_not_reported():
    report = gradcheck.check(correct.ReLU(), _kinky_input())
    assert report.passed, str(report)
    assert report[gradcheck.INPUT_GRADIENT].kinks_skipped >= 3


def test_broken_check_message_says_what_to_fix():
    report = gradcheck.check(broken.LinearOverwritesGradient(3, 2))
    assert "overwrites" in report[gradcheck.ACCUMULATION].message or "replaced" in (
        report[gradcheck.ACCUMULATION].message
    )
