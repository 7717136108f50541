"""Builds the nnlite and torch.nn twins of one :class:`~conformance.spec.Config`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

import nnlite
import nnlite.data
import nnlite.init
import nnlite.optim
from conformance.spec import Config


@dataclass
class Side:
    """One framework's half of a twin: network, loss, optimizer, schedule, batch-order generator.

    ``framework`` is ``"nnlite"`` or ``"torch"``.
    """

    framework: str
    model: Any
    criterion: Any
    optimizer: Any
    scheduler: Any
    generator: torch.Generator


@dataclass
class Data:
    """The training and test sets, with targets encoded for the configured loss."""

    train_inputs: Tensor
    train_labels: Tensor
    train_targets: Tensor
    test_inputs: Tensor
    test_labels: Tensor
    shift: Tensor | None = None
    """Training-set mean subtracted from every input when standardising (else ``None``)."""
    scale: Tensor | None = None
    """Training-set standard deviation dividing every input when standardising (else ``None``)."""

    def prepare(self, points: Tensor) -> Tensor:
        """Maps raw points of the unit square to network inputs (standardising if configured)."""
        return points if self.shift is None else (points - self.shift) / self.scale


def make_data(config: Config) -> Data:
    """Draws the disk dataset of ``config`` (train, then test, from one seeded generator)."""
    generator = torch.Generator().manual_seed(config.seed)
    train_x, train_y = nnlite.data.disk_dataset(
        config.train_size, generator=generator, dtype=config.dtype
    )
    test_x, test_y = nnlite.data.disk_dataset(
        config.test_size, generator=generator, dtype=config.dtype
    )
    data = Data(train_x, train_y, encode_targets(config, train_y), test_x, test_y)
    if config.standardize:
        data.shift, data.scale = train_x.mean(dim=0), train_x.std(dim=0)
        data.train_inputs, data.test_inputs = data.prepare(train_x), data.prepare(test_x)
    return data


def encode_targets(config: Config, labels: Tensor) -> Tensor:
    """Targets for ``config.loss``: class indices, a one-hot matrix, or a float label column."""
    if config.loss == "ce":
        return labels
    if config.out_features == 1:
        return labels.to(config.dtype).unsqueeze(1)
    return nnlite.data.one_hot(labels, config.out_features, dtype=config.dtype)


def build_sides(config: Config) -> tuple[Side, Side]:
    """Builds the nnlite side and the torch.nn side with identical initial parameters.

    With ``config.init == "seed"`` each network is built right after
    ``torch.manual_seed(config.seed)``; otherwise one network's ``state_dict`` is loaded into
    the other. Either way the caller should check the parameters agree before training.
    """
    torch.manual_seed(config.seed)
    nn_model = build_nnlite_model(config)
    if config.init == "seed":
        torch.manual_seed(config.seed)
    th_model = build_torch_model(config)
    if config.init == "torch_to_nnlite":
        nn_model.load_state_dict(th_model.state_dict())
    elif config.init == "nnlite_to_torch":
        th_model.load_state_dict(nn_model.state_dict())
    nn_model.to(config.dtype)
    th_model.to(config.dtype)
    return side("nnlite", config, nn_model), side("torch", config, th_model)


def side(framework: str, config: Config, model: Any) -> Side:
    """Wraps ``model`` with a fresh loss, optimizer, schedule and batch-order generator."""
    if framework == "nnlite":
        criterion = _NNLITE_LOSSES[config.loss](reduction=config.reduction)
        optimizer_class = nnlite.optim.SGD if config.optimizer == "sgd" else nnlite.optim.Adam
        optimizer = optimizer_class(model.param(), **config.optimizer_options)
        schedulers = nnlite.optim.lr_scheduler
    else:
        criterion = _TORCH_LOSSES[config.loss](reduction=config.reduction)
        optimizer_class = torch.optim.SGD if config.optimizer == "sgd" else torch.optim.Adam
        optimizer = optimizer_class(model.parameters(), **config.optimizer_options)
        schedulers = torch.optim.lr_scheduler
    scheduler = None
    if config.schedule == "step":
        scheduler = schedulers.StepLR(optimizer, **config.schedule_options)
    elif config.schedule == "exponential":
        scheduler = schedulers.ExponentialLR(optimizer, **config.schedule_options)
    generator = torch.Generator().manual_seed(config.seed + 1)
    return Side(framework, model, criterion, optimizer, scheduler, generator)


def build_nnlite_model(config: Config) -> nnlite.Sequential:
    """The nnlite network of ``config`` (float32, initialised by nnlite.init as configured)."""
    model = nnlite.Sequential(*_layers(config, nnlite, NnliteScale))
    _initialise([m for m in model if isinstance(m, nnlite.Linear)], config, nnlite.init)
    return model


def build_torch_model(config: Config) -> torch.nn.Sequential:
    """The torch.nn network of ``config`` (float32, initialised by torch.nn.init as configured)."""
    model = torch.nn.Sequential(*_layers(config, torch.nn, TorchScale))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        _initialise(linears, config, torch.nn.init)
    return model


class NnliteScale(nnlite.Module):
    r"""Multiplies its input by a constant: :math:`y = \lambda x`, :math:`dy/dx = \lambda`.

    ``Scale(3)`` then ``Sigmoid`` is seed 003's sigmoid with slope 3, :math:`1/(1+e^{-3x})`.
    """

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, input: Tensor) -> Tensor:
        return input * self.factor

    def backward(self, grad_output: Tensor) -> Tensor:
        # NOTE: autograd's MulBackward0 for a Python-number factor: grad * factor.
        return grad_output * self.factor


class TorchScale(torch.nn.Module):
    r"""torch.nn's twin of :class:`NnliteScale` (autograd differentiates the product)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, input: Tensor) -> Tensor:
        return input * self.factor


