"""The harness itself: identical twins both ways, every kind of disagreement caught and located."""

from __future__ import annotations

import pytest
import torch

from conformance import Config, ConformanceError, SideBySide
from conformance.grid import case_cost, grid_cases, in_sample
from conformance.twins import build_nnlite_model, build_torch_model

SMALL = Config(loss="mse", train_size=40, test_size=40, batch_size=8, epochs=2)


@pytest.mark.parametrize("init", ["seed", "torch_to_nnlite", "nnlite_to_torch"])
def test_twins_start_with_identical_parameters(init: str) -> None:
    twins = SideBySide(SMALL.replace(init=init))
    nn = {name: p for name, p, _ in twins.nn.model.named_param()}
    th = dict(twins.th.model.named_parameters())
    assert (
        list(nn)
        == list(th)
        == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
    )
    assert all(torch.equal(nn[name], th[name]) for name in th)


def test_seeded_twins_hold_the_parameters_of_a_freshly_seeded_torch_network() -> None:
    twins = SideBySide(SMALL.replace(seed=7))
    torch.manual_seed(7)
    fresh = build_torch_model(SMALL)
    for name, parameter in fresh.named_parameters():
        assert torch.equal(dict(twins.th.model.named_parameters())[name], parameter)


@pytest.mark.parametrize("init", ["torch_to_nnlite", "nnlite_to_torch"])
def test_loading_really_replaces_the_receiving_networks_own_initialisation(init: str) -> None:
    # The receiving network is built second, from a later point of the random stream, so its
    # own initial values differ from a network built right after the seed; equal twins then
    # prove the state_dict was loaded.
    twins = SideBySide(SMALL.replace(init=init))
    torch.manual_seed(SMALL.seed)
    first_built = build_nnlite_model(SMALL)
    receiver = twins.nn.model if init == "torch_to_nnlite" else twins.th.model
    assert not torch.equal(receiver[0].weight, first_built[0].weight) or init == "nnlite_to_torch"
    assert torch.equal(twins.nn.model[0].weight, twins.th.model[0].weight)
    if init == "nnlite_to_torch":
        assert torch.equal(twins.th.model[0].weight, first_built[0].weight)


def test_agreeing_twins_record_zero_differences() -> None:
    history = SideBySide(SMALL.replace(dropout=0.2)).run(every_step=True)
    assert history.largest_difference["parameter"] == 0.0
    assert history.nn_loss == history.th_loss
    assert len(history.nn_test_accuracy) == SMALL.epochs + 1


def test_different_learning_rate_is_caught_with_epoch_and_tensor() -> None:
    twins = SideBySide(SMALL)
    twins.nn.optimizer.param_groups[0]["lr"] *= 1 + 1e-6
    with pytest.raises(
        ConformanceError, match=r"epoch 1: mean loss of the epoch's steps breaks exact equality"
    ):
        twins.run()


def test_step_mode_names_the_step_of_the_first_difference() -> None:
    twins = SideBySide(SMALL)
    twins.run(1)
    twins.nn.optimizer.param_groups[0]["lr"] *= 2
    with pytest.raises(
        ConformanceError, match=r"epoch 2, step 1: parameter 0\.weight breaks exact"
    ):
        twins.run(1, every_step=True)


def test_failure_report_names_worst_entry_both_values_and_ulps() -> None:
    twins = SideBySide(SMALL)
    weight = twins.nn.model[2].weight
    weight[3, 4] = torch.nextafter(weight[3, 4], torch.tensor(1.0))
    with pytest.raises(ConformanceError) as caught:
        twins.compare_parameters()
    message = str(caught.value)
    assert "epoch 0: parameter 2.weight breaks exact equality: worst entry (3, 4)" in message
    assert "(|diff|" in message and "1 ulp); 1 of 625 entries differ" in message


def test_different_dropout_masks_are_caught() -> None:
    twins = SideBySide(SMALL.replace(dropout=0.5))
    original = twins.nn.model[2].forward

    def forward_drawing_more(input: torch.Tensor) -> torch.Tensor:
        torch.rand(1)  # one extra draw shifts every later mask
        return original(input)

    twins.nn.model[2].forward = forward_drawing_more
    with pytest.raises(ConformanceError, match="drew a different amount of random numbers"):
        twins.run(1)


def test_unchecked_twins_record_the_difference_instead_of_raising() -> None:
    twins = SideBySide(SMALL, check=False)
    twins.nn.optimizer.param_groups[0]["lr"] *= 1.5
    history = twins.run()
    assert history.largest_difference["parameter"] > 0


def test_optimizer_state_is_compared() -> None:
    twins = SideBySide(SMALL.replace(optimizer="adam", optimizer_options={"lr": 1e-3}))
    twins.run(1)
    state = twins.nn.optimizer.state_dict()["state"]
    assert "exp_avg" in state[0]
    twins.th.optimizer.state[twins.th.optimizer.param_groups[0]["params"][0]]["exp_avg"].add_(1e-3)
    with pytest.raises(ConformanceError, match="optimizer exp_avg of 0.weight"):
        twins.compare_optimizers()


@pytest.mark.parametrize("every_step", [False, True], ids=["per-epoch", "per-step"])
def test_nnlite_side_trains_and_scores_through_nnlite_training(
    every_step: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bits the suites prove equal must be the bits users get: nnlite.training's functions.
    import nnlite.training

    calls: dict[str, int] = {"train_epoch": 0, "train_step": 0, "accuracy": 0}
    for name in calls:
        original = getattr(nnlite.training, name)

        def counted(*args, _original=original, _name=name, **kwargs):  # noqa: ANN002, ANN003
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(nnlite.training, name, counted)
    SideBySide(SMALL).run(every_step=every_step)
    steps_per_epoch = -(-SMALL.train_size // SMALL.batch_size)
    assert calls["train_epoch"] == (0 if every_step else SMALL.epochs)
    assert calls["train_step"] == SMALL.epochs * steps_per_epoch
    # Both sides, train and test sets, before training and after each epoch.
    assert calls["accuracy"] == 2 * 2 * (SMALL.epochs + 1)


def test_grid_cases_are_collected_longest_first_and_sampled_for_coverage() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "conformance/test_grid.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.splitlines()
    ids = [line.split("[", 1)[1].rstrip("]") for line in listed if "[" in line]
    assert len(ids) == 900
    costs = [case_cost(config) for config in dict(grid_cases()).values()]
    by_id = dict(zip(dict(grid_cases()), costs, strict=True))
    assert [by_id[i] for i in ids] == sorted(costs, reverse=True)
    sample = [i for i in ids if in_sample(i)]
    assert len(sample) == 150
    assert {i.split("-")[0] for i in sample} == {"relu", "tanh", "sigmoid", "leaky_relu", "elu"}
