import math

import pytest
import torch

import nnlite
from tests.nnlite._oracle import DTYPE_IDS, DTYPES

BATCHES = [1, 2, 17, 25, 256, 257, 1000, 4097]
REDUCTIONS = ["mean", "sum"]


def _torch_loss(loss, x, target):
    leaf = x.detach().clone().requires_grad_(True)
    value = loss(leaf, target)
    value.backward()
    return value.detach(), leaf.grad


def _ours(loss, x, target):
    value = loss(x, target)
    return value, loss.backward()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("width", [1, 2, 3])
def test_mse_equals_torch_bit_for_bit(width, batch, reduction, dtype):
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, width, generator=gen, dtype=dtype)
    target = torch.randn(batch, width, generator=gen, dtype=dtype)
    value, grad = _ours(nnlite.MSELoss(reduction), x, target)
    expected_value, expected_grad = _torch_loss(torch.nn.MSELoss(reduction=reduction), x, target)
    assert value.dim() == 0
    assert torch.equal(value, expected_value) and torch.equal(grad, expected_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("width", [1, 2])
def test_bce_equals_torch_bit_for_bit(width, batch, reduction, dtype):
    gen = torch.Generator().manual_seed(batch)
    x = torch.sigmoid(3 * torch.randn(batch, width, generator=gen, dtype=dtype))
    target = torch.rand(batch, width, generator=gen, dtype=dtype).round()
    value, grad = _ours(nnlite.BCELoss(reduction), x, target)
    expected_value, expected_grad = _torch_loss(torch.nn.BCELoss(reduction=reduction), x, target)
    _assert_bce_value_close(value, expected_value)
    assert torch.equal(grad, expected_grad)


def _assert_bce_value_close(value, expected):
    # torch's BCE kernel takes logs with the C library's scalar log, which torch's tensor log (a
    # vectorised, 1-ulp-accurate one) does not reproduce: about 1 element in 100 differs by 1 ulp.
    # Every term is non-negative, so the reduced loss is then within a relative 4 eps (measured: at
    # most 2 ulps). The gradient involves no log and is exact.
    bound = 4 * torch.finfo(value.dtype).eps * expected.abs()
    assert (value - expected).abs() <= bound, f"{value.item()!r} vs torch's {expected.item()!r}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("batch", [25, 1000, 100000])
def test_bce_on_uniform_predictions_stays_within_its_bound(batch, dtype):
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(batch, 1, generator=gen, dtype=dtype)
    target = torch.rand(batch, 1, generator=gen, dtype=dtype).round()
    value, grad = _ours(nnlite.BCELoss(), x, target)
    expected_value, expected_grad = _torch_loss(torch.nn.BCELoss(), x, target)
    _assert_bce_value_close(value, expected_value)
    assert torch.equal(grad, expected_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_bce_at_saturated_predictions_clamps_logs_as_torch(dtype):
    x = torch.tensor([0.0, 1.0, 1e-30, 1 - 1e-7, 0.5, 0.0, 1.0], dtype=dtype)
    target = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=dtype)
    value, grad = _ours(nnlite.BCELoss(), x, target)
    expected_value, expected_grad = _torch_loss(torch.nn.BCELoss(), x, target)
    _assert_bce_value_close(value, expected_value)
    assert torch.equal(grad, expected_grad)
    assert math.isfinite(value.item())


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("classes", [2, 3, 10, 17, 40])
def test_cross_entropy_with_class_indices_equals_torch(classes, batch, reduction, dtype):
    gen = torch.Generator().manual_seed(batch)
    x = 3 * torch.randn(batch, classes, generator=gen, dtype=dtype)
    target = torch.randint(0, classes, (batch,), generator=gen)
    value, grad = _ours(nnlite.CrossEntropyLoss(reduction), x, target)
    expected_value, expected_grad = _torch_loss(
        torch.nn.CrossEntropyLoss(reduction=reduction), x, target
    )
    assert torch.equal(value, expected_value)
    assert torch.equal(grad, expected_grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("classes", [2, 3, 9, 16, 17, 40])
def test_cross_entropy_with_probability_targets_equals_torch(classes, batch, reduction, dtype):
    gen = torch.Generator().manual_seed(batch)
    x = 3 * torch.randn(batch, classes, generator=gen, dtype=dtype)
    target = torch.softmax(torch.randn(batch, classes, generator=gen, dtype=dtype), 1)
    value, grad = _ours(nnlite.CrossEntropyLoss(reduction), x, target)
    expected_value, expected_grad = _torch_loss(
        torch.nn.CrossEntropyLoss(reduction=reduction), x, target
    )
    assert torch.equal(value, expected_value)
    assert torch.equal(grad, expected_grad)


def test_cross_entropy_on_a_single_sample_matches_torch():
    x = torch.tensor([0.3, -1.2, 2.0])
    target = torch.tensor(2)
    value, grad = _ours(nnlite.CrossEntropyLoss(), x, target)
    expected_value, expected_grad = _torch_loss(torch.nn.CrossEntropyLoss(), x, target)
    assert torch.equal(value, expected_value)
    assert torch.equal(grad, expected_grad)


def test_cross_entropy_at_large_logits_stays_finite():
    x = torch.tensor([[1e4, -1e4], [-1e30, 1e30], [88.0, -88.0]])
    target = torch.tensor([1, 0, 0])
    value, grad = _ours(nnlite.CrossEntropyLoss(), x, target)
    expected_value, expected_grad = _torch_loss(torch.nn.CrossEntropyLoss(), x, target)
    assert torch.equal(value, expected_value)
    assert torch.isfinite(grad).all()
    assert torch.equal(grad, expected_grad)


@pytest.mark.parametrize("loss", [nnlite.MSELoss(), nnlite.BCELoss()], ids=["MSELoss", "BCELoss"])
def test_shape_mismatch_is_a_value_error_not_a_silent_broadcast(loss):
    with pytest.raises(ValueError, match=r"input shape \(4, 1\) and target shape \(4,\) differ"):
        loss(torch.full((4, 1), 0.5), torch.ones(4))


@pytest.mark.parametrize(
    ("make", "args", "error", "message"),
    [
        (
            lambda: nnlite.MSELoss(),
            (torch.zeros(3), torch.zeros(3, dtype=torch.float64)),
            TypeError,
            "target dtype torch.float64 differs from input dtype torch.float32",
        ),
        (
            lambda: nnlite.BCELoss(),
            (torch.tensor([1.5]), torch.tensor([1.0])),
            ValueError,
            "input should be between 0 and 1.*apply a Sigmoid",
        ),
        (
            lambda: nnlite.BCELoss(),
            (torch.tensor([0.5]), torch.tensor([2.0])),
            ValueError,
            "target should be between 0 and 1",
        ),
        (
            lambda: nnlite.CrossEntropyLoss(),
            (torch.zeros(3, 2), torch.tensor([0, 1, 2])),
            ValueError,
            r"class indices must lie in \[0, 2\)",
        ),
        (
            lambda: nnlite.CrossEntropyLoss(),
            (torch.zeros(3, 2), torch.tensor([0, 1])),
            ValueError,
            r"target must have shape \(3,\)",
        ),
        (
            lambda: nnlite.CrossEntropyLoss(),
            (torch.zeros(3, 2), torch.tensor([0, 1, 1], dtype=torch.int32)),
            TypeError,
            "dtype torch.long",
        ),
        (
            lambda: nnlite.CrossEntropyLoss(),
            (torch.zeros(3, 2, 2), torch.tensor([0, 1, 1])),
            ValueError,
            r"expected input of shape \(N, C\) or \(C,\)",
        ),
        (
            lambda: nnlite.MSELoss(),
            (torch.zeros(3), [0.0, 0.0, 0.0]),
            TypeError,
            "target must be a torch.Tensor",
        ),
    ],
    ids=[
        "mse-dtype",
        "bce-input-range",
        "bce-target-range",
        "ce-class-range",
        "ce-target-shape",
        "ce-target-dtype",
        "ce-3d",
        "mse-list-target",
    ],
)
def test_bad_loss_input_is_rejected_with_its_message(make, args, error, message):
    with pytest.raises(error, match=message):
        make()(*args)


@pytest.mark.parametrize("cls", [nnlite.MSELoss, nnlite.BCELoss, nnlite.CrossEntropyLoss])
def test_unknown_reduction_is_rejected_with_torchs_wording(cls):
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        cls(reduction="avg")


@pytest.mark.parametrize("cls", [nnlite.MSELoss, nnlite.BCELoss, nnlite.CrossEntropyLoss])
def test_backward_before_forward_raises(cls):
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        cls().backward()


def test_losses_never_mutate_their_arguments():
    x = torch.sigmoid(torch.randn(6, 2))
    target = torch.rand(6, 2).round()
    copies = x.clone(), target.clone()
    for loss in (nnlite.MSELoss(), nnlite.BCELoss(), nnlite.CrossEntropyLoss()):
        loss(x, target)
        loss.backward()
    assert torch.equal(x, copies[0]) and torch.equal(target, copies[1])


def test_repr_prints_as_torch_prints():
    assert repr(nnlite.MSELoss()) == repr(torch.nn.MSELoss())
    assert repr(nnlite.CrossEntropyLoss(reduction="sum")) == repr(
        torch.nn.CrossEntropyLoss(reduction="sum")
    )
