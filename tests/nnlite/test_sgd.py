"""nnlite.optim.SGD against torch.optim.SGD: steps bit-identical, bad arguments refused."""

import copy
import itertools

import pytest
import torch

from nnlite.optim import SGD, Adam, flatten_parameters
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

VALID_OPTIONS = [
    dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    for momentum, dampening, weight_decay, nesterov in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [0.0, 0.01], [False, True]
    )
    if not (nesterov and (momentum == 0 or dampening != 0))
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("options", VALID_OPTIONS, ids=options_id)
def test_fifty_steps_equal_torch_sgd_bit_for_bit(options, dtype):
    pairs, torch_params = twin_parameters(dtype)
    ours = SGD(pairs, lr=0.05, **options)
    theirs = torch.optim.SGD(torch_params, lr=0.05, **options)
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    if options["momentum"] != 0:
        ours_state, theirs_state = ours.state_dict()["state"], theirs.state_dict()["state"]
        assert ours_state.keys() == theirs_state.keys() == {0, 1, 2}
        for i in ours_state:
            assert torch.equal(ours_state[i]["momentum_buffer"], theirs_state[i]["momentum_buffer"])
    else:
        assert ours.state_dict()["state"] == theirs.state_dict()["state"] == {}


def test_first_momentum_buffer_is_a_copy_of_the_gradient_not_an_alias():
    param, grad = torch.ones(3), torch.full((3,), 2.0)
    optimizer = SGD([(param, grad)], lr=0.1, momentum=0.9)
    optimizer.step()
    buf = optimizer.state[0]["momentum_buffer"]
    assert torch.equal(buf, grad) and buf.data_ptr() != grad.data_ptr()
    grad.zero_()
    assert torch.equal(buf, torch.full((3,), 2.0))


def test_step_updates_the_parameter_objects_in_place_and_leaves_gradients_alone():
    pairs, _ = twin_parameters(torch.float64)
    ids = [(id(p), p.data_ptr()) for p, _ in pairs]
    grads_before = [g.fill_(0.5).clone() for _, g in pairs]
    params_before = [p.clone() for p, _ in pairs]
    SGD(pairs, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True).step()
    assert [(id(p), p.data_ptr()) for p, _ in pairs] == ids
    for (p, g), before, g_before in zip(pairs, params_before, grads_before, strict=True):
        assert not torch.equal(p, before)
        assert torch.equal(g, g_before)


def test_zero_grad_zeroes_the_gradients_in_place():
    pairs, _ = twin_parameters(torch.float32)
    grads = [g.fill_(3.0) for _, g in pairs]
    SGD(pairs, lr=0.1).zero_grad()
    for (_, g), same in zip(pairs, grads, strict=True):
        assert g is same and torch.equal(g, torch.zeros_like(g))


def test_param_groups_holds_the_hyperparameters_and_a_changed_lr_takes_effect():
    param, grad = torch.zeros(2), torch.ones(2)
    optimizer = SGD([(param, grad)], lr=0.5)
    group = optimizer.param_groups[0]
    assert {k: group[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov")} == {
        "lr": 0.5,
        "momentum": 0,
        "dampening": 0,
        "weight_decay": 0,
        "nesterov": False,
    }
    assert group["params"][0] is param
    group["lr"] = 0.25
    optimizer.step()
    assert torch.equal(param, torch.full((2,), -0.25))


def test_params_iterable_is_read_once_like_a_generator():
    pairs, _ = twin_parameters(torch.float32)
    optimizer = SGD((pair for pair in pairs), lr=0.1)
    assert optimizer.param_groups[0]["params"] == [p for p, _ in pairs]


def test_state_dict_is_shaped_like_torch_and_continues_in_torch_bit_for_bit():
    options = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)
    pairs, torch_params = twin_parameters(torch.float32)
    ours = SGD(pairs, **options)
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
    saved = ours.state_dict()
    assert saved["param_groups"] == [{**options, "nesterov": False, "params": [0, 1, 2]}]
    with torch.no_grad():
        for torch_param, (param, _) in zip(torch_params, pairs, strict=True):
            torch_param.copy_(param)
    theirs = torch.optim.SGD(torch_params, lr=1.0)
    # torch.optim keeps the loaded tensors themselves (it would share our buffers): give it a copy,
    # as a checkpoint file would.
    theirs.load_state_dict(copy.deepcopy(saved))
    for _ in range(10):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)


