"""The inputs of one check: copied or drawn, then fitted to what the module accepts.

A check draws what the caller did not give: an ``(N, D)`` input, a loss's prediction and target.
When the module refuses the drawn input, these functions try what a course project's layer is
more likely to take (an NCHW batch, one output per sample, probability rows for a soft-target
cross-entropy) and return a note saying so; the module's own error stands when nothing fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradcheck._adapt import Adapted
from gradcheck._protocol import required_names
from gradcheck.inputs import (
    DEFAULT_FEATURES,
    IMAGE_BATCH,
    IMAGE_SIZE,
    class_dim_for,
    default_shape,
    loss_defaults,
    make_input,
    make_target,
)
from gradcheck.session import USER_ERRORS, exception_text

__all__ = [
    "fit_class_target",
    "fit_default_input",
    "fit_loss_input",
    "prepare_args",
]

TARGET_KINDS = ("auto", "like", "class", "onehot", "prob")


def _copy(x: Tensor, dtype: torch.dtype) -> Tensor:
    """The session's own copy of an input: floating inputs in the check's dtype."""
    return torch.empty(x.shape, dtype=dtype if x.is_floating_point() else x.dtype).copy_(x.detach())


def prepare_args(
    adapted: Adapted,
    module: Any,
    inputs: tuple[Any, ...],
    target: Any,
    target_kind: str,
    input_range: Sequence[float] | None,
    seed: int,
    dtype: torch.dtype,
    shape: Sequence[int] | Sequence[Sequence[int]] | None,
) -> tuple[list[Any], list[int], str | None]:
    """The inputs, which of them are differentiated, and the target kind drawn (if any).

    numpy arrays are taken as tensors. ``shape`` is one shape or a list of them, one per input;
    an adapter with ``input_shapes(given)`` fills in the rest, and one with ``probe(args)``
    is called once on the inputs before the check (it raises CannotAdapt when it cannot be
    checked, and may replace a drawn input: integer indices for an embedding)."""
    inputs = tuple(_from_numpy(x) for x in inputs)
    target = _from_numpy(target)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(
                f"input {i} is a {type(x).__name__}; gradcheck takes tensors or numpy arrays "
                "as inputs"
            )
    if target_kind not in TARGET_KINDS:
        raise ValueError(
            f"target_kind must be one of {', '.join(TARGET_KINDS)}, got {target_kind!r}"
        )
    given = _given_shapes(shape)
    hook = getattr(adapted, "input_shapes", None)
    shapes = hook(given) if callable(hook) and not inputs else given
    probe = getattr(adapted, "probe", None)
    if adapted.is_loss:
        defaults = getattr(adapted, "loss_defaults", None)
        kind, range_default = defaults() if callable(defaults) else loss_defaults(module)
        if target_kind != "auto":
            kind = target_kind
        if inputs:
            prediction = inputs[0]
        else:
            prediction = make_input(
                shapes[0] if shapes else default_shape(module),
                input_range=input_range or range_default,
                seed=seed,
            )
        if len(inputs) > 2 or (len(inputs) == 2 and target is not None):
            raise TypeError(
                f"a loss takes (prediction, target); got {len(inputs)} inputs"
                + (" and target=" if target is not None else "")
            )
        if len(inputs) == 2:
            target = inputs[1]
        drawn = None
        if target is None:
            class_dim = getattr(adapted, "class_dim", None)
            if len(shapes) >= 2 and kind == "class":  # the labels' shape says the class dim
                class_dim = _target_class_dim(tuple(prediction.shape), shapes[1])
            if len(shapes) >= 2 and kind != "class":  # a target of its own shape
                target = make_target(make_input(shapes[1], seed=seed), kind=kind, seed=seed)
            else:
                target = make_target(prediction, kind=kind, seed=seed, class_dim=class_dim)
            drawn = kind
        if not isinstance(target, Tensor):
            raise TypeError(f"target is a {type(target).__name__}; pass a tensor")
        args = [_copy(prediction, dtype), _copy(target, dtype)]
        if callable(probe):
            probe(args)
        return args, [0], drawn
    if target is not None:
        raise TypeError(
            f"target= is for losses; {type(module).__name__} is not one (its backward takes a "
            "gradient). Pass every input positionally"
        )
    if not inputs:
        shapes = shapes or [default_shape(module, batch_dim=adapted.batch_dim)]
        if not callable(hook):
            shapes = shapes + [shapes[-1]] * (_inputs_required(adapted) - len(shapes))
        inputs = tuple(
            make_input(s, input_range=input_range, seed=seed + 10 * k) for k, s in enumerate(shapes)
        )
    args = [_copy(x, dtype) for x in inputs]
    if callable(probe):
        probe(args)
    perturbable = [i for i, x in enumerate(args) if x.is_floating_point()]
    if not perturbable:
        raise TypeError("gradcheck needs at least one floating-point input to differentiate")
    return args, perturbable, None


def _inputs_required(adapted: Adapted) -> int:
    """How many tensors forward requires (``forward(self, query, key, value)``: 3); an input
    drawn for each, of the last shape given, when fewer shapes are."""
    required = required_names(getattr(adapted.module, "forward", None))
    return len([n for n in required if n != adapted.mode_flag])


def _target_class_dim(prediction: tuple[int, ...], target: tuple[int, ...]) -> int:
    """The prediction's class dim that class labels of shape ``target`` leave out."""
    found = class_dim_for(prediction, target)
    if found is None:
        raise ValueError(
            f"class labels of shape {target} do not fit a prediction of shape {prediction}: "
            "they have its shape without the class dim, e.g. (N, T) for (N, T, V)"
        )
    return found


