"""The checker's rarer paths: bad arguments to check(), modules returning odd things, losses
that fit no drawn input, and the reports of modules that cannot be checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradcheck
from tests.gradcheck.corpus import correct, styles


class Returns:
    """forward returns whatever ``make`` builds from the input; backward passes the gradient."""

    def __init__(self, make):
        self.make = make

    def forward(self, x):
        return self.make(x)

    def backward(self, grad):
        return grad

    def param(self):
        return []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda x: (x > 0).long(), "forward returned a torch.int64 tensor"),
        (lambda x: x / 0, "non-finite values"),
    ],
    ids=["integer_output", "infinite_output"],
)
def test_an_unusable_output_fails_forward(make, message):
    report = gradcheck.check(Returns(make))
    assert message in report[gradcheck.FORWARD].message


def test_an_output_without_out_features_last_fails_output_shape():
    module = correct.Linear(3, 4)
    module.out_features = 5
    assert (
        "does not end with out_features=5"
        in gradcheck.check(module)[gradcheck.OUTPUT_SHAPE].message
    )


class TwoInputs:
    """``forward(x, y) = x * y``; backward returns only the first input's gradient."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, grad):
        return grad * self.y, None


def test_a_missing_gradient_of_a_second_input_fails_backward():
    report = gradcheck.check(
        TwoInputs(), gradcheck.make_input((4, 3)), gradcheck.make_input((4, 3))
    )
    assert "backward returned no gradient for ['input[1]']" in report[gradcheck.BACKWARD].message


class WrongDtypes(styles.PairLinear):
    def backward(self, grad):
        super().backward(grad)
        self.db = self.db.float()
        return (grad @ self.w.T).float()

    def param(self):
        return [(self.w, self.dw), (self.b, self.db)]


def test_gradients_of_another_dtype_fail_gradient_shape():
    message = gradcheck.check(WrongDtypes(3, 2))[gradcheck.GRADIENT_SHAPE].message
    assert "input gradient is torch.float32, input is torch.float64" in message
    assert "parameter b gradient is torch.float32, it is torch.float64" in message


class MutatesInBackward(correct.Tanh):
    def backward(self, grad):
        self.x_seen.mul_(0)
        return super().backward(grad)

    def forward(self, x):
        self.x_seen = x
        return super().forward(x)


def test_an_input_written_in_backward_fails_input_mutation():
    message = gradcheck.check(MutatesInBackward())[gradcheck.INPUT_MUTATION].message
    assert message.startswith("backward changed its input in place")


class GrowingGradient(styles.PairLinear):
    """Adds three times what it should on every call after the first."""

    calls = 0

    def backward(self, grad):
        self.calls += 1
        dx = super().backward(grad)
        if self.calls % 2 == 0:
            self.dw += self.x.T @ grad
        return dx


def test_gradients_that_neither_add_nor_overwrite_fail_accumulation_with_the_error():
    message = gradcheck.check(GrowingGradient(3, 2))[gradcheck.ACCUMULATION].message
    assert "is not twice one call's" in message


class ZeroGradRaises(styles.PairLinear):
    def zero_grad(self):
        raise RuntimeError("no optimizer attached")


def test_a_zero_grad_that_raises_fails_zero_grad_with_its_message():
    result = gradcheck.check(ZeroGradRaises(3, 2))[gradcheck.ZERO_GRAD]
    assert "zero_grad() raised RuntimeError: no optimizer attached" in result.message


class VectorLoss:
    """One value per entry; backward returns something of neither the sum's nor the mean's."""

    def forward(self, prediction, target):
        self.diff = prediction - target
        return self.diff**2

    def backward(self):
        return self.diff


def test_a_non_scalar_loss_whose_backward_matches_no_reduction_says_so():
    message = gradcheck.check(VectorLoss())[gradcheck.OUTPUT_SHAPE].message
    assert "is the gradient of neither the sum nor the mean of these 12 values" in message


class VectorLossWrongShape(VectorLoss):
    def backward(self):
        return self.diff.sum(0)


def test_a_non_scalar_loss_whose_gradient_has_another_shape_is_asked_for_a_reduction():
    message = gradcheck.check(VectorLossWrongShape())[gradcheck.OUTPUT_SHAPE].message
    assert "; return their mean or sum" in message


class NumpyScalarLoss(styles.MSE):
    def forward(self, prediction, target):
        return np.float64(float(super().forward(prediction, target)))


def test_a_loss_returning_a_numpy_scalar_is_read_as_a_tensor():
    assert gradcheck.check(NumpyScalarLoss()).passed


class RefusesEverything:
    def forward(self, prediction, target):
        raise ValueError("unsupported prediction")

    def backward(self):
        return None


def test_a_loss_that_refuses_every_drawn_shape_reports_its_own_exception():
    report = gradcheck.check(RefusesEverything())
    assert "unsupported prediction" in report[gradcheck.FORWARD].message
    assert not report.notes


class CrossEntropyLossNaN:
    """Returns nan for class targets and for probability rows alike."""

    def forward(self, logits, target):
        return logits.sum() * float("nan")

    def backward(self):
        return None


