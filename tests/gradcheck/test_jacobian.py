"""gradcheck.jacobian and its methods: the choice per tensor, entry-wise products, hints."""

from __future__ import annotations

import pytest
import torch

import gradcheck
from gradcheck import budget
from tests.gradcheck.corpus import conv, correct, scale


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return gradcheck.make_input(shape, seed=seed)


def _modes(report: gradcheck.Report) -> dict[str, str]:
    return {t.tensor: t.mode for c in report.checks for t in c.tensors if c.name.endswith("nt")}


def _tensor(report: gradcheck.Report, name: str):
    return next(t for c in report.checks for t in c.tensors if t.tensor == name)


CORRECT = [
    ("linear", lambda: correct.Linear(5, 4), (6, 5)),
    ("softmax", correct.Softmax, (4, 5)),
    ("standardize", correct.Standardize, (6, 3)),
    ("batchnorm", lambda: correct.BatchNorm(3), (6, 3)),
    ("network", lambda: correct.Sequential(correct.Linear(3, 6), correct.Tanh()), (5, 3)),
    ("conv_block", lambda: conv.block(width=2), (2, 3, 5, 5)),
    ("mse", correct.MSELoss, (4, 3)),
]


@pytest.mark.parametrize("mode", ["full", "vjp", "fast"])
@pytest.mark.parametrize(
    ("factory", "shape"), [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT]
)
def test_correct_modules_pass_in_every_method(factory, shape, mode):
    report = gradcheck.check(factory(), _x(*shape), mode=mode)
    assert report.passed, report
    assert set(_modes(report).values()) == {mode}


def test_auto_gives_each_tensor_its_own_method_a_small_bias_no_longer_forces_full():
    report = gradcheck.check(
        correct.Linear(30, 30), _x(16, 30), max_full=15_000, oracle="finite-differences"
    )
    assert _modes(report) == {"input": "vjp", "weight": "vjp", "bias": "full"}


def test_entry_wise_products_catch_one_input_gradient_entry_off_by_half_a_percent():
    report = gradcheck.check(scale.TanhOneEntryOff(index=37), _x(20, 10), mode="vjp")
    result = report[gradcheck.INPUT_GRADIENT]
    assert not result.passed
    assert result.tensors[0].worst_index[1] == (3, 7)


def test_entry_wise_products_catch_one_weight_gradient_entry_off_by_half_a_percent():
    report = gradcheck.check(
        scale.LinearWeightEntryOff(30, 30), _x(16, 30), max_full=15_000, oracle="finite-differences"
    )
    weight = _tensor(report, "weight")
    assert weight.mode == "vjp" and not weight.passed
    assert weight.worst_index[1] == (0, 3)
    assert _tensor(report, "bias").passed


def test_entry_wise_products_catch_one_conv_weight_gradient_entry_off_by_half_a_percent():
    module = conv.block(width=3, first=conv.Conv2dWrongWeightEntry)
    report = gradcheck.check(module, _x(2, 3, 6, 6), mode="vjp")
    failed = [t.tensor for t in report[gradcheck.PARAMETER_GRADIENT].tensors if not t.passed]
    assert failed == ["modules.0.weight"]


def test_a_conv_weight_gradient_of_the_first_sample_only_fails():
    module = conv.block(width=2, first=conv.Conv2dWeightGradientOfFirstSample)
    assert not gradcheck.check(module, _x(2, 3, 5, 5), mode="vjp").passed


def test_one_jacobian_entry_off_in_a_dense_column_is_seen_by_full_mode_only():
    x = _x(2, 10)
    full = gradcheck.check(scale.LinearOneJacobianEntryOff(10, 400), x, mode="full")
    vjp = gradcheck.check(scale.LinearOneJacobianEntryOff(10, 400), x, mode="vjp")
    assert not full[gradcheck.INPUT_GRADIENT].passed
    assert vjp[gradcheck.INPUT_GRADIENT].passed  # one term of 400 in the product: below rtol


def test_one_jacobian_entry_off_in_an_elementwise_layer_is_seen_by_both():
    for mode in ("full", "vjp"):
        assert not gradcheck.check(scale.TanhOneEntryOff(), _x(4, 5), mode=mode).passed


def test_independent_samples_move_together_and_coupled_ones_do_not():
    report = gradcheck.check(scale.ScaledTanh(), _x(6, 4), mode="vjp")
    assert _tensor(report, "input").samples == 24  # elementwise: every entry at once
    linear = gradcheck.check(correct.Linear(4, 5), _x(6, 4), mode="vjp")
    assert _tensor(linear, "input").samples == 6
    assert _tensor(linear, "weight").samples == 5
    full = gradcheck.check(correct.Linear(4, 5), _x(6, 4), mode="full")
    assert full.passed and _tensor(full, "input").samples == 6
    coupled = gradcheck.check(scale.CoupledBatch(), _x(6, 4), mode="vjp")
    assert coupled.passed and _tensor(coupled, "input").samples == 4  # features, not samples


