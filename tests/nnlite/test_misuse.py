"""Misuse across the package: refused with a message naming the value and the fix, or harmless.

One row per case of the issue's list; the ``match`` checks the message. The silent-wrong-result
cases (graphs grown from tensors autograd tracks, shared modules, integer dtypes, NaN
hyper-parameters) come first, then the cases that used to fail with torch's internals.
"""

from __future__ import annotations

import pytest
import torch

import nnlite
from nnlite import optim
from nnlite.training import accuracy

NAN = float("nan")
INF = float("inf")


def _net():
    torch.manual_seed(0)
    return nnlite.Sequential(nnlite.Linear(2, 3), nnlite.ReLU(), nnlite.Linear(3, 2))


def _pairs():
    return [(torch.zeros(2, 2), torch.zeros(2, 2))]


def _stepped(optimizer_cls, **options):
    """A network and an optimizer that has taken one step on it."""
    net = _net()
    optimizer = optimizer_cls(net.param(), **options)
    net(torch.rand(4, 2))
    net.backward(torch.ones(4, 2))
    optimizer.step()
    return net, optimizer


def _step(net, optimizer, dtype=torch.float32):
    optimizer.zero_grad()
    out = net(torch.rand(4, 2, dtype=dtype))
    net.backward(torch.ones_like(out))
    optimizer.step()


def _adam_after_to():
    net, optimizer = _stepped(optim.Adam)
    net.to(torch.float64)
    _step(net, optimizer, torch.float64)


def _adam_state(**state):
    optimizer = optim.Adam(_pairs())
    saved = optimizer.state_dict()
    saved["state"] = {0: state}
    return optimizer, saved


def _bce(input, target):
    return nnlite.BCELoss()(torch.tensor(input), torch.tensor(target))


def _meta_linear():
    return nnlite.Linear(2, 2, device="meta")


SILENT = [
    # Shared modules: the first use would get the second's gradient.
    (
        "module-shared-through-a-nested-sequential",
        lambda: (lambda lin: nnlite.Sequential(lin, nnlite.ReLU(), nnlite.Sequential(lin)))(
            nnlite.Linear(2, 2)
        ),
        ValueError,
        r"argument 2 is or holds the same Linear object as argument 0 \(or one inside it\).*"
        r"Give each position its own instance",
    ),
    (
        "module-shared-inside-two-nested-sequentials",
        lambda: (lambda lin: nnlite.Sequential(nnlite.Sequential(lin), nnlite.Sequential(lin)))(
            nnlite.Linear(2, 2)
        ),
        ValueError,
        r"argument 1 is or holds the same Linear object as argument 0",
    ),
    (
        "sequential-appended-to-itself",
        lambda: (lambda seq: seq.append(seq))(nnlite.Sequential()),
        ValueError,
        r"Sequential.append: the module is or holds this Sequential",
    ),
    # Integer and boolean dtypes would truncate every weight.
    (
        "to-int32",
        lambda: nnlite.Linear(2, 2).to(torch.int32),
        TypeError,
        r"only accepts floating point dtypes, but got desired dtype=torch.int32; .*"
        r"model.to\(torch.float64\)",
    ),
    (
        "to-bool-keyword",
        lambda: nnlite.Linear(2, 2).to(dtype=torch.bool),
        TypeError,
        r"desired dtype=torch.bool",
    ),
    (
        "to-complex",
        lambda: _net().to(torch.complex64),
        TypeError,
        r"desired dtype=torch.complex64",
    ),
    (
        "to-like-an-integer-tensor",
        lambda: nnlite.Linear(2, 2).to(torch.zeros(1, dtype=torch.int64)),
        TypeError,
        r"desired dtype=torch.int64",
    ),
    # NaN or infinite hyper-parameters turn every weight into NaN after one step.
    ("bce-nan-input", lambda: _bce([0.5, NAN], [1.0, 0.0]), ValueError,
     r"all elements of input should be between 0 and 1, got values in \[nan, nan\]"),
    ("bce-nan-target", lambda: _bce([0.5, 0.5], [NAN, 0.0]), ValueError,
     r"all elements of target should be between 0 and 1"),
    ("sgd-nan-lr", lambda: optim.SGD(_pairs(), lr=NAN), ValueError, r"Invalid learning rate: nan"),
    ("sgd-inf-lr", lambda: optim.SGD(_pairs(), lr=INF), ValueError, r"Invalid learning rate: inf"),
    ("sgd-nan-momentum", lambda: optim.SGD(_pairs(), momentum=NAN), ValueError,
     r"Invalid momentum value: nan"),
    ("sgd-nan-dampening", lambda: optim.SGD(_pairs(), momentum=0.9, dampening=NAN), ValueError,
     r"Invalid dampening value: nan"),
    ("sgd-nan-weight-decay", lambda: optim.SGD(_pairs(), weight_decay=NAN), ValueError,
     r"Invalid weight_decay value: nan"),
    ("adam-nan-lr", lambda: optim.Adam(_pairs(), lr=NAN), ValueError,
     r"Invalid learning rate: nan"),
    ("adam-nan-beta", lambda: optim.Adam(_pairs(), betas=(NAN, 0.999)), ValueError,
     r"Invalid beta parameter at index 0: nan"),
    ("adam-inf-eps", lambda: optim.Adam(_pairs(), eps=INF), ValueError,
     r"Invalid epsilon value: inf"),
    ("dropout-nan", lambda: nnlite.Dropout(NAN), ValueError,
     r"dropout probability has to be between 0 and 1, but got nan"),
    ("leaky-relu-nan", lambda: nnlite.LeakyReLU(NAN), ValueError,
     r"LeakyReLU: negative_slope must be a finite number, got nan .* LeakyReLU\(0.01\)"),
    ("leaky-relu-inf", lambda: nnlite.LeakyReLU(-INF), ValueError,
     r"negative_slope must be a finite number, got -inf"),
    ("elu-nan", lambda: nnlite.ELU(NAN), ValueError,
     r"ELU: alpha must be a finite number, got nan"),
    # A torch Parameter given to an optimizer would be updated under autograd.
    (
        "optimizer-given-torch-parameters",
        lambda: optim.SGD([(torch.nn.Parameter(torch.zeros(2)), torch.zeros(2))], lr=0.1),
        TypeError,
        r"SGD: parameter 0 \(or its gradient\) requires grad.*model.load_state_dict",
    ),
]  # fmt: skip