def _from_numpy(x: Any) -> Any:
    """A numpy array as a tensor (a copy: the session owns its inputs); anything else as is."""
    return torch.tensor(x) if isinstance(x, np.ndarray) else x


def _given_shapes(shape: Any) -> list[tuple[int, ...]]:
    """``shape`` as a list of shapes: ``(4, 3)`` is one, ``[(4, 5), (5, 3), (3,)]`` three."""
    if shape is None:
        return []
    shape = list(shape)
    if shape and all(isinstance(s, Sequence) for s in shape):
        return [tuple(int(n) for n in s) for s in shape]
    return [tuple(int(n) for n in shape)]


def fit_default_input(
    adapted: Adapted, args: list[Any], seed: int, input_range: Sequence[float] | None
) -> str | None:
    """For a layer given a drawn ``(N, D)`` input: if its forward or backward refuses it, try
    what a course project's layer more likely takes, an NCHW image batch (a parameterless layer
    of an image project), one sample as a ``(D, 1)`` column vector, then as a ``(D,)`` vector,
    then one image with no batch dimension, ``(C, H, W)`` or ``(H, W, C)``, and say which was
    drawn."""

    def attempt(x: Tensor) -> None:
        torch.default_generator.manual_seed(seed)
        out = adapted.forward(x.clone())
        if not isinstance(out, Tensor):
            raise TypeError(f"forward returned {type(out).__name__}")
        generator = torch.Generator().manual_seed(seed)
        adapted.backward(torch.randn(out.shape, generator=generator).to(out.dtype))

    try:
        attempt(args[0])
        return None
    except USER_ERRORS as exc:
        problem = exception_text(exc)
    drawn = tuple(args[0].shape)
    features = drawn[-1] if drawn else DEFAULT_FEATURES
    # (shape, what it is, its batch dimension)
    candidates = (
        ((IMAGE_BATCH, DEFAULT_FEATURES, IMAGE_SIZE, IMAGE_SIZE), "an NCHW batch", 0),
        ((features, 1), "one sample as a column vector", 1),
        ((features,), "one sample as a vector", 0),
        ((DEFAULT_FEATURES, IMAGE_SIZE, IMAGE_SIZE), "one (C, H, W) image", None),
        ((IMAGE_SIZE, IMAGE_SIZE, DEFAULT_FEATURES), "one (H, W, C) image", None),
    )
    for shape, what, batch_dim in candidates:
        if shape == drawn:
            continue
        x = make_input(shape, input_range=input_range, seed=seed).to(args[0].dtype)
        try:
            attempt(x)
        except USER_ERRORS:
            continue
        args[0] = x
        adapted.batch_dim = batch_dim  # a column's one sample is along dim 1; an image has none
        return (
            f"a {drawn} input was refused ({problem}); {what} {shape} was drawn instead; "
            "pass shape= (--shape) to choose"
        )
    return None  # the (N, D) input it is: the checks report the module's exception


def fit_loss_input(
    adapted: Adapted, args: list[Any], seed: int, input_range: Sequence[float] | None, kind: str
) -> str | None:
    """For a loss given a drawn ``(N, D)`` prediction: if its forward or backward refuses it,
    try one output per sample, ``(N, 1)`` then ``(N,)`` (a loss written for a one-output
    network), then an NCHW image batch (an image project's loss)."""

    def attempt(prediction: Tensor, target: Tensor) -> None:
        torch.default_generator.manual_seed(seed)
        adapted.forward(prediction.clone(), target.clone())
        adapted.backward(None)

    try:
        attempt(args[0], args[1])
        return None
    except USER_ERRORS as exc:
        problem = exception_text(exc)
    drawn = tuple(args[0].shape)
    image = (IMAGE_BATCH, DEFAULT_FEATURES, IMAGE_SIZE, IMAGE_SIZE)
    for shape in ((drawn[0], 1), (drawn[0],), image):
        prediction = make_input(shape, input_range=input_range, seed=seed).to(args[0].dtype)
        target = make_target(prediction, kind=kind, seed=seed)
        target = target.to(args[0].dtype) if target.is_floating_point() else target
        try:
            attempt(prediction, target)
        except USER_ERRORS:
            continue
        args[0], args[1] = prediction, target
        return (
            f"a {drawn} prediction was refused ({problem}); a {shape} one was drawn instead; "
            "pass shape= (--shape) to choose"
        )
    return None


def fit_class_target(adapted: Adapted, args: list[Any], seed: int) -> str | None:
    """For a loss given drawn class-index targets: if its forward or backward refuses them, try
    targets like the prediction (probability rows: a soft-target or one-hot cross-entropy) and
    say so."""

    def attempt(target: Tensor) -> str | None:
        """Why forward and backward cannot run on ``target`` (None: they can)."""
        torch.default_generator.manual_seed(seed)
        try:
            out = adapted.forward(args[0].clone(), target)
            if not isinstance(out, Tensor) or not bool(torch.isfinite(out).all()):
                return "its forward returned no finite value"
            grad = adapted.backward(None)
        except USER_ERRORS as exc:
            return f"it raised {exception_text(exc)}"
        if isinstance(grad, Tensor) and grad.shape != args[0].shape:
            return f"its backward returned a gradient of shape {tuple(grad.shape)}"
        return None

    problem = attempt(args[1])
    if problem is None:
        return None
    soft = make_target(args[0], kind="prob", seed=seed).to(args[0].dtype)
    if attempt(soft) is not None:
        return None  # no better with probabilities: class targets it is, and their failure
    args[1] = soft
    return (
        f"class-index targets did not fit ({problem}); probability rows like the prediction "
        "were used (a soft-target or one-hot cross-entropy); pass target_kind='class' "
        "(--target class) to insist on class indices"
    )
