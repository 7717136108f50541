"""nnlite._loops: which elements torch's vectorised loops leave to their scalar code."""

import pytest
import torch

from nnlite import _loops


@pytest.fixture
def capability(monkeypatch):
    """Pretend to run on a CPU capability (and start from an empty cache)."""
    monkeypatch.setattr(_loops, "_CACHE", {})

    def use(name, threads=1):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: name)
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)

    return use


@pytest.mark.parametrize(
    "name, dtype, numel, expected",
    [
        ("AVX512", torch.float32, 40, list(range(32, 40))),
        ("AVX512", torch.float64, 40, list(range(32, 40))),
        ("AVX512", torch.float64, 20, list(range(16, 20))),
        ("AVX2", torch.float32, 20, list(range(16, 20))),
        ("AVX2", torch.float64, 11, list(range(8, 11))),
        ("AVX512", torch.float32, 7, list(range(7))),
        ("DEFAULT", torch.float32, 5, list(range(5))),
    ],
)
def test_contiguous_tensors_leave_the_last_numel_mod_two_registers(
    capability, name, dtype, numel, expected
):
    capability(name)
    assert _loops.scalar_elements(torch.zeros(numel, dtype=dtype)).tolist() == expected


def test_no_element_is_left_when_the_registers_fit_exactly(capability):
    capability("AVX512")
    assert _loops.scalar_elements(torch.zeros(64)) is None
    assert _loops.scalar_elements(torch.zeros(0)) is None


def test_each_threads_chunk_leaves_its_own_tail(capability):
    capability("AVX512", threads=2)
    numel = _loops.GRAIN_SIZE + 10  # two chunks of ceil(n / 2) = 16,389 elements
    index = _loops.scalar_elements(torch.zeros(numel)).tolist()
    assert index == list(range(16_384, 16_389)) + list(range(32_773, 32_778))


def test_rows_of_a_sliced_tensor_each_leave_a_tail(capability):
    capability("AVX512")
    x = torch.zeros(3, 40)[:, :35]
    rows, columns = _loops.scalar_elements(x)
    assert rows.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert columns.tolist() == [32, 33, 34] * 3


def test_an_operand_strided_in_the_inner_dimension_takes_the_scalar_code_everywhere(capability):
    capability("AVX512")
    x = torch.zeros(2, 6)[:, ::2]
    rows, columns = _loops.scalar_elements(x)
    assert list(zip(rows.tolist(), columns.tolist(), strict=True)) == [
        (r, c) for r in range(2) for c in range(3)
    ]


def test_the_layout_is_computed_once(capability, monkeypatch):
    capability("AVX512")
    calls = []
    original = _loops._scalar_elements
    monkeypatch.setattr(_loops, "_scalar_elements", lambda *a: calls.append(1) or original(*a))
    for _ in range(3):
        _loops.scalar_elements(torch.zeros(40))
    assert len(calls) == 1


def test_the_cache_is_bounded(capability, monkeypatch):
    capability("AVX512")
    monkeypatch.setattr(_loops, "_MAX_ENTRIES", 2)
    for size in (33, 34, 35):
        _loops.scalar_elements(torch.zeros(size))
    assert len(_loops._CACHE) == 1
