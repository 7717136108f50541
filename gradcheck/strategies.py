"""Hypothesis strategies for gradient checks: tensors, nnlite modules and random architectures.

Use them in your own property tests (needs ``hypothesis``, installed with ``nnlite[test]``)::

    from hypothesis import given, settings

    import gradcheck
    from gradcheck import strategies as gst


    @settings(max_examples=20, deadline=None)
    @given(gst.cases(gst.architectures()))
    def test_random_networks_have_correct_gradients(case):
        module, x = case
        gradcheck.assert_gradients(module, x)

Every strategy that builds a module seeds torch's generator from a drawn integer inside a forked
generator, so weights are reproducible from Hypothesis's own seed and shrink with it, and the
caller's torch generator state is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

import nnlite

__all__ = [
    "KINKS",
    "activations",
    "architectures",
    "cases",
    "dropouts",
    "elus",
    "leaky_relus",
    "linears",
    "loss_cases",
    "losses",
    "module_strategies",
    "shapes",
    "tensors",
]

KINKS: tuple[float, ...] = (0.0,)
"""Where nnlite's activations are not differentiable: ReLU, LeakyReLU and ELU at 0."""

T = TypeVar("T")
_Sizes = int | SearchStrategy[int]


def _strategy(value: T | SearchStrategy[T]) -> SearchStrategy[T]:
    return value if isinstance(value, SearchStrategy) else st.just(value)


def _seeded(build: Callable[[], T], seed: int) -> T:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


_SEEDS = st.integers(0, 2**32 - 1)
# Defaults shared by the strategies below (module-level so signatures show them and stay pure).
_SIZES = st.integers(1, 5)
_BATCHES = st.integers(1, 4)
_BOOLS = st.booleans()
_SLOPES = st.floats(0.0, 1.0)
_ALPHAS = st.floats(0.1, 3.0)
_PS = st.floats(0.0, 0.9)
_REDUCTIONS = st.sampled_from(["mean", "sum"])


def shapes(
    *,
    min_batch: int = 1,
    max_batch: int = 4,
    min_features: int = 1,
    max_features: int = 5,
) -> SearchStrategy[tuple[int, int]]:
    """Input shapes ``(N, D)``; the defaults keep full Jacobians small and checks fast."""
    if not 1 <= min_batch <= max_batch or not 1 <= min_features <= max_features:
        raise ValueError(
            f"shapes() needs 1 <= min <= max, got batch {min_batch}..{max_batch}, "
            f"features {min_features}..{max_features}"
        )
    return st.tuples(st.integers(min_batch, max_batch), st.integers(min_features, max_features))


def _intervals(low: float, high: float, kinks: Sequence[float], margin: float) -> list[tuple]:
    intervals = [(low, high)]
    for kink in sorted(kinks):
        split = []
        for a, b in intervals:
            if kink - margin > a:
                split.append((a, min(b, kink - margin)))
            if kink + margin < b:
                split.append((max(a, kink + margin), b))
        intervals = split
    return intervals


def tensors(
    shape: tuple[int, ...] | SearchStrategy[tuple[int, ...]] | None = None,
    *,
    dtype: torch.dtype = torch.float64,
    min_value: float = -2.0,
    max_value: float = 2.0,
    kinks: Sequence[float] = KINKS,
    margin: float = 1e-3,
) -> SearchStrategy[torch.Tensor]:
    """Tensors of ``shape`` with finite values in ``[min_value, max_value]``, each at least
    ``margin`` away from every point of ``kinks``.

    Args:
        shape: a shape or a strategy of shapes. Default: :func:`shapes`.
        dtype: a floating dtype. Default: ``torch.float64``.
        min_value: lowest value. Default: ``-2.0``.
        max_value: highest value. Default: ``2.0``.
        kinks: points to keep away from (where the module is not differentiable). Default:
            :data:`KINKS`; pass ``()`` to allow any value.
        margin: the distance kept from each kink. Default: ``1e-3``, far beyond any
            finite-difference step.
    """
    if not dtype.is_floating_point:
        raise ValueError(f"tensors() makes floating-point tensors, got dtype {dtype}")
    if not min_value < max_value:
        raise ValueError(f"tensors() needs min_value < max_value, got {min_value}, {max_value}")
    intervals = _intervals(min_value, max_value, kinks, margin)
    if not intervals:
        raise ValueError(
            f"no value in [{min_value}, {max_value}] is {margin} away from the kinks {kinks}; "
            "widen the range or pass kinks=()"
        )
    # Values are drawn in float64 and rounded to ``dtype``; shrinking each interval by two of
    # dtype's ulps keeps the rounded values inside the range and outside the kink margins.
    ulp = 2 * torch.finfo(dtype).eps
    intervals = [(a + abs(a) * ulp, b - abs(b) * ulp) for a, b in intervals]
    elements = st.one_of(
        *(st.floats(a, b, allow_nan=False, allow_infinity=False) for a, b in intervals if a <= b)
    )
    shape_strategy = shapes() if shape is None else _strategy(shape)

    @st.composite
    def build(draw: st.DrawFn) -> torch.Tensor:
        drawn = tuple(draw(shape_strategy))
        size = 1
        for dim in drawn:
            size *= dim
        values = draw(st.lists(elements, min_size=size, max_size=size))
        return torch.tensor(values, dtype=torch.float64).reshape(drawn).to(dtype)

    return build()