def _initialise(linears: list[Any], config: Config, init: Any) -> None:
    # ``init`` is nnlite.init or torch.nn.init: both draw the same values from the same stream.
    if config.weight_init == "default":
        return
    if config.weight_init == "constant":
        for layer in linears:
            init.constant_(layer.weight, config.init_value)
            init.constant_(layer.bias, config.init_value)
        return
    gain = 1.0
    if config.weight_init == "xavier_normal_gain":
        param = config.negative_slope if config.activation == "leaky_relu" else None
        gain = init.calculate_gain(config.activation, param)
    for index, layer in enumerate(linears):
        if config.weight_init == "xavier_normal_gain" and index == len(linears) - 1:
            # Seed 002: "If no activation is applied, we sample from the standard normal".
            init.normal_(layer.weight)
            init.normal_(layer.bias)
            continue
        fan_out, fan_in = layer.weight.shape
        init.xavier_normal_(layer.weight, gain=gain)
        # NOTE: xavier_normal_'s expression for the standard deviation, so the bias gets the
        # weight's distribution (torch's xavier_normal_ refuses 1-d tensors).
        init.normal_(layer.bias, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)))


def _layers(config: Config, ns: Any, scale: type) -> list[Any]:
    activation = {
        "relu": lambda: [ns.ReLU()],
        "tanh": lambda: [ns.Tanh()],
        "sigmoid": lambda: (
            [ns.Sigmoid()]
            if config.sigmoid_slope == 1.0
            else [scale(config.sigmoid_slope), ns.Sigmoid()]
        ),
        "leaky_relu": lambda: [ns.LeakyReLU(config.negative_slope)],
        "elu": lambda: [ns.ELU(config.alpha)],
    }[config.activation]
    sizes = config.layer_sizes
    layers: list[Any] = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [ns.Linear(fan_in, fan_out), *activation()]
        if config.dropout > 0:
            layers.append(ns.Dropout(config.dropout))
    layers.append(ns.Linear(sizes[-2], sizes[-1]))
    if config.loss == "bce":
        layers.append(ns.Sigmoid())
    elif config.output_activation == "tanh":
        layers.append(ns.Tanh())
    return layers


_NNLITE_LOSSES = {"mse": nnlite.MSELoss, "ce": nnlite.CrossEntropyLoss, "bce": nnlite.BCELoss}
_TORCH_LOSSES = {
    "mse": torch.nn.MSELoss,
    "ce": torch.nn.CrossEntropyLoss,
    "bce": torch.nn.BCELoss,
}
