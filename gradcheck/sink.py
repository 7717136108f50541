"""The model a loss built around one is given in a check.

Course projects often write a loss the way torch's ``loss.backward()`` reads: constructed with
the network (``LossMSE(model)``), its ``forward`` returning the loss object itself, its
``backward()`` passing the gradient on with ``self.model.backward(grad)``. To check the loss
alone, build it around a :class:`GradientSink`, which keeps the gradient it is handed::

    gradcheck.check(LossMSE(gradcheck.GradientSink()))

The command line derives it for a loss whose constructor takes ``model`` (or ``net``,
``network``), and the checker reads the gradient from it when ``backward()`` returns nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODEL_NAMES", "GradientSink", "fed_network", "sink_of"]

#: Constructor parameters (and attributes) of a loss that hold the network it feeds.
MODEL_NAMES = frozenset({"model", "net", "network", "nn", "module", "mlp"})


class GradientSink:
    """A stand-in network: ``forward`` returns its input, ``backward`` keeps its gradient."""

    def __init__(self) -> None:
        #: The last gradient ``backward`` was handed, None before the first.
        self.grad: Any = None

    def forward(self, x: Any) -> Any:
        return x

    def backward(self, grad: Any) -> Any:
        self.grad = grad
        return grad

    def param(self) -> list:
        return []

    def __repr__(self) -> str:
        return "GradientSink()"


def sink_of(module: Any) -> GradientSink | None:
    """The :class:`GradientSink` among ``module``'s attributes, if any."""
    values = getattr(module, "__dict__", {}).values()
    return next((v for v in values if isinstance(v, GradientSink)), None)


def fed_network(module: Any) -> str | None:
    """The attribute holding a network (not a sink) that a loss's backward() would feed:
    ``self.model``, ``self.net``, ... with forward() and backward(); None when there is none."""
    for name, value in getattr(module, "__dict__", {}).items():
        if (
            name.lstrip("_").lower() in MODEL_NAMES
            and not isinstance(value, GradientSink)
            and callable(getattr(value, "backward", None))
            and callable(getattr(value, "forward", None))
        ):
            return name
    return None
