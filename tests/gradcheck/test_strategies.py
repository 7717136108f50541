"""Tests for gradcheck/strategies.py: what each strategy draws, and that it stays within bounds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradcheck
import nnlite
from gradcheck import strategies as gst
from gradcheck.targets import is_abstract, is_module_class

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(gst.tensors((3, 4), min_value=-1.0, max_value=1.0, margin=0.1))
def test_tensors_have_the_shape_dtype_and_range_asked_for(x):
    assert x.shape == (3, 4) and x.dtype == torch.float64
    assert bool(((x >= -1) & (x <= 1)).all())
    assert bool((x.abs() >= 0.1).all()), "values must keep the margin from the kink at 0"


@FAST
@given(gst.tensors(gst.shapes(max_batch=2, max_features=3), dtype=torch.float32, kinks=(0.5,)))
def test_tensors_keep_away_from_any_kink_and_follow_drawn_shapes(x):
    assert x.dtype == torch.float32
    assert 1 <= x.shape[0] <= 2 and 1 <= x.shape[1] <= 3
    assert bool(((x - 0.5).abs() >= 1e-3).all())


@FAST
@given(gst.tensors((2,), min_value=-1.0, max_value=1.0, kinks=()))
def test_tensors_without_kinks_may_hold_any_value_in_range(x):
    assert bool(torch.isfinite(x).all())


def test_tensors_refuse_a_range_that_lies_inside_the_kink_margin():
    with pytest.raises(ValueError, match="widen the range or pass kinks=()"):
        gst.tensors((2,), min_value=-1e-4, max_value=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gst.tensors((2,), dtype=torch.int64), "floating-point"),
        (lambda: gst.tensors((2,), min_value=1.0, max_value=1.0), "min_value < max_value"),
        (lambda: gst.shapes(min_batch=3, max_batch=2), "1 <= min <= max"),
        (lambda: gst.architectures(min_layers=0), "1 <= min_layers <= max_layers"),
    ],
    ids=["integer-dtype", "empty-range", "shape-bounds", "no-layers"],
)
def test_bad_strategy_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@FAST
@given(gst.linears(in_features=st.integers(2, 3), out_features=4, bias=False))
def test_linears_follow_the_sizes_asked_for(layer):
    assert isinstance(layer, nnlite.Linear)
    assert layer.weight.shape[0] == 4 and layer.weight.shape[1] in (2, 3)
    assert layer.bias is None


@FAST
@given(st.one_of(gst.leaky_relus(), gst.elus(), gst.dropouts()))
def test_hyperparameters_stay_in_their_documented_ranges(module):
    if isinstance(module, nnlite.LeakyReLU):
        assert 0.0 <= module.negative_slope <= 1.0
    elif isinstance(module, nnlite.ELU):
        assert 0.1 <= module.alpha <= 3.0
    else:
        assert 0.0 <= module.p <= 0.9


@FAST
@given(gst.architectures(in_features=3, max_layers=3, max_width=4))
def test_architectures_chain_linear_layers_with_activations(model):
    layers = list(model.children())
    linears = [m for m in layers if isinstance(m, nnlite.Linear)]
    assert 1 <= len(linears) <= 3
    assert isinstance(layers[0], nnlite.Linear) and layers[0].in_features == 3
    assert all(not isinstance(m, nnlite.Linear) for m in layers[1:2])
    widths = [layer.out_features for layer in linears]
    assert [layer.in_features for layer in linears[1:]] == widths[:-1]
    assert all(1 <= w <= 4 for w in widths)
    assert model.forward(torch.zeros(2, 3)).shape == (2, widths[-1])


@FAST
@given(gst.cases(gst.architectures(), batch=2))
def test_cases_give_an_input_that_fits_the_module(case):
    model, x = case
    assert x.shape == (2, next(model.children()).in_features)
    model.forward(x.to(model.param()[0][0].dtype))


@FAST
@given(gst.loss_cases())
def test_loss_cases_give_predictions_and_targets_the_loss_accepts(case):
    loss, prediction, target = case
    value = loss.forward(prediction, target)
    assert value.dim() == 0 and math.isfinite(value.item())
    if isinstance(loss, nnlite.BCELoss):
        assert bool(((prediction > 0) & (prediction < 1)).all())


def test_building_modules_does_not_move_torch_global_generator():
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    drawn = []

    @FAST
    @given(gst.architectures())
    def draw(model):
        drawn.append(model)
        assert torch.equal(state, torch.random.get_rng_state())

    draw()
    assert drawn


def test_module_strategies_cover_every_nnlite_module_and_loss():
    exported = {
        name
        for name in nnlite.__all__
        if is_module_class(getattr(nnlite, name)) and not is_abstract(getattr(nnlite, name))
    }
    assert set(gst.module_strategies()) == exported


def test_public_names_are_listed_in_sorted_all():
    public = {n for n in vars(gst) if not n.startswith("_") and callable(getattr(gst, n))}
    public -= {"annotations", "Any", "Callable", "Sequence", "SearchStrategy", "TypeVar", "T"}
    public = {n for n in public if getattr(getattr(gst, n), "__module__", "") == gst.__name__}
    assert gst.__all__ == sorted(gst.__all__)
    assert public <= set(gst.__all__)


def readme_example(section: str) -> str:
    """The first ```python block after the heading ``section`` in gradcheck/README.md."""
    text = (Path(gradcheck.__file__).parent / "README.md").read_text()
    after = text[text.index(section) :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```", start)]


def test_readme_strategies_example_runs():
    namespace: dict = {}
    # A pseudo file name: Hypothesis reads a test's source to seed a derandomized run, and a real
    # path would give it the lines of another file.
    exec(compile(readme_example("## Hypothesis strategies"), "<README example>", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()
