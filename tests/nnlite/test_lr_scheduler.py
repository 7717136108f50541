"""StepLR and ExponentialLR against torch's: the same float learning rates, epoch after epoch."""

import inspect

import pytest
import torch

from nnlite import optim
from nnlite.optim.lr_scheduler import ExponentialLR, StepLR


def _optimizers(lr):
    ours = optim.SGD([(torch.zeros(3), torch.zeros(3))], lr=lr)
    theirs = torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=lr)
    return ours, theirs


SCHEDULES = [
    ("step-3-gamma-0.1", StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=3)),
    ("step-1-gamma-0.7", StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=1, gamma=0.7)),
    ("step-7-gamma-0.93", StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=7, gamma=0.93)),
    ("exp-0.9", ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.9)),
    ("exp-0.999", ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.999)),
]


@pytest.mark.parametrize(
    "ours_cls, theirs_cls, kwargs",
    [case[1:] for case in SCHEDULES],
    ids=[case[0] for case in SCHEDULES],
)
def test_hundred_epochs_give_torchs_float_learning_rates_exactly(ours_cls, theirs_cls, kwargs):
    ours_opt, theirs_opt = _optimizers(0.1)
    ours, theirs = ours_cls(ours_opt, **kwargs), theirs_cls(theirs_opt, **kwargs)
    assert ours.get_last_lr() == theirs.get_last_lr() == [0.1]
    for epoch in range(100):
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr(), f"epoch {epoch}"
        assert ours_opt.param_groups[0]["lr"] == theirs_opt.param_groups[0]["lr"]
        assert ours.last_epoch == theirs.last_epoch == epoch + 1


def test_rates_are_chained_products_not_the_closed_form():
    # 0.1 * 0.9**k and k repeated multiplications round differently; torch multiplies.
    ours_opt, _ = _optimizers(0.1)
    scheduler = ExponentialLR(ours_opt, gamma=0.9)
    chained, rates = 0.1, []
    for _ in range(30):
        scheduler.step()
        chained *= 0.9
        rates.append(scheduler.get_last_lr()[0])
        assert rates[-1] == chained
    assert any(rate != 0.1 * 0.9**k for k, rate in enumerate(rates, 1))


def test_scheduled_sgd_trains_bit_for_bit_like_torch():
    generator = torch.Generator().manual_seed(0)
    param = torch.randn(5, generator=generator, dtype=torch.float64)
    grad = torch.zeros_like(param)
    torch_param = param.clone().requires_grad_()
    ours_opt = optim.SGD([(param, grad)], lr=0.2, momentum=0.9)
    theirs_opt = torch.optim.SGD([torch_param], lr=0.2, momentum=0.9)
    ours, theirs = (
        StepLR(ours_opt, step_size=4, gamma=0.5),
        torch.optim.lr_scheduler.StepLR(theirs_opt, step_size=4, gamma=0.5),
    )
    for _ in range(20):
        for _ in range(3):
            grad.copy_(torch.randn(5, generator=generator, dtype=torch.float64))
            torch_param.grad = grad.clone()
            ours_opt.step()
            theirs_opt.step()
        ours.step()
        theirs.step()
    assert torch.equal(param, torch_param.detach())


def test_initial_lr_is_recorded_in_the_param_group_as_torch_does():
    ours_opt, theirs_opt = _optimizers(0.3)
    StepLR(ours_opt, step_size=2)
    torch.optim.lr_scheduler.StepLR(theirs_opt, step_size=2)
    assert ours_opt.param_groups[0]["initial_lr"] == theirs_opt.param_groups[0]["initial_lr"] == 0.3


@pytest.mark.parametrize("last_epoch", [0, 2, 5])
def test_resuming_with_last_epoch_matches_torch(last_epoch):
    ours_opt, theirs_opt = _optimizers(0.1)
    for opt in (ours_opt, theirs_opt):
        opt.param_groups[0]["initial_lr"] = 0.1
    ours = StepLR(ours_opt, step_size=3, gamma=0.5, last_epoch=last_epoch)
    theirs = torch.optim.lr_scheduler.StepLR(
        theirs_opt, step_size=3, gamma=0.5, last_epoch=last_epoch
    )
    for _ in range(10):
        assert ours.get_last_lr() == theirs.get_last_lr()
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_scheduler_state_dict_round_trips():
    ours_opt, _ = _optimizers(0.1)
    scheduler = ExponentialLR(ours_opt, gamma=0.5)
    scheduler.step()
    saved = scheduler.state_dict()
    assert "optimizer" not in saved and saved["last_epoch"] == 1
    other_opt, _ = _optimizers(0.1)
    other = ExponentialLR(other_opt, gamma=0.9)
    other.load_state_dict(saved)
    assert other.gamma == 0.5 and other.last_epoch == 1 and other.get_last_lr() == [0.05]


def test_schedulers_are_exported_from_nnlite_optim():
    assert optim.StepLR is StepLR and optim.ExponentialLR is ExponentialLR
    assert optim.lr_scheduler.StepLR is StepLR


def _sgd():
    return optim.SGD([(torch.zeros(1), torch.zeros(1))], lr=0.1)


BAD_ARGUMENTS = [
    ("not-an-optimizer", lambda: StepLR("sgd", step_size=1), TypeError, "str is not an Optimizer"),
    (
        "torch-optimizer",
        lambda: ExponentialLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)]), gamma=0.9),
        TypeError,
        "SGD is not an Optimizer",
    ),
    (
        "step-size-zero",
        lambda: StepLR(_sgd(), step_size=0),
        ValueError,
        "step_size must be a positive int .* got 0",
    ),
    ("step-size-float", lambda: StepLR(_sgd(), step_size=2.5), ValueError, "got 2.5"),
    ("negative-gamma", lambda: StepLR(_sgd(), 2, gamma=-0.1), ValueError, "non-negative.*got -0.1"),
    ("nan-gamma", lambda: ExponentialLR(_sgd(), gamma=float("nan")), ValueError, "got nan"),
    (
        "last-epoch-below-minus-one",
        lambda: ExponentialLR(_sgd(), 0.9, last_epoch=-2),
        ValueError,
        r"last_epoch must be an int >= -1 .* got -2",
    ),
    (
        "resume-without-initial-lr",
        lambda: ExponentialLR(_sgd(), 0.9, last_epoch=3),
        KeyError,
        "param 'initial_lr' is not specified in param_groups",
    ),
]


@pytest.mark.parametrize(
    "make, error, message",
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_bad_argument_is_refused_with_a_clear_message(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_optim_all_is_sorted_and_lists_every_public_name():
    assert optim.__all__ == sorted(optim.__all__)
    public = {
        name
        for name, value in vars(optim).items()
        if not name.startswith("_")
        and (isinstance(value, type) or inspect.isfunction(value) or name == "lr_scheduler")
    }
    assert public == set(optim.__all__)
