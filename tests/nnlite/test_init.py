"""nnlite.init against torch.nn.init: after the same seed, every function fills the same bits."""

import math

import pytest
import torch

from nnlite import init

DTYPES = [torch.float32, torch.float64]

# (id, function name, keyword arguments, shape)
FILLS = [
    ("uniform-default", "uniform_", {}, (5, 7)),
    ("uniform-bounds", "uniform_", dict(a=-0.3, b=2.5), (33,)),
    ("normal-default", "normal_", {}, (5, 7)),
    ("normal-mean-std", "normal_", dict(mean=1.5, std=0.01), (4, 3, 2)),
    ("constant", "constant_", dict(val=0.1), (3, 4)),
    ("ones", "ones_", {}, (3, 4)),
    ("zeros", "zeros_", {}, (3, 4)),
    ("xavier-uniform", "xavier_uniform_", {}, (25, 2)),
    ("xavier-uniform-gain-3d", "xavier_uniform_", dict(gain=5.0 / 3), (6, 4, 3)),
    ("xavier-normal", "xavier_normal_", {}, (25, 25)),
    ("xavier-normal-gain-4d", "xavier_normal_", dict(gain=math.sqrt(2.0)), (4, 3, 2, 2)),
    ("kaiming-uniform-default", "kaiming_uniform_", {}, (25, 2)),
    ("kaiming-uniform-linear-sqrt5", "kaiming_uniform_", dict(a=math.sqrt(5)), (25, 25)),
    (
        "kaiming-uniform-relu-fan-out",
        "kaiming_uniform_",
        dict(mode="fan_out", nonlinearity="relu"),
        (7, 5),
    ),
    ("kaiming-uniform-3d-tanh", "kaiming_uniform_", dict(nonlinearity="tanh"), (6, 4, 3)),
    ("kaiming-normal-default", "kaiming_normal_", {}, (25, 2)),
    ("kaiming-normal-leaky-0.2-fan-out", "kaiming_normal_", dict(a=0.2, mode="fan_out"), (9, 4)),
    ("kaiming-normal-mode-upper-case", "kaiming_normal_", dict(mode="FAN_IN"), (3, 8)),
]


@pytest.mark.parametrize("use_generator", [False, True], ids=["global-rng", "generator"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "name, kwargs, shape", [case[1:] for case in FILLS], ids=[case[0] for case in FILLS]
)
def test_fills_exactly_the_bits_torch_nn_init_fills(name, kwargs, shape, dtype, use_generator):
    def fill(function):
        tensor = torch.full(shape, float("nan"), dtype=dtype)
        extra = {}
        if use_generator and "generator" in function.__code__.co_varnames:
            extra["generator"] = torch.Generator().manual_seed(7)
        torch.manual_seed(123)
        returned = function(tensor, **kwargs, **extra)
        assert returned is tensor
        # the next draw shows the global generator advanced by as much as torch's did
        return tensor, torch.rand(3, dtype=dtype)

    theirs, theirs_next = fill(getattr(torch.nn.init, name))
    ours, ours_next = fill(getattr(init, name))
    assert ours.dtype == dtype and not ours.isnan().any()
    assert torch.equal(ours, theirs)
    assert torch.equal(ours_next, theirs_next)


def test_a_generator_is_used_instead_of_the_global_rng():
    torch.manual_seed(0)
    drawn = init.kaiming_uniform_(torch.empty(4, 4), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    expected = torch.nn.init.kaiming_uniform_(torch.empty(4, 4))
    assert not torch.equal(drawn, expected)


@pytest.mark.parametrize(
    "nonlinearity, param",
    [
        ("linear", None),
        ("conv2d", None),
        ("conv_transpose3d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 1),
        ("leaky_relu", math.sqrt(5)),
        ("selu", None),
    ],
)
def test_calculate_gain_equals_torchs(nonlinearity, param):
    ours = init.calculate_gain(nonlinearity, param)
    theirs = torch.nn.init.calculate_gain(nonlinearity, param)
    assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("shape", [(3, 4), (3, 4, 5), (2, 3, 4, 5)], ids=str)
def test_fan_in_and_fan_out_equal_torchs(shape):
    tensor = torch.empty(shape)
    assert init._calculate_fan_in_and_fan_out(
        tensor
    ) == torch.nn.init._calculate_fan_in_and_fan_out(tensor)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_on_a_zero_element_tensor_warns_and_leaves_it(name):
    tensor = torch.empty(0, 3)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert getattr(init, name)(tensor) is tensor


def test_detached_view_fills_the_tensor_that_requires_grad():
    weight = torch.zeros(3, 2, requires_grad=True)
    init.ones_(weight.detach())
    assert torch.equal(weight.detach(), torch.ones(3, 2))


BAD_ARGUMENTS = [
    (
        "xavier-on-1d",
        lambda: init.xavier_uniform_(torch.empty(3)),
        ValueError,
        "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions",
    ),
    (
        "kaiming-on-1d",
        lambda: init.kaiming_normal_(torch.empty(3)),
        ValueError,
        "Fan in and fan out can not be computed",
    ),
    (
        "bad-mode",
        lambda: init.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg"),
        ValueError,
        r"Mode fan_avg not supported, please use one of \['fan_in', 'fan_out'\]",
    ),
    (
        "bad-nonlinearity",
        lambda: init.kaiming_uniform_(torch.empty(3, 3), nonlinearity="gelu"),
        ValueError,
        "Unsupported nonlinearity gelu",
    ),
    (
        "bool-negative-slope",
        lambda: init.calculate_gain("leaky_relu", True),
        ValueError,
        "negative_slope True not a valid number",
    ),
    (
        "string-negative-slope",
        lambda: init.calculate_gain("leaky_relu", "0.1"),
        ValueError,
        "negative_slope 0.1 not a valid number",
    ),
    (
        "not-a-tensor",
        lambda: init.zeros_([0.0, 1.0]),
        TypeError,
        "zeros_ expects a torch.Tensor to fill, got list",
    ),
    (
        "uniform-reversed-bounds",
        lambda: init.uniform_(torch.empty(2), 1.0, 0.0),
        RuntimeError,
        "from=1 > to=0",
    ),
    (
        "normal-negative-std",
        lambda: init.normal_(torch.empty(2), std=-1.0),
        RuntimeError,
        "normal expects std >= 0.0, but found std -1",
    ),
]


@pytest.mark.parametrize(
    "make, error, message",
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_bad_argument_is_refused_with_torchs_message(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_all_is_sorted_and_lists_every_public_function():
    assert init.__all__ == sorted(init.__all__)
    defined_here = {
        name
        for name, value in vars(init).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == init.__name__
    }
    assert defined_here == set(init.__all__)
