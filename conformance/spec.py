"""One description of a training run, shared by the nnlite and torch.nn twins."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu")
LOSSES = ("mse", "ce", "bce")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "exponential")
INITS = ("seed", "torch_to_nnlite", "nnlite_to_torch")
WEIGHT_INITS = ("default", "xavier_normal", "xavier_normal_gain", "constant")
REDUCTIONS = ("mean", "sum")
OUTPUT_ACTIVATIONS = ("tanh",)
DTYPES = {"float32": torch.float32, "float64": torch.float64}

_DTYPE_TAGS = {torch.float32: "f32", torch.float64: "f64"}
_SGD_OPTIONS = {"lr", "momentum", "dampening", "weight_decay", "nesterov"}
_ADAM_OPTIONS = {"lr", "betas", "eps", "weight_decay", "amsgrad"}
_SCHEDULE_OPTIONS = {"step": {"step_size", "gamma"}, "exponential": {"gamma"}}


@dataclass(frozen=True)
class Config:
    r"""Everything that defines one side-by-side training run.

    The network is ``Linear(2, hidden[0])``, the activation, ``Dropout(dropout)`` when
    ``dropout > 0``, and so on for each hidden width, then ``Linear(hidden[-1], outputs)``,
    followed by ``Sigmoid`` when the loss is ``"bce"`` or by ``output_activation``. A sigmoid
    with a slope, :math:`1 / (1 + e^{-\lambda x})`, is ``Scale(lambda)`` then ``Sigmoid`` in
    both frameworks (see :mod:`conformance.twins`).

    The targets follow the loss: ``"ce"`` takes class indices (two outputs); ``"bce"`` takes
    the 0/1 label as a float column (one output, after a sigmoid); ``"mse"`` takes the one-hot
    encoding when ``outputs > 1`` and the 0/1 label as a float column when ``outputs == 1``.

    Args:
        activation: one of :data:`ACTIVATIONS`.
        loss: one of :data:`LOSSES`.
        optimizer: ``"sgd"`` or ``"adam"``.
        optimizer_options: keyword arguments of the optimizer (``lr`` is required for SGD).
        schedule: ``None``, ``"step"`` (StepLR) or ``"exponential"`` (ExponentialLR), stepped
            once per epoch.
        schedule_options: keyword arguments of the schedule (``step_size``, ``gamma``).
        dropout: probability of the dropout layer after each hidden activation; 0 for none.
        dtype: ``torch.float32`` or ``torch.float64``, for parameters and data alike.
        batch_size: mini-batch size.
        epochs: number of epochs.
        seed: seeds the initial parameters, the data, the mini-batch order and the dropout masks.
        hidden: widths of the hidden layers.
        outputs: width of the last layer; ``None`` picks 2 for ``"mse"`` and ``"ce"``, 1 for
            ``"bce"``.
        train_size: number of training points.
        test_size: number of test points.
        shuffle: draw a new mini-batch order each epoch.
        standardize: shift and scale the inputs by the training set's mean and standard
            deviation, as seed 002 did.
        init: ``"seed"`` builds both networks after the same ``torch.manual_seed``;
            ``"torch_to_nnlite"`` loads torch.nn's initial state_dict into nnlite;
            ``"nnlite_to_torch"`` loads nnlite's into torch.nn.
        negative_slope: LeakyReLU's slope for negative inputs.
        alpha: ELU's alpha.
        sigmoid_slope: :math:`\lambda` of the hidden sigmoid :math:`1 / (1 + e^{-\lambda x})`.
        weight_init: how both networks' Linear layers are initialised, in both frameworks with
            their own ``init`` functions after the same seed: ``"default"`` (torch.nn.Linear's:
            weights and biases from :math:`U(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`),
            ``"xavier_normal"`` (weights and biases from :math:`N(0, 2 / (n_{in} + n_{out}))`),
            ``"xavier_normal_gain"`` (the same times the activation's gain, and the last layer
            from :math:`N(0, 1)`), ``"constant"`` (every parameter ``init_value``).
        init_value: the value of every parameter with ``weight_init="constant"``.
        reduction: the loss's ``reduction``, ``"mean"`` or ``"sum"``.
        output_activation: ``None`` or ``"tanh"``, applied to the last layer's output.
    """

    activation: str = "relu"
    loss: str = "ce"
    optimizer: str = "sgd"
    optimizer_options: Mapping[str, Any] = field(default_factory=lambda: {"lr": 0.05})
    schedule: str | None = None
    schedule_options: Mapping[str, Any] = field(default_factory=dict)
    dropout: float = 0.0
    dtype: torch.dtype = torch.float32
    batch_size: int = 25
    epochs: int = 30
    seed: int = 0
    hidden: tuple[int, ...] = (25, 25, 25)
    outputs: int | None = None
    train_size: int = 1000
    test_size: int = 1000
    shuffle: bool = True
    standardize: bool = False
    init: str = "seed"
    negative_slope: float = 0.01
    alpha: float = 1.0
    sigmoid_slope: float = 1.0
    weight_init: str = "default"
    init_value: float = 0.0
    reduction: str = "mean"
    output_activation: str | None = None

    def __post_init__(self) -> None:
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("init", self.init, INITS)
        _check_choice("weight_init", self.weight_init, WEIGHT_INITS)
        _check_choice("reduction", self.reduction, REDUCTIONS)
        if self.output_activation is not None:
            _check_choice("output_activation", self.output_activation, OUTPUT_ACTIVATIONS)
            if self.loss != "mse":
                raise ValueError(
                    f"Config: output_activation {self.output_activation!r} needs loss 'mse', "
                    f"got {self.loss!r} (BCE has its sigmoid, CrossEntropy takes raw scores)"
                )
        if self.sigmoid_slope != 1.0 and self.activation != "sigmoid":
            raise ValueError(
                f"Config: sigmoid_slope {self.sigmoid_slope} given for activation "
                f"{self.activation!r}; it applies to 'sigmoid' only"
            )
        if self.schedule is not None:
            _check_choice("schedule", self.schedule, SCHEDULES)
            _check_keys("schedule_options", self.schedule_options, _SCHEDULE_OPTIONS[self.schedule])
        elif self.schedule_options:
            raise ValueError(
                f"Config: schedule_options {dict(self.schedule_options)} given without a schedule; "
                f"set schedule to one of {SCHEDULES}"
            )
        allowed = _SGD_OPTIONS if self.optimizer == "sgd" else _ADAM_OPTIONS
        _check_keys("optimizer_options", self.optimizer_options, allowed)
        if self.optimizer == "sgd" and "lr" not in self.optimizer_options:
            raise ValueError("Config: SGD needs a learning rate; add 'lr' to optimizer_options")
        if self.dtype not in _DTYPE_TAGS:
            raise ValueError(
                f"Config: dtype must be torch.float32 or torch.float64, got {self.dtype}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"Config: dropout must be in [0, 1), got {self.dropout}")
        for name in ("batch_size", "epochs", "train_size", "test_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Config: {name} must be a positive integer, got {value!r}")
        if not self.hidden or any(w < 1 for w in self.hidden):
            raise ValueError(
                f"Config: hidden must list at least one positive width, got {self.hidden}"
            )
        outputs = self.out_features
        if self.loss == "ce" and outputs < 2:
            raise ValueError(f"Config: CrossEntropy needs at least 2 outputs, got {outputs}")
        if self.loss == "bce" and outputs != 1:
            raise ValueError(f"Config: BCE on a sigmoid needs exactly 1 output, got {outputs}")
        if self.loss == "mse" and outputs < 1:
            raise ValueError(f"Config: outputs must be positive, got {outputs}")
        if self.standardize and self.train_size < 2:
            raise ValueError("Config: standardize needs at least 2 training points")

    @property
    def out_features(self) -> int:
        """Width of the last layer."""
        if self.outputs is not None:
            return self.outputs
        return 1 if self.loss == "bce" else 2

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Widths of all layers, input first: ``(2, 25, 25, 25, 2)`` for the seeds' network."""
        return (2, *self.hidden, self.out_features)

    @property
    def id(self) -> str:
        """A short readable name, e.g. ``tanh-ce-adam(lr=0.001)-p0.2-f32-b25-s0``."""
        options = ",".join(f"{k}={_short(v)}" for k, v in sorted(self.optimizer_options.items()))
        parts = [self.activation, self.loss, f"{self.optimizer}({options})"]
        if self.schedule is not None:
            sched = ",".join(f"{k}={_short(v)}" for k, v in sorted(self.schedule_options.items()))
            parts.append(f"{self.schedule}({sched})")
        parts += [
            f"p{_short(self.dropout)}",
            _DTYPE_TAGS[self.dtype],
            f"b{self.batch_size}",
            f"s{self.seed}",
        ]
        if self.hidden != (25, 25, 25):
            parts.append("h" + "x".join(map(str, self.hidden)))
        if self.sigmoid_slope != 1.0:
            parts.append(f"slope{_short(self.sigmoid_slope)}")
        if self.weight_init != "default":
            value = f"({_short(self.init_value)})" if self.weight_init == "constant" else ""
            parts.append(f"init={self.weight_init}{value}")
        if self.reduction != "mean":
            parts.append(f"{self.reduction}")
        if self.output_activation is not None:
            parts.append(f"out={self.output_activation}")
        return "-".join(parts)

    def replace(self, **changes: Any) -> Config:
        """Returns a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"Config: unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _check_keys(name: str, options: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"Config: unknown {name} {unknown}; allowed keys are {', '.join(sorted(allowed))}"
        )


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ",".join(_short(v) for v in value) + ")"
    return str(value)
