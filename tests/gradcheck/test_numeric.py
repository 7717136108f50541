"""gradcheck.numeric: steps, differences, Richardson, kinks and comparison."""

from __future__ import annotations

import math

import pytest
import torch

from gradcheck import numeric


def test_base_step_is_the_cube_root_of_machine_epsilon():
    assert numeric.base_step(torch.float64) == pytest.approx((2.0**-52) ** (1 / 3), rel=1e-12)
    assert numeric.base_step(torch.float32) == pytest.approx((2.0**-23) ** (1 / 3), rel=1e-6)
    assert numeric.base_step(torch.float64, eps=1e-4) == 1e-4


def test_base_step_rejects_a_non_positive_eps():
    with pytest.raises(ValueError, match="eps must be a positive step, got 0"):
        numeric.base_step(torch.float64, eps=0)


def test_step_grows_with_the_entry_magnitude_above_one():
    x = torch.tensor([0.0, 0.5, -1.0, 1000.0], dtype=torch.float64)
    assert numeric.step_sizes(x, 1e-6).tolist() == pytest.approx([1e-6, 1e-6, 1e-6, 1e-3])


def _central(f, x, h):
    plus, minus = f(x + h), f(x - h)
    return numeric.central_difference(plus, minus, (x + h) - (x - h))


def test_central_difference_error_shrinks_like_h_squared_and_richardson_removes_it():
    x = torch.tensor([0.7, 1.3], dtype=torch.float64)
    exact = 3 * x**2
    cube = lambda t: t.reshape(-1, 1) ** 3  # noqa: E731
    d_h = _central(cube, x, 1e-2).flatten()
    d_half = _central(cube, x, 5e-3).flatten()
    # D(h) - f' = h^2 f'''/6 = 1e-4 for x^3 (f''' = 6).
    assert (d_h - exact).tolist() == pytest.approx([1e-4, 1e-4], rel=1e-6)
    estimate, error = numeric.richardson(d_h, d_half)
    assert (estimate - exact).abs().max() < 1e-12
    assert error.tolist() == pytest.approx([0.75e-4, 0.75e-4], rel=1e-6)


def test_one_sided_gap_measures_the_jump_in_slope():
    zero = torch.tensor([0.0], dtype=torch.float64)
    h = 1e-3
    plus, minus = torch.tensor([[h]]), torch.tensor([[h]])  # |x| at 0
    gap = numeric.one_sided_gap(zero, plus.double(), minus.double(), torch.tensor([2 * h]))
    assert gap.item() == pytest.approx(2.0)


def _judge(f, x, analytical, h=1e-5, atol=1e-5, rtol=1e-3):
    """Compare ``f`` at ``x`` (one entry per row, one output per row) to ``analytical``."""
    x = torch.tensor(x, dtype=torch.float64)
    analytical = torch.tensor(analytical, dtype=torch.float64).reshape(-1, 1)
    plus, minus = f(x + h).reshape(-1, 1), f(x - h).reshape(-1, 1)
    dx = (x + h) - (x - h)
    c = numeric.compare(
        analytical,
        numeric.central_difference(plus, minus, dx),
        atol=atol,
        rtol=rtol,
        rounding=numeric.rounding(plus.abs() + minus.abs(), dx, 2.0**-52),
    )
    rows = c.failing_rows()
    if rows.numel():
        xr = x[rows]
        p2, m2 = f(xr + h / 2).reshape(-1, 1), f(xr - h / 2).reshape(-1, 1)
        zero = f(xr).reshape(-1, 1)
        # refine takes one zero row per column; here every row is its own function of x.
        for k, r in enumerate(rows.tolist()):
            one = torch.tensor([r])
            numeric.refine(
                c,
                one,
                zero[k],
                plus[one],
                minus[one],
                dx[one],
                p2[k : k + 1],
                m2[k : k + 1],
                ((xr + h / 2) - (xr - h / 2))[k : k + 1],
                atol=atol,
                rtol=rtol,
                dtype_eps=2.0**-52,
            )
    return c


def test_compare_passes_a_right_derivative_and_fails_a_wrong_one():
    c = _judge(torch.sin, [0.3, 1.1], [math.cos(0.3), 1.005 * math.cos(1.1)])
    assert c.passed.flatten().tolist() == [True, False]
    assert c.worst() == (1, 0)


