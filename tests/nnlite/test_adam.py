"""nnlite.optim.Adam against torch.optim.Adam: steps bit-identical, bad arguments refused."""

import copy
import itertools

import pytest
import torch

from nnlite.optim import Adam, flatten_parameters
from tests.nnlite._oracle import (
    TensorCalls,
    assert_same_tensors,
    mlp,
    one_storage,
    options_id,
    set_random_gradients,
    twin_parameters,
)

DTYPES = [torch.float32, torch.float64]

OPTIONS = [
    dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    for (lr, betas, eps), weight_decay, amsgrad in itertools.product(
        [(1e-3, (0.9, 0.999), 1e-8), (0.05, (0.5, 0.8), 1e-3)], [0.0, 0.01], [False, True]
    )
]


def _assert_same_state(ours, theirs):
    assert ours.keys() == theirs.keys()
    for i in ours:
        assert ours[i].keys() == theirs[i].keys()
        for key in ours[i]:
            a, b = ours[i][key], theirs[i][key]
            assert a.dtype == b.dtype and a.device == b.device, (i, key)
            assert torch.equal(a, b), (i, key)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=options_id)
def test_fifty_steps_equal_torch_adam_bit_for_bit(options, dtype):
    pairs, torch_params = twin_parameters(dtype)
    ours = Adam(pairs, **options)
    theirs = torch.optim.Adam(torch_params, **options)
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    _assert_same_state(ours.state_dict()["state"], theirs.state_dict()["state"])


def test_step_is_kept_as_torch_keeps_it_a_cpu_float32_scalar_tensor():
    pairs, _ = twin_parameters(torch.float64)
    optimizer = Adam(pairs)
    optimizer.step()
    optimizer.step()
    step = optimizer.state[0]["step"]
    assert step.shape == () and step.dtype == torch.float32 and step.device.type == "cpu"
    assert step.item() == 2.0


def test_step_follows_a_float64_default_dtype_as_torch_does():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        pairs, torch_params = twin_parameters(torch.float32)
        ours, theirs = Adam(pairs), torch.optim.Adam(torch_params)
        set_random_gradients(pairs, torch_params, torch.Generator().manual_seed(1))
        ours.step()
        theirs.step()
    finally:
        torch.set_default_dtype(previous)
    assert ours.state[0]["step"].dtype == theirs.state[torch_params[0]]["step"].dtype
    assert ours.state[0]["step"].dtype == torch.float64


def test_step_updates_the_parameter_objects_in_place_and_leaves_gradients_alone():
    pairs, _ = twin_parameters(torch.float32)
    ids = [(id(p), p.data_ptr()) for p, _ in pairs]
    grads_before = [g.fill_(0.5).clone() for _, g in pairs]
    params_before = [p.clone() for p, _ in pairs]
    Adam(pairs, weight_decay=0.1, amsgrad=True).step()
    assert [(id(p), p.data_ptr()) for p, _ in pairs] == ids
    for (p, g), before, g_before in zip(pairs, params_before, grads_before, strict=True):
        assert not torch.equal(p, before)
        assert torch.equal(g, g_before)


def test_zero_grad_zeroes_the_gradients_in_place():
    pairs, _ = twin_parameters(torch.float32)
    grads = [g.fill_(3.0) for _, g in pairs]
    Adam(pairs).zero_grad()
    for (_, g), same in zip(pairs, grads, strict=True):
        assert g is same and torch.equal(g, torch.zeros_like(g))


