"""The seeds' network, its data and its training step, built twice: in nnlite and in torch.nn.

The network is the one every seed report trains: 2 inputs, three hidden layers of 25 units with
ReLU, 2 outputs, MSE against one-hot targets of the disk data set. The nnlite twin loads the torch
twin's state dict, and both read the same input and target tensors, so a benchmark pair times the
same computation; :func:`steps_agree` and :func:`forwards_agree` say whether it also gives the same
bits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

import nnlite
import nnlite.optim
from nnlite.data import disk_dataset, one_hot
from nnlite.training import train_step

LAYER_SIZES = (2, 25, 25, 25, 2)
BATCH_SIZES = (1, 25, 1_000, 100_000)
OPTIMIZERS = ("sgd", "adam")
FRAMEWORKS = ("nnlite", "torch")
SGD_LR = 0.01
"""The seeds' learning rate for SGD; Adam keeps torch's default (1e-3)."""

Step = Callable[[Tensor, Tensor], float]
"""A training step: inputs and targets in, the loss (``loss.item()``) out."""
Forward = Callable[[Tensor], Tensor]


def torch_network(*, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Sequential:
    """The seeds' network in torch.nn, initialised from ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True)):
        if i:
            layers.append(torch.nn.ReLU())
        layers.append(torch.nn.Linear(fan_in, fan_out, dtype=dtype))
    return torch.nn.Sequential(*layers)


def nnlite_twin(reference: torch.nn.Module) -> nnlite.Module:
    """An nnlite copy of a torch.nn ``Linear``, ``ReLU`` or ``Sequential`` of them, same bits."""
    twin = _nnlite_layout(reference)
    twin.load_state_dict({k: v.detach().clone() for k, v in reference.state_dict().items()})
    return twin


def _nnlite_layout(reference: torch.nn.Module) -> nnlite.Module:
    if isinstance(reference, torch.nn.Sequential):
        return nnlite.Sequential(*(_nnlite_layout(module) for module in reference))
    if isinstance(reference, torch.nn.Linear):
        return nnlite.Linear(
            reference.in_features,
            reference.out_features,
            bias=reference.bias is not None,
            dtype=reference.weight.dtype,
        )
    if isinstance(reference, torch.nn.ReLU):
        return nnlite.ReLU()
    raise TypeError(f"no nnlite twin for {reference!r}; expected Linear, ReLU or Sequential")


def twin_networks(
    *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[nnlite.Sequential, torch.nn.Sequential]:
    """The seeds' network in both frameworks, with the same parameter bits."""
    reference = torch_network(seed=seed, dtype=dtype)
    return nnlite_twin(reference), reference


def dataset(n: int, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """``n`` points of the disk data set and their one-hot targets, drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    inputs, labels = disk_dataset(n, generator=generator, dtype=dtype)
    return inputs, one_hot(labels, num_classes=2, dtype=dtype)


def nnlite_step(net: nnlite.Module, optimizer: str) -> Step:
    """nnlite's training step, the one users call: :func:`nnlite.training.train_step`.

    It runs ``net.backward(grad, free_cache=True, input_grad=False)``, the work autograd does for
    the torch twin: each layer's cache goes as soon as its backward has run, and the input (data)
    gets no gradient.
    """
    criterion = nnlite.MSELoss()
    # One flat buffer for parameters and one for gradients: the optimizer then updates all of them
    # in a few tensor calls. Same bits (elementwise operations do not care how they are grouped).
    nnlite.optim.flatten_parameters(net.param())
    opt = _optimizer(nnlite.optim, optimizer, net.param())
    return functools.partial(train_step, net, criterion, opt)


def torch_step(net: torch.nn.Module, optimizer: str) -> Step:
    """The same training step with torch.nn, autograd and torch.optim, as a user writes it."""
    criterion = torch.nn.MSELoss()
    opt = _optimizer(torch.optim, optimizer, net.parameters())

    def step(inputs: Tensor, targets: Tensor) -> float:
        opt.zero_grad()
        loss = criterion(net(inputs), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def training_step(framework: str, optimizer: str, dtype: torch.dtype = torch.float32) -> Step:
    """The training step of a fresh twin in ``framework`` ("nnlite" or "torch")."""
    mine, reference = twin_networks(dtype=dtype)
    if framework == "nnlite":
        return nnlite_step(mine, optimizer)
    if framework == "torch":
        return torch_step(reference, optimizer)
    raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")


def inference(framework: str, dtype: torch.dtype = torch.float32) -> Forward:
    """The forward pass in evaluation mode of a fresh twin in ``framework``; torch's in no_grad."""
    mine, reference = twin_networks(dtype=dtype)
    if framework == "nnlite":
        return mine.eval()
    if framework == "torch":
        reference.eval()

        def forward(inputs: Tensor) -> Tensor:
            with torch.no_grad():
                return reference(inputs)

        return forward
    raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")


def steps_agree(optimizer: str, inputs: Tensor, targets: Tensor, *, steps: int = 3) -> bool:
    """Whether ``steps`` training steps give the same losses and parameters, bit for bit."""
    mine, reference = twin_networks(dtype=inputs.dtype)
    mine_step = nnlite_step(mine, optimizer)
    reference_step = torch_step(reference, optimizer)
    for _ in range(steps):
        if mine_step(inputs, targets) != reference_step(inputs, targets):
            return False
    theirs = reference.state_dict()
    return all(torch.equal(value, theirs[key]) for key, value in mine.state_dict().items())


def forwards_agree(inputs: Tensor) -> bool:
    """Whether both twins map ``inputs`` to the same bits in inference."""
    dtype = inputs.dtype
    return torch.equal(inference("nnlite", dtype)(inputs), inference("torch", dtype)(inputs))


def _optimizer(namespace, name: str, params):  # noqa: ANN001, ANN202 (either framework)
    if name == "sgd":
        return namespace.SGD(params, lr=SGD_LR)
    if name == "adam":
        return namespace.Adam(params)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
