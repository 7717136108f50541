"""The checker on more layouts of the protocol (``corpus/layouts.py``): single-sample layers,
gradients made by backward, losses taking a tuple or built around the network. Each correct
module passes with no option and a note saying what was understood; each broken twin fails the
check its bug belongs to."""

from __future__ import annotations

import json
import textwrap

import pytest

import gradcheck
import nnlite
from gradcheck.cli import main
from tests.gradcheck.corpus import layouts, own_arrays

SINK = gradcheck.GradientSink
# (id, factory, the check a broken twin fails (None: it passes), a note the report must hold)
CASES = [
    ("column", layouts.ColumnReLU, None, "one sample as a column vector (3, 1)"),
    ("column_wrong", layouts.ColumnTanhWrong, "input_gradient", "column vector"),
    ("vector", layouts.VectorLinear, None, "one sample as a vector (3,)"),
    ("column_linear", layouts.ColumnLinear, None, "column vector (3, 1)"),
    ("vector_wrong", lambda: layouts.VectorLinear(wrong=True), "parameter_gradient", "(3,)"),
    ("zero_until_backward", layouts.ZeroUntilBackwardLinear, None, None),
    ("tuple_loss", layouts.TupleMSE, None, "forward((prediction, target))"),
    ("tuple_loss_wrong", layouts.TupleMSEWrong, "input_gradient", "(prediction, target)"),
    ("criterion", lambda: layouts.CriterionMSE(SINK()), None, "read from self.loss"),
    (
        "criterion_wrong",
        lambda: layouts.CriterionMSEWrong(SINK()),
        "input_gradient",
        "the loss object itself",
    ),
    ("silent_criterion", lambda: layouts.SilentCriterionMSE(SINK()), None, "a GradientSink"),
    ("transforms", layouts.TransformsSequential, None, "layers it holds (self.transforms)"),
    (
        "transforms_wrong",
        lambda: layouts.TransformsSequential(wrong=True),
        "parameter_gradient",
        "self.transforms",
    ),
    ("unused_bias", layouts.UnusedBiasLinear, None, "forward does not read it"),
    ("mode_flag", layouts.ModeTanh, None, "it was passed training=True"),
    ("boxes", layouts.BoxedLinear, None, None),
    ("boxes_wrong", lambda: layouts.BoxedLinear(wrong=True), "parameter_gradient", None),
    ("mode_flag_wrong", lambda: layouts.ModeTanh(wrong=True), "input_gradient", "training"),
    (
        "used_bias_without_gradient",
        lambda: layouts.UnusedBiasLinear(use_bias=True),
        "gradient_shape",
        None,
    ),
]


