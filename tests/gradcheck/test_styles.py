"""The checker on the ways course projects write the protocol: understood with no adapter, the
correct modules passing and each broken twin flagged by the right check."""

from __future__ import annotations

import pytest
import torch

import gradcheck
from tests.gradcheck.corpus import styles


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return gradcheck.make_input(shape, seed=seed)


# (id, factory, inputs, options, parameter names the checker must find)
CORRECT = [
    ("flat_list", lambda: styles.FlatListLinear(3, 2), (), {}, ["w", "b"]),
    ("layer_tuple", lambda: styles.LayerTupleLinear(3, 2), (), {}, ["w", "b"]),
    ("interleaved_tuple", lambda: styles.InterleavedTupleLinear(3, 2), (), {}, ["w", "b"]),
    ("value_objects", lambda: styles.ValueObjectsLinear(3, 2), (), {}, ["weight", "bias"]),
    ("empty_generator", styles.GeneratorTanh, (), {}, []),
    ("none_pair", styles.NonePairReLU, (), {}, []),
    ("generator_of_dicts", lambda: styles.OrderedDictLinear(3, 2), (), {}, ["weight", "bias"]),
    (
        "generator_of_generators",
        lambda: styles.OrderedDictSequential(
            styles.OrderedDictLinear(3, 4), styles.EmptyDictTanh()
        ),
        (),
        {},
        ["weight", "bias"],
    ),
    ("flat_halves", lambda: styles.FlatHalvesLinear(3, 2), (), {}, ["w", "b"]),
    ("grad_method", lambda: styles.GradMethodLinear(3, 2), (), {}, ["w", "b"]),
    ("same_shape_parameters", styles.ScaleShift, (), {}, ["gamma", "beta"]),
    ("dict_of_objects", lambda: styles.DictLinear(3, 2), (), {}, ["weight", "bias"]),
    ("tensors_only", lambda: styles.TensorsOnlyLinear(3, 2), (), {}, ["weight", "bias"]),
    ("gradients_made_in_backward", lambda: styles.LossWrtLinear(3, 2), (), {}, ["w", "b"]),
    ("no_param_method", lambda: styles.NoParamMethodLinear(3, 2), (), {}, ["w", "b"]),
    ("dict_per_parameter", lambda: styles.DictPerParameterLinear(3, 2), (), {}, ["w", "b"]),
    ("gradient_made_lazily", lambda: styles.LazyGradientLinear(3, 2), (), {}, ["w"]),
    ("stores_output", styles.StoresOutputTanh, (), {}, []),
    ("float32_buffers", lambda: styles.Float32BuffersLinear(3, 2), (), {}, ["w", "b"]),
    ("features_first", lambda: styles.FeaturesFirstLinear(3, 2), (), {"batch_dim": 1}, ["w", "b"]),
    ("mse_course_template", styles.MSE, (), {}, []),
    ("target_first_mse", styles.TargetFirstMSE, (), {}, []),
    ("loss_returns_float", styles.FloatLoss, (), {}, []),
    ("zero_grad_in_place", lambda: styles.ZeroGradInPlace(3, 2), (), {}, ["w", "b"]),
    ("shift_accumulates", styles.Shift, (), {}, ["b"]),
    ("frees_cache", styles.FreesCacheTanh, (), {}, []),
    (
        "nested_parameter_lists",
        lambda: styles.NestedSequential([styles.PairLinear(3, 4), styles.FreesCacheTanh()]),
        (),
        {},
        ["layers.0.w", "layers.0.b"],
    ),
    (
        "silent_sequential",
        lambda: styles.SilentSequential([styles.PairLinear(3, 4), styles.PairLinear(4, 2)]),
        (),
        {},
        ["layers.0.w", "layers.0.b", "layers.1.w", "layers.1.b"],
    ),
]


