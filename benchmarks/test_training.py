"""Throughput of a training step and of inference, nnlite against torch.nn, per batch size."""

from __future__ import annotations

import functools

import pytest
from torch import Tensor

from benchmarks.twins import (
    BATCH_SIZES,
    FRAMEWORKS,
    OPTIMIZERS,
    dataset,
    forwards_agree,
    inference,
    steps_agree,
    training_step,
)


@functools.cache
def _batch(size: int) -> tuple[Tensor, Tensor]:
    return dataset(size)


@functools.cache
def _steps_agree(optimizer: str, size: int) -> bool:
    return steps_agree(optimizer, *_batch(size))


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("size", BATCH_SIZES, ids=lambda size: f"b{size}")
def test_training_step(benchmark, record, framework: str, optimizer: str, size: int) -> None:  # noqa: ANN001
    benchmark.group = f"train-{optimizer}-b{size}"
    step = training_step(framework, optimizer)
    step(*_batch(size))  # untimed: the first step's allocations and optimizer state
    benchmark(step, *_batch(size))
    same_bits = _steps_agree(optimizer, size)
    record(framework, size, "samples/s", bit_identical=same_bits)
    assert same_bits, f"nnlite's and torch's {optimizer} steps at batch {size} differ in bits"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("size", BATCH_SIZES, ids=lambda size: f"b{size}")
def test_inference(benchmark, record, framework: str, size: int) -> None:  # noqa: ANN001
    benchmark.group = f"infer-b{size}"
    inputs, _ = _batch(size)
    forward = inference(framework)
    forward(inputs)  # untimed, as for the training step
    benchmark(forward, inputs)
    same_bits = forwards_agree(inputs)
    record(framework, size, "samples/s", bit_identical=same_bits)
    assert same_bits, f"nnlite's and torch's forward at batch {size} differ in bits"