CLEAR = [
    # Devices and dtypes of model and input.
    (
        "input-on-another-device",
        lambda: _meta_linear()(torch.zeros(3, 2)),
        RuntimeError,
        r"Linear\(in_features=2, out_features=2, bias=True\) holds parameters on meta but got "
        r"input on cpu; move the input \(x.to\('meta'\)\) or the model \(model.to\('cpu'\)\)",
    ),
    (
        "three-dimensional-input-on-another-device",
        lambda: _meta_linear()(torch.zeros(3, 1, 2)),
        RuntimeError,
        r"holds parameters on meta but got input on cpu",
    ),
    (
        "input-of-another-dtype",
        lambda: _net()(torch.zeros(3, 2, dtype=torch.float64)),
        TypeError,
        r"holds torch.float32 parameters but got torch.float64 input; convert the input "
        r"\(x.to\(torch.float32\)\) or the layer \(layer.to\(torch.float64\)\)",
    ),
    (
        "loss-target-on-another-device",
        lambda: nnlite.MSELoss()(torch.zeros(2), torch.zeros(2, device="meta")),
        RuntimeError,
        r"MSELoss\(\): target is on meta but input on cpu; move the target with "
        r"target.to\('cpu'\)",
    ),
    (
        "class-index-target-on-another-device",
        lambda: nnlite.CrossEntropyLoss()(
            torch.zeros(2, 3), torch.zeros(2, dtype=torch.long, device="meta")
        ),
        RuntimeError,
        r"CrossEntropyLoss\(\): target is on meta but input on cpu",
    ),
    (
        "module-moved-to-a-device-it-cannot-hold-in-place",
        lambda: nnlite.Linear(2, 2).to("meta"),
        RuntimeError,
        r"Linear.to cannot convert its tensors in place .* build the module there instead",
    ),
    # An optimizer that stepped before model.to(float64).
    (
        "adam-stepped-before-model-to-float64",
        _adam_after_to,
        RuntimeError,
        r"Adam: parameter 0 is torch.float64 on cpu but its exp_avg is torch.float32 on cpu: "
        r"the model was converted \(model.to\) after the optimizer took a step.*"
        r"optimizer.load_state_dict\(optimizer.state_dict\(\)\)",
    ),
    # Optimizer states refused at load, not at the next step.
    (
        "optimizer-state-of-the-wrong-shape",
        lambda: (lambda o: o.load_state_dict(
            {"state": {0: {"momentum_buffer": torch.zeros(3)}},
             "param_groups": o.state_dict()["param_groups"]}
        ))(optim.SGD(_pairs(), lr=0.1, momentum=0.9)),
        ValueError,
        r"momentum_buffer of shape \(3,\) for parameter 0 of shape \(2, 2\); it was saved for "
        r"another model",
    ),
    (
        "adam-state-missing-keys",
        lambda: (lambda o, saved: o.load_state_dict(saved))(*_adam_state(step=torch.tensor(1.0))),
        ValueError,
        r"lacks \['exp_avg', 'exp_avg_sq'\] in the state of parameter 0 \(it holds \['step'\]\)",
    ),
    (
        "amsgrad-state-missing-its-maximum",
        lambda: (lambda o: o.load_state_dict(
            {"state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(2, 2),
                           "exp_avg_sq": torch.zeros(2, 2)}},
             "param_groups": o.state_dict()["param_groups"]}
        ))(optim.Adam(_pairs(), amsgrad=True)),
        ValueError,
        r"lacks \['max_exp_avg_sq'\]",
    ),
    (
        "adam-step-of-several-numbers",
        lambda: (lambda o, saved: o.load_state_dict(saved))(
            *_adam_state(step=torch.zeros(2), exp_avg=torch.zeros(2, 2),
                         exp_avg_sq=torch.zeros(2, 2))
        ),
        ValueError,
        r"a step of shape \(2,\) for parameter 0; a step count is one number",
    ),
    (
        "optimizer-state-without-param-groups",
        lambda: optim.SGD(_pairs(), lr=0.1).load_state_dict({"state": {}}),
        TypeError,
        r"SGD.load_state_dict expects a dict with 'state' \(a dict\) and 'param_groups' "
        r"\(a list\).* with keys \['state'\]",
    ),
    (
        "optimizer-state-not-a-dict",
        lambda: optim.Adam(_pairs()).load_state_dict([1]),
        TypeError,
        r"Adam.load_state_dict expects a dict .* got a list of length 1",
    ),
    (
        "optimizer-group-without-params",
        lambda: optim.SGD(_pairs(), lr=0.1).load_state_dict(
            {"state": {}, "param_groups": [{"lr": 0.1}]}
        ),
        ValueError,
        r"parameter group lacks 'params'",
    ),
    (
        "optimizer-state-with-a-nan-learning-rate",
        lambda: (lambda o: o.load_state_dict(
            {"state": {}, "param_groups": [{**o.state_dict()["param_groups"][0], "lr": NAN}]}
        ))(optim.SGD(_pairs(), lr=0.1)),
        ValueError,
        r"Invalid learning rate: nan",
    ),
    # Half precision where the backward cannot run as torch's.
    (
        "elu-in-float16",
        lambda: nnlite.ELU()(torch.zeros(2, dtype=torch.float16)),
        TypeError,
        r"ELU\(alpha=1.0\) supports float32 and float64 inputs, got torch.float16: .*"
        r"input.float\(\) and the model with model.float\(\)",
    ),
    (
        "cross-entropy-in-bfloat16",
        lambda: nnlite.CrossEntropyLoss()(
            torch.zeros(2, 3, dtype=torch.bfloat16), torch.zeros(2, dtype=torch.long)
        ),
        TypeError,
        r"CrossEntropyLoss\(\) supports float32 and float64 inputs, got torch.bfloat16",
    ),
    # What a Sequential is given.
    (
        "sequential-given-a-class",
        lambda: nnlite.Sequential(nnlite.Linear(2, 2), nnlite.ReLU),
        TypeError,
        r"Sequential: argument 1 is the class ReLU, not a module; create one: ReLU\(\)",
    ),
    (
        "sequential-given-a-function",
        lambda: nnlite.Sequential(torch.relu),
        TypeError,
        r"argument 0 must be a module with forward and backward, got <built-in method relu",
    ),
    # Wrongly typed arguments.
    ("sgd-lr-as-a-string", lambda: optim.SGD(_pairs(), lr="0.1"), TypeError,
     r"SGD: lr must be a float, got '0.1' of type str; e.g. SGD\(model.param\(\), lr=0.01\)"),
    ("sgd-lr-none", lambda: optim.SGD(_pairs(), lr=None), TypeError,
     r"SGD: lr must be a float, got None of type NoneType"),
    ("sgd-nesterov-as-a-string", lambda: optim.SGD(_pairs(), momentum=0.9, nesterov="yes"),
     TypeError, r"SGD: nesterov must be True or False, got 'yes'"),
    ("adam-lr-as-a-tensor", lambda: optim.Adam(_pairs(), lr=torch.tensor(0.1)), TypeError,
     r"Adam: lr must be a float, got tensor\(0.1000\) of type Tensor"),
    ("adam-amsgrad-as-an-int", lambda: optim.Adam(_pairs(), amsgrad=1), TypeError,
     r"Adam: amsgrad must be True or False, got 1"),
    ("elu-alpha-as-a-string", lambda: nnlite.ELU("1"), TypeError,
     r"ELU: alpha must be a number, got '1'; e.g. ELU\(alpha=1.0\)"),
    ("dropout-p-as-a-string", lambda: nnlite.Dropout("0.5"), ValueError,
     r"dropout probability has to be between 0 and 1, but got 0.5"),
    # accuracy() with labels the outputs cannot predict.
    (
        "accuracy-labels-beyond-the-outputs",
        lambda: accuracy(_net(), torch.rand(4, 2), torch.tensor([0, 1, 5, 1])),
        ValueError,
        r"accuracy expects labels in \[0, 2\) for model outputs of shape \(4, 2\), got values "
        r"in \[0, 5\]",
    ),
    (
        "accuracy-negative-labels-for-one-output",
        lambda: accuracy(nnlite.Linear(2, 1), torch.rand(3, 2), torch.tensor([0, -1, 1])),
        ValueError,
        r"labels in \[0, 2\) for model outputs of shape \(3, 1\), got values in \[-1, 1\]",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "call, error, message",
    [case[1:] for case in SILENT + CLEAR],
    ids=[case[0] for case in SILENT + CLEAR],
)
def test_misuse_is_refused_with_a_message_naming_the_value_and_the_fix(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------------------------- graphs
def _tracked(*shape):
    return torch.rand(*shape).requires_grad_(True)


def _no_graph(*tensors):
    return all(t is None or (t.grad_fn is None and not t.requires_grad) for t in tensors)


def _module_cases():
    yield "linear", nnlite.Linear(2, 3), (2, 2)
    yield "linear-3d", nnlite.Linear(2, 3), (2, 4, 2)
    for name in ("ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid", "Dropout"):
        yield name.lower(), getattr(nnlite, name)(), (3, 2)
    yield "sequential", _net(), (5, 2)


@pytest.mark.parametrize(
    "module, shape", [case[1:] for case in _module_cases()], ids=[c[0] for c in _module_cases()]
)
def test_inputs_and_gradients_autograd_tracks_build_no_graph(module, shape):
    x = torch.rand(*shape)
    torch.manual_seed(1)  # Dropout draws the same mask twice
    expected = module(x)
    grad = torch.rand(expected.shape)
    torch.manual_seed(1)
    out = module(x.clone().requires_grad_(True))
    assert torch.equal(out, expected) and _no_graph(out)
    grad_input = module.backward(grad.clone().requires_grad_(True))
    assert grad_input.shape == x.shape and _no_graph(grad_input)
    assert all(_no_graph(p, g) for p, g in module.param())


@pytest.mark.parametrize(
    "loss, target",
    [
        (nnlite.MSELoss(), _tracked(3, 2)),
        (nnlite.BCELoss(), _tracked(3, 2)),
        (nnlite.CrossEntropyLoss(), _tracked(3, 2)),
        (nnlite.CrossEntropyLoss(), torch.tensor([0, 1, 1])),
    ],
    ids=["mse", "bce", "cross-entropy-probabilities", "cross-entropy-indices"],
)
def test_losses_of_tensors_autograd_tracks_build_no_graph(loss, target):
    value = loss(_tracked(3, 2), target)
    assert _no_graph(value, loss.backward())


def test_loading_torch_parameters_keeps_training_free_of_graphs():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    net = _net()
    net.load_state_dict(dict(theirs.named_parameters()))  # Parameters, not state_dict()'s data
    for key, value in theirs.state_dict().items():
        assert torch.equal(net.state_dict()[key], value)
    optimizer = optim.SGD(net.param(), lr=0.1, momentum=0.9)
    for _ in range(3):
        _step(net, optimizer)
    assert all(_no_graph(p, g) for p, g in net.param())
    assert _no_graph(*(state["momentum_buffer"] for state in optimizer.state.values()))


def test_loading_an_optimizer_state_autograd_tracks_builds_no_graph():
    optimizer = optim.SGD(_pairs(), lr=0.1, momentum=0.9)
    saved = optimizer.state_dict()
    saved["state"] = {0: {"momentum_buffer": _tracked(2, 2)}}
    optimizer.load_state_dict(saved)
    assert _no_graph(optimizer.state[0]["momentum_buffer"])


# ------------------------------------------------------------------------ failures change nothing
def test_a_failed_load_state_dict_leaves_the_model_unchanged():
    net = _net()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    state = {key: torch.ones_like(value) for key, value in before.items()}
    state["2.bias"] = torch.zeros(2, device="meta")  # the last key: converting it fails
    with pytest.raises(RuntimeError, match=r'While copying the parameter named "2.bias": .*meta'):
        net.load_state_dict(state)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize(
    "value, dtype",
    [(torch.zeros(2, 2, dtype=torch.complex64), "complex64"), (torch.ones(2, 2).bool(), "bool")],
    ids=["complex", "bool"],
)
def test_load_state_dict_refuses_values_that_are_not_real_numbers(value, dtype):
    layer = nnlite.Linear(2, 2)
    before = layer.weight.clone()
    with pytest.raises(
        RuntimeError, match=rf'"weight", expected real numbers, got a torch.{dtype}'
    ):
        layer.load_state_dict({"weight": value, "bias": torch.zeros(2)})
    assert torch.equal(layer.weight, before)


def test_other_errors_of_the_product_come_through_unchanged():
    layer = nnlite.Linear(2, 2)
    layer.bias = torch.zeros(2, device="meta")  # the weight and the input agree
    with pytest.raises(RuntimeError, match="Tensor on device meta is not on the expected device"):
        layer(torch.zeros(3, 2))


def test_a_failed_move_leaves_the_module_where_it_was():
    net = _net()
    before = [p.clone() for p, _ in net.param()]
    with pytest.raises(RuntimeError, match="cannot convert its tensors in place"):
        net.to("meta")
    assert all(
        p.device.type == "cpu" and torch.equal(p, b)
        for (p, _), b in zip(net.param(), before, strict=True)
    )


def test_a_failed_optimizer_load_leaves_its_state_unchanged():
    net, optimizer = _stepped(optim.SGD, lr=0.1, momentum=0.9)
    before = optimizer.state_dict()
    buffers = {i: s["momentum_buffer"].clone() for i, s in optimizer.state.items()}
    bad = optimizer.state_dict()
    bad["state"] = {**bad["state"], 3: {"momentum_buffer": torch.zeros(7)}}
    with pytest.raises(ValueError, match="momentum_buffer of shape"):
        optimizer.load_state_dict(bad)
    assert optimizer.param_groups[0]["lr"] == before["param_groups"][0]["lr"]
    for index, buffer in buffers.items():
        assert torch.equal(optimizer.state[index]["momentum_buffer"], buffer)


def test_sgd_stepped_before_model_to_keeps_its_momentum_dtype_as_torch_does():
    # Not refused: torch's SGD goes on with the float32 buffer the same way (test_sgd proves the
    # bits); the fix the Adam message names converts it.
    net, optimizer = _stepped(optim.SGD, lr=0.1, momentum=0.9)
    net.to(torch.float64)
    _step(net, optimizer, torch.float64)
    assert optimizer.state[0]["momentum_buffer"].dtype == torch.float32
    optimizer.load_state_dict(optimizer.state_dict())
    assert optimizer.state[0]["momentum_buffer"].dtype == torch.float64