@pytest.mark.parametrize(
    ("factory", "inputs", "options", "names"),
    [pytest.param(f, i, o, n, id=name) for name, f, i, o, n in CORRECT],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_student_style_module_is_understood_and_passes(factory, inputs, options, names, seed):
    report = gradcheck.check(factory(), *inputs, seed=seed, **options)
    assert report.passed, str(report)
    listed = report[gradcheck.PARAMETERS].message
    assert listed == "no parameters" if not names else all(n in listed for n in names), listed
    compared = [t.tensor for c in report.checks for t in c.tensors]
    assert [n for n in compared if n != "input"] == names


# (id, factory, options, the check that must fail)
BROKEN = [
    (
        "flat_list_bias_averaged",
        lambda: styles.FlatListLinearWrongBias(3, 2),
        {},
        "parameter_gradient",
    ),
    (
        "tensors_only_weight_gradient_wrong",
        lambda: styles.TensorsOnlyLinearTransposed(3, 2),
        {},
        "parameter_gradient",
    ),
    ("stored_output_wrong_derivative", styles.StoresOutputTanhWrong, {}, "input_gradient"),
    ("mse_course_template_twice", styles.MSETwice, {}, "input_gradient"),
    ("target_first_mse_wrong_sign", styles.TargetFirstMSEWrongSign, {}, "input_gradient"),
    ("zero_grad_rebinds", lambda: styles.ZeroGradRebinds(3, 2), {}, "zero_grad"),
    ("keeps_upstream_gradient", styles.ShiftKeepsUpstream, {}, "accumulation"),
    ("second_backward_differs", styles.MutatesCacheTanh, {}, "determinism"),
    ("mutates_input", styles.ReLUMutatesInputRightGradient, {}, "input_mutation"),
    ("weight_unused_in_forward", lambda: styles.UnusedWeightLinear(3, 2), {}, "parameter_gradient"),
]


@pytest.mark.parametrize(
    ("factory", "options", "expected"),
    [pytest.param(f, o, e, id=name) for name, f, o, e in BROKEN],
)
def test_broken_student_style_module_is_flagged_by_the_right_check(factory, options, expected):
    report = gradcheck.check(factory(), **options)
    assert report.checkable, report.unsupported
    assert expected in [c.name for c in report.failures], str(report)


def test_a_loss_is_recognised_by_its_signature_whatever_its_name():
    assert gradcheck.is_loss(styles.MSE())
    assert gradcheck.is_loss(styles.TargetFirstMSE())
    assert not gradcheck.is_loss(styles.GeneratorTanh())
    assert not gradcheck.is_loss(styles.PairLinear(3, 2))


def test_a_target_first_loss_is_read_from_its_parameter_names_and_noted():
    report = gradcheck.check(styles.TargetFirstMSE())
    assert report.options["target_first"] is True
    assert any("forward(target, prediction)" in note for note in report.notes)


def test_a_correct_target_first_loss_is_never_called_a_sign_error():
    assert gradcheck.check(styles.TargetFirstMSE()).passed
    wrong = gradcheck.check(styles.TargetFirstMSE(), target_first=False)
    assert not wrong.passed  # told the wrong order, the gradient is with respect to the target


def test_a_soft_target_cross_entropy_gets_probability_targets_and_a_note():
    report = gradcheck.check(styles.SoftCrossEntropy(), target_kind="auto")
    # Its name says nothing: targets like the prediction are drawn directly.
    assert report.passed, str(report)


def test_class_targets_that_do_not_fit_fall_back_to_probabilities_with_a_note():
    class SoftCrossEntropyLoss(styles.SoftCrossEntropy):
        pass

    report = gradcheck.check(SoftCrossEntropyLoss())
    assert report.passed, str(report)
    assert any("class-index targets did not fit" in note for note in report.notes), report.notes


def test_a_stored_output_is_named_in_a_note():
    report = gradcheck.check(styles.StoresOutputTanh())
    assert any("self.output" in note for note in report.notes), report.notes


def test_a_container_returning_none_has_its_parameters_checked_and_a_note():
    model = styles.SilentSequential([styles.PairLinear(3, 4), styles.PairLinear(4, 2)])
    report = gradcheck.check(model)
    assert report.passed
    assert not [t for c in report.checks for t in c.tensors if t.tensor == "input"]
    assert any("backward returned None" in note for note in report.notes)


def test_a_module_that_keeps_the_upstream_gradient_fails_accumulation_only():
    report = gradcheck.check(styles.ShiftKeepsUpstream())
    assert [c.name for c in report.failures] == ["accumulation"], str(report)


def test_after_an_input_mutation_the_gradients_are_judged_at_the_drawn_inputs():
    report = gradcheck.check(styles.ReLUMutatesInputRightGradient())
    assert [c.name for c in report.failures] == ["input_mutation"], str(report)


def test_a_second_backward_that_raises_is_a_note_not_a_failure():
    report = gradcheck.check(styles.FreesCacheTanh())
    assert report.passed
    assert any("second backward" in note for note in report.notes), report.notes


def test_zero_grad_rebinding_says_to_zero_in_place():
    report = gradcheck.check(styles.ZeroGradRebinds(3, 2))
    assert "zero in place" in report[gradcheck.ZERO_GRAD].message


def test_an_unused_parameter_is_reported_as_having_no_effect():
    report = gradcheck.check(styles.UnusedWeightLinear(3, 2))
    assert "no effect" in report[gradcheck.PARAMETER_GRADIENT].message, str(report)


def test_an_unreadable_parameter_list_cannot_be_checked_and_shows_the_adapter():
    report = gradcheck.check(styles.StringParams(3, 2))
    assert not report.checkable and not report.passed
    assert "parameter item 0 is a str" in report.unsupported
    assert "class Adapter" in report.unsupported


def test_the_check_leaves_the_module_in_float32_and_torch_default_dtype_alone():
    module = styles.Float32BuffersLinear(3, 2)
    before = module.w.clone()
    gradcheck.check(module)
    assert module.w.dtype == torch.float32 and torch.equal(module.w, before)
    assert torch.get_default_dtype() == torch.float32


def test_a_module_returning_its_mutated_input_fails_input_mutation_only():
    report = gradcheck.check(styles.ReLUReturnsItsInput())
    assert [c.name for c in report.failures] == ["input_mutation"], str(report)


def test_a_loss_returning_one_value_per_sample_says_which_reduction_backward_matches():
    report = gradcheck.check(styles.PerSampleMSE())
    message = report[gradcheck.OUTPUT_SHAPE].message
    assert "got shape (4, 1)" in message
    assert "backward() is the gradient of the mean of these 4 values" in message
    assert any("a (4, 3) prediction was refused" in note for note in report.notes)


def test_sizes_spelled_with_words_are_derived():
    from gradcheck.targets import derive_arguments

    assert derive_arguments(styles.LayerSizes, "", 3, None).args == (3, 4)


def test_what_a_loss_lists_as_parameters_is_noted_not_checked():
    report = gradcheck.check(styles.LossListsItsValue())
    assert report.passed, str(report)
    assert any("a loss has no parameters" in note for note in report.notes), report.notes


def test_package_mode_checks_an_inplace_layer_out_of_place_as_torch_defaults_to():
    from gradcheck.targets import derive_arguments

    call = derive_arguments(styles.InplaceReLU, "", 3, None)
    assert call.kwargs == (("inplace", False),)
    assert gradcheck.check(styles.InplaceReLU(inplace=False)).passed
    assert not gradcheck.check(styles.InplaceReLU()).passed


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            lambda: styles.ReturnsOutputAndCache(3, 2),
            "forward returned a tuple of 2 (Tensor, Tensor)",
        ),
        (lambda: styles.BackwardTakesTheCache(3, 2), "backward needs 2 arguments (grad, cache)"),
        (styles.BackwardReadsItsOwnError, "takes no upstream gradient, and its forward takes one"),
    ],
    ids=["forward_returns_output_and_cache", "backward_takes_a_cache", "backward_takes_nothing"],
)
def test_a_protocol_the_checker_cannot_drive_cannot_be_checked_and_shows_the_adapter(
    factory, message
):
    report = gradcheck.check(factory())
    assert not report.checkable and not report.passed
    assert message in report.unsupported
    assert "class Adapter" in report.unsupported


