"""nnlite: a neural-network framework with hand-written backward passes, no autograd.

Every layer follows the course protocol (``forward(*input)``, ``backward(*gradwrtoutput)``,
``param()``) and reproduces torch.nn's results bit for bit on the CPU.
"""

from nnlite import data, init, optim, training
from nnlite.activation import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from nnlite.container import Sequential
from nnlite.dropout import Dropout
from nnlite.linear import Linear
from nnlite.loss import BCELoss, CrossEntropyLoss, MSELoss
from nnlite.module import Module

__all__ = [
    "BCELoss",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "data",
    "init",
    "optim",
    "training",
]

__version__ = "0.1.0"
