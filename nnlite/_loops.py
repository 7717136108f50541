"""Which elements torch's vectorised CPU loops give to the scalar function instead of SIMD.

torch's elementwise kernels (``cpu_kernel_vec`` in ``aten/src/ATen/native/cpu/Loops.h``) run
one loop per contiguous stretch of the operands: two SIMD registers at a time while two fit,
then the scalar function on the rest, the stretch's last ``n % (2 * width)`` elements. The
stretches are the rows of the innermost block in which every operand is contiguous, cut where
the threads' chunks end: a tensor of at least ``GRAIN_SIZE`` elements is split among
``torch.get_num_threads()`` threads in chunks of ``ceil(n / threads)``. Where some operand is
not contiguous in the innermost dimension, every element takes the scalar function.

NOTE: the SIMD width follows ``torch.backends.cpu.get_cpu_capability()``: 64 bytes on AVX512,
32 on AVX2. On the DEFAULT capability ``Vectorized<T>`` calls the C library element by element,
so every element counts as scalar. Proven against torch's ELU on AVX512 (this project's
machines) and on AVX2 (``ATEN_CPU_CAPABILITY=avx2``), one and two threads, by
``tests/nnlite/test_activation.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

GRAIN_SIZE = 32768
"""``at::internal::GRAIN_SIZE``: below it a kernel runs on one thread."""
_REGISTER_BYTES = {"AVX512": 64, "AVX2": 32}
_MAX_ENTRIES = 256
_CACHE: dict[tuple, Tensor | tuple[Tensor, ...] | None] = {}


def scalar_elements(*operands: Tensor) -> Tensor | tuple[Tensor, ...] | None:
    """Where an elementwise kernel over ``operands`` (inputs, all one shape) runs its scalar code.

    Returns ``None`` when no element does; a 1-D index into ``operand.view(-1)`` when every
    operand is contiguous; otherwise a tuple of index tensors, one per dimension, for
    ``tensor[index]``. Computed once per layout, thread count and CPU capability.
    """
    first = operands[0]
    key = (
        tuple(first.shape),
        tuple(t.stride() for t in operands),
        first.element_size(),
        torch.get_num_threads(),
        torch.backends.cpu.get_cpu_capability(),
    )
    if key in _CACHE:
        return _CACHE[key]
    if len(_CACHE) >= _MAX_ENTRIES:
        _CACHE.clear()
    _CACHE[key] = index = _scalar_elements(operands, key[-1])
    return index


def _scalar_elements(
    operands: tuple[Tensor, ...], capability: str
) -> Tensor | tuple[Tensor, ...] | None:
    first = operands[0]
    numel = first.numel()
    if numel == 0:
        return None
    shape = first.shape
    # Iteration order: the first operand's dimensions by decreasing stride, as TensorIterator
    # orders them; dimensions of size 1 play no part.
    order = sorted((d for d in range(first.dim()) if shape[d] != 1), key=lambda d: -first.stride(d))
    row, expected = 1, [1] * len(operands)
    for d in reversed(order):
        if any(t.stride(d) != e for t, e in zip(operands, expected, strict=True)):
            break
        row *= shape[d]
        expected = [e * shape[d] for e in expected]
    register = _REGISTER_BYTES.get(capability)
    if register is None or (order and row == 1):
        positions = torch.arange(numel)  # the C library everywhere, or an unvectorised loop
    else:
        step = 2 * register // first.element_size()
        positions = torch.tensor(_tails(numel, row, step), dtype=torch.long)
    if positions.numel() == 0:
        return None
    if all(t.is_contiguous() for t in operands):
        return positions
    # Iteration-order positions to one index per dimension.
    index = [torch.zeros_like(positions) for _ in shape]
    rest = positions
    for d in reversed(order):
        index[d] = rest % shape[d]
        rest = rest // shape[d]
    return tuple(index)


def _tails(numel: int, row: int, step: int) -> list[int]:
    """Positions, in iteration order, of the elements left over by each stretch's SIMD loop."""
    threads = torch.get_num_threads()
    if numel < GRAIN_SIZE or threads == 1:
        chunk = numel
    else:
        # NOTE: at::parallel_for (OpenMP): min(threads, ceil(n / grain)) threads, each taking
        # ceil(n / threads) consecutive elements.
        chunk = math.ceil(numel / min(threads, math.ceil(numel / GRAIN_SIZE)))
    positions: list[int] = []
    for begin in range(0, numel, chunk):
        end = min(numel, begin + chunk)
        start = begin
        while start < end:
            stop = min(end, (start // row + 1) * row)
            positions.extend(range(stop - (stop - start) % step, stop))
            start = stop
    return positions
