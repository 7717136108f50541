"""Tests for gradcheck/_numpy.py: module classes on numpy arrays checked as torch ones are."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

import gradcheck
from gradcheck._adapt import CannotAdapt, adapt
from gradcheck._numpy import NumpyAdapted, is_numpy_module, to_tensor, to_tensors
from gradcheck.cli import main
from tests.gradcheck.corpus import correct
from tests.gradcheck.corpus import numpy_modules as M


def _x(*shape: int) -> np.ndarray:
    return gradcheck.make_input(shape).numpy()


# (id, factory, inputs, options)
CORRECT = [
    ("dense_sets_its_gradients", lambda: M.Dense(3, 4), (), {}),
    ("dense_float32_weights", lambda: M.Dense(3, 4, dtype=np.float32), (), {}),
    ("dense_param_pairs_add_up", lambda: M.DenseParamPairs(3, 4), (), {}),
    ("dense_with_zero_grad", lambda: M.DenseZeroGrad(3, 4), (), {}),
    ("params_and_grads_dicts", lambda: M.DenseParamsDict(3, 3), (), {}),
    ("output_and_dinputs_attributes", lambda: M.LayerDense(3, 2), (_x(4, 3),), {}),
    ("relu", M.ReLU, (_x(4, 3),), {}),
    ("sigmoid", M.Sigmoid, (), {}),
    ("dropout_numpy_mask", M.Dropout, (_x(6, 5),), {}),
    ("mse_loss_python_float", M.MSELoss, (), {}),
    ("mse_loss_numpy_target", M.MSELoss, (_x(4, 3), _x(4, 3) / 2), {}),
    (
        "sequential_of_numpy_layers",
        lambda: M.Sequential(M.Dense(3, 5, seed=1), M.ReLU(), M.Dropout(), M.Dense(5, 2)),
        (_x(4, 3),),
        {},
    ),
    ("dense_fast_mode", lambda: M.Dense(3, 4), (), {"mode": "fast"}),
    ("activation_taking_a_learning_rate", M.TanhTakesALearningRate, (), {}),
    ("per_sample_loss_on_probabilities", M.PerSampleCrossEntropyLoss, (), {}),
    ("softmax_fused_with_its_loss", M.SoftmaxWithCrossEntropy, (), {}),
]

# (id, factory, inputs, options, the check that must fail)
BROKEN = [
    (
        "transposed_weight_gradient",
        lambda: M.DenseTransposedSquare(3, 3),
        (),
        {},
        "parameter_gradient",
    ),
    ("bias_gradient_2d", lambda: M.DenseBiasKept2d(3, 4), (), {}, gradcheck.GRADIENT_SHAPE),
    ("pairs_rebound", lambda: M.DenseRebindsPairs(3, 4), (), {}, gradcheck.ACCUMULATION),
    ("zero_grad_forgets_dw", lambda: M.DenseZeroGradForgets(3, 4), (), {}, gradcheck.ZERO_GRAD),
    ("relu_writes_input", M.ReLUWritesInput, (_x(4, 3),), {}, gradcheck.INPUT_MUTATION),
    ("relu_writes_upstream", M.ReLUWritesUpstream, (_x(4, 3),), {}, gradcheck.GRAD_OUTPUT_MUTATION),
    ("sigmoid_writes_output", M.SigmoidWritesOutput, (), {}, gradcheck.OUTPUT_MUTATION),
    ("dropout_new_mask_in_backward", M.DropoutNewMaskInBackward, (), {}, gradcheck.DETERMINISM),
    ("mse_missing_two", M.MSELossMissingTwo, (), {}, gradcheck.INPUT_GRADIENT),
    (
        "per_sample_loss_gradient_of_the_sum",
        M.PerSampleCrossEntropyLossNotNormalised,
        (),
        {},
        gradcheck.INPUT_GRADIENT,
    ),
]


@pytest.mark.parametrize(
    ("factory", "inputs", "options"), [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT]
)
def test_correct_numpy_modules_pass(factory, inputs, options):
    report = gradcheck.check(factory(), *inputs, **options)
    assert report.checkable, report.unsupported
    assert report.passed, report


@pytest.mark.parametrize(
    ("factory", "inputs", "options", "failing"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_broken_numpy_modules_are_flagged_by_the_right_check(factory, inputs, options, failing):
    report = gradcheck.check(factory(), *inputs, **options)
    assert report.checkable, report.unsupported
    assert failing in [c.name for c in report.failures], report


def test_numpy_modules_are_recognised_and_torch_ones_are_not():
    assert is_numpy_module(M.Dense(2, 3))  # holds arrays
    assert is_numpy_module(M.ReLU())  # holds nothing; its file imports numpy, not torch
    assert not is_numpy_module(correct.Tanh())  # its file imports torch
    assert not is_numpy_module(correct.Linear(2, 3))
    assert not is_numpy_module(torch.nn.Tanh())
    assert not is_numpy_module(M.Dense)
    assert not is_numpy_module(object())
    assert isinstance(adapt(M.ReLU()), NumpyAdapted)


def test_the_parameters_are_named_and_restored_to_their_objects_dtypes_and_values():
    dense = M.Dense(3, 4, dtype=np.float32)
    W, b = dense.W, dense.b
    values = W.copy()
    report = gradcheck.check(dense)
    assert report.passed, report
    assert report[gradcheck.PARAMETERS].message == "W (3, 4), b (4,)"
    assert dense.W is W and dense.b is b and W.dtype == np.float32
    assert np.array_equal(W, values)


def test_parameters_of_child_layers_are_named_by_their_path():
    model = M.Sequential(M.Dense(3, 4), M.ReLU(), M.Dense(4, 2))
    report = gradcheck.check(model)
    assert (
        report[gradcheck.PARAMETERS].message
        == "layers.0.W (3, 4), layers.0.b (4,), layers.2.W (4, 2), layers.2.b (2,)"
    )


def test_a_forward_returning_none_and_a_backward_returning_none_are_read_from_attributes():
    report = gradcheck.check(M.LayerDense(3, 2), _x(4, 3))
    assert "forward returned None; its output was read from self.output" in report.notes
    assert "backward returned None; the input gradient was read from self.dinputs" in report.notes
    assert report[gradcheck.PARAMETERS].message == "weights (3, 2), biases (1, 2)"


def test_numpy_global_generator_is_restored_and_dropout_sees_one_mask():
    np.random.seed(5)
    state = np.random.get_state()
    report = gradcheck.check(M.Dropout(), _x(6, 5))
    assert report.passed, report
    after = np.random.get_state()
    assert np.array_equal(after[1], state[1]) and after[2] == state[2]


def test_a_backward_that_takes_a_learning_rate_cannot_be_checked_and_the_adapter_shown_works():
    report = gradcheck.check(M.DenseSGD(3, 4))
    assert not report.checkable
    message = report.unsupported
    assert message.startswith("DenseSGD.backward(dout, learning_rate) takes a learning rate")
    adapter = message[message.index("    class Adapter") : message.index("and check Adapter")]
    namespace = {"np": np}
    exec(compile(textwrap.dedent(adapter), "<message>", "exec"), namespace)
    checked = gradcheck.check(namespace["Adapter"](M.DenseSGD(3, 4)))
    assert checked.passed, checked


def test_a_torch_module_with_a_learning_rate_gets_the_torch_adapter():
    class Linear(correct.Linear):
        def backward(self, grad, lr=0.1):
            return super().backward(grad)

    with pytest.raises(CannotAdapt, match=r"torch.zeros_like\(w\)"):
        adapt(Linear(2, 3))

    class Harmless(correct.Linear):
        def backward(self, grad, lr=None):
            return super().backward(grad)

    assert gradcheck.check(Harmless(3, 2)).passed


def test_a_class_without_forward_and_backward_exits_2_with_the_adapter(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(
        "import numpy as np\n\n"
        "class SGDDense:\n"
        "    def __init__(self):\n        self.weights = np.ones((3, 2))\n"
        "    def forward(self, x):\n        self.x = x\n        return x @ self.weights\n"
        "    def backward(self, grad, learning_rate):\n"
        "        self.weights -= learning_rate * self.x.T @ grad\n"
        "        return grad @ self.weights.T\n"
    )
    assert main([f"{path}:SGDDense"]) == 2
    out = capsys.readouterr().out
    assert "cannot be checked: SGDDense.backward(grad, learning_rate) takes a learning rate" in out
    # fprop() and bprop() are the protocol under other names: checked through them.
    report = gradcheck.check(M.FpropBprop())
    assert report.passed, report
    assert "no forward() or backward(): fprop() as forward(), bprop() as backward() was called" in (
        report.notes
    )
    # Neither the protocol nor an alias of it: refused, with the adapter to write.
    report = gradcheck.check(M.Unrelated())
    assert "has no forward() method" in report.unsupported


def test_parameter_listings_gradcheck_does_not_understand_are_refused():
    class Weird(M.ReLU):
        def param(self):
            return 3

    class Lost(M.ReLU):
        def param(self):
            return [np.ones(3)]

    assert "gave int 3" in gradcheck.check(Weird()).unsupported
    assert "cannot find among the module's attributes" in gradcheck.check(Lost()).unsupported


def test_parameters_without_gradients_cannot_be_checked():
    class NoGradients(M.ReLU):
        def __init__(self):
            self.W = np.ones(3)

    assert "none has a .grad" in gradcheck.check(NoGradients(), _x(4, 3)).unsupported


def test_arrays_listed_alone_find_their_gradients_by_name():
    class Listed(M.Dense):
        def param(self):
            return [self.W, self.b]

    assert gradcheck.check(Listed(3, 2)).passed


def test_target_first_losses_on_numpy():
    class TargetFirst(M.MSELoss):
        def forward(self, target, prediction):
            return super().forward(prediction, target)

    report = gradcheck.check(TargetFirst())
    assert report.passed, report


def test_outputs_numpy_cannot_share_are_copied_and_others_pass_through():
    reversed_ = np.arange(4.0)[::-1]
    assert torch.equal(
        to_tensor(reversed_), torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64)
    )
    frozen = np.ones(2)
    frozen.flags.writeable = False
    assert torch.equal(to_tensor(frozen), torch.ones(2, dtype=torch.float64))
    swapped = np.ones(2, dtype=">f8")
    assert to_tensor(swapped).dtype == torch.float64
    assert to_tensor(1.5).shape == () and to_tensor(np.float32(2)).dtype == torch.float32
    assert to_tensor("text") == "text" and to_tensor(True) is True
    assert to_tensors([np.ones(1), None])[1] is None


def test_a_module_with_no_forward_output_reports_it():
    class Forgets(M.ReLU):
        def forward(self, x):
            self.mask = x > 0

    report = gradcheck.check(Forgets(), _x(4, 3))
    assert "forward returned NoneType" in report.failures[0].message


def test_params_dict_without_grads_dict_finds_gradients_by_name():
    class Dict(M.ReLU):
        def __init__(self):
            self.params = {"W": np.eye(3), "config": 3, "steps": np.arange(3)}

        def forward(self, x):
            self.x = x
            return x @ self.params["W"]

        def backward(self, dout):
            self.dW = self.x.T @ dout
            return dout @ self.params["W"].T

    report = gradcheck.check(Dict())
    assert report.passed, report
    assert report[gradcheck.PARAMETERS].message == "W (3, 3)"


def test_arrays_of_other_kinds_are_left_alone_and_restored():
    class Holder(M.Dense):
        def __init__(self):
            super().__init__(3, 2)
            self.indices = np.arange(3)
            self.frozen = np.ones(2)
            self.frozen.flags.writeable = False
            self.pair = (np.ones(2), np.zeros(2))
            self.me = self  # a cycle

        def param(self):
            return [(self.W, self.dW), (self.W, self.dW)]

        def backward(self, dout):
            self.dW += self.x.T @ dout
            return dout @ self.W.T

    holder = Holder()
    report = gradcheck.check(holder)
    assert report.passed, report
    assert report[gradcheck.PARAMETERS].message == "W (3, 2)"
    assert holder.pair[1].sum() == 0 and holder.indices.dtype.kind == "i"


def test_an_integer_gradient_is_no_gradient():
    class IntegerBias(M.Dense):
        def backward(self, dout):
            dx = super().backward(dout)
            self.db = np.round(self.db).astype(int)
            return dx

    report = gradcheck.check(IntegerBias(3, 2))
    assert "parameter b has no gradient after backward" in report[gradcheck.GRADIENT_SHAPE].message


def test_nested_layers_are_searched_two_levels_deep():
    inner = M.Sequential(M.Dense(3, 3, seed=4), M.Sequential(M.Dense(3, 2, seed=5)))
    report = gradcheck.check(M.Sequential(inner))
    assert (
        report[gradcheck.PARAMETERS].message
        == "layers.0.layers.0.W (3, 3), layers.0.layers.0.b (3,)"
    )
    assert report.passed, report


def test_modules_of_unknown_origin_and_builtin_backwards():
    Anonymous = type("Anonymous", (), {"__module__": "nowhere", "forward": max, "backward": max})
    assert not is_numpy_module(Anonymous())
    assert isinstance(adapt(Anonymous()), gradcheck._adapt.Adapted)


def test_a_parameterless_layer_taking_a_learning_rate_gets_zero_and_a_note():
    report = gradcheck.check(M.TanhTakesALearningRate())
    assert report.passed, report
    assert (
        "backward takes a learning rate (learning_rate) and the layer holds no parameters: it "
        "was called with learning_rate=0" in report.notes
    )

    class TorchTanh(correct.Tanh):
        def backward(self, grad, lr):
            return super().backward(grad)

    with pytest.raises(CannotAdapt, match=r"give it a default of 0 \(lr=0; a layer without"):
        adapt(TorchTanh())


def test_per_sample_losses_say_how_they_were_read():
    report = gradcheck.check(M.PerSampleCrossEntropyLoss())
    assert report.options["input_shapes"] == [[4, 3], [4]]
    assert (
        "a per-sample loss: its value is calculate(prediction, target), its gradient the "
        "dinputs of backward(dvalues, target)" in report.notes
    )
    assert "a cross-entropy on probabilities: predictions were drawn in (0.05, 0.95)" in (
        report.notes
    )
    adapted = adapt(M.PerSampleCrossEntropyLoss())
    assert adapted.loss_defaults() == adapted.loss_defaults() == ("class", (0.05, 0.95))
    assert len(adapted.notes) == 2
    fused = gradcheck.check(M.SoftmaxWithCrossEntropy())
    assert any("the mean of forward(prediction, target)" in n for n in fused.notes)


def test_a_module_computing_in_float32_fails_its_dtype_alone_and_is_sent_to_float32():
    report = gradcheck.check(M.Float32Dense())
    assert [c.name for c in report.checks if not c.passed] == [gradcheck.GRADIENT_SHAPE]
    message = report[gradcheck.GRADIENT_SHAPE].message
    assert "gradients not compared" in message and "--dtype float32" in message
    assert gradcheck.check(M.Float32Dense(), dtype=torch.float32).passed