def test_load_state_dict_takes_torch_state_and_continues_bit_for_bit():
    options = dict(lr=0.05, momentum=0.8, nesterov=True)
    pairs, torch_params = twin_parameters(torch.float64)
    theirs = torch.optim.SGD(torch_params, **options)
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        theirs.step()
    for (param, _), torch_param in zip(pairs, torch_params, strict=True):
        param.copy_(torch_param.detach())
    ours = SGD(pairs, lr=1.0)
    ours.load_state_dict(theirs.state_dict())
    assert ours.param_groups[0]["lr"] == 0.05 and ours.param_groups[0]["nesterov"] is True
    # nnlite copies the loaded buffers: stepping torch must not move ours.
    assert ours.state[0]["momentum_buffer"] is not theirs.state[torch_params[0]]["momentum_buffer"]
    for _ in range(10):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)


def test_load_state_dict_refuses_torch_options_nnlite_does_not_implement():
    torch_param = torch.zeros(2, requires_grad=True)
    saved = torch.optim.SGD([torch_param], lr=0.1, maximize=True).state_dict()
    optimizer = SGD([(torch.zeros(2), torch.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="maximize=True: nnlite's SGD does not implement maximize"):
        optimizer.load_state_dict(saved)


def test_load_state_dict_refuses_a_different_number_of_parameters():
    saved = SGD([_pair(), _pair()], lr=0.1).state_dict()
    optimizer = SGD([(torch.zeros(2), torch.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optimizer.load_state_dict(saved)


def test_step_returns_the_closure_loss_after_calling_it_first():
    param, grad = torch.zeros(1), torch.zeros(1)
    optimizer = SGD([(param, grad)], lr=1.0)

    def closure():
        grad.fill_(2.0)
        return 7.0

    assert optimizer.step(closure) == 7.0
    assert torch.equal(param, torch.tensor([-2.0]))


def _pair():
    return (torch.zeros(2), torch.zeros(2))


BAD_ARGUMENTS = [
    ("negative-lr", lambda: SGD([_pair()], lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    (
        "negative-momentum",
        lambda: SGD([_pair()], lr=0.1, momentum=-0.5),
        ValueError,
        "Invalid momentum value: -0.5",
    ),
    (
        "negative-weight-decay",
        lambda: SGD([_pair()], lr=0.1, weight_decay=-0.1),
        ValueError,
        "Invalid weight_decay value: -0.1",
    ),
    (
        "nesterov-without-momentum",
        lambda: SGD([_pair()], lr=0.1, nesterov=True),
        ValueError,
        "Nesterov momentum requires a momentum and zero dampening",
    ),
    (
        "nesterov-with-dampening",
        lambda: SGD([_pair()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        ValueError,
        "Nesterov momentum requires a momentum and zero dampening",
    ),
    ("empty-list", lambda: SGD([], lr=0.1), ValueError, "optimizer got an empty parameter list"),
    (
        "single-tensor",
        lambda: SGD(torch.zeros(2), lr=0.1),
        TypeError,
        r"pairs such as model.param\(\), but got a single torch.FloatTensor",
    ),
    (
        "bare-tensors-as-torch-parameters-gives",
        lambda: SGD([torch.zeros(2)], lr=0.1),
        TypeError,
        "but item 0 is a torch.float32 tensor of shape",
    ),
    (
        "triple",
        lambda: SGD([(torch.zeros(2),) * 3], lr=0.1),
        TypeError,
        r"item 0 is a tuple of length 3 \(Tensor, Tensor, Tensor\)",
    ),
    (
        "gradient-not-a-tensor",
        lambda: SGD([_pair(), (torch.zeros(2), None)], lr=0.1),
        TypeError,
        r"item 1 is a tuple of length 2 \(Tensor, NoneType\)",
    ),
    (
        "gradient-shape-mismatch",
        lambda: SGD([(torch.zeros(2, 3), torch.zeros(3))], lr=0.1),
        ValueError,
        r"parameter 0 must match .* shape \(2, 3\) .* gradient is a torch.float32 tensor of "
        r"shape \(3,\)",
    ),
    (
        "gradient-dtype-mismatch",
        lambda: SGD([(torch.zeros(2), torch.zeros(2, dtype=torch.float64))], lr=0.1),
        ValueError,
        "the gradient is a torch.float64 tensor",
    ),
    (
        "same-parameter-twice",
        lambda: SGD([_pair(), *[(torch.ones(2), torch.zeros(2))] * 2], lr=0.1),
        ValueError,
        "parameter 2 is the same tensor as parameter 1, so it would be updated twice per step",
    ),
    (
        "integer-parameter",
        lambda: SGD([(torch.zeros(2, dtype=torch.long),) * 2], lr=0.1),
        TypeError,
        "floating-point parameters, but parameter 0 has dtype torch.int64",
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


@pytest.mark.parametrize("grad_enabled", [True, False], ids=["autograd-on", "autograd-off"])
def test_step_builds_no_graph_and_gives_the_same_bits_with_autograd_on_or_off(grad_enabled):
    options = dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    results = []
    for enabled in (grad_enabled, not grad_enabled):
        pairs, _ = twin_parameters(torch.float32)
        for _, g in pairs:
            g.fill_(0.25)
        with torch.set_grad_enabled(enabled):
            optimizer = SGD(pairs, **options)
            optimizer.step()
            optimizer.step()
        for p, _ in pairs:
            assert p.grad_fn is None and not p.requires_grad
        assert all(s["momentum_buffer"].grad_fn is None for s in optimizer.state.values())
        results.append([p for p, _ in pairs])
    assert_same_tensors(results[0], results[1])


def test_repr_lists_the_hyperparameters_as_torch_does():
    text = repr(SGD([_pair()], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n")
    assert "    lr: 0.1\n" in text and "    momentum: 0.9\n" in text and text.endswith(")")


def _saved_sgd_state(**changes):
    optimizer = SGD([_pair(), _pair()], lr=0.1, momentum=0.9)
    optimizer.step()
    saved = copy.deepcopy(optimizer.state_dict())
    saved.update(changes)
    return saved


LOAD_ERRORS = [
    (
        "two-groups",
        lambda: _saved_sgd_state(param_groups=_saved_sgd_state()["param_groups"] * 2),
        "loaded state dict has a different number of parameter groups",
    ),
    (
        "adam-state-into-sgd",
        lambda: Adam([_pair(), _pair()]).state_dict(),
        r"lacks the SGD hyperparameters \['momentum', 'dampening', 'nesterov'\]",
    ),
    (
        "state-for-an-unknown-parameter",
        lambda: _saved_sgd_state(state={0: {}, 7: {}}),
        "has state for unknown parameter 7",
    ),
]


@pytest.mark.parametrize(
    "make_state, message",
    [case[1:] for case in LOAD_ERRORS],
    ids=[case[0] for case in LOAD_ERRORS],
)
def test_load_state_dict_refuses_a_state_that_does_not_fit(make_state, message):
    optimizer = SGD([_pair(), _pair()], lr=0.1)
    with pytest.raises(ValueError, match=message):
        optimizer.load_state_dict(make_state())


def test_a_non_tensor_item_is_named_in_the_error():
    with pytest.raises(TypeError, match="but item 1 is a int"):
        SGD([_pair(), 5], lr=0.1)


def test_flatten_parameters_keeps_the_tensor_objects_and_values_in_one_buffer_each():
    pairs, _ = twin_parameters(torch.float32)
    tensors = [t for pair in pairs for t in pair]
    values = [t.clone() for t in tensors]
    flatten_parameters(pairs)
    assert all(a is b for a, b in zip([t for pair in pairs for t in pair], tensors, strict=True))
    assert_same_tensors(tensors, values)
    assert one_storage([p for p, _ in pairs]) and one_storage([g for _, g in pairs])
    assert all(t.data_ptr() % 64 == 0 for t in tensors), "each view aligned as torch allocates"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("options", VALID_OPTIONS, ids=options_id)
def test_flattened_parameters_step_bit_for_bit_with_torch_sgd(options, dtype):
    pairs, torch_params = twin_parameters(dtype)
    flatten_parameters(pairs)
    ours = SGD(pairs, lr=0.05, **options)
    theirs = torch.optim.SGD(torch_params, lr=0.05, **options)
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        ours.zero_grad()
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    if options["momentum"] != 0:
        buffers = [ours.state[i]["momentum_buffer"] for i in range(len(pairs))]
        assert one_storage(buffers), "the momentum buffers are views of one flat buffer"
        assert_same_tensors(buffers, [theirs.state[p]["momentum_buffer"] for p in torch_params])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (dict(), ["zero_", "add_"]),
        (dict(momentum=0.9), ["zero_", "mul_", "add_", "add_"]),
        (
            dict(momentum=0.9, weight_decay=0.01, nesterov=True),
            ["zero_", "add", "mul_", "add_", "add", "add_"],
        ),
    ],
    ids=["plain", "momentum", "nesterov-weight-decay"],
)
def test_a_flattened_step_is_a_handful_of_tensor_operations_for_all_parameters(options, expected):
    model = mlp()
    flatten_parameters(model.param())
    optimizer = SGD(model.param(), lr=0.1, **options)
    optimizer.step()
    calls = TensorCalls()
    with calls:
        optimizer.zero_grad()
        optimizer.step()
    assert [name for name in calls.names if name != "data_ptr"] == expected


def test_a_second_optimizer_on_flattened_parameters_moves_nothing_and_steps_them_at_once():
    pairs, _ = twin_parameters(torch.float64)
    flatten_parameters(pairs)
    pointers = [(p.data_ptr(), g.data_ptr()) for p, g in pairs]
    SGD(pairs, lr=0.1, momentum=0.9).step()
    optimizer = SGD(pairs, lr=0.1, momentum=0.9)
    optimizer.step()
    assert [(p.data_ptr(), g.data_ptr()) for p, g in pairs] == pointers
    assert one_storage([s["momentum_buffer"] for s in optimizer.state.values()])


def test_module_to_after_the_optimizer_falls_back_to_stepping_one_by_one_bit_for_bit():
    model = mlp()
    pairs = model.param()
    torch_params = [p.clone().requires_grad_() for p, _ in pairs]
    flatten_parameters(pairs)
    options = dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)
    ours = SGD(pairs, **options)
    theirs = torch.optim.SGD(torch_params, **options)
    generator = torch.Generator().manual_seed(4)
    for step in range(8):
        if step == 3:
            model.to(torch.float64)
            for torch_param in torch_params:
                torch_param.data = torch_param.data.to(torch.float64)
        ours.zero_grad()
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    assert all(p.dtype == torch.float64 for p, _ in pairs)
    assert_same_tensors(
        [ours.state[i]["momentum_buffer"] for i in range(len(pairs))],
        [theirs.state[p]["momentum_buffer"] for p in torch_params],
    )


def test_loading_torch_state_into_flattened_parameters_copies_it_into_flat_buffers():
    options = dict(lr=0.05, momentum=0.8, dampening=0.2)
    pairs, torch_params = twin_parameters(torch.float32)
    theirs = torch.optim.SGD(torch_params, **options)
    generator = torch.Generator().manual_seed(5)
    for _ in range(3):
        set_random_gradients(pairs, torch_params, generator)
        theirs.step()
    for (param, _), torch_param in zip(pairs, torch_params, strict=True):
        param.copy_(torch_param.detach())
    flatten_parameters(pairs)
    ours = SGD(pairs, lr=1.0)
    ours.load_state_dict(theirs.state_dict())
    buffers = [ours.state[i]["momentum_buffer"] for i in range(len(pairs))]
    assert one_storage(buffers)
    assert buffers[0].untyped_storage().data_ptr() != pairs[0][0].untyped_storage().data_ptr()
    for _ in range(5):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
    assert_same_tensors([p for p, _ in pairs], torch_params)


def test_partial_momentum_state_steps_one_by_one_then_gathers_into_a_flat_buffer():
    pairs, torch_params = twin_parameters(torch.float64)
    flatten_parameters(pairs)
    ours = SGD(pairs, lr=0.05, momentum=0.9)
    theirs = torch.optim.SGD(torch_params, lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(6)
    set_random_gradients(pairs, torch_params, generator)
    ours.step()
    theirs.step()
    del ours.state[1]
    del theirs.state[torch_params[1]]
    for _ in range(4):
        set_random_gradients(pairs, torch_params, generator)
        ours.step()
        theirs.step()
        assert_same_tensors([p for p, _ in pairs], torch_params)
    assert one_storage([s["momentum_buffer"] for s in ours.state.values()])


@pytest.mark.parametrize(
    ("make_pairs", "message"),
    [
        (
            lambda: [(torch.ones(2), torch.ones(2)), (torch.ones(2, dtype=torch.float64),) * 2],
            "they mix a torch.float32 tensor",
        ),
        (
            lambda: [(torch.ones(4)[:2], torch.ones(2)), (torch.ones(4)[2:], torch.ones(2))],
            "share memory with other tensors",
        ),
        (lambda: [(torch.ones(2, 3).t(), torch.ones(3, 2))], "is empty or non-contiguous"),
    ],
    ids=["mixed-dtypes", "a-view", "non-contiguous"],
)
def test_flatten_parameters_refuses_tensors_it_cannot_move(make_pairs, message):
    with pytest.raises(ValueError, match=message):
        flatten_parameters(make_pairs())
