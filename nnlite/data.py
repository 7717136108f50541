"""The seeds' toy problem (points in a disk), one-hot targets, and a mini-batch iterator."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["DISK_RADIUS_SQUARED", "batches", "disk_dataset", "disk_labels", "one_hot"]

#: Squared radius of the disk: its area, pi * r**2, is half of the unit square's.
DISK_RADIUS_SQUARED = 1 / (2 * math.pi)


def disk_labels(inputs: Tensor) -> Tensor:
    r"""Label points 1 inside the disk of centre (0.5, 0.5), radius :math:`1/\sqrt{2\pi}`, else 0.

    .. math::
        y = \begin{cases} 1 & (x_1 - 0.5)^2 + (x_2 - 0.5)^2 < \frac{1}{2\pi} \\
            0 & \text{otherwise (on the circle or outside)} \end{cases}

    computed in the dtype of ``inputs`` (the threshold rounded to it).

    Args:
        inputs (Tensor): points, shape :math:`(N, 2)`, floating point.

    Returns:
        Tensor: labels of dtype ``torch.int64``, shape :math:`(N,)`, on the device of ``inputs``.
    """
    if not isinstance(inputs, Tensor) or inputs.dim() != 2 or inputs.shape[1] != 2:
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise ValueError(f"disk_labels expects points of shape (N, 2), got {shape}")
    if not inputs.is_floating_point():
        raise TypeError(f"disk_labels expects floating-point points, got dtype {inputs.dtype}")
    return ((inputs - 0.5).pow(2).sum(1) < DISK_RADIUS_SQUARED).long()


def disk_dataset(
    n: int, *, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    r"""Draw the seeds' classification problem: ``n`` points uniform in :math:`[0, 1]^2`.

    Labels follow :func:`disk_labels`: 1 inside the disk of centre (0.5, 0.5) and radius
    :math:`1/\sqrt{2\pi}`, whose area is one half, so the two classes are balanced on average.

    Args:
        n (int): number of points.
        generator (torch.Generator, optional): the generator to draw from (default: torch's).
        dtype (torch.dtype, optional): floating dtype of the points (default: ``torch.float32``).

    Returns:
        tuple[Tensor, Tensor]: ``inputs`` of shape :math:`(n, 2)` and ``labels`` of shape
        :math:`(n,)`, dtype ``torch.int64``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"disk_dataset expects a number of points n >= 0, got {n!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"disk_dataset expects a floating-point dtype, got {dtype!r}")
    inputs = torch.empty(n, 2, dtype=dtype).uniform_(0, 1, generator=generator)
    return inputs, disk_labels(inputs)


def one_hot(labels: Tensor, num_classes: int = 2, dtype: torch.dtype = torch.float32) -> Tensor:
    r"""Encode class indices as one-hot rows, as ``torch.nn.functional.one_hot(...).to(dtype)``.

    Args:
        labels (Tensor): integer class indices in ``[0, num_classes)``, any shape.
        num_classes (int, optional): number of classes (default: 2).
        dtype (torch.dtype, optional): dtype of the result (default: ``torch.float32``).

    Returns:
        Tensor: shape ``labels.shape + (num_classes,)``, 1 at each label's index, 0 elsewhere.
    """
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.is_complex():
        kind = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise TypeError(
            f"one_hot expects integer class indices (a torch.int64 tensor), got {kind}; "
            "convert with labels.long()"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"one_hot expects num_classes >= 1, got {num_classes!r}")
    if labels.numel() > 0:
        low, high = labels.min().item(), labels.max().item()
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"one_hot got class index {bad}, outside [0, {num_classes}); "
                "labels must be in range or num_classes larger"
            )
    encoded = torch.zeros(*labels.shape, num_classes, dtype=dtype, device=labels.device)
    return encoded.scatter_(-1, labels.long().unsqueeze(-1), 1)


def batches(
    inputs: Tensor,
    targets: Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    r"""Iterate over ``(inputs, targets)`` mini-batches along the first dimension.

    In order, or with ``shuffle=True`` in the order of ``torch.randperm(n, generator=generator)``,
    drawn when iteration starts. The last batch is shorter when ``batch_size`` does not divide
    ``n``. Arguments are checked at the call, before any batch is drawn.

    Args:
        inputs (Tensor): samples, shape :math:`(N, *)`.
        targets (Tensor): their targets, shape :math:`(N, *)`.
        batch_size (int): samples per batch, at least 1.
        shuffle (bool, optional): visit samples in a random permutation (default: False).
        generator (torch.Generator, optional): the generator of the permutation (default: torch's).

    Yields:
        tuple[Tensor, Tensor]: a batch of inputs and the matching batch of targets.
    """
    if not isinstance(inputs, Tensor) or not isinstance(targets, Tensor):
        raise TypeError(
            "batches expects inputs and targets as tensors, got "
            f"{type(inputs).__name__} and {type(targets).__name__}"
        )
    if inputs.dim() == 0 or targets.dim() == 0 or len(inputs) != len(targets):
        raise ValueError(
            "batches expects inputs and targets with the same number of samples (first dim), "
            f"got shapes {tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return _batches(inputs, targets, batch_size, shuffle, generator)


def _batches(
    inputs: Tensor,
    targets: Tensor,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
) -> Iterator[tuple[Tensor, Tensor]]:
    n = len(inputs)
    if shuffle:
        order = torch.randperm(n, generator=generator).to(inputs.device)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield inputs[index], targets[index.to(targets.device)]
    else:
        for start in range(0, n, batch_size):
            yield inputs[start : start + batch_size], targets[start : start + batch_size]
