"""Where nnlite cannot reproduce torch's bits: the measured bound per configuration and why.

Each entry is listed, with its reason, in this folder's README. Everything not listed here is
compared with exact equality (``torch.equal``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from conformance.compare import Bound
from conformance.spec import Config


@dataclass(frozen=True)
class KnownBound:
    """A measured bound, the configurations it applies to, and why the bits differ."""

    applies: Callable[[Config], bool]
    bounds: dict[str, Bound]
    """Bound per kind of quantity: "loss", "gradient", "parameter", "optimizer", "output", ..."""
    reason: str
    resync: bool = False
    """Compare step by step from identical states (see ``SideBySide``'s ``resync``)."""


_BCE_LOSS_REASON = (
    "torch's binary_cross_entropy kernel takes its logs with the C library's scalar log, which no "
    "public tensor operation reproduces (torch.log is MKL's): about 1 element in 100 differs by "
    "1 ulp, so each step's loss value is within a relative 4 eps. The gradient involves no log "
    "and is exact, so parameters, gradients and optimizer state stay bit-identical."
)


def _is(activation: str | None = None, loss: str | None = None, dtype: torch.dtype | None = None):
    def applies(config: Config) -> bool:
        return (
            (activation is None or config.activation == activation)
            and (loss is None or config.loss == loss)
            and (dtype is None or config.dtype == dtype)
        )

    return applies


KNOWN_BOUNDS: list[KnownBound] = [
    KnownBound(
        _is(loss="bce", dtype=torch.float32),
        {"loss": Bound(0.0, rtol=4 * torch.finfo(torch.float32).eps)},
        _BCE_LOSS_REASON,
    ),
    KnownBound(
        _is(loss="bce", dtype=torch.float64),
        {"loss": Bound(0.0, rtol=4 * torch.finfo(torch.float64).eps)},
        _BCE_LOSS_REASON,
    ),
]


def bound_for(config: Config, kind: str) -> Bound | None:
    """The bound for ``kind`` under ``config``, or ``None`` for exact equality."""
    for known in KNOWN_BOUNDS:
        if kind in known.bounds and known.applies(config):
            return known.bounds[kind]
    return None


def needs_resync(config: Config) -> bool:
    """Whether ``config`` is compared step by step from re-aligned states."""
    return any(known.resync and known.applies(config) for known in KNOWN_BOUNDS)
