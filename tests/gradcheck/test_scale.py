"""The tolerance follows the gradient's scale; float32 checks pass correct code and catch a 1%
error; the comparison stays within its memory budget (measured in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import gradcheck
import nnlite
from gradcheck import budget
from tests.gradcheck.corpus import correct, scale

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["full", "vjp", "fast"]


def _x(*shape: int, seed: int = 0):
    return gradcheck.make_input(shape, seed=seed)


@pytest.mark.parametrize("mode", METHODS)
@pytest.mark.parametrize("size", [1e-6, 1.0, 1e6], ids=["tiny", "normal", "huge"])
def test_correct_modules_pass_at_every_scale(size, mode):
    report = gradcheck.check(scale.ScaledTanh(size), _x(4, 5), mode=mode)
    assert report.passed, report
    assert report.worst.scale == pytest.approx(size, rel=0.5)


@pytest.mark.parametrize("mode", METHODS)
def test_a_wrong_derivative_at_a_tiny_scale_is_caught(mode):
    report = gradcheck.check(scale.ScaledTanh(1e-6, factor=1.5), _x(4, 5), mode=mode)
    result = report[gradcheck.INPUT_GRADIENT]
    assert not result.passed
    # Every error is far below the absolute 1e-5 a fixed atol would have accepted.
    assert result.tensors[0].max_abs_error < 1e-5
    assert result.tensors[0].atol < 1e-10


F32_MODULES = [
    ("nnlite_linear", lambda: nnlite.Linear(5, 6), (8, 5)),
    ("nnlite_network", lambda: nnlite.Sequential(nnlite.Linear(3, 4), nnlite.Tanh()), (4, 3)),
    ("linear", lambda: correct.Linear(12, 14), (16, 12)),
    ("softmax", correct.Softmax, (8, 5)),
    ("standardize_two_samples", correct.Standardize, (2, 30)),
    ("sigmoid", correct.Sigmoid, (4, 3)),
    ("mse", correct.MSELoss, (16, 12)),
]


@pytest.mark.parametrize("mode", ["full", "vjp"])
@pytest.mark.parametrize(
    ("factory", "shape"), [m[1:] for m in F32_MODULES], ids=[m[0] for m in F32_MODULES]
)
def test_float32_checks_pass_correct_code_over_seeds(factory, shape, mode):
    for seed in (0, 9):
        torch.manual_seed(seed)
        report = gradcheck.check(factory(), shape=shape, dtype=torch.float32, seed=seed, mode=mode)
        gradient = [c for c in report.checks if c.name.endswith("_gradient")]
        assert gradient and all(c.passed for c in gradient), report


def test_the_float32_linear_of_the_command_line_is_far_from_its_tolerance():
    report = gradcheck.check(nnlite.Linear(3, 4), dtype=torch.float32)
    assert report.passed and report.worst.ratio < 0.5


@pytest.mark.parametrize("mode", ["full", "vjp"])
def test_float32_checks_catch_a_one_percent_error(mode):
    report = gradcheck.check(
        scale.ScaledTanh(factor=1.01), _x(4, 5), dtype=torch.float32, mode=mode
    )
    assert not report[gradcheck.INPUT_GRADIENT].passed


_MEASURE = """
import json, sys
import torch
import gradcheck
from tests.gradcheck.corpus import scale

STATUS = "/proc/self/status"

def rss(field):
    for line in open(STATUS):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

torch.set_num_threads(1)
x = gradcheck.make_input((400, 500))
module = scale.ScaledTanh()
gradcheck.check(module, gradcheck.make_input((4, 5)), mode="vjp")  # warm up torch
baseline = rss("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
report = gradcheck.check(module, x, mode="vjp", max_memory=sys.argv[1])
print(json.dumps({"passed": report.passed, "peak": rss("VmHWM") - baseline}))
"""


def _peak(max_memory: str) -> dict:
    env = {"MALLOC_MMAP_THRESHOLD_": "131072", "PYTHONPATH": str(ROOT)}
    script = textwrap.dedent(_MEASURE)
    done = subprocess.run(
        [sys.executable, "-c", script, max_memory],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_the_comparison_stays_within_its_memory_budget():
    # 200,000 entries and outputs: the module and its inputs take ~2 MB, the comparison the rest.
    measured = _peak("400M")
    assert measured["passed"]
    assert measured["peak"] < 400 << 20
    # The estimate the method was chosen by is an upper bound of what it took.
    assert measured["peak"] < budget.vjp_bytes(200_000, 200_000, 8)
