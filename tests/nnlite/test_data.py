"""nnlite.data: the disk problem's label rule, one-hot encoding, and the mini-batch iterator."""

import math

import pytest
import torch

from nnlite import data

DTYPES = [torch.float32, torch.float64]
RADIUS = math.sqrt(1 / (2 * math.pi))


def _on_circle_point(dtype):
    """Find a point whose squared distance to the centre, computed in dtype, IS the threshold.

    x = 0.875 (exact), and y walked over a few ulps around 0.5 + sqrt(r**2 - 0.375**2).
    """
    threshold = torch.tensor(1 / (2 * math.pi), dtype=dtype)
    y0 = torch.tensor(0.5 + math.sqrt(1 / (2 * math.pi) - 0.375**2), dtype=dtype)
    ulp = torch.finfo(dtype).eps / 2  # spacing of floats in [0.5, 1)
    for k in range(-20, 21):
        point = torch.tensor([[0.875, 0.0]], dtype=dtype)
        point[0, 1] = y0 + k * ulp
        if torch.equal((point - 0.5).pow(2).sum(1), threshold.reshape(1)):
            return point
    raise AssertionError("no float point exactly on the circle near the search start")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_point_exactly_on_the_circle_is_labelled_outside(dtype):
    point = _on_circle_point(dtype)
    assert data.disk_labels(point).tolist() == [0]
    inward = point.clone()
    inward[0, 1] = torch.nextafter(inward[0, 1], torch.tensor(0.5, dtype=dtype))
    assert data.disk_labels(inward).tolist() == [1]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_points_just_inside_and_just_outside_the_circle_at_every_angle(dtype):
    margin = 1e-6 if dtype == torch.float64 else 1e-3
    angles = torch.linspace(0, 2 * math.pi, 73, dtype=torch.float64)[:-1]
    direction = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    inside = (0.5 + RADIUS * (1 - margin) * direction).to(dtype)
    outside = (0.5 + RADIUS * (1 + margin) * direction).to(dtype)
    assert data.disk_labels(inside).tolist() == [1] * 72
    assert data.disk_labels(outside).tolist() == [0] * 72