def test_a_cross_entropy_that_is_nan_for_every_target_keeps_class_targets():
    report = gradcheck.check(CrossEntropyLossNaN())
    assert report.options["input_shapes"][1] == [4]
    assert "non-finite" in report[gradcheck.FORWARD].message


class TrainWithoutArguments(correct.Dropout):
    def train(self):
        self.training = True

    def eval(self):
        self.training = False


def test_train_and_eval_without_arguments_are_called_as_they_are():
    module = TrainWithoutArguments()
    assert gradcheck.check(module, train=False).passed
    assert module.training is True


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"dtype": torch.int32}, ValueError, "dtype must be one of float64, float32, float16"),
        ({"max_full": -1}, ValueError, "max_full must be an int >= 0"),
        (
            {"batch_dim": 2},
            ValueError,
            r"batch_dim must be 0, 1 or None \(no batch dimension\), got 2",
        ),
        ({"shape": (4, 3)}, TypeError, "pass either inputs or shape=, not both"),
    ],
    ids=["integer_dtype", "negative_max_full", "batch_dim_2", "inputs_and_shape"],
)
def test_bad_options_are_refused_naming_the_value(options, error, message):
    with pytest.raises(error, match=message):
        gradcheck.check(correct.Tanh(), gradcheck.make_input((4, 3)), **options)


@pytest.mark.parametrize(
    ("inputs", "options", "message"),
    [
        ((torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 3)), {}, "a loss takes"),
        ((torch.zeros(4, 3),), {"target": [1, 2]}, "target is a list; pass a tensor"),
    ],
    ids=["three_inputs", "target_not_a_tensor"],
)
def test_a_loss_given_the_wrong_inputs_is_refused(inputs, options, message):
    with pytest.raises(TypeError, match=message):
        gradcheck.check(correct.MSELoss(), *inputs, **options)


def test_a_layer_given_no_floating_input_is_refused():
    with pytest.raises(TypeError, match="at least one floating-point input"):
        gradcheck.check(correct.Tanh(), torch.zeros(4, 3, dtype=torch.int64))


def test_torch_modules_keep_their_buffers_and_refuse_backward_before_forward():
    from gradcheck._adapt import adapt

    module = torch.nn.BatchNorm1d(3)
    before = module.running_mean.clone()
    assert gradcheck.check(module, train=False).passed
    assert torch.equal(module.running_mean, before) and module.running_mean.dtype == torch.float32
    with pytest.raises(RuntimeError, match="backward called before forward"):
        adapt(torch.nn.Tanh()).backward(None)


def test_a_report_that_cannot_be_checked_prints_why_and_its_notes():
    report = gradcheck.check(styles.StringParams(3, 2))
    text = str(report)
    assert text.startswith("gradcheck StringParams: cannot be checked: StringParams: parameter")
    assert report.to_dict()["checkable"] is False


@pytest.mark.parametrize("mode", ["auto", "full", "vjp", "fast"])
def test_empty_jacobians_pass_in_every_mode(mode):
    import nnlite

    empty_batch = torch.zeros(0, 3, dtype=torch.float64)
    assert gradcheck.check(nnlite.Linear(3, 4), empty_batch, mode=mode).passed
    assert gradcheck.check(nnlite.Linear(3, 0), mode=mode).passed


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("batch", [2, 4])
def test_batch_statistics_in_float32_are_linear_within_their_own_rounding(seed, batch):
    x = gradcheck.make_input((batch, 3), seed=seed, dtype=torch.float32)
    for module in (correct.Standardize(), correct.BatchNorm(3)):
        report = gradcheck.check(module, x, dtype=torch.float32, seed=seed)
        assert report.passed, str(report)


def test_an_ignored_upstream_gradient_still_fails_linearity_in_float32():
    from tests.gradcheck.corpus import broken

    report = gradcheck.check(broken.TanhIgnoresUpstreamGradient(), dtype=torch.float32)
    assert gradcheck.LINEARITY in [c.name for c in report.failures]


class CopiesItsInput:
    """numpy code in a file that imports torch too: nothing it holds says which it is."""

    def forward(self, x):
        self.y = np.tanh(x.copy())
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)


def test_numpy_true_checks_a_numpy_module_the_file_cannot_tell_apart():
    assert "has no attribute 'copy'" in gradcheck.check(CopiesItsInput())[gradcheck.FORWARD].message
    assert gradcheck.check(CopiesItsInput(), numpy=True).passed


def test_the_numpy_flag_reaches_the_check(capsys, tmp_path, monkeypatch):
    from gradcheck.cli import main

    (tmp_path / "mixed.py").write_text(
        "import numpy as np\nimport torch\n\n"
        "class Tanh:\n"
        "    def forward(self, x):\n        self.y = np.tanh(x.copy())\n        return self.y\n"
        "    def backward(self, grad):\n        return grad * (1 - self.y**2)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["mixed.py:Tanh", "--numpy", "--no-isolate"]) == 0
    assert main(["mixed.py:Tanh", "--no-isolate"]) == 1
    capsys.readouterr()
