"""Optimizers that update (parameter, gradient) pairs in place, bit for bit as torch.optim does."""

from nnlite.optim import lr_scheduler
from nnlite.optim.adam import Adam
from nnlite.optim.flat import flatten_parameters
from nnlite.optim.lr_scheduler import ExponentialLR, StepLR
from nnlite.optim.optimizer import Optimizer
from nnlite.optim.sgd import SGD

__all__ = [
    "Adam",
    "ExponentialLR",
    "Optimizer",
    "SGD",
    "StepLR",
    "flatten_parameters",
    "lr_scheduler",
]
