"""Sequential's reuse of its own intermediates, ``free_cache`` and ``input_grad``.

Inside a Sequential, a ReLU, Tanh or Sigmoid after a Linear computes in the Linear's output, and a
ReLU masks the gradient a Linear returned to it in place (a slice at a time when large). These
tests hold that to the bits of the same modules called one by one and of torch.nn, and check that
nothing the caller passed in or got back is ever written.
"""

import pytest
import torch

import nnlite
import nnlite.optim
from nnlite import _scalars
from nnlite.activation import _SLICE
from tests.nnlite._oracle import DTYPE_IDS, DTYPES

ACTIVATIONS = ["ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU"]
BATCHES = [1, 7, _SLICE // 25 + 3]  # the last one takes ReLU's sliced in-place backward


def _layers(namespace, activation, dtype, sizes=(2, 25, 25, 2)):
    torch.manual_seed(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if i:
            layers.append(getattr(namespace, activation)())
        layers.append(namespace.Linear(fan_in, fan_out, dtype=dtype))
    return layers


def _bits(t):
    """The tensor's bit pattern, so that -0 and +0 (and NaN payloads) count as different."""
    return t.view({torch.float32: torch.int32, torch.float64: torch.int64}[t.dtype])


def _inputs(batch, dtype, width=2):
    generator = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 2, generator=generator, dtype=dtype)
    grad = torch.randn(batch, width, generator=generator, dtype=dtype)
    return x, grad


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reuse_gives_the_bits_of_the_modules_called_one_by_one(activation, dtype, batch):
    net = nnlite.Sequential(*_layers(nnlite, activation, dtype))
    _assert_same_as_one_by_one(net, _layers(nnlite, activation, dtype), *_inputs(batch, dtype))


def _assert_same_as_one_by_one(net, loose, x, grad):
    """``net`` gives the bits of the same modules (``loose``) called one by one, by hand."""
    out = net(x)
    grad_input = net.backward(grad)
    expected = x
    for module in loose:
        expected = module.forward(expected)
    expected_grad = grad
    for module in reversed(loose):
        expected_grad = module.backward(expected_grad)
    assert torch.equal(_bits(out), _bits(expected))
    assert torch.equal(_bits(grad_input), _bits(expected_grad))
    for (_, _, ours), (_, _, theirs) in zip(
        net.named_param(), nnlite.Sequential(*loose).named_param(), strict=True
    ):
        assert torch.equal(_bits(ours), _bits(theirs))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("activation", ["ReLU", "Tanh", "Sigmoid"])
def test_reuse_matches_torch_nn(activation, batch):
    net = nnlite.Sequential(*_layers(nnlite, activation, torch.float32))
    twin = torch.nn.Sequential(*_layers(torch.nn, activation, torch.float32))
    x, grad = _inputs(batch, torch.float32)
    leaf = x.clone().requires_grad_(True)
    expected = twin(leaf)
    expected.backward(grad)
    assert torch.equal(net(x), expected.detach())
    assert torch.equal(net.backward(grad), leaf.grad)
    for (_, _, ours), theirs in zip(net.named_param(), twin.parameters(), strict=True):
        assert torch.equal(ours, theirs.grad)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("last", ["Linear", "ReLU"])
def test_nothing_of_the_callers_is_written(batch, last):
    layers = _layers(nnlite, "ReLU", torch.float32)
    if last == "ReLU":
        layers.append(nnlite.ReLU())
    net = nnlite.Sequential(*layers)
    x, grad = _inputs(batch, torch.float32)
    x_before, grad_before = x.clone(), grad.clone()
    out = net(x)
    out_before = out.clone()
    grad_input = net.backward(grad)
    grad_input_before = grad_input.clone()
    net.backward(grad)  # a second backward must not write into what the first returned
    for tensor, before in ((x, x_before), (grad, grad_before), (out, out_before)):
        assert torch.equal(_bits(tensor), _bits(before))
    assert torch.equal(_bits(grad_input), _bits(grad_input_before))


def test_sliced_relu_backward_keeps_torchs_values_at_zeros_and_nans():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(_SLICE // 25 + 3, 25, generator=generator)
    x[0, :4] = torch.tensor([0.0, -0.0, float("nan"), -1.0])
    relu = nnlite.ReLU()
    relu(x)
    grad = torch.randn(x.shape, generator=generator)
    grad[0, :2] = -1.0  # negative gradients at inactive units: +0 expected, not -0
    got = relu._backward_owned(grad.clone())  # what Sequential calls after a Linear
    leaf = x.clone().requires_grad_(True)
    torch.relu(leaf).backward(grad)
    assert torch.equal(got.nan_to_num(7.0), leaf.grad.nan_to_num(7.0))
    assert got[0, 2] == grad[0, 2]  # a NaN output passes the gradient through, as in torch
    assert torch.equal(_bits(got[0, :2]), _bits(torch.zeros(2)))  # +0, not -0, where inactive


def test_relu_backward_on_a_non_contiguous_gradient_falls_back():
    relu = nnlite.ReLU()
    y = relu(torch.randn(25, _SLICE // 25 + 3))
    grad = torch.randn(_SLICE // 25 + 3, 25).t()  # right shape, transposed memory
    expected = relu.backward(grad)
    owned = grad.clone()
    assert torch.equal(relu._backward_owned(owned), expected)
    assert torch.equal(expected, grad * (y != 0))


@pytest.mark.parametrize("batch", [1, 7])
def test_free_cache_gives_the_same_bits_then_refuses_a_second_backward(batch):
    kept = nnlite.Sequential(*_layers(nnlite, "ReLU", torch.float64))
    freed = nnlite.Sequential(*_layers(nnlite, "ReLU", torch.float64))
    x, grad = _inputs(batch, torch.float64)
    kept(x)
    freed(x)
    assert torch.equal(kept.backward(grad), freed.backward(grad, free_cache=True))
    for (_, _, a), (_, _, b) in zip(kept.named_param(), freed.named_param(), strict=True):
        assert torch.equal(a, b)
    for module in freed:
        assert all(getattr(module, attr) is None for attr in module._cache_attrs)
    with pytest.raises(RuntimeError, match=r"free_cache=True.*run forward first"):
        freed.backward(grad)
    kept.backward(grad)  # the default keeps the caches: backward can run again
    freed(x)
    freed.backward(grad, free_cache=True)  # a new forward makes backward possible again


def test_free_cache_reaches_nested_sequentials():
    inner = nnlite.Sequential(nnlite.Linear(2, 3), nnlite.Tanh())
    net = nnlite.Sequential(inner, nnlite.Linear(3, 1))
    net(torch.randn(4, 2))
    net.backward(torch.ones(4, 1), free_cache=True)
    assert inner[0]._input is None and inner[1]._output is None


@pytest.mark.parametrize("first", ["Linear", "Sequential", "ReLU"])
def test_input_grad_false_returns_none_and_the_same_parameter_gradients(first):
    def build():
        layers = _layers(nnlite, "ReLU", torch.float32)
        if first == "Sequential":
            layers = [nnlite.Sequential(*layers[:2]), *layers[2:]]
        elif first == "ReLU":
            layers = [nnlite.ReLU(), *layers]
        return nnlite.Sequential(*layers)

    full, skipped = build(), build()
    x, grad = _inputs(7, torch.float32)
    full(x)
    skipped(x)
    assert isinstance(full.backward(grad), torch.Tensor)
    assert skipped.backward(grad, input_grad=False) is None
    for (_, _, a), (_, _, b) in zip(full.named_param(), skipped.named_param(), strict=True):
        assert torch.equal(a, b)


def test_linear_backward_without_the_input_gradient():
    layer = nnlite.Linear(3, 2)
    layer(torch.randn(5, 3))
    assert layer.backward(torch.ones(5, 2), input_grad=False) is None
    weight_grad = layer.weight_grad.clone()
    assert isinstance(layer.backward(torch.ones(5, 2)), torch.Tensor)
    assert torch.equal(layer.weight_grad, 2 * weight_grad)


def _expected_linear(layer, x):
    """What torch.nn.functional.linear computes, from the layer's weight as it is now."""
    return torch.addmm(layer.bias, x, layer.weight.t())


@pytest.mark.parametrize(
    "change",
    [
        "in place",
        "new tensor",
        "new data",
        "transposed data",
        "flatten_parameters",
        "to float64",
        "load_state_dict",
    ],
)
def test_linear_follows_its_weight_wherever_it_moves(change):
    layer = nnlite.Linear(3, 3)
    x = torch.randn(5, 3)
    layer(x)
    if change == "in place":
        layer.weight.add_(1.0)
    elif change == "new tensor":
        layer.weight = torch.randn(3, 3)
    elif change == "new data":
        layer.weight.data = torch.randn(3, 3)
    elif change == "transposed data":  # same memory, other strides
        layer.weight.data = layer.weight.data.t()
    elif change == "flatten_parameters":
        nnlite.optim.flatten_parameters(layer.param())
        layer.weight.mul_(2.0)
    elif change == "to float64":
        layer.to(torch.float64)
        x = x.double()
    else:
        layer.load_state_dict({"weight": torch.randn(3, 3), "bias": torch.randn(3)})
    assert torch.equal(layer(x), _expected_linear(layer, x))


@pytest.mark.parametrize("shape", [(3, 0), (0, 4)])
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_empty_linear_layers_convert_and_run(shape):
    layer = nnlite.Linear(*shape)
    layer(torch.randn(2, shape[0]))
    layer.double()
    out = layer(torch.randn(2, shape[0], dtype=torch.float64))
    assert out.shape == (2, shape[1]) and out.dtype == torch.float64


def test_bias_gradient_of_a_batch_of_one_is_its_row():
    layer = nnlite.Linear(3, 4)
    layer(torch.randn(1, 3))
    grad = torch.tensor([[-0.0, 1.5, -2.0, 0.0]])
    layer.backward(grad)
    layer.backward(grad[:, [0, 1, 2, 3]])  # a copy, same values
    assert torch.equal(_bits(layer.bias_grad), _bits(grad.sum(0) + grad.sum(0)))
    strided = torch.randn(1, 8)[:, ::2]
    layer.zero_grad()
    layer.backward(strided)
    assert torch.equal(layer.bias_grad, strided.sum(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("count", [1, 2, 3, 25, 50, 1000, 4097, 100_003])
def test_mse_mean_is_torchs(dtype, count):
    generator = torch.Generator().manual_seed(count)
    x = (torch.randn(count, generator=generator) * 3).to(dtype)
    target = torch.randn(count, generator=generator).to(dtype)
    assert torch.equal(nnlite.MSELoss()(x, target), torch.nn.functional.mse_loss(x, target))


def test_mse_backward_of_an_empty_input_is_empty():
    criterion = nnlite.MSELoss()
    assert torch.isnan(criterion(torch.empty(0, 2), torch.empty(0, 2)))
    assert criterion.backward().shape == (0, 2)


def test_scalars_are_shared_per_value_dtype_and_device_and_bounded(monkeypatch):
    monkeypatch.setattr(_scalars, "_CACHE", {})
    like = torch.ones(2, dtype=torch.float64)
    half = _scalars.scalar(0.5, like)
    assert half.dtype == torch.float64 and half.dim() == 0 and half.item() == 0.5
    assert _scalars.scalar(0.5, like) is half
    assert _scalars.scalar(0.5, like.float()) is not half
    for value in range(2 * _scalars._MAX_ENTRIES):
        _scalars.scalar(float(value), like)
    assert len(_scalars._CACHE) <= _scalars._MAX_ENTRIES


def test_clear_cache_of_a_subclass_that_does_not_declare_its_cache():
    class Doubler(nnlite.Module):
        def forward(self, input):
            self._input = input
            return 2 * input

        def backward(self, grad_output):
            self._saved(self._input)
            return 2 * grad_output

    module = Doubler()
    module(torch.ones(2))
    module._clear_cache()
    assert module._input is None
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(torch.ones(2))


@pytest.mark.parametrize("batch", BATCHES)
def test_an_activation_never_writes_into_an_output_another_module_keeps(batch):
    def build():
        torch.manual_seed(0)
        return [
            nnlite.Linear(2, 25),
            nnlite.ReLU(),  # keeps its output for its backward: Sigmoid must not overwrite it
            nnlite.Sigmoid(),
            nnlite.Dropout(0.0),
            nnlite.Tanh(),
            nnlite.Linear(25, 2),
        ]

    _assert_same_as_one_by_one(nnlite.Sequential(*build()), build(), *_inputs(batch, torch.float32))


def test_the_reuse_happens_where_planned(monkeypatch):
    calls = []
    for name in ("_forward_owned", "_backward_owned"):
        original = getattr(nnlite.ReLU, name)

        def spy(self, tensor, _original=original, _name=name):
            calls.append((_name, tensor.data_ptr()))
            result = _original(self, tensor)
            assert result.data_ptr() == tensor.data_ptr()  # computed in the memory handed over
            return result

        monkeypatch.setattr(nnlite.ReLU, name, spy)
    net = nnlite.Sequential(*_layers(nnlite, "ReLU", torch.float32, sizes=(2, 25, 25, 25, 2)))
    x, grad = _inputs(_SLICE // 25 + 3, torch.float32)
    net(x)
    net.backward(grad)
    assert [name for name, _ in calls] == ["_forward_owned"] * 3 + ["_backward_owned"] * 3
    assert net._forward_plan == [False, True, False, True, False, True, False]
    assert net._backward_plan == [False, True, False, True, False, True, False]


def test_a_wrapped_forward_or_backward_is_never_bypassed():
    linear = nnlite.Linear(2, 4)
    kept = []
    original = linear.forward
    linear.forward = lambda x: kept.append(original(x)) or kept[-1]
    relu = nnlite.ReLU()
    seen = []
    relu_backward = relu.backward
    relu.backward = lambda g: seen.append(g.clone()) or relu_backward(g)
    net = nnlite.Sequential(linear, relu, nnlite.Linear(4, 1))
    x = torch.randn(64, 2)
    net(x)
    assert (kept[0] < 0).any()  # the Linear's output the wrapper kept was not overwritten by ReLU
    net.backward(torch.ones(64, 1))
    assert len(seen) == 1  # the instance's own backward ran


def test_a_module_object_cannot_take_two_positions():
    relu = nnlite.ReLU()
    with pytest.raises(
        ValueError, match=r"argument 3 is or holds the same ReLU object as argument 1"
    ):
        nnlite.Sequential(nnlite.Linear(2, 3), relu, nnlite.Linear(3, 3), relu)
    net = nnlite.Sequential(nnlite.Linear(2, 3), relu)
    with pytest.raises(ValueError, match="own instance"):
        net.append(relu)
    assert len(net) == 2


def test_a_pickled_sequential_plans_its_reuse_again():
    import pickle

    net = nnlite.Sequential(*_layers(nnlite, "ReLU", torch.float32))
    x, grad = _inputs(7, torch.float32)
    expected = net(x)
    state = net.__dict__.copy()
    del state["_forward_plan"], state["_backward_plan"]  # as pickled before the plan
    old = nnlite.Sequential.__new__(nnlite.Sequential)
    old.__setstate__(state)
    assert torch.equal(old(x), expected)
    again = pickle.loads(pickle.dumps(net))
    assert torch.equal(again(x), expected)
    assert torch.equal(again.backward(grad), net.backward(grad))


def test_tensors_autograd_tracks_are_taken_as_plain_values_and_build_no_graph():
    net = nnlite.Sequential(*_layers(nnlite, "ReLU", torch.float32))
    x, grad = _inputs(_SLICE // 25 + 3, torch.float32)
    expected_out, expected_grad = net(x), net.backward(grad)
    expected_param_grads = [g.clone() for _, g in net.param()]
    net.zero_grad()
    out = net(x.clone().requires_grad_(True))
    assert torch.equal(out, expected_out) and out.grad_fn is None and not out.requires_grad
    grad_input = net.backward(grad.clone().requires_grad_(True))
    assert torch.equal(grad_input, expected_grad) and not grad_input.requires_grad
    for (p, g), expected in zip(net.param(), expected_param_grads, strict=True):
        assert torch.equal(g, expected)
        assert not (p.requires_grad or g.requires_grad) and g.grad_fn is None
    relu = nnlite.ReLU()
    relu(torch.randn(4))
    tracked_grad = torch.randn(4, requires_grad=True)
    assert torch.equal(relu.backward(tracked_grad), relu.backward(tracked_grad.detach()))


def test_constants_made_under_inference_mode_serve_later_calls(monkeypatch):
    monkeypatch.setattr(_scalars, "_CACHE", {})
    criterion = nnlite.MSELoss()
    with torch.inference_mode():
        criterion(torch.randn(3, 2), torch.randn(3, 2))
    x = torch.randn(3, 2)
    loss = criterion(x, torch.zeros(3, 2))
    assert not loss.is_inference()
    assert torch.equal(loss, (x * x).mean())
    assert torch.equal(criterion.backward(), x * (2 / 6))


def test_a_subclass_cache_is_cleared_whatever_its_base_declares():
    class Recording(nnlite.Linear):
        def forward(self, input):
            self._output = super().forward(input)
            return self._output

    layer = Recording(2, 3)
    net = nnlite.Sequential(layer, nnlite.Linear(3, 1))
    net(torch.randn(4, 2))
    net.backward(torch.ones(4, 1), free_cache=True)
    assert layer._output is None and layer._input is None


def test_a_subclass_that_overrides_forward_loses_its_bases_declarations():
    class Keeping(nnlite.Linear):
        def forward(self, input):
            self._output = super().forward(input)  # keeps what it returns
            return self._output

    assert Keeping._output_is_fresh is False and Keeping._cache_attrs is None
    assert Keeping._grad_is_fresh is True  # backward is Linear's own
    layer = Keeping(2, 4)
    net = nnlite.Sequential(layer, nnlite.ReLU(), nnlite.Linear(4, 1))
    out = net(torch.randn(64, 2))
    assert net._forward_plan == [False, False, False]
    assert (layer._output < 0).any() and out.shape == (64, 1)  # ReLU did not overwrite it


def test_a_subclass_that_overrides_backward_gets_no_options_it_did_not_declare():
    calls = []

    class Plain(nnlite.Linear):
        def backward(self, grad_output):  # no input_grad keyword
            calls.append(grad_output.shape)
            return super().backward(grad_output)

    class Masking(nnlite.ReLU):
        def backward(self, grad_output):
            return super().backward(grad_output)

    assert Plain._backward_options == frozenset() and Masking._backward_in_place is False
    net = nnlite.Sequential(Plain(2, 3), Masking(), nnlite.Linear(3, 1))
    assert net._backward_plan == [False, False, False]
    net(torch.randn(5, 2))
    assert net.backward(torch.ones(5, 1), input_grad=False, free_cache=True) is None
    assert calls == [(5, 3)]


def test_a_module_outside_nnlite_takes_the_reuse_it_declares():
    class Square(nnlite.Module):
        _forward_in_place = True

        def forward(self, input):
            self._input = input.clone()
            return input * input

        def _forward_owned(self, input):
            self._input, self.owned = input.clone(), True
            return input.mul_(input)

        def backward(self, grad_output):
            return 2 * self._input * grad_output

    net = nnlite.Sequential(nnlite.Linear(2, 3), Square())
    assert net._forward_plan == [False, True]
    x = torch.randn(4, 2)
    expected = net[0].forward(x) ** 2
    assert torch.equal(net(x), expected) and net[1].owned


@pytest.mark.parametrize("batch", [1, 7])
def test_accumulate_false_overwrites_the_gradients_with_what_a_zeroed_backward_adds(batch):
    torch.manual_seed(0)
    net = nnlite.Sequential(
        nnlite.Linear(2, 4), nnlite.ReLU(), nnlite.Sequential(nnlite.Linear(4, 3, bias=True)),
        nnlite.Tanh(), nnlite.Linear(3, 2, bias=False),
    )  # fmt: skip
    x, grad = _inputs(batch, torch.float32)
    net(x)
    net.backward(grad)
    expected = [g.clone() for _, g in net.param()]
    for _, g in net.param():
        g.fill_(123.0)  # stale values: overwritten, not added to
    net(x)
    assert net.backward(grad, accumulate=False, input_grad=False) is None
    for (_, g), e in zip(net.param(), expected, strict=True):
        assert torch.equal(g, e)


def test_accumulate_false_leaves_a_module_that_does_not_declare_it_accumulating():
    class Scale(nnlite.Module):
        _param_names = ("weight",)

        def __init__(self):
            super().__init__()
            self.weight, self.weight_grad = torch.ones(1), torch.zeros(1)

        def forward(self, input):
            self._input = input
            return input * self.weight

        def backward(self, grad_output):
            self.weight_grad.add_((grad_output * self._input).sum())
            return grad_output * self.weight

    scale = Scale()
    net = nnlite.Sequential(nnlite.Linear(2, 2), scale)
    for _ in range(2):
        net(torch.ones(1, 2))
        net.backward(torch.ones(1, 2), accumulate=False)
    assert scale.weight_grad.item() == 2 * net[0](torch.ones(1, 2)).sum().item()
