import pytest
import torch

import nnlite
from tests.nnlite._oracle import DTYPE_IDS, DTYPES

SIZES = [(2, 25), (25, 25), (25, 2), (25, 1), (1, 1), (7, 3)]


def _twins(in_features, out_features, bias=True, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    ours = nnlite.Linear(in_features, out_features, bias=bias, dtype=dtype)
    torch.manual_seed(seed)
    theirs = torch.nn.Linear(in_features, out_features, bias=bias, dtype=dtype)
    return ours, theirs


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("in_features", "out_features"), SIZES, ids=[f"{a}-{b}" for a, b in SIZES])
def test_initialisation_holds_torchs_tensors_after_the_same_seed(in_features, out_features, bias):
    ours, theirs = _twins(in_features, out_features, bias)
    assert torch.equal(ours.weight, theirs.weight.detach())
    if bias:
        assert torch.equal(ours.bias, theirs.bias.detach())
    else:
        assert ours.bias is None and theirs.bias is None


def test_initialisation_consumes_the_generator_like_torch():
    torch.manual_seed(5)
    nnlite.Linear(4, 3)
    after_ours = torch.rand(4)
    torch.manual_seed(5)
    torch.nn.Linear(4, 3)
    after_theirs = torch.rand(4)
    assert torch.equal(after_ours, after_theirs)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("batch", [1, 25, 1000, 4097])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("in_features", "out_features"), SIZES, ids=[f"{a}-{b}" for a, b in SIZES])
def test_forward_and_all_gradients_equal_torch_bit_for_bit(
    in_features, out_features, bias, batch, dtype
):
    ours, theirs = _twins(in_features, out_features, bias, dtype)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, in_features, generator=gen, dtype=dtype)
    grad = torch.randn(batch, out_features, generator=gen, dtype=dtype)
    leaf = x.clone().requires_grad_(True)
    expected = theirs(leaf)
    expected.backward(grad)
    out = ours(x)
    grad_input = ours.backward(grad)
    assert torch.equal(out, expected.detach())
    assert torch.equal(grad_input, leaf.grad)
    assert torch.equal(ours.weight_grad, theirs.weight.grad)
    if bias:
        assert torch.equal(ours.bias_grad, theirs.bias.grad)


@pytest.mark.parametrize("shape", [(3,), (4, 5, 3), (2, 2, 2, 3)], ids=["1d", "3d", "4d"])
def test_any_leading_dimensions_match_torch(shape):
    ours, theirs = _twins(3, 2)
    x = torch.randn(shape)
    grad = torch.randn(*shape[:-1], 2)
    leaf = x.clone().requires_grad_(True)
    expected = theirs(leaf)
    expected.backward(grad)
    assert torch.equal(ours(x), expected.detach())
    assert torch.equal(ours.backward(grad), leaf.grad)
    assert torch.equal(ours.weight_grad, theirs.weight.grad)
    assert torch.equal(ours.bias_grad, theirs.bias.grad)


def test_backward_accumulates_parameter_gradients_as_torch_does():
    ours, theirs = _twins(5, 4)
    x1, x2 = torch.randn(8, 5), torch.randn(8, 5)
    g1, g2 = torch.randn(8, 4), torch.randn(8, 4)
    for x, g in ((x1, g1), (x2, g2)):
        ours(x)
        ours.backward(g)
        theirs(x).backward(g)
    assert torch.equal(ours.weight_grad, theirs.weight.grad)
    assert torch.equal(ours.bias_grad, theirs.bias.grad)


def test_param_pairs_are_the_layers_own_tensors_in_torchs_order():
    layer = nnlite.Linear(3, 2)
    (w, gw), (b, gb) = layer.param()
    assert (
        w is layer.weight and gw is layer.weight_grad and b is layer.bias and gb is layer.bias_grad
    )
    assert [p.shape for p, _ in layer.param()] == [
        p.shape for p in torch.nn.Linear(3, 2).parameters()
    ]
    assert len(nnlite.Linear(3, 2, bias=False).param()) == 1


