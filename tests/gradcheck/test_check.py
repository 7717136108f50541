"""gradcheck.check and assert_gradients: verdicts, sensitivity, restoration, options."""

from __future__ import annotations

import json

import pytest
import torch

import gradcheck
import nnlite
from tests.gradcheck.corpus import broken, correct


class OneEntryOff:
    """Wraps a correct module; its input gradient is off by ``rel`` in Jacobian entry (i, j).

    ``i`` indexes the flattened output, ``j`` the flattened input: backward adds
    ``rel * J[i, j] * grad[i]`` to input gradient entry ``j``.
    """

    def __init__(self, module, x: torch.Tensor, i: int, j: int, rel: float = 0.005) -> None:
        self.module, self.i, self.j = module, i, j
        jacobian = torch.autograd.functional.jacobian(lambda t: module.forward(t), x.float())
        self.extra = rel * float(jacobian.reshape(-1, x.numel())[i, j])

    def forward(self, x):
        return self.module.forward(x)

    def backward(self, grad):
        dx = self.module.backward(grad).clone()
        dx.view(-1)[self.j] += self.extra * grad.reshape(-1)[self.i]
        return dx

    def param(self):
        return self.module.param()


def _nonzero_entries(module, x):
    jacobian = torch.autograd.functional.jacobian(lambda t: module.forward(t), x.float())
    jacobian = jacobian.reshape(-1, x.numel())
    return [tuple(ij) for ij in (jacobian.abs() > 1e-3).nonzero().tolist()]


_X_LINEAR = gradcheck.make_input((2, 3))
_X_SOFTMAX = gradcheck.make_input((2, 4), seed=1)


@pytest.mark.parametrize("entry", _nonzero_entries(correct.Linear(3, 4), _X_LINEAR), ids=str)
def test_half_a_percent_error_in_any_linear_jacobian_entry_is_caught(entry):
    module = OneEntryOff(correct.Linear(3, 4), _X_LINEAR, *entry)
    assert not gradcheck.check(module, _X_LINEAR)[gradcheck.INPUT_GRADIENT].passed
    # Finite differences alone, in full, find the very entry.
    report = gradcheck.check(module, _X_LINEAR, oracle="finite-differences")
    assert not report[gradcheck.INPUT_GRADIENT].passed
    result = report[gradcheck.INPUT_GRADIENT].tensors[0]
    out_index, in_index = result.worst_index
    flat_out = out_index[0] * 4 + out_index[1]
    flat_in = in_index[0] * 3 + in_index[1]
    assert (flat_out, flat_in) == entry


@pytest.mark.parametrize("entry", _nonzero_entries(correct.Softmax(), _X_SOFTMAX), ids=str)
def test_half_a_percent_error_in_any_dense_softmax_jacobian_entry_is_caught(entry):
    module = OneEntryOff(correct.Softmax(), _X_SOFTMAX, *entry)
    report = gradcheck.check(module, _X_SOFTMAX)
    assert not report[gradcheck.INPUT_GRADIENT].passed, str(report)


def test_fast_mode_catches_an_error_of_five_in_one_entry_of_1600():
    x = gradcheck.make_input((4, 40))
    report = gradcheck.check(broken.LinearOneEntryOffByFive(40, 40), x, mode="fast")
    assert not report[gradcheck.INPUT_GRADIENT].passed
    assert report[gradcheck.INPUT_GRADIENT].tensors[0].mode == "fast"


def test_auto_mode_compares_small_jacobians_in_full_and_large_ones_entry_wise():
    x = gradcheck.make_input((4, 3))
    small = gradcheck.check(correct.Linear(3, 2), x, oracle="finite-differences")
    large = gradcheck.check(correct.Linear(3, 2), x, max_full=20, oracle="finite-differences")
    assert {t.mode for c in small.checks for t in c.tensors} == {"full"}
    # input: 8 outputs x 12 entries > 20; bias: 8 x 2 = 16 <= 20.
    modes = {t.tensor: t.mode for c in large.checks for t in c.tensors}
    assert modes == {"input": "vjp", "weight": "vjp", "bias": "full"}
    assert small.passed and large.passed


def test_fast_mode_passes_correct_modules_with_dense_jacobians():
    report = gradcheck.check(correct.Standardize(), gradcheck.make_input((6, 4)), mode="fast")
    assert report.passed, str(report)


def test_upstream_gradient_is_not_uniform():
    seen = []

    class Recorder(correct.Tanh):
        def backward(self, grad):
            seen.append(grad.clone())
            return super().backward(grad)

    gradcheck.check(Recorder(), mode="fast")
    random = [g for g in seen if g.numel() > 1 and g.abs().sum() > 1]
    assert random and all(g.unique().numel() == g.numel() for g in random)
    assert any((g < 0).any() for g in random)


def test_a_backward_that_averages_the_upstream_gradient_fails():
    class TanhMeanGradient(correct.Tanh):
        def backward(self, grad):
            return grad.mean() * (1 - self.y**2)

    report = gradcheck.check(TanhMeanGradient())
    assert not report[gradcheck.INPUT_GRADIENT].passed