@pytest.mark.parametrize(
    ("factory", "failing", "note"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_layout_is_understood_and_each_bug_flagged(factory, failing, note):
    report = gradcheck.check(factory())
    assert report.unsupported is None, report.unsupported
    failed = [c.name for c in report.checks if not c.passed]
    assert failed == ([failing] if failing else []), report
    if note is not None:
        assert any(note in n for n in report.notes), report.notes


def test_a_gradient_that_lost_the_bias_dimension_is_named_with_both_shapes():
    report = gradcheck.check(layouts.RowBiasLinear())
    (result,) = [c for c in report.checks if not c.passed]
    assert result.name == gradcheck.GRADIENT_SHAPE
    assert "parameter b gradient has shape (4,), the parameter (1, 4)" in result.message


@pytest.mark.parametrize("cls", [layouts.CriterionMSE, layouts.SilentCriterionMSE])
def test_a_loss_built_around_a_real_network_is_refused_with_the_sink_to_use(cls):
    report = gradcheck.check(cls(nnlite.Tanh()))
    assert not report.passed
    assert f"{cls.__name__}(gradcheck.GradientSink())" in report.unsupported


def test_the_command_line_builds_a_criterion_around_a_sink(tmp_path, capsys, isolated_imports):
    path = tmp_path / "criterion.py"
    path.write_text(
        textwrap.dedent(
            """
            class LossMSE:
                def __init__(self, model):
                    self.model = model
                def forward(self, output, target):
                    self.err = output - target
                    self.loss = self.err.pow(2).mean()
                    return self
                def backward(self):
                    return self.model.backward(2 * self.err / self.err.numel())
            """
        )
    )
    status = main([str(path), "--json"])
    (target,) = json.loads(capsys.readouterr().out)["targets"]
    assert status == 0
    assert target["target"].endswith("criterion.py:LossMSE(gradcheck.GradientSink())")
    assert target["status"] == "pass"


def test_the_layers_of_a_container_without_param_are_checked_by_path():
    report = gradcheck.check(layouts.TransformsSequential())
    assert report.checks[0].message.startswith("transforms.0.w (3, 4), transforms.0.b (4,)")
    (result,) = [c for c in report.checks if c.name == gradcheck.PARAMETER_GRADIENT]
    assert [t.tensor for t in result.tensors] == [
        "transforms.0.w",
        "transforms.0.b",
        "transforms.2.w",
        "transforms.2.b",
    ]


def test_a_listed_parameter_forward_ignores_is_left_out_of_every_comparison():
    report = gradcheck.check(layouts.UnusedBiasLinear())
    (result,) = [c for c in report.checks if c.name == gradcheck.PARAMETER_GRADIENT]
    assert [t.tensor for t in result.tensors] == ["w"]


def test_a_required_mode_flag_follows_the_check_s_mode():
    # In evaluation the scale is 1, so the backward that ignores it is right there.
    assert gradcheck.check(layouts.ModeTanh(wrong=True), train=False).passed


def test_a_layer_on_an_array_type_of_its_own_cannot_be_checked_and_is_not_failed():
    report = gradcheck.check(own_arrays.ReLU())
    assert report.unsupported is not None
    assert "works on an array type of its own" in report.unsupported
    assert "'Tensor' object has no attribute 'map'" in report.unsupported


def test_a_forward_taking_three_tensors_gets_one_of_the_shape_given_for_each():
    report = gradcheck.check(layouts.AttentionLike(), shape=(2, 3, 4))
    assert report.passed, report
    (result,) = [c for c in report.checks if c.name == gradcheck.INPUT_GRADIENT]
    assert [t.tensor for t in result.tensors] == ["input[0]", "input[1]", "input[2]"]


def test_a_bias_gradient_reduced_to_one_number_is_named_with_both_shapes():
    report = gradcheck.check(layouts.MeanBiasGradLinear())
    (result,) = [c for c in report.checks if not c.passed]
    assert result.name == gradcheck.GRADIENT_SHAPE
    assert "parameter b gradient has shape (), the parameter (4,)" in result.message


@pytest.mark.parametrize(("wrong", "passed"), [(False, True), (True, False)])
def test_backprop_is_taken_for_backward(wrong, passed):
    x = gradcheck.make_input((2, 3, 4, 4))
    report = gradcheck.check(layouts.BackpropMaxPool(wrong=wrong), x)
    assert report.passed is passed, report
    assert "no backward(): backprop() as backward() was called" in report.notes


def test_a_loss_under_placeholder_methods_is_checked_through_its_value_and_gradient(
    tmp_path, isolated_imports
):
    from gradcheck.targets import resolve

    report = gradcheck.check(layouts.ValueGradMSE())
    assert report.passed, report
    assert any("loss_value() and loss_grad()" in n for n in report.notes)
    names = [t.name for t in resolve(layouts.__file__) if not t.skipped]
    assert any(n.endswith(":ValueGradMSE") for n in names)
    assert any(n.endswith(":BackpropMaxPool") for n in names)


def test_a_layer_without_a_batch_dimension_is_checked_with_batch_dim_none(capsys):
    image = gradcheck.make_input((3, 6, 6))
    kept = gradcheck.check(layouts.SingleImageConv(), image)
    assert [c.name for c in kept.checks if not c.passed] == [gradcheck.OUTPUT_SHAPE]
    assert gradcheck.check(layouts.SingleImageConv(), image, batch_dim=None).passed
    assert gradcheck.check(layouts.SingleImageConv(), batch_dim=None, shape=(3, 6, 6)).passed
    assert gradcheck.default_shape(layouts.SingleImageConv(), batch_dim=None) == (3,)
    status = main(
        [f"{layouts.__file__}:SingleImageConv", "--batch-dim", "none", "--shape", "3,6,6"]
    )
    assert status == 0, capsys.readouterr().out


def test_one_image_with_its_channels_last_is_drawn_when_nothing_else_fits():
    report = gradcheck.check(layouts.ImageMaxPool())
    assert report.passed, report
    assert any("one (H, W, C) image (6, 6, 3) was drawn" in n for n in report.notes)


def test_probability_rows_replace_class_labels_that_break_backward():
    report = gradcheck.check(layouts.OneHotCrossEntropy())
    assert report.passed, report
    assert any("probability rows like the prediction were used" in n for n in report.notes)