def test_zero_grad_zeroes_in_place_so_earlier_pairs_stay_valid():
    layer = nnlite.Linear(3, 2)
    pairs = layer.param()
    layer(torch.randn(4, 3))
    layer.backward(torch.randn(4, 2))
    assert pairs[0][1].abs().sum() > 0
    layer.zero_grad()
    assert all(g.abs().sum() == 0 for _, g in pairs)
    assert pairs[0][1] is layer.weight_grad


def test_wrong_number_of_features_names_both_numbers_and_the_shape():
    layer = nnlite.Linear(2, 25)
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=2, out_features=25, bias=True\) expected input with 2 features "
        r"\(last dim\), got shape \(8, 3\)",
    ):
        layer(torch.zeros(8, 3))


def test_mismatched_dtype_says_how_to_convert():
    layer = nnlite.Linear(2, 3)
    with pytest.raises(TypeError, match=r"torch.float32 parameters but got torch.float64 input"):
        layer(torch.zeros(4, 2, dtype=torch.float64))


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match="floating-point input, got dtype torch.int64"):
        nnlite.Linear(2, 3)(torch.zeros(4, 2, dtype=torch.long))


@pytest.mark.parametrize("bad", [-1, 2.5, "3", True], ids=["negative", "float", "str", "bool"])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match=rf"in_features must be a non-negative int, got {bad!r}"):
        nnlite.Linear(bad, 3)


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match=r"Linear\(.*\): backward\(\) called before forward\(\)"):
        nnlite.Linear(2, 3).backward(torch.zeros(1, 3))


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    layer = nnlite.Linear(2, 3)
    layer(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"output's shape \(4, 3\), got shape \(4,\)"):
        layer.backward(torch.zeros(4))


def test_forward_and_backward_never_mutate_their_arguments():
    layer = nnlite.Linear(3, 3)
    x, g = torch.randn(5, 3), torch.randn(5, 3)
    x_copy, g_copy = x.clone(), g.clone()
    out = layer(x)
    out_copy = out.clone()
    layer.backward(g)
    assert torch.equal(x, x_copy) and torch.equal(g, g_copy) and torch.equal(out, out_copy)


def test_repr_prints_as_torch_prints():
    assert repr(nnlite.Linear(2, 25)) == repr(torch.nn.Linear(2, 25))
    assert repr(nnlite.Linear(2, 25, bias=False)) == repr(torch.nn.Linear(2, 25, bias=False))


@pytest.mark.parametrize(
    ("batch", "in_features", "out_features", "transposed"),
    [(1, 1, 12, False), (1, 1, 33, False), (5, 7, 9, True), (30, 25, 25, True), (1, 3, 40, True)],
    ids=["1x1", "1x1-wide", "transposed", "transposed-square", "transposed-row"],
)
def test_column_major_inputs_get_autograds_input_gradient(
    batch, in_features, out_features, transposed
):
    # autograd computes the input gradient of a column-major input (strides (1, N): a
    # transposed batch, or a single sample of a single feature) as (W^T @ grad^T)^T, which sums
    # in another order: a 2-2-... network with one hidden unit at batch 1 differed by 1 ulp.
    for seed in range(60):
        torch.manual_seed(seed)
        ours = nnlite.Linear(in_features, out_features)
        torch.manual_seed(seed)
        theirs = torch.nn.Linear(in_features, out_features)
        x = torch.randn(in_features, batch).t() if transposed else torch.randn(batch, in_features)
        grad = torch.randn(batch, out_features)
        # a copy in the same layout, for autograd
        leaf = (x.t().clone().t() if transposed else x.clone()).requires_grad_(True)
        assert torch.equal(ours(x), theirs(leaf).detach())
        theirs(leaf).backward(grad)
        assert torch.equal(ours.backward(grad), leaf.grad), f"seed {seed}"
        assert torch.equal(ours.weight_grad, theirs.weight.grad)
        assert torch.equal(ours.bias_grad, theirs.bias.grad)