def test_centre_and_corners():
    points = torch.tensor([[0.5, 0.5], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    assert data.disk_labels(points).tolist() == [1, 0, 0, 0, 0]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_disk_dataset_draws_uniform_points_in_the_unit_square_with_their_labels(dtype):
    inputs, labels = data.disk_dataset(
        10_000, generator=torch.Generator().manual_seed(0), dtype=dtype
    )
    assert inputs.shape == (10_000, 2) and inputs.dtype == dtype
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert inputs.min() >= 0 and inputs.max() < 1
    assert torch.equal(labels, data.disk_labels(inputs))
    # The disk covers half the square: 10_000 draws put the share within 0.02 (4 sigma) of 0.5.
    assert abs(labels.double().mean().item() - 0.5) < 0.02
    # Uniform: each quarter of the square holds about a quarter of the points.
    quarters = (inputs[:, 0] >= 0.5).long() * 2 + (inputs[:, 1] >= 0.5).long()
    assert (torch.bincount(quarters, minlength=4) - 2500).abs().max() < 200


def test_disk_dataset_is_reproducible_from_a_generator_or_the_global_seed():
    first = data.disk_dataset(50, generator=torch.Generator().manual_seed(3))
    second = data.disk_dataset(50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    torch.manual_seed(5)
    third = data.disk_dataset(50)
    torch.manual_seed(5)
    assert torch.equal(third[0], data.disk_dataset(50)[0])
    assert not torch.equal(first[0], third[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64], ids=str)
@pytest.mark.parametrize("shape", [(7,), (2, 3), (0,)], ids=str)
def test_one_hot_equals_torchs_one_hot(shape, dtype):
    labels = torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(0))
    ours = data.one_hot(labels, num_classes=3, dtype=dtype)
    theirs = torch.nn.functional.one_hot(labels, 3).to(dtype)
    assert ours.dtype == dtype and torch.equal(ours, theirs)


def test_one_hot_defaults_to_two_float32_classes():
    assert torch.equal(data.one_hot(torch.tensor([1, 0])), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def _collect(iterator):
    pairs = list(iterator)
    return [x for x, _ in pairs], [t for _, t in pairs]


def test_batches_in_order_with_a_short_last_batch():
    inputs = torch.arange(20.0).reshape(10, 2)
    targets = torch.arange(10)
    xs, ts = _collect(data.batches(inputs, targets, 4))
    assert [len(x) for x in xs] == [4, 4, 2]
    assert torch.equal(torch.cat(xs), inputs) and torch.equal(torch.cat(ts), targets)


def test_batches_shuffled_follow_randperm_of_the_generator():
    inputs = torch.arange(20.0).reshape(10, 2)
    targets = torch.arange(10)
    xs, ts = _collect(
        data.batches(inputs, targets, 3, shuffle=True, generator=torch.Generator().manual_seed(9))
    )
    order = torch.randperm(10, generator=torch.Generator().manual_seed(9))
    assert [len(t) for t in ts] == [3, 3, 3, 1]
    assert torch.equal(torch.cat(ts), order)
    assert torch.equal(torch.cat(xs), inputs[order])


def test_batches_shuffle_draws_from_the_global_rng_without_a_generator():
    inputs, targets = torch.zeros(10, 1), torch.arange(10)
    torch.manual_seed(4)
    _, ts = _collect(data.batches(inputs, targets, 10, shuffle=True))
    torch.manual_seed(4)
    assert torch.equal(ts[0], torch.randperm(10))


def test_each_pass_over_a_shuffled_iterator_draws_a_new_permutation():
    generator = torch.Generator().manual_seed(0)
    inputs, targets = torch.zeros(30, 1), torch.arange(30)
    first = torch.cat(
        _collect(data.batches(inputs, targets, 8, shuffle=True, generator=generator))[1]
    )
    second = torch.cat(
        _collect(data.batches(inputs, targets, 8, shuffle=True, generator=generator))[1]
    )
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(30))
    assert not torch.equal(first, second)


BAD_ARGUMENTS = [
    (
        "integer-points",
        lambda: data.disk_labels(torch.zeros(3, 2, dtype=torch.long)),
        TypeError,
        "disk_labels expects floating-point points, got dtype torch.int64",
    ),
    (
        "batch-size-zero",
        lambda: data.batches(torch.zeros(4, 2), torch.zeros(4), 0),
        ValueError,
        "batch_size must be a positive int, got 0",
    ),
    (
        "batch-size-float",
        lambda: data.batches(torch.zeros(4, 2), torch.zeros(4), 2.0),
        ValueError,
        "batch_size must be a positive int, got 2.0",
    ),
    (
        "length-mismatch",
        lambda: data.batches(torch.zeros(4, 2), torch.zeros(3), 2),
        ValueError,
        r"same number of samples \(first dim\), got shapes \(4, 2\) and \(3,\)",
    ),
    (
        "inputs-not-tensor",
        lambda: data.batches([[0.0]], torch.zeros(1), 1),
        TypeError,
        "got list and Tensor",
    ),
    ("negative-n", lambda: data.disk_dataset(-1), ValueError, "n >= 0, got -1"),
    (
        "integer-dtype",
        lambda: data.disk_dataset(3, dtype=torch.int64),
        TypeError,
        "floating-point dtype, got torch.int64",
    ),
    (
        "points-not-2d",
        lambda: data.disk_labels(torch.zeros(3, 3)),
        ValueError,
        r"shape \(N, 2\), got \(3, 3\)",
    ),
    (
        "one-hot-float-labels",
        lambda: data.one_hot(torch.tensor([0.0, 1.0])),
        TypeError,
        r"integer class indices .* got torch.float32; convert with labels.long\(\)",
    ),
    (
        "one-hot-label-too-large",
        lambda: data.one_hot(torch.tensor([0, 2])),
        ValueError,
        r"class index 2, outside \[0, 2\)",
    ),
    (
        "one-hot-negative-label",
        lambda: data.one_hot(torch.tensor([-1, 1])),
        ValueError,
        r"class index -1, outside \[0, 2\)",
    ),
    (
        "one-hot-zero-classes",
        lambda: data.one_hot(torch.tensor([0]), num_classes=0),
        ValueError,
        "num_classes >= 1, got 0",
    ),
]


@pytest.mark.parametrize(
    "make, error, message",
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_bad_argument_is_refused_at_the_call_with_a_clear_message(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_all_is_sorted_and_lists_every_public_function():
    assert data.__all__ == sorted(data.__all__)
    assert all(hasattr(data, name) for name in data.__all__)
    defined_here = {
        name
        for name, value in vars(data).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == data.__name__
    }
    assert defined_here <= set(data.__all__)