def test_state_dict_loads_into_torch_and_back_continuing_bit_for_bit():
    options = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)
    pairs, torch_params = twin_parameters(torch.float32)
    ours = Adam(pairs, **options)
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
    saved = ours.state_dict()
    assert saved["param_groups"] == [{**options, "params": [0, 1, 2]}]
    assert set(saved["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    with torch.no_grad():
        for torch_param, (param, _) in zip(torch_params, pairs, strict=True):
            torch_param.copy_(param)
    theirs = torch.optim.Adam(torch_params)
    # torch.optim keeps the loaded tensors themselves: give it a copy, as a checkpoint file would.
    theirs.load_state_dict(copy.deepcopy(saved))
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)

    back = Adam(pairs, lr=1.0)
    back.load_state_dict(theirs.state_dict())
    assert back.param_groups[0]["betas"] == (0.8, 0.99)
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        back.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)
    _assert_same_state(back.state_dict()["state"], theirs.state_dict()["state"])


def test_load_state_dict_copies_buffers_to_the_parameter_dtype():
    source = Adam([(torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))])
    source.step()
    target_param = torch.ones(2)
    target = Adam([(target_param, torch.ones(2))])
    target.load_state_dict(source.state_dict())
    assert target.state[0]["exp_avg"].dtype == torch.float32
    assert target.state[0]["step"] is not source.state[0]["step"]
    assert target.state[0]["step"].dtype == torch.float32


def test_load_state_dict_refuses_torch_options_nnlite_does_not_implement():
    torch_param = torch.zeros(2, requires_grad=True)
    saved = torch.optim.Adam([torch_param], decoupled_weight_decay=True).state_dict()
    optimizer = Adam([(torch.zeros(2), torch.zeros(2))])
    with pytest.raises(ValueError, match="decoupled_weight_decay=True: nnlite's Adam does not"):
        optimizer.load_state_dict(saved)


def _pair():
    return (torch.zeros(2), torch.zeros(2))


