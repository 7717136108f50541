"""Speed of a gradient check: nnlite with gradcheck against torch.autograd.gradcheck, float64.

Both sides check the same Jacobian, of the outputs with respect to the input and every
parameter: gradcheck through the module's hand-written ``backward``, torch's through autograd on
the torch.nn twin (its parameters passed as inputs with ``torch.func.functional_call``). nnlite's
full check is paired with torch's slow mode (one perturbation per entry), and nnlite's fast mode
with torch's fast mode (random projections).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

import gradcheck
from benchmarks.twins import nnlite_twin, torch_network

BATCH = 4
"""Samples in the input of every check."""

CASES = ("linear", "network")
MODES = {"full": False, "fast": True}
"""gradcheck's mode and torch's ``fast_mode`` paired with it."""


def _reference(case: str) -> torch.nn.Module:
    if case == "linear":
        torch.manual_seed(0)
        return torch.nn.Linear(25, 25, dtype=torch.float64)
    return torch_network(dtype=torch.float64)


def _input(reference: torch.nn.Module) -> Tensor:
    first = reference if isinstance(reference, torch.nn.Linear) else reference[0]
    generator = torch.Generator().manual_seed(1)
    return torch.randn(BATCH, first.in_features, generator=generator, dtype=torch.float64)


def jacobian_entries(reference: torch.nn.Module, x: Tensor) -> int:
    """Outputs times (input entries plus parameter entries): the Jacobian both sides check."""
    with torch.no_grad():
        outputs = reference(x).numel()
    return outputs * (x.numel() + sum(p.numel() for p in reference.parameters()))


def torch_check(reference: torch.nn.Module, x: Tensor, *, fast_mode: bool) -> Callable[[], bool]:
    """torch.autograd.gradcheck of ``reference`` w.r.t. its input and parameters, defaults else."""
    names = [name for name, _ in reference.named_parameters()]
    leaves = tuple(t.detach().clone().requires_grad_() for t in (x, *reference.parameters()))

    def function(input: Tensor, *params: Tensor) -> Tensor:
        return torch.func.functional_call(
            reference, dict(zip(names, params, strict=True)), (input,)
        )

    return lambda: torch.autograd.gradcheck(function, leaves, fast_mode=fast_mode)


@pytest.mark.parametrize("framework", ["nnlite", "torch"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_gradcheck(benchmark, record, case: str, mode: str, framework: str) -> None:  # noqa: ANN001
    benchmark.group = f"gradcheck-{mode}-{case}"
    reference = _reference(case)
    x = _input(reference)
    if framework == "nnlite":
        module = nnlite_twin(reference)
        passed = benchmark(lambda: gradcheck.check(module, x, mode=mode)).passed
    else:
        passed = benchmark(torch_check(reference, x, fast_mode=MODES[mode]))
    assert passed, f"{framework}'s {mode} check of the {case} failed; the timing compares nothing"
    torch_mode = "fast" if MODES[mode] else "slow"
    record(
        framework,
        jacobian_entries(reference, x),
        "entries/s",
        mode=mode if framework == "nnlite" else torch_mode,
    )
