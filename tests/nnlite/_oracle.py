"""torch.nn as the oracle: run a torch module forward and backward through autograd."""

from __future__ import annotations

import torch
from torch import Tensor

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


def ulp_distance(a: Tensor, b: Tensor) -> int:
    """Largest distance between a and b in units in the last place of the larger of the two."""
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.numel() == 0:
        return 0
    scale = torch.maximum(a.abs(), b.abs())
    ulp = torch.nextafter(scale, torch.full_like(scale, float("inf"))) - scale
    return int(((a - b).abs() / ulp).ceil().max().item())