def test_a_broken_large_layer_is_called_broken_without_refining_every_entry():
    report = gradcheck.check(scale.ScaledTanh(factor=1.01), _x(200, 30), mode="vjp")
    result = _tensor(report, "input")
    assert not result.passed and result.unrefined > 0
    assert "judged by the first difference only" in result.describe()


@pytest.mark.parametrize("mode", ["full", "vjp", "fast"])
def test_a_factor_of_two_is_named_in_every_method(mode):
    report = gradcheck.check(scale.ScaledTanh(factor=2.0), _x(4, 5), mode=mode)
    assert "analytical = 2 x numerical" in report[gradcheck.INPUT_GRADIENT].message


@pytest.mark.parametrize("mode", ["full", "vjp", "fast"])
def test_a_flipped_sign_is_named_in_every_method(mode):
    report = gradcheck.check(scale.ScaledTanh(factor=-1.0), _x(4, 5), mode=mode)
    assert "sign flipped" in report[gradcheck.INPUT_GRADIENT].message


@pytest.mark.parametrize("mode", ["full", "vjp"])
def test_an_unused_parameter_is_named(mode):
    report = gradcheck.check(scale.LinearUnusedBias(3, 4), _x(5, 3), mode=mode)
    message = report[gradcheck.PARAMETER_GRADIENT].message
    assert "bias has no effect on the output (is it used in forward?)" in message


@pytest.mark.parametrize("mode", ["full", "vjp"])
def test_failures_on_one_batch_row_are_named(mode):
    report = gradcheck.check(scale.TanhWrongOnRow(row=0), _x(4, 5), mode=mode)
    assert "only batch row 0" in report[gradcheck.INPUT_GRADIENT].message


@pytest.mark.parametrize("mode", ["full", "vjp"])
def test_failures_on_one_output_feature_are_named(mode):
    report = gradcheck.check(scale.LinearDoubleOnOutputFeature(3, 5), _x(4, 3), mode=mode)
    assert "only row 2" in report[gradcheck.PARAMETER_GRADIENT].message


def test_failures_on_one_output_channel_of_a_conv_weight_are_named():
    class Conv(conv.Conv2d):
        def backward(self, grad):
            before = self.weight_grad.clone()
            result = super().backward(grad)
            self.weight_grad[2] += self.weight_grad[2] - before[2]
            return result

    report = gradcheck.check(Conv(2, 4), _x(2, 2, 4, 4), mode="vjp")
    assert "only output channel 2" in report[gradcheck.PARAMETER_GRADIENT].message


def test_failures_on_rows_of_one_target_class_are_named():
    prediction = _x(6, 3)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    loss = scale.CrossEntropyWrongOnClass0()
    report = gradcheck.check(loss, prediction, target=target)
    assert "only rows whose target is class 0" in report[gradcheck.INPUT_GRADIENT].message


def test_a_passing_check_says_each_tensors_method_and_sensitivity():
    report = gradcheck.check(
        correct.Linear(30, 30), _x(16, 30), max_full=15_000, oracle="finite-differences"
    )
    message = report[gradcheck.PARAMETER_GRADIENT].message
    assert "weight vjp: every gradient entry, by 8 vector-Jacobian products" in message
    assert "bias full: every Jacobian entry" in message
    weight = _tensor(report, "weight")
    assert 0 < weight.sensitivity < 0.005  # a 0.5% error in any entry would have failed
    fast = gradcheck.check(correct.Linear(3, 2), _x(4, 3), mode="fast")
    assert "over the whole gradient" in fast[gradcheck.INPUT_GRADIENT].message


def test_an_input_too_large_for_the_budget_is_refused_before_anything_runs():
    calls = []

    class Recorder(scale.ScaledTanh):
        def forward(self, x):
            calls.append(1)
            return super().forward(x)

    report = gradcheck.check(Recorder(), _x(1000, 100), max_memory="2M")
    assert not report.checkable and not calls
    assert "input 0 has 100,000 entries" in report.unsupported
    assert "max_memory=2 MB" in report.unsupported and "--max-memory" in report.unsupported


def test_a_tensor_that_fits_no_method_is_refused_after_the_behaviour_checks():
    report = gradcheck.check(correct.Linear(100, 2000), _x(20, 100), max_memory="8M", mode="vjp")
    assert not report.checkable
    assert "weight: comparing the gradient of 200,000 entries" in report.unsupported


