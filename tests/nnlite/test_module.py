import pytest
import torch

import nnlite


def _network(nn, dtype=torch.float32):
    return nn.Sequential(nn.Linear(2, 4, dtype=dtype), nn.Tanh(), nn.Linear(4, 2, dtype=dtype))


def test_state_dict_uses_torchs_keys_and_round_trips_both_ways():
    torch.manual_seed(0)
    ours = _network(nnlite)
    theirs = _network(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value)
    torch.manual_seed(1)
    ours = _network(nnlite)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 2)
    assert torch.equal(ours(x), theirs(x).detach())


def test_load_state_dict_copies_in_place_keeping_pairs_valid():
    model = _network(nnlite)
    pairs = model.param()
    model.load_state_dict({k: torch.zeros_like(v) for k, v in model.state_dict().items()})
    assert all(p.abs().sum() == 0 for p, _ in pairs)
    assert pairs[0][0] is model[0].weight


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda sd: sd.pop("0.bias"), r'Missing key\(s\) in state_dict: "0.bias"'),
        (
            lambda sd: sd.update({"9.weight": torch.zeros(1)}),
            r'Unexpected key\(s\) in state_dict: "9.weight"',
        ),
        (
            lambda sd: sd.update({"0.weight": torch.zeros(3, 3)}),
            r"size mismatch for 0.weight: copying a param with shape torch.Size\(\[3, 3\]\) "
            r"from checkpoint, "
            r"the shape in current model is torch.Size\(\[4, 2\]\)",
        ),
    ],
    ids=["missing", "unexpected", "mis-shaped"],
)
def test_strict_loading_rejects_bad_keys_and_changes_nothing(mutate, message):
    model = _network(nnlite)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    mutate(state)
    with pytest.raises(RuntimeError, match=message):
        model.load_state_dict(state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_non_strict_loading_reports_what_it_skipped():
    model = _network(nnlite)
    state = dict(model.state_dict())
    state.pop("2.bias")
    state["extra"] = torch.zeros(1)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["extra"]


def test_to_converts_parameters_in_place_and_matches_torch_in_float64():
    torch.manual_seed(0)
    ours = _network(nnlite)
    torch.manual_seed(0)
    theirs = _network(torch.nn).to(torch.float64)
    pairs = ours.param()
    assert ours.to(torch.float64) is ours
    assert all(p.dtype == torch.float64 and g.dtype == torch.float64 for p, g in pairs)
    assert pairs[0][0] is ours[0].weight
    x = torch.randn(5, 2, dtype=torch.float64)
    assert torch.equal(ours(x), theirs(x).detach())
    ours.to(torch.float32)
    assert ours[0].weight.dtype == torch.float32


def test_param_order_matches_torch_parameters():
    torch.manual_seed(0)
    ours = _network(nnlite)
    torch.manual_seed(0)
    theirs = _network(torch.nn)
    assert [n for n, _, _ in ours.named_param()] == [n for n, _ in theirs.named_parameters()]
    for (p, _), tp in zip(ours.param(), theirs.parameters(), strict=True):
        assert torch.equal(p, tp.detach())


@pytest.mark.parametrize("grad_mode", [True, False], ids=["grad-enabled", "grad-disabled"])
def test_no_autograd_graph_is_ever_built(grad_mode):
    model = _network(nnlite)
    loss = nnlite.MSELoss()
    with torch.set_grad_enabled(grad_mode):
        out = model(torch.randn(3, 2))
        value = loss(out, torch.zeros(3, 2))
        grad = model.backward(loss.backward())
    for tensor in (out, value, grad, *[t for pair in model.param() for t in pair]):
        assert not tensor.requires_grad and tensor.grad_fn is None


def test_base_module_methods_must_be_overridden():
    with pytest.raises(NotImplementedError, match="Module must implement forward"):
        nnlite.Module()(torch.zeros(1))
    with pytest.raises(NotImplementedError, match="Module must implement backward"):
        nnlite.Module().backward(torch.zeros(1))


def test_load_state_dict_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got list"):
        _network(nnlite).load_state_dict([1, 2])