def test_parameters_are_restored_to_their_values_dtypes_and_objects():
    module = correct.Linear(3, 2)
    weight, weight_grad = module.weight, module.weight_grad
    before = weight.clone()
    weight_grad += 0.25
    gradcheck.check(module)
    assert module.weight is weight and module.weight_grad is weight_grad
    assert weight.dtype == torch.float32 and weight_grad.dtype == torch.float32
    assert torch.equal(weight, before)
    assert torch.equal(weight_grad, torch.full_like(weight_grad, 0.25))


def test_parameters_are_restored_when_the_module_raises():
    module = broken.LinearBackwardRaises(3, 2)
    before = module.weight.clone()
    report = gradcheck.check(module)
    assert not report[gradcheck.BACKWARD].passed
    assert module.weight.dtype == torch.float32 and torch.equal(module.weight, before)


def test_torch_modules_are_checked_through_autograd_and_restored():
    module = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    report = gradcheck.check(module)
    assert report.passed, str(report)
    for k, v in module.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k])


@pytest.mark.parametrize(
    "module",
    [torch.nn.Tanh(), torch.nn.Softmax(dim=1), torch.nn.MSELoss(), torch.nn.CrossEntropyLoss()],
    ids=lambda m: type(m).__name__,
)
def test_torch_reference_modules_pass(module):
    assert gradcheck.check(module).passed


def test_callers_random_state_is_unchanged_and_dropout_sees_one_mask():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    report = gradcheck.check(correct.Dropout(), gradcheck.make_input((6, 5)))
    assert report.passed, str(report)
    assert torch.equal(torch.get_rng_state(), state)


def test_thread_count_is_restored():
    threads = torch.get_num_threads()
    gradcheck.check(correct.Tanh())
    assert torch.get_num_threads() == threads


def test_train_option_sets_the_mode_for_the_check_and_restores_it():
    module = nnlite.Dropout()
    seen = []

    class Spy(correct.Tanh):
        training = True

        def train(self, mode=True):
            seen.append(mode)
            self.training = mode

    spy = Spy()
    assert gradcheck.check(module, train=False).passed
    assert module.training is True
    gradcheck.check(spy, train=False)
    assert seen == [False, True] and spy.training is True


def test_kinks_are_skipped_and_counted():
    x = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    report = gradcheck.check(correct.ReLU(), x)
    assert report.passed
    assert report[gradcheck.INPUT_GRADIENT].kinks_skipped == 2
    assert report[gradcheck.INPUT_GRADIENT].tensors[0].entries == 14


def test_module_exception_is_reported_with_its_own_traceback():
    report = gradcheck.check(broken.LinearBackwardRaises(3, 2))
    result = report[gradcheck.BACKWARD]
    assert "RuntimeError" in result.message
    assert "broken.py" in result.traceback
    assert "gradcheck/checks.py" not in result.traceback


def test_forward_raising_is_a_failure_not_a_crash():
    class Raises:
        def forward(self, x):
            raise ValueError("boom")

        def backward(self, grad):
            return grad

    report = gradcheck.check(Raises())
    assert not report.passed
    assert report[gradcheck.FORWARD].message.startswith("forward raised ValueError: boom")


def test_loss_gets_a_target_of_the_right_kind():
    seen = {}

    class Spy(correct.CrossEntropyLoss):
        def forward(self, logits, target):
            seen["target"] = target
            return super().forward(logits, target)

    assert gradcheck.check(Spy(), gradcheck.make_input((4, 3))).passed
    assert seen["target"].dtype == torch.int64 and seen["target"].shape == (4,)
    assert gradcheck.is_loss(Spy()) and not gradcheck.is_loss(correct.Tanh())


def test_loss_accepts_an_explicit_target():
    prediction, target = gradcheck.make_input((4, 3)), gradcheck.make_input((4, 3), seed=5)
    assert gradcheck.check(correct.MSELoss(), prediction, target).passed
    assert gradcheck.check(correct.MSELoss(), prediction, target=target).passed