def test_budget_chooses_by_size_and_memory():
    kw = {"K": 8, "L": 8, "max_full": 1_000_000, "name": "w"}
    assert budget.choose("auto", 10, 10, max_memory=1 << 30, **kw) == "full"
    assert budget.choose("auto", 5000, 10, max_memory=1 << 30, **kw) == "vjp"
    assert budget.choose("auto", 10, 3_000_000, max_memory=1 << 30, **kw) == "fast"
    assert budget.choose("full", 10, 10, max_memory=1 << 30, **kw) == "full"
    with pytest.raises(budget.TooLarge, match="in mode 'full'"):
        budget.choose("full", 10**5, 10**5, max_memory=1 << 30, **kw)
    with pytest.raises(budget.TooLarge, match="in mode 'auto'"):
        budget.choose("auto", 10**9, 10**9, max_memory=1 << 30, **kw)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1 << 30, 1 << 30),
        ("512M", 512 << 20),
        ("1.5G", 3 << 29),
        ("2GB", 2 << 30),
        ("4096k", 4 << 20),
    ],
)
def test_memory_sizes_parse(text, size):
    assert budget.parse_memory(text) == size


@pytest.mark.parametrize("text", ["lots", "0.5M", True, "-1G"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(ValueError, match="max_memory must be"):
        budget.parse_memory(text)


def test_sizes_print_in_their_unit():
    assert [budget.format_bytes(n) for n in (512, 3 << 10, 12 << 20, 3 << 29)] == [
        "512 bytes",
        "3 kB",
        "12 MB",
        "1.5 GB",
    ]


def test_failures_on_one_input_channel_are_named():
    class WrongOnChannel1(scale.ScaledTanh):
        def backward(self, grad):
            result = super().backward(grad).clone()
            result[:, 1] *= 2
            return result

    report = gradcheck.check(WrongOnChannel1(), _x(2, 4, 3, 3), mode="vjp")
    assert "only channel 1" in report[gradcheck.INPUT_GRADIENT].message


def test_failures_on_soft_target_rows_of_one_class_are_named_by_their_largest_probability():
    class SoftWrongOnClass0(scale.CrossEntropyWrongOnClass0):
        def forward(self, prediction, target):
            return super().forward(prediction, target.argmax(dim=1))

    target = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0, 1, 2]] * 0.8 + 0.2 / 3
    report = gradcheck.check(SoftWrongOnClass0(), _x(6, 3), target=target)
    assert "only rows whose target is class 0" in report[gradcheck.INPUT_GRADIENT].message


def test_a_forward_whose_output_size_changes_under_perturbation_fails_with_the_reason():
    class Growing(scale.ScaledTanh):
        calls = 0

        def forward(self, x):
            Growing.calls += 1
            y = super().forward(x)
            return y if Growing.calls < 40 else torch.cat([y, y])

    report = gradcheck.check(Growing(), _x(4, 5), mode="vjp")
    assert "must not depend on earlier calls" in report[gradcheck.INPUT_GRADIENT].message


def test_an_empty_parameter_compares_nothing_and_passes():
    class WithEmpty(scale.ScaledTanh):
        def __init__(self):
            super().__init__()
            self.empty, self.empty_grad = torch.zeros(0), torch.zeros(0)

        def param(self):
            return [(self.empty, self.empty_grad)]

    report = gradcheck.check(WithEmpty(), _x(4, 5), mode="vjp")
    assert report.passed, report


def test_half_a_percent_everywhere_fails_at_a_size_where_auto_used_to_project():
    report = gradcheck.check(
        scale.ScaledTanh(factor=1.005), _x(200, 50), oracle="finite-differences"
    )
    assert _modes(report) == {"input": "vjp"}
    assert "analytical = 1.005 x numerical" in report[gradcheck.INPUT_GRADIENT].message
    # The default, autograd once confirmed, sees the same factor.
    default = gradcheck.check(scale.ScaledTanh(factor=1.005), _x(200, 50))
    assert _modes(default) == {"input": "autograd"}
    assert "analytical = 1.005 x numerical" in default[gradcheck.INPUT_GRADIENT].message


def test_a_tensor_too_large_for_eight_upstream_gradients_gets_fewer_not_projections():
    report = gradcheck.check(
        scale.ScaledTanh(), _x(100, 100), max_memory="8M", oracle="finite-differences"
    )
    result = _tensor(report, "input")
    assert report.passed and result.mode == "vjp"
    assert "by 6 vector-Jacobian products" in report[gradcheck.INPUT_GRADIENT].message
