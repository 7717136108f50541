"""torch as the oracle, and the helpers the tests that compare with it share."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

import nnlite

DTYPES = [torch.float32, torch.float64]
DTYPE_IDS = ["float32", "float64"]


def torch_forward_backward(
    module: torch.nn.Module, x: Tensor, grad: Tensor
) -> tuple[Tensor, Tensor]:
    """Return (output, input gradient) of a torch.nn module for upstream gradient ``grad``."""
    leaf = x.detach().clone().requires_grad_(True)
    out = module(leaf)
    out.backward(grad)
    return out.detach(), leaf.grad


# ----------------------------------------------------------------- optimizers (SGD, Adam tests)
PARAM_SHAPES = [(4, 3), (4,), (2, 3, 2)]


def options_id(options: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in options.items())


def twin_parameters(dtype: torch.dtype, seed: int = 0) -> tuple[list, list]:
    """Return nnlite (parameter, gradient) pairs and torch leaf tensors holding the same values."""
    generator = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=generator, dtype=dtype) for shape in PARAM_SHAPES]
    pairs = [(p, torch.zeros_like(p)) for p in params]
    torch_params = [p.clone().requires_grad_() for p in params]
    return pairs, torch_params


def set_random_gradients(pairs: list, torch_params: list, generator: torch.Generator) -> None:
    """Give both sides the same fresh gradients."""
    for (_, grad), torch_param in zip(pairs, torch_params, strict=True):
        grad.copy_(torch.randn(grad.shape, generator=generator, dtype=grad.dtype))
        torch_param.grad = grad.clone()


def assert_same_tensors(ours: list, theirs: list) -> None:
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert torch.equal(a, b.detach()), f"tensor {i} differs: max |diff| {(a - b).abs().max()}"


class TensorCalls(TorchFunctionMode):
    """Records the name of every tensor operation called under it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def one_storage(tensors: list[Tensor]) -> bool:
    return len({t.untyped_storage().data_ptr() for t in tensors}) == 1


def mlp() -> nnlite.Sequential:
    return nnlite.Sequential(nnlite.Linear(2, 25), nnlite.ReLU(), nnlite.Linear(25, 2))