def test_callers_inputs_are_not_touched():
    x = gradcheck.make_input((4, 3), dtype=torch.float32)
    before = x.clone()
    gradcheck.check(broken.ReLUMutatesInput(), x)
    assert x.dtype == torch.float32 and torch.equal(x, before)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "slow"}, "mode must be one of"),
        ({"atol": -1.0}, "atol and rtol"),
        ({"atol": 0.0, "rtol": 0.0}, "atol and rtol"),
        ({"projections": 0}, "projections"),
        ({"eps": 0.0}, "eps must be a positive step"),
        ({"target": torch.zeros(3)}, "target= is for losses"),
        ({"target_kind": "labels"}, "target_kind must be one of"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_options_raise_a_clear_error(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        gradcheck.check(correct.Tanh(), **options)


def test_non_tensor_input_raises():
    with pytest.raises(TypeError, match="input 0 is a list"):
        gradcheck.check(correct.Tanh(), [1.0, 2.0])


def test_assert_gradients_raises_gradcheck_error_with_the_report():
    with pytest.raises(AssertionError) as info:
        gradcheck.assert_gradients(broken.SigmoidTwiceTheGradient())
    assert isinstance(info.value, gradcheck.GradcheckError)
    assert not info.value.report.passed
    assert "input_gradient" in str(info.value)
    assert gradcheck.assert_gradients(correct.Sigmoid()).passed


def test_report_is_json_ready():
    report = gradcheck.check(broken.TanhWrongDerivative())
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] is False
    names = [c["name"] for c in data["checks"]]
    assert gradcheck.INPUT_GRADIENT in names


def _nnlite_modules():
    yield nnlite.Linear(3, 4)
    yield nnlite.Linear(3, 4, bias=False)
    for cls in (nnlite.ReLU, nnlite.LeakyReLU, nnlite.ELU, nnlite.Tanh, nnlite.Sigmoid):
        yield cls()
    yield nnlite.Dropout()
    yield nnlite.Dropout(0.2).eval()
    yield nnlite.Sequential(
        nnlite.Linear(2, 25),
        nnlite.ReLU(),
        nnlite.Linear(25, 25),
        nnlite.Tanh(),
        nnlite.Dropout(0.1),
        nnlite.Linear(25, 2),
    )
    for cls in (nnlite.MSELoss, nnlite.BCELoss, nnlite.CrossEntropyLoss):
        yield cls()


@pytest.mark.parametrize("module", list(_nnlite_modules()), ids=lambda m: type(m).__name__)
def test_every_nnlite_module_and_loss_passes(module):
    report = gradcheck.check(module)
    assert report.passed, str(report)


def test_nnlite_cross_entropy_passes_with_probability_targets():
    assert gradcheck.check(nnlite.CrossEntropyLoss(), target_kind="prob").passed


def test_every_nnlite_export_that_is_a_module_is_covered():
    covered = {type(m) for m in _nnlite_modules()}
    exported = {
        getattr(nnlite, name)
        for name in nnlite.__all__
        if isinstance(getattr(nnlite, name), type)
        and issubclass(getattr(nnlite, name), nnlite.Module)
        and getattr(nnlite, name) is not nnlite.Module
    }
    assert exported <= covered, exported - covered


def test_all_is_sorted_and_names_every_check():
    assert gradcheck.__all__ == sorted(gradcheck.__all__)
    for name in gradcheck.__all__:
        assert getattr(gradcheck, name) is not None
    constants = {getattr(gradcheck, n) for n in gradcheck.__all__ if n.isupper() and n != "CHECKS"}
    assert constants == set(gradcheck.CHECKS)


def _readme_blocks(section: str) -> list[str]:
    import re
    from pathlib import Path

    text = (Path(gradcheck.__file__).parent / "README.md").read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", body, re.S)


def test_readme_library_example_prints_what_the_readme_shows(capsys):
    blocks = _readme_blocks("## Library")
    code = next(body for kind, body in blocks if kind == "python")
    shown = next(body for kind, body in blocks if kind == "text")
    exec(compile(code, "<README example>", "exec"), {})
    assert capsys.readouterr().out == shown


def test_readme_adapter_example_adapts_another_protocol():
    code = [body for kind, body in _readme_blocks("## Library") if kind == "python"][-1]
    namespace: dict = {}
    exec(compile(code, "<README example>", "exec"), namespace)

    class FpropLayer:
        def __init__(self):
            self.weights = [torch.tensor([1.5, -0.5])]
            self.grads = [torch.zeros(2)]

        def fprop(self, x):
            self.x = x
            return x * self.weights[0]

        def bprop(self, grad):
            self.grads[0] += (grad * self.x).sum(0)
            return grad * self.weights[0]

    report = gradcheck.check(namespace["Adapter"](FpropLayer()), gradcheck.make_input((3, 2)))
    assert report.passed, str(report)
    assert report[gradcheck.PARAMETER_GRADIENT].tensors[0].tensor == "layer.weights.0"


def test_parameters_that_require_grad_are_handled():
    class LinearRequiresGrad:
        def __init__(self):
            self.w = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
            self.w.requires_grad_()
            self.w_grad = torch.zeros(3, 2)

        def forward(self, x):
            self.x = x
            return x @ self.w

        def backward(self, grad):
            self.w_grad += self.x.T @ grad
            return grad @ self.w.T

        def param(self):
            return [(self.w, self.w_grad)]

    report = gradcheck.check(LinearRequiresGrad())
    assert report.passed, str(report)


def test_forward_failing_during_the_sweep_is_attributed_to_the_module():
    class FailsLater(correct.Tanh):
        calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 20:
                raise ValueError("forward failed on call 21")
            return super().forward(x)

    report = gradcheck.check(FailsLater())
    result = report[gradcheck.INPUT_GRADIENT]
    assert not result.passed and "forward failed on call 21" in result.message
    assert "test_check.py" in result.traceback
