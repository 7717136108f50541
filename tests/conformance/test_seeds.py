"""The five seeds: each experiment builds, trains exactly alike in both frameworks, and says why."""

from __future__ import annotations

import math

import pytest
import torch

from conformance import Config, SideBySide
from conformance.bounds import needs_resync
from conformance.seeds import SEEDS, Row
from conformance.twins import NnliteScale, TorchScale, build_nnlite_model, build_torch_model

ROWS = [row for seed in SEEDS.values() for row in seed.rows]


def test_all_five_seeds_are_there_each_with_its_setup_and_choices() -> None:
    assert list(SEEDS) == ["000", "001", "002", "003", "004"]
    for seed in SEEDS.values():
        assert seed.stated and seed.chosen and seed.rows, seed.id
        assert seed.map_row in [row.label for row in seed.rows], seed.id
        assert all(row.seed == seed.id for row in seed.rows)
        assert len({row.label for row in seed.rows}) == len(seed.rows), "labels must be unique"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.seed}:{r.label}" for r in ROWS])
def test_every_published_number_has_an_explanation_or_a_claim(row: Row) -> None:
    if row.published is None:
        assert row.claim
    else:
        mean, std = row.published
        assert 0 < mean <= 100 and (std is None or std >= 0)
        assert row.note, "the report needs a reason to give when ours misses the published number"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.seed}:{r.label}" for r in ROWS])
def test_every_seed_experiment_trains_identically_step_by_step(row: Row) -> None:
    # The stated setup on a small training set for two epochs, compared after every step (from
    # re-aligned states where bounds.py only bounds the configuration); the full runs are
    # `python -m conformance`.
    config = row.config.replace(train_size=60, test_size=40, epochs=2)
    SideBySide(config, resync=needs_resync(config)).run(every_step=True)


@pytest.mark.parametrize(
    "seed, stated",
    [
        ("000", {"loss": "mse", "optimizer_options": {"lr": 0.01, "momentum": 0.15}, "epochs": 7}),
        ("001", {"hidden": (25, 25, 25, 25), "schedule": "exponential", "epochs": 10_000}),
        ("002", {"weight_init": "xavier_normal_gain", "standardize": True, "batch_size": 25}),
        ("003", {"batch_size": 10, "epochs": 100, "alpha": 0.01}),
        ("004", {"loss": "mse", "optimizer_options": {"lr": 0.01, "momentum": 0.9}}),
    ],
)
def test_seed_rows_carry_the_reports_stated_settings(seed: str, stated: dict) -> None:
    config = SEEDS[seed].rows[0].config
    for name, value in stated.items():
        assert getattr(config, name) == value, name


def test_seed_003_sigmoid_has_slope_3_in_both_frameworks() -> None:
    (row,) = [r for r in SEEDS["003"].rows if r.config.activation == "sigmoid"]
    torch.manual_seed(0)
    nn_model, th_model = build_nnlite_model(row.config), build_torch_model(row.config)
    assert isinstance(nn_model[1], NnliteScale) and isinstance(th_model[1], TorchScale)
    x = torch.linspace(-2, 2, 101).reshape(-1, 1)
    expected = 1 / (1 + torch.exp(-3 * x))
    assert torch.allclose(nn_model[2](nn_model[1](x)), expected, rtol=0, atol=1e-6)
    assert torch.equal(nn_model[2](nn_model[1](x)), th_model[2](th_model[1](x)))


def test_scale_backward_multiplies_by_its_factor_as_autograd_does() -> None:
    grad = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    x = torch.randn(7, 3, requires_grad=True)
    TorchScale(3.0)(x).backward(grad)
    scale = NnliteScale(3.0)
    scale(x.detach())
    assert torch.equal(scale.backward(grad), x.grad)


@pytest.mark.parametrize("weight_init", ["xavier_normal", "xavier_normal_gain", "constant"])
def test_both_frameworks_initialise_alike_and_not_with_the_default(weight_init: str) -> None:
    config = Config(activation="tanh", weight_init=weight_init, init_value=1e-6)
    twins = SideBySide(config)  # compares every parameter before training
    torch.manual_seed(config.seed)
    default = build_torch_model(config.replace(weight_init="default"))
    assert not torch.equal(twins.th.model[0].weight, default[0].weight)


def test_xavier_normal_draws_weights_and_biases_with_the_layers_deviation() -> None:
    config = Config(weight_init="xavier_normal", hidden=(2000, 2000))
    torch.manual_seed(0)
    model = build_nnlite_model(config)
    middle = model[2]
    expected = math.sqrt(2 / (2000 + 2000))
    assert float(middle.weight.std()) == pytest.approx(expected, rel=0.01)
    assert float(middle.bias.std()) == pytest.approx(expected, rel=0.05)


def test_seed_002_gain_init_draws_the_last_layer_from_the_standard_normal() -> None:
    config = Config(weight_init="xavier_normal_gain", hidden=(2000,), outputs=2000, loss="mse")
    torch.manual_seed(0)
    model = build_torch_model(config)
    gain = torch.nn.init.calculate_gain("relu")
    first, last = (float(model[i].weight.detach().std()) for i in (0, 2))
    assert first == pytest.approx(gain * math.sqrt(2 / 2002), rel=0.05)
    assert last == pytest.approx(1.0, rel=0.01)


def test_constant_init_sets_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_nnlite_model(Config(weight_init="constant", init_value=1e-6))
    assert all(bool((p == torch.tensor(1e-6)).all()) for p, _ in model.param())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"weight_init": "he"}, "unknown weight_init 'he'"),
        ({"reduction": "none"}, "unknown reduction 'none'"),
        ({"output_activation": "relu", "loss": "mse"}, "unknown output_activation 'relu'"),
        ({"output_activation": "tanh", "loss": "ce"}, "output_activation 'tanh' needs loss 'mse'"),
        ({"sigmoid_slope": 3.0}, "sigmoid_slope 3.0 given for activation 'relu'"),
    ],
    ids=["weight-init", "reduction", "output-activation", "tanh-with-ce", "slope-without-sigmoid"],
)
def test_bad_seed_settings_are_refused_by_name(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Config(**changes)


def test_sum_reduction_and_tanh_output_reach_both_frameworks() -> None:
    config = Config(loss="mse", output_activation="tanh", reduction="sum", outputs=1)
    twins = SideBySide(config.replace(train_size=40, test_size=40, epochs=1))
    assert twins.nn.criterion.reduction == twins.th.criterion.reduction == "sum"
    assert isinstance(twins.th.model[-1], torch.nn.Tanh)
    twins.run(every_step=True)