# ---------------------------------------------------------------------------------------------
# Modules with random hyperparameters
# ---------------------------------------------------------------------------------------------


def linears(
    in_features: _Sizes = _SIZES,
    out_features: _Sizes = _SIZES,
    *,
    bias: bool | SearchStrategy[bool] = _BOOLS,
) -> SearchStrategy[nnlite.Linear]:
    """``nnlite.Linear`` layers of random sizes (1 to 5 by default), with or without bias."""
    return st.builds(
        lambda i, o, b, seed: _seeded(lambda: nnlite.Linear(i, o, bias=b), seed),
        _strategy(in_features),
        _strategy(out_features),
        _strategy(bias),
        _SEEDS,
    )


def leaky_relus(
    negative_slope: float | SearchStrategy[float] = _SLOPES,
) -> SearchStrategy[nnlite.LeakyReLU]:
    """``nnlite.LeakyReLU`` with a random slope in [0, 1] by default."""
    return st.builds(nnlite.LeakyReLU, _strategy(negative_slope))


def elus(alpha: float | SearchStrategy[float] = _ALPHAS) -> SearchStrategy[nnlite.ELU]:
    """``nnlite.ELU`` with a random ``alpha`` in [0.1, 3] by default."""
    return st.builds(nnlite.ELU, _strategy(alpha))


def dropouts(
    p: float | SearchStrategy[float] = _PS,
) -> SearchStrategy[nnlite.Dropout]:
    """``nnlite.Dropout`` with a random ``p`` in [0, 0.9] by default (training mode)."""
    return st.builds(nnlite.Dropout, _strategy(p))


def activations() -> SearchStrategy[nnlite.Module]:
    """Any nnlite activation, with random hyperparameters where it has them."""
    return st.one_of(
        st.builds(nnlite.ReLU),
        leaky_relus(),
        elus(),
        st.builds(nnlite.Tanh),
        st.builds(nnlite.Sigmoid),
    )


def architectures(
    in_features: _Sizes = _SIZES,
    *,
    min_layers: int = 1,
    max_layers: int = 3,
    max_width: int = 5,
    dropout: bool = True,
) -> SearchStrategy[nnlite.Sequential]:
    """Random ``nnlite.Sequential`` networks: ``min_layers`` to ``max_layers`` blocks of
    ``Linear`` + activation (+ ``Dropout`` when ``dropout``), widths 1 to ``max_width``.
    """
    if not 1 <= min_layers <= max_layers:
        raise ValueError(
            f"architectures() needs 1 <= min_layers <= max_layers, got {min_layers}, {max_layers}"
        )
    features = _strategy(in_features)
    block_extra = st.one_of(st.none(), dropouts()) if dropout else st.none()

    @st.composite
    def build(draw: st.DrawFn) -> nnlite.Sequential:
        width = draw(features)
        layers: list[nnlite.Module] = []
        for _ in range(draw(st.integers(min_layers, max_layers))):
            out = draw(st.integers(1, max_width))
            layers.append(draw(linears(width, out)))
            layers.append(draw(activations()))
            extra = draw(block_extra)
            if extra is not None:
                layers.append(extra)
            width = out
        return nnlite.Sequential(*layers)

    return build()