def test_a_kink_is_skipped_not_failed():
    # A backward taking sign(0) = 1 disagrees with the central difference 0 at the kink.
    c = _judge(torch.abs, [0.0, 0.5], [1.0, 1.0])
    assert c.passed.flatten().tolist() == [True, True]
    assert c.kink.flatten().tolist() == [True, False]
    assert c.worst() == (1, 0)


def test_high_curvature_is_truncation_not_a_kink():
    # exp(20 x): D(h) is off by h^2 f'''/6 = 1.7e-3 relative, past rtol; Richardson recovers it.
    f = lambda t: torch.exp(20 * t)  # noqa: E731
    c = _judge(f, [1.0], [20 * math.exp(20.0)], h=5e-3)
    assert c.refined.all() and not c.kink.any()
    assert c.passed.all()
    assert c.truncation.item() > 0


def test_a_wrong_derivative_with_high_curvature_still_fails():
    f = lambda t: torch.exp(20 * t)  # noqa: E731
    c = _judge(f, [1.0], [1.01 * 20 * math.exp(20.0)], h=5e-3)
    assert not c.passed.any() and not c.kink.any()


def test_forward_difference_and_rounding_allowance():
    zero = torch.tensor([1.0], dtype=torch.float64)
    plus = torch.tensor([[1.5]], dtype=torch.float64)
    dx = torch.tensor([0.5], dtype=torch.float64)
    assert numeric.forward_difference(zero, plus, dx).item() == 1.0
    allowance = numeric.rounding(plus.abs() + zero.abs(), dx, 2.0**-52)
    assert allowance.item() == pytest.approx(numeric.ROUNDING_ULPS * 2.0**-52 * 2.5 / 0.5)


def test_projection_tolerance_scale_replaces_the_numerical_magnitude():
    analytical = torch.tensor([[1.0]], dtype=torch.float64)
    numerical = torch.tensor([[1.05]], dtype=torch.float64)
    zero = torch.zeros(1, 1, dtype=torch.float64)
    tight = numeric.compare(analytical, numerical, atol=0.0, rtol=1e-3, rounding=zero)
    wide = numeric.compare(
        analytical, numerical, atol=0.0, rtol=1e-3, rounding=zero, scale=torch.tensor([[100.0]])
    )
    assert not tight.all_passed and wide.all_passed


def test_float32_screens_at_the_cube_root_of_epsilon_float64_at_its_square_root():
    assert numeric.screening_step(torch.float64) == pytest.approx(2.0**-26)
    assert numeric.screening_step(torch.float32) == pytest.approx((2.0**-23) ** (1 / 3))


def test_richardsons_estimate_carries_three_halves_of_the_half_step_rounding():
    # A linear function whose half-step outputs are off by one rounding unit r: D(h/2) errs by
    # r / dx_half, D(h) by nothing, and D* = (4 D(h/2) - D(h)) / 3 by 4/3 of it, inside 3/2.
    r, h = 1e-9, 1e-3
    zero = torch.zeros(1, dtype=torch.float64)
    plus, minus = (
        torch.tensor([[h]], dtype=torch.float64),
        torch.tensor([[-h]], dtype=torch.float64),
    )
    plus_half = torch.tensor([[h / 2 + r]], dtype=torch.float64)
    minus_half = torch.tensor([[-h / 2]], dtype=torch.float64)
    dx = torch.tensor([2 * h], dtype=torch.float64)
    dx_half = torch.tensor([h], dtype=torch.float64)
    allowance = torch.tensor([[r / h]], dtype=torch.float64)
    c = numeric.compare(
        torch.ones(1, 1, dtype=torch.float64),
        torch.full((1, 1), 2.0, dtype=torch.float64),
        atol=0.0,
        rtol=0.0,
        rounding=torch.zeros(1, 1, dtype=torch.float64),
    )
    numeric.refine(
        c,
        torch.tensor([0]),
        zero,
        plus,
        minus,
        dx,
        plus_half,
        minus_half,
        dx_half,
        atol=0.0,
        rtol=0.0,
        dtype_eps=2.0**-52,
        rounding_half=allowance,
    )
    assert float(c.error) == pytest.approx(4 / 3 * r / h, rel=1e-6)
    assert float(c.error) <= float(c.tolerance) - float(c.truncation)
    assert float(c.tolerance - c.truncation) == pytest.approx(1.5 * r / h, rel=1e-6)