def test_a_zero_grad_that_rebinds_fails_zero_grad_alone_not_the_gradient_comparison():
    report = gradcheck.check(styles.WrapperZeroGradRebinds())
    assert [c.name for c in report.failures] == ["zero_grad"], str(report)


@pytest.mark.parametrize(
    ("factory", "passes"),
    [
        (styles.MSEWithDerivative, True),
        (styles.CallableMSE, True),
        (styles.MSEApplyTwiceTheGradient, False),
    ],
    ids=["loss_and_dloss", "call_and_derivative", "apply_returning_value_and_gradient"],
)
def test_a_loss_written_as_a_value_and_a_gradient_method_is_checked(factory, passes):
    report = gradcheck.check(factory())
    assert report.checkable, report.unsupported
    assert report.passed is passes, str(report)
    assert any("no forward/backward: checked as a loss through" in n for n in report.notes)


def test_a_value_and_gradient_loss_is_a_module_class_for_targets():
    from gradcheck.targets import is_module_class

    assert is_module_class(styles.MSEWithDerivative)
    assert not is_module_class(dict)


def test_a_base_loss_whose_value_and_gradient_methods_are_stubs_is_abstract():
    from gradcheck.targets import is_abstract

    class BaseLoss:
        def loss(self, prediction, target):
            pass

        def dloss(self, prediction, target):
            raise NotImplementedError

    assert is_abstract(BaseLoss)
    assert not is_abstract(styles.MSEWithDerivative)


def test_an_accumulation_failure_with_right_gradients_says_the_values_are_right():
    from tests.gradcheck.corpus import broken

    message = gradcheck.check(broken.LinearOverwritesGradient(3, 2))[gradcheck.ACCUMULATION].message
    assert "the gradients of one backward are right (parameter_gradient passed)" in message


def test_a_zero_grad_failure_with_right_gradients_says_the_values_are_right():
    message = gradcheck.check(styles.ZeroGradRebinds(3, 2))[gradcheck.ZERO_GRAD].message
    assert "only zero_grad() breaks the course contract" in message
