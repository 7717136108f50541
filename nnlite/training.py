"""One training step, one epoch, accuracy: the loop users, suites and benchmarks share."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nnlite.container import Sequential
from nnlite.data import batches

__all__ = ["accuracy", "train_epoch", "train_step"]


def train_step(
    model: Any, criterion: Any, optimizer: Any, inputs: Tensor, targets: Tensor
) -> float:
    r"""Run one optimizer step on one batch and return its loss as a float.

    In torch's order::

        optimizer.zero_grad()
        loss = criterion(model(inputs), targets)
        model.backward(criterion.backward())
        optimizer.step()

    An nnlite :class:`~nnlite.Sequential` is called as ``model.backward(grad, free_cache=True,
    input_grad=False, accumulate=False)``: the step needs neither a second backward nor the
    gradient of the data, and the gradients it has just zeroed can be written instead of added
    into; dropping that work (as autograd does) changes no value. Any other model gets
    ``model.backward(grad)``.

    Args:
        model (Module): the network; ``model(x)`` and ``model.backward(grad)``.
        criterion (Module): the loss; ``criterion(output, target)`` and ``criterion.backward()``.
        optimizer (Optimizer): built on ``model.param()``.
        inputs (Tensor): one batch of samples, shape :math:`(B, *)`.
        targets (Tensor): what ``criterion`` expects for them.

    Returns:
        float: ``loss.item()``, the loss before the step.
    """
    optimizer.zero_grad()
    loss = criterion(model(inputs), targets)
    if isinstance(model, Sequential):
        model.backward(criterion.backward(), free_cache=True, input_grad=False, accumulate=False)
    else:
        model.backward(criterion.backward())
    optimizer.step()
    return loss.item()


def train_epoch(
    model: Any,
    criterion: Any,
    optimizer: Any,
    inputs: Tensor,
    targets: Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
) -> float:
    r"""Train ``model`` for one pass over the data and return the mean of the batch losses.

    Every mini-batch of :func:`nnlite.data.batches` (same ``shuffle`` and ``generator``) is one
    :func:`train_step`. The model's mode is left as it is:
    call ``model.train()`` first for Dropout to be active.

    Args:
        model (Module): the network; ``model(x)`` and ``model.backward(grad)``.
        criterion (Module): the loss; ``criterion(output, target)`` and ``criterion.backward()``.
        optimizer (Optimizer): built on ``model.param()``.
        inputs (Tensor): samples, shape :math:`(N, *)`.
        targets (Tensor): what ``criterion`` expects for them, shape :math:`(N, *)`.
        batch_size (int): samples per batch; the last batch may be shorter.
        shuffle (bool, optional): visit samples in ``torch.randperm`` order (default: False).
        generator (torch.Generator, optional): the generator of the permutation.

    Returns:
        float: the arithmetic mean of the batch losses (each batch counted once, whatever its size).
    """
    losses = [
        train_step(model, criterion, optimizer, x, t)
        for x, t in batches(inputs, targets, batch_size, shuffle=shuffle, generator=generator)
    ]
    if not losses:
        raise ValueError("train_epoch got no samples: inputs and targets are empty")
    return sum(losses) / len(losses)


def accuracy(model: Any, inputs: Tensor, labels: Tensor) -> float:
    r"""Return the fraction of ``inputs`` whose predicted class is ``labels``.

    The prediction is the argmax over outputs when the model has several outputs, and
    ``output > 0.5`` when it has one (shape :math:`(N,)` or :math:`(N, 1)`). The model runs in
    evaluation mode (Dropout off); its previous mode is restored afterwards.

    Args:
        model (Module): the network.
        inputs (Tensor): samples, shape :math:`(N, *)`.
        labels (Tensor): integer class indices, shape :math:`(N,)`.

    Returns:
        float: correct predictions divided by :math:`N`.
    """
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.is_floating_point():
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(
            f"accuracy expects integer class indices of shape (N,), got {shape}"
            + (f" of dtype {labels.dtype}" if isinstance(labels, Tensor) else "")
            + "; for one-hot targets pass targets.argmax(1)"
        )
    if len(inputs) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"accuracy expects as many labels as inputs (at least one), got {len(labels)} labels "
            f"for inputs of shape {tuple(inputs.shape)}"
        )
    was_training = model.training
    model.eval()
    try:
        outputs = model(inputs)
    finally:
        model.train(was_training)
    if outputs.dim() == 2 and outputs.shape[1] > 1:
        predicted, classes = outputs.argmax(1), outputs.shape[1]
    elif outputs.dim() == 1 or (outputs.dim() == 2 and outputs.shape[1] == 1):
        predicted, classes = (outputs.reshape(-1) > 0.5).long(), 2
    else:
        raise ValueError(
            f"accuracy expects model outputs of shape (N,), (N, 1) or (N, C), got "
            f"{tuple(outputs.shape)}"
        )
    low, high = labels.min().item(), labels.max().item()
    if low < 0 or high >= classes:
        raise ValueError(
            f"accuracy expects labels in [0, {classes}) for model outputs of shape "
            f"{tuple(outputs.shape)}, got values in [{low}, {high}]; the labels do not match "
            f"the network's outputs (one column thresholded at 0.5 predicts 0 or 1)"
        )
    return (predicted == labels.to(predicted.device)).sum().item() / len(labels)