BAD_ARGUMENTS = [
    ("negative-lr", dict(lr=-1.0), "Invalid learning rate: -1.0"),
    ("negative-eps", dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    ("beta1-one", dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    ("beta1-negative", dict(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
    ("beta2-one", dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ("beta2-above-one", dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    ("betas-not-a-pair", dict(betas=(0.9,)), r"betas must be a pair \(beta1, beta2\)"),
    ("betas-int", dict(betas=(0, 0.999)), r"betas must be two floats, got \('int', 'float'\)"),
    ("negative-weight-decay", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
]


@pytest.mark.parametrize(
    "kwargs, message",
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_bad_hyperparameter_is_refused_with_torchs_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam([_pair()], **kwargs)


BAD_PARAMS = [
    ("empty-list", [], ValueError, "optimizer got an empty parameter list"),
    ("bare-tensor", [torch.zeros(2)], TypeError, "Adam expects .* but item 0 is a torch.float32"),
    ("dict", {"weight": torch.zeros(2)}, TypeError, "parameter groups are not supported"),
]


@pytest.mark.parametrize(
    "params, error, message",
    [case[1:] for case in BAD_PARAMS],
    ids=[case[0] for case in BAD_PARAMS],
)
def test_bad_params_are_refused_with_a_clear_message(params, error, message):
    with pytest.raises(error, match=message):
        Adam(params)


@pytest.mark.parametrize("grad_enabled", [True, False], ids=["autograd-on", "autograd-off"])
def test_step_builds_no_graph_with_autograd_on_or_off(grad_enabled):
    pairs, _ = twin_parameters(torch.float32)
    for _, g in pairs:
        g.fill_(0.25)
    with torch.set_grad_enabled(grad_enabled):
        optimizer = Adam(pairs, amsgrad=True, weight_decay=0.1)
        optimizer.step()
    for p, _ in pairs:
        assert p.grad_fn is None and not p.requires_grad
    for state in optimizer.state.values():
        assert all(value.grad_fn is None for value in state.values())


def test_a_step_saved_as_a_number_loads_as_torchs_scalar_tensor_and_continues():
    pairs, torch_params = twin_parameters(torch.float32)
    ours = Adam(pairs)
    theirs = torch.optim.Adam(torch_params)
    generator = torch.Generator().manual_seed(4)
    set_random_gradients(pairs, torch_params, generator)
    ours.step()
    theirs.step()
    saved = copy.deepcopy(ours.state_dict())
    for state in saved["state"].values():
        state["step"] = 1  # as very old torch checkpoints stored it
    ours.load_state_dict(saved)
    assert ours.state[0]["step"].dtype == torch.float32 and ours.state[0]["step"].item() == 1.0
    for _ in range(3):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=options_id)
def test_flattened_parameters_step_bit_for_bit_with_torch_adam(options, dtype):
    pairs, torch_params = twin_parameters(dtype)
    flatten_parameters(pairs)
    ours = Adam(pairs, **options)
    theirs = torch.optim.Adam(torch_params, **options)
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        ours.zero_grad()
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    _assert_same_state(ours.state_dict()["state"], theirs.state_dict()["state"])
    for key in ours.state[0]:
        assert one_storage([ours.state[i][key] for i in range(len(pairs))]), key


@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
def test_a_flattened_step_is_a_handful_of_tensor_operations_for_all_parameters(amsgrad):
    model = mlp()
    flatten_parameters(model.param())
    optimizer = Adam(model.param(), amsgrad=amsgrad)
    optimizer.step()
    calls = TensorCalls()
    with calls:
        optimizer.zero_grad()
        optimizer.step()
    names = [name for name in calls.names if name != "data_ptr"]
    assert names.count("item") == 1, "the bias corrections are computed once per step"
    assert len(names) == (11 if amsgrad else 10), names


def test_module_to_after_the_optimizer_falls_back_to_stepping_one_by_one_bit_for_bit():
    model = mlp()
    pairs = model.param()
    torch_params = [p.clone().requires_grad_() for p, _ in pairs]
    flatten_parameters(pairs)
    options = dict(lr=0.01, weight_decay=0.01, amsgrad=True)
    ours = Adam(pairs, **options)
    theirs = torch.optim.Adam(torch_params, **options)
    generator = torch.Generator().manual_seed(4)
    for step in range(8):
        if step == 0:  # torch.optim.Adam's state then follows the new dtype; later it cannot
            model.to(torch.float64)
            for torch_param in torch_params:
                torch_param.data = torch_param.data.to(torch.float64)
        ours.zero_grad()
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    assert all(p.dtype == torch.float64 for p, _ in pairs)
    _assert_same_state(ours.state_dict()["state"], theirs.state_dict()["state"])


def test_loading_state_into_flattened_parameters_copies_it_into_flat_buffers():
    options = dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True)
    pairs, torch_params = twin_parameters(torch.float32)
    theirs = torch.optim.Adam(torch_params, **options)
    generator = torch.Generator().manual_seed(5)
    for _ in range(3):
        set_random_gradients(pairs, torch_params, generator)
        theirs.step()
    for (param, _), torch_param in zip(pairs, torch_params, strict=True):
        param.copy_(torch_param.detach())
    flatten_parameters(pairs)
    ours = Adam(pairs)
    ours.load_state_dict(theirs.state_dict())
    for key in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert one_storage([ours.state[i][key] for i in range(len(pairs))]), key
    assert ours.state[0]["step"] is not theirs.state[torch_params[0]]["step"]
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)
    _assert_same_state(ours.state_dict()["state"], theirs.state_dict()["state"])


def test_step_counts_that_differ_between_parameters_are_stepped_one_by_one_as_torch_does():
    pairs, torch_params = twin_parameters(torch.float64)
    theirs = torch.optim.Adam(torch_params, lr=0.01)
    generator = torch.Generator().manual_seed(6)
    set_random_gradients(pairs, torch_params, generator)
    theirs.step()
    theirs.state[torch_params[1]]["step"] += 5
    for (param, _), torch_param in zip(pairs, torch_params, strict=True):
        param.copy_(torch_param.detach())
    flatten_parameters(pairs)
    ours = Adam(pairs)
    ours.load_state_dict(theirs.state_dict())
    for _ in range(3):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    _assert_same_state(ours.state_dict()["state"], theirs.state_dict()["state"])
