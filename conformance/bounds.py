"""Where nnlite cannot reproduce torch's bits: the measured bound per configuration and why.

Each entry is listed, with its reason, in this folder's README. Everything not listed here is
compared with exact equality (``torch.equal``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.compare import Bound
from conformance.spec import Config


@dataclass(frozen=True)
class KnownBound:
    """A measured bound, the configurations it applies to, and why the bits differ."""

    applies: Callable[[Config], bool]
    bounds: dict[str, Bound]
    """Bound per kind of quantity: "loss", "gradient", "parameter", "optimizer", "output", ..."""
    reason: str


KNOWN_BOUNDS: list[KnownBound] = []


def bound_for(config: Config, kind: str) -> Bound | None:
    """The bound for ``kind`` under ``config``, or ``None`` for exact equality."""
    for known in KNOWN_BOUNDS:
        if kind in known.bounds and known.applies(config):
            return known.bounds[kind]
    return None