def losses(
    reduction: str | SearchStrategy[str] = _REDUCTIONS,
) -> SearchStrategy[nnlite.Module]:
    """``MSELoss``, ``BCELoss`` or ``CrossEntropyLoss`` with a random reduction."""
    reductions = _strategy(reduction)
    return st.one_of(
        st.builds(nnlite.MSELoss, reductions),
        st.builds(nnlite.BCELoss, reductions),
        st.builds(nnlite.CrossEntropyLoss, reductions),
    )


# ---------------------------------------------------------------------------------------------
# Ready-to-check cases: a module with an input that fits it
# ---------------------------------------------------------------------------------------------


def _in_features(module: Any) -> int | None:
    while True:
        features = getattr(module, "in_features", None)
        if isinstance(features, int):
            return features
        children = list(module.children()) if hasattr(module, "children") else []
        if not children:
            return None
        module = children[0]


def cases(
    modules: SearchStrategy[Any],
    *,
    batch: _Sizes = _BATCHES,
    features: _Sizes = _SIZES,
    dtype: torch.dtype = torch.float64,
    min_value: float = -2.0,
    max_value: float = 2.0,
    kinks: Sequence[float] = KINKS,
) -> SearchStrategy[tuple[Any, torch.Tensor]]:
    """``(module, input)`` pairs: the input is ``(batch, D)`` with ``D`` the module's
    ``in_features`` (its first layer's for a container) or drawn from ``features``."""
    batches, widths = _strategy(batch), _strategy(features)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[Any, torch.Tensor]:
        module = draw(modules)
        width = _in_features(module) or draw(widths)
        shape = (draw(batches), width)
        x = draw(tensors(shape, dtype=dtype, min_value=min_value, max_value=max_value, kinks=kinks))
        return module, x

    return build()


def loss_cases(
    modules: SearchStrategy[Any] | None = None,
    *,
    batch: _Sizes = _BATCHES,
    features: _Sizes = _SIZES,
    dtype: torch.dtype = torch.float64,
) -> SearchStrategy[tuple[Any, torch.Tensor, torch.Tensor]]:
    """``(loss, prediction, target)`` triples that fit the loss: a BCE gets predictions in
    (0.02, 0.98) and probability targets; a cross entropy gets class-index targets (or
    probability rows, at random); other losses get targets drawn like the prediction."""
    batches, widths = _strategy(batch), _strategy(features)
    loss_strategy = losses() if modules is None else modules

    @st.composite
    def build(draw: st.DrawFn) -> tuple[Any, torch.Tensor, torch.Tensor]:
        loss = draw(loss_strategy)
        shape = (draw(batches), draw(widths))
        name = type(loss).__name__
        if "BCE" in name:
            prediction = draw(tensors(shape, dtype=dtype, min_value=0.02, max_value=0.98, kinks=()))
            target = draw(tensors(shape, dtype=dtype, min_value=0.0, max_value=1.0, kinks=()))
            return loss, prediction, target
        prediction = draw(tensors(shape, dtype=dtype, kinks=()))
        if "CrossEntropy" in name:
            if draw(st.booleans()):
                classes = draw(
                    st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0])
                )
                return loss, prediction, torch.tensor(classes, dtype=torch.long)
            weights = draw(tensors(shape, dtype=dtype, min_value=0.01, max_value=1.0, kinks=()))
            return loss, prediction, weights / weights.sum(dim=1, keepdim=True)
        return loss, prediction, draw(tensors(shape, dtype=dtype, kinks=()))

    return build()


def module_strategies() -> dict[str, SearchStrategy[Any]]:
    """One strategy per nnlite module and loss class, by class name: what the project's own
    property tests run, and a test keeps it complete against ``nnlite.__all__``."""
    return {
        "Linear": linears(),
        "ReLU": st.builds(nnlite.ReLU),
        "LeakyReLU": leaky_relus(),
        "ELU": elus(),
        "Tanh": st.builds(nnlite.Tanh),
        "Sigmoid": st.builds(nnlite.Sigmoid),
        "Dropout": dropouts(),
        "Sequential": architectures(),
        "MSELoss": st.builds(nnlite.MSELoss, st.sampled_from(["mean", "sum"])),
        "BCELoss": st.builds(nnlite.BCELoss, st.sampled_from(["mean", "sum"])),
        "CrossEntropyLoss": st.builds(nnlite.CrossEntropyLoss, st.sampled_from(["mean", "sum"])),
    }
