"""Default inputs and targets: drawn from a private generator, away from kinks by default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_FEATURES",
    "default_shape",
    "loss_defaults",
    "make_input",
    "make_target",
]

#: Batch size of default inputs.
DEFAULT_BATCH = 4
#: Feature count of default inputs when the module does not say (no ``in_features``).
DEFAULT_FEATURES = 3
#: Default range of input values.
DEFAULT_RANGE = (-2.0, 2.0)
#: Inputs drawn with ``avoid_kinks`` keep this far from 0, where ReLU-like functions bend.
KINK_MARGIN = 0.05

_TARGET_KINDS = ("like", "class", "onehot", "prob")
#: Batch and spatial size of default NCHW inputs (modules with ``in_channels``): batch 2 shows a
#: gradient that is only right for one sample; 6 x 6 keeps a full Jacobian small.
IMAGE_BATCH, IMAGE_SIZE = 2, 6
#: Attribute spellings of a layer's input size, and of its input channels.
_FEATURE_NAMES = (
    "in_features",
    "in_dim",
    "input_dim",
    "input_size",
    "n_in",
    "nb_in",
    "dim_in",
    "fan_in",
    "in_size",
    "num_inputs",
    "n_inputs",
    "input_features",
    "in_feature",
    "nin",
    "d_in",
)
_CHANNEL_NAMES = ("in_channels", "in_channel", "in_ch", "input_channels", "c_in", "channels_in")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check_range(input_range: Sequence[float] | None) -> tuple[float, float]:
    if input_range is None:
        return DEFAULT_RANGE
    low, high = (float(v) for v in input_range)
    if not low < high:
        raise ValueError(
            f"input_range must be (low, high) with low < high, got {tuple(input_range)!r}; "
            "pass e.g. input_range=(0.05, 0.95)"
        )
    return low, high


def make_input(
    shape: Sequence[int],
    *,
    dtype: torch.dtype = torch.float64,
    input_range: Sequence[float] | None = None,
    seed: int = 0,
    avoid_kinks: bool = True,
) -> Tensor:
    """Return a random input, uniform in ``input_range``, from a private generator.

    Args:
        shape: the tensor's shape, e.g. ``(4, 3)``.
        dtype: its dtype. Default: ``torch.float64``.
        input_range: ``(low, high)`` bounds of the values. Default: ``(-2, 2)``.
        seed: seed of the private generator (torch's global generator is not touched).
            Default: ``0``.
        avoid_kinks: keep values at least ``0.05`` away from 0, where ReLU, LeakyReLU and ELU bend,
            when 0 lies inside the range. Default: ``True``.
    """
    low, high = _check_range(input_range)
    generator = _generator(seed)
    shape = tuple(int(s) for s in shape)
    x = torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low
    if avoid_kinks and low < 0 < high:
        near = x.abs() < KINK_MARGIN
        # Push values out of (-margin, margin), keeping them inside the range.
        pushed = torch.where(x < 0, x - KINK_MARGIN, x + KINK_MARGIN)
        pushed = torch.where(pushed < low, pushed + 2 * KINK_MARGIN, pushed)
        pushed = torch.where(pushed > high, pushed - 2 * KINK_MARGIN, pushed)
        x = torch.where(near, pushed, x)
    return x.to(dtype)


def make_target(
    prediction: Tensor, *, kind: str = "like", seed: int = 0, class_dim: int | None = None
) -> Tensor:
    """Return a random target for a loss given its ``prediction``.

    Args:
        prediction: the loss's first input; classes lie along ``class_dim``.
        kind: ``"like"``: the prediction's shape, uniform in ``(-1, 1)`` (regression losses);
            ``"class"``: class indices (``int64``, the prediction's shape without the class dim);
            ``"onehot"``: one-hot rows of the prediction's shape;
            ``"prob"``: probabilities of the prediction's shape (rows sum to 1, every entry in
            ``(0, 1)``: suits cross-entropy with soft targets and binary cross-entropy).
            Default: ``"like"``.
        seed: seed of the private generator. Default: ``0``.
        class_dim: the prediction's class dim. Default: 1 (torch's ``(N, C, d1, ...)``), 0
            for a 1-D prediction; CS231n's ``(N, T, V)`` scores have theirs last (``-1``).
    """
    if kind not in _TARGET_KINDS:
        raise ValueError(f"target kind must be one of {', '.join(_TARGET_KINDS)}, got {kind!r}")
    generator = _generator(seed + 1)
    dtype = prediction.dtype if prediction.is_floating_point() else torch.float64
    shape = tuple(prediction.shape)
    if kind == "like":
        return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).to(dtype)
    if kind == "prob":
        if prediction.dim() == 0:
            return torch.rand((), generator=generator, dtype=torch.float64).to(dtype)
        logits = torch.randn(shape, generator=generator, dtype=torch.float64)
        return torch.softmax(logits, dim=_class_dim(prediction, class_dim)).to(dtype)
    if prediction.dim() == 0:
        raise ValueError(
            f"a {kind!r} target needs a prediction with a class dim, got a 0-dim tensor"
        )
    class_dim = _class_dim(prediction, class_dim)
    classes = shape[class_dim]
    labels_shape = shape[:class_dim] + shape[class_dim + 1 :]
    labels = torch.randint(0, classes, labels_shape, generator=generator)
    if kind == "class":
        return labels
    onehot = torch.zeros(shape, dtype=dtype)
    return onehot.scatter_(class_dim, labels.unsqueeze(class_dim), 1.0)


def _class_dim(prediction: Tensor, class_dim: int | None) -> int:
    if class_dim is None:
        return 1 if prediction.dim() > 1 else 0
    return class_dim % prediction.dim()


def class_dim_for(prediction: tuple[int, ...], labels: tuple[int, ...]) -> int | None:
    """The class dim of a ``prediction`` shape whose class labels have shape ``labels``: the
    dim that is left out (``(N, T, V)`` and ``(N, T)``: 2; ``(N, C, L)`` and ``(N, L)``: 1);
    None when no single dim is."""
    for d in range(len(prediction)):
        if prediction[:d] + prediction[d + 1 :] == tuple(labels):
            return d
    return None


def loss_defaults(module: Any) -> tuple[str, tuple[float, float] | None]:
    """Return the target kind and input range a loss needs, guessed from its class names.

    The class and its bases are looked at in order, so a subclass of a ``CrossEntropyLoss`` is
    recognised.

    ``...CrossEntropy...`` and ``NLL...`` take class indices; ``BCE...`` (binary
    cross-entropy) takes probabilities and predictions inside ``(0, 1)``; any other loss takes a
    target like its prediction.
    """
    for cls in type(module).__mro__:
        name = cls.__name__.lower()
        if name.startswith("bce") or "binary" in name:
            return "prob", (0.05, 0.95)
        if "crossentropy" in name or name.startswith("nll"):
            return "class", None
    return "like", None


def default_shape(module: Any, *, batch_dim: int | None = 0) -> tuple[int, ...]:
    """Return a default input shape for ``module``.

    A module with ``in_channels`` (or a container whose first such layer has them) gets an
    NCHW image batch ``(2, C, 6, 6)``; any other ``(DEFAULT_BATCH, features)``, with
    ``features`` the ``in_features`` (or a spelling of it: ``in_dim``, ``n_in``, ...) of the
    module or of the first module inside it that has one, else :data:`DEFAULT_FEATURES`.
    ``batch_dim=1`` swaps the two: ``(features, DEFAULT_BATCH)``; ``None`` (no batch
    dimension) gives one sample, ``(C, 6, 6)`` or ``(features,)``.
    """
    channels = _in_features(module, depth=3, names=_CHANNEL_NAMES)
    if channels is not None and batch_dim != 1:
        image = (channels, IMAGE_SIZE, IMAGE_SIZE)
        return image if batch_dim is None else (IMAGE_BATCH, *image)
    features = _in_features(module, depth=3)
    features = features if features is not None else DEFAULT_FEATURES
    if batch_dim is None:
        return (features,)
    return (features, DEFAULT_BATCH) if batch_dim == 1 else (DEFAULT_BATCH, features)


def _in_features(module: Any, depth: int, names: tuple[str, ...] = ()) -> int | None:
    names = names or _FEATURE_NAMES
    values = getattr(module, "__dict__", {})
    for name in names:
        value = values.get(
            name, getattr(type(module), name, None) if name == "in_features" else None
        )
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    if depth == 0:
        return None
    children: list[Any] = []
    if callable(getattr(module, "children", None)):
        try:
            children = list(module.children())
        except Exception:
            children = []
    if not children:
        for value in values.values():
            if isinstance(value, list | tuple):
                children.extend(value)
            elif hasattr(value, "forward"):
                children.append(value)
    for child in children:
        found = _in_features(child, depth - 1, names)
        if found is not None:
            return found
        if _in_features(child, 0, _CHANNEL_NAMES if names is _FEATURE_NAMES else _FEATURE_NAMES):
            return None  # the first layer is of the other kind
    return None
