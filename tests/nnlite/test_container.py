import pytest
import torch

import nnlite


def _seeds_network(nn, activation="ReLU", dtype=torch.float32):
    act = getattr(nn, activation)
    return nn.Sequential(
        nn.Linear(2, 25, dtype=dtype),
        act(),
        nn.Linear(25, 25, dtype=dtype),
        act(),
        nn.Linear(25, 25, dtype=dtype),
        act(),
        nn.Linear(25, 2, dtype=dtype),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation", ["ReLU", "Tanh", "Sigmoid", "LeakyReLU"])
def test_seeds_network_with_cross_entropy_matches_torch(activation, dtype):
    torch.manual_seed(0)
    ours = _seeds_network(nnlite, activation, dtype)
    torch.manual_seed(0)
    theirs = _seeds_network(torch.nn, activation, dtype)
    x = torch.rand(100, 2, dtype=dtype)
    target = torch.randint(0, 2, (100,))
    loss = nnlite.CrossEntropyLoss()
    value = loss(ours(x), target)
    ours.backward(loss.backward())
    expected = torch.nn.CrossEntropyLoss()(theirs(x), target)
    expected.backward()
    assert torch.equal(value, expected.detach())
    for (name, p, g), (tname, tp) in zip(
        ours.named_param(), theirs.named_parameters(), strict=True
    ):
        assert name == tname
        assert torch.equal(p, tp.detach())
        # The loss gradient is within 2 ulps of its largest term (see test_loss); it then flows
        # through exact operations, so each parameter gradient agrees to a few eps of its scale.
        bound = 8 * torch.finfo(dtype).eps * tp.grad.abs().max()
        assert (g - tp.grad).abs().max() <= bound


def test_mse_network_gradients_equal_torch_bit_for_bit():
    torch.manual_seed(0)
    ours = _seeds_network(nnlite, "Tanh")
    torch.manual_seed(0)
    theirs = _seeds_network(torch.nn, "Tanh")
    x, target = torch.rand(25, 2), torch.rand(25, 2)
    loss = nnlite.MSELoss()
    value = loss(ours(x), target)
    grad_input = ours.backward(loss.backward())
    leaf = x.clone().requires_grad_(True)
    expected = torch.nn.MSELoss()(theirs(leaf), target)
    expected.backward()
    assert torch.equal(value, expected.detach())
    assert torch.equal(grad_input, leaf.grad)
    for (_, _, g), tp in zip(ours.named_param(), theirs.parameters(), strict=True):
        assert torch.equal(g, tp.grad)


def test_indexing_len_iteration_and_slicing():
    layers = [nnlite.Linear(2, 3), nnlite.ReLU(), nnlite.Linear(3, 1)]
    model = nnlite.Sequential(*layers)
    assert len(model) == 3 and model[0] is layers[0] and model[-1] is layers[2]
    assert list(model) == layers
    head = model[:2]
    assert isinstance(head, nnlite.Sequential) and list(head) == layers[:2]


def test_nested_sequentials_name_parameters_as_torch():
    torch.manual_seed(0)
    ours = nnlite.Sequential(
        nnlite.Sequential(nnlite.Linear(2, 3), nnlite.Tanh()), nnlite.Linear(3, 1)
    )
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()), torch.nn.Linear(3, 1)
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = torch.randn(4, 2)
    assert torch.equal(ours(x), theirs(x).detach())


def test_backward_walks_modules_last_to_first():
    calls = []

    class Spy(nnlite.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(("forward", self.name))
            return x.clone()

        def backward(self, g):
            calls.append(("backward", self.name))
            return g.clone()

    model = nnlite.Sequential(Spy("a"), Spy("b"))
    model.backward(model(torch.zeros(1)))
    assert calls == [("forward", "a"), ("forward", "b"), ("backward", "b"), ("backward", "a")]


def test_train_and_eval_reach_every_module():
    model = nnlite.Sequential(nnlite.Linear(2, 2), nnlite.Sequential(nnlite.Dropout()))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        model.train("yes")


def test_non_module_arguments_are_rejected():
    with pytest.raises(
        TypeError, match="argument 1 must be a module with forward and backward, got 3"
    ):
        nnlite.Sequential(nnlite.ReLU(), 3)


def test_repr_prints_children_indented_as_torch():
    ours = nnlite.Sequential(nnlite.Linear(2, 25), nnlite.ReLU(), nnlite.Dropout(0.2))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 25), torch.nn.ReLU(), torch.nn.Dropout(0.2))
    assert repr(ours) == repr(theirs)


def test_each_set_of_backward_options_gets_its_own_plan():
    x, grad = torch.randn(7, 2), torch.randn(7, 2)
    torch.manual_seed(0)
    net = _seeds_network(nnlite)
    for options in ({}, {"input_grad": False, "accumulate": False, "free_cache": True}, {}):
        for _, g in net.param():
            g.zero_()
        net(x)
        got = net.backward(grad, **options)
        torch.manual_seed(0)
        fresh = _seeds_network(nnlite)
        fresh(x)
        expected = fresh.backward(grad)
        assert got is None if options else torch.equal(got, expected)
        for (_, ours), (_, theirs) in zip(net.param(), fresh.param(), strict=True):
            assert torch.equal(ours, theirs)
        assert (net[0]._input is None) == bool(options) == (net[1]._output is None)
    assert set(net._backward_steps) == {(False, True, True), (True, False, False)}
