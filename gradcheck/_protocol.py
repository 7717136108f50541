"""How the checker reads a module's methods: their signatures, whether it is a loss, and what
it refuses to drive (a backward that needs a cache, a loss that feeds a real network).

Everything here looks at signatures and names only; nothing calls the module.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch

from gradcheck._params import ADAPTER, CannotAdapt
from gradcheck.sink import fed_network

__all__ = ["METHOD_ALIASES", "alias_methods", "is_loss", "protocol_methods", "required_names"]

#: Other names of the protocol's two methods, most likely first.
METHOD_ALIASES = {
    "forward": ("fprop", "forward_pass", "forward_propagation", "feedforward", "feed_forward"),
    "backward": (
        "backprop",
        "bprop",
        "backward_pass",
        "backpropagate",
        "back_propagate",
        "backpropagation",
        "backward_propagation",
    ),
}


def protocol_methods(obj: Any) -> dict[str, str] | None:
    """For a class (or instance) with both of the protocol's methods, under their names or
    another's (``backprop``), the name of each; None when one is missing."""
    names = {}
    for method, aliases in METHOD_ALIASES.items():
        found = next((n for n in (method, *aliases) if callable(getattr(obj, n, None))), None)
        if found is None:
            return None
        names[method] = found
    return names


def alias_methods(module: Any) -> str | None:
    """Give a module whose methods have other names (``backprop``) the protocol's names, as
    attributes of the instance; return the note that says so (None: nothing to do)."""
    names = protocol_methods(module)
    if names is None or all(k == v for k, v in names.items()):
        return None
    renamed = {k: v for k, v in names.items() if k != v}
    try:
        for method, name in renamed.items():
            setattr(module, method, getattr(module, name))
    except (AttributeError, TypeError):  # __slots__, or a read-only attribute
        return None
    shown = ", ".join(f"{v}() as {k}()" for k, v in renamed.items())
    return f"no {' or '.join(f'{k}()' for k in renamed)}: {shown} was called"


#: Words in a class name that make it a loss when its backward needs no argument (the course
#: template's ``MSE.backward(self, *gradwrtoutput)``).
_LOSS_WORDS = re.compile(
    r"loss|mse|crossentropy|cross_entropy|bce|nll|criterion|hinge|mae|huber|squarederror"
    r"|meansquared|l1|l2",
    re.IGNORECASE,
)
#: Names under which a loss's forward takes its target; its prediction.
_TARGET_NAMES = frozenset(
    {
        "target",
        "targets",
        "y",
        "y_true",
        "ytrue",
        "label",
        "labels",
        "truth",
        "gt",
        "t",
        "true",
        "ground_truth",
        "expected",
        "y_target",
        "clean",
        "reference",
    }
)
_PREDICTION_NAMES = frozenset(
    {
        "prediction",
        "predictions",
        "pred",
        "preds",
        "predicted",
        "output",
        "outputs",
        "input",
        "inputs",
        "x",
        "y_pred",
        "ypred",
        "yhat",
        "y_hat",
        "logits",
        "scores",
        "estimate",
        "z",
    }
)


#: Attribute names that hold a parameter when a module has no ``param()`` at all.
def _signature(function: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _required_positional(function: Any) -> list[str] | None:
    """The names of the required positional parameters, None when ``*args`` takes any."""
    signature = _signature(function)
    if signature is None:
        return None
    names = []
    for p in signature.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            names.append(p.name)
    return names


#: Names of a forward's required mode argument.
_MODE_FLAGS = frozenset(
    {"training", "train", "is_training", "istraining", "train_mode", "is_train"}
)


def _mode_flag(forward: Any) -> str | None:
    """The name of the last required argument of ``forward`` when it is its mode flag."""
    required = _required_positional(forward)
    if required and len(required) >= 2 and required[-1].lower() in _MODE_FLAGS:
        return required[-1]
    return None


def _first_parameter(function: Any) -> str | None:
    """The name of the first parameter, None when there is none (or no signature)."""
    signature = _signature(function)
    if signature is None or not signature.parameters:
        return None
    return next(iter(signature.parameters))


def required_names(function: Any) -> list[str]:
    """The required positional parameters of ``function`` (none when it cannot be inspected;
    ``*args`` is not one)."""
    signature = _signature(function)
    if signature is None:
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]


def _needs_no_argument(function: Any) -> bool:
    signature = _signature(function)
    if signature is None:
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in signature.parameters.values()
    )


def is_loss(module: Any) -> bool:
    """Return whether ``module`` is a loss: ``forward(prediction, target)``, ``backward()``.

    A ``torch.nn`` loss (``torch.nn.modules.loss._Loss``) is a loss; so is any module whose class
    (or a base class) is named ``...Loss``, any whose ``backward`` takes no argument at all, and
    any whose ``backward`` needs no argument (``backward(self, *gradwrtoutput)``, the course
    template) while its forward takes exactly two required arguments or its class name says it
    is one (``MSE``, ``CrossEntropy``, ``BCE``, ``NLL``, ``Criterion``, ...).

    Args:
        module: the module to classify.
    """
    if isinstance(module, torch.nn.Module):
        return isinstance(module, torch.nn.modules.loss._Loss)
    if any(cls.__name__.endswith("Loss") for cls in type(module).__mro__):
        return True
    backward = getattr(module, "backward", None)
    if _LOSS_WORDS.search(type(module).__name__) and _needs_no_argument(backward):
        return True
    if backward is None:
        return False
    signature = _signature(backward)
    if signature is None:
        return False
    forward = _required_positional(getattr(module, "forward", None))
    if not signature.parameters:
        # backward(self): a loss, unless its forward takes exactly one input (a layer that
        # reads its upstream gradient from elsewhere, which the checker cannot drive).
        return forward is None or len(forward) != 1
    return forward is not None and len(forward) == 2 and _needs_no_argument(backward)


_LEARNING_RATE = re.compile(r"^(lr|learning_?rate|eta|step|optim|alpha)", re.IGNORECASE)


def _refuse_unusual_backward(module: Any, loss: bool) -> None:
    """A backward the checker cannot call as the protocol says: one that needs more than the
    upstream gradient (a cache, a learning rate), or a layer's that takes none."""
    if loss:
        return
    required = _required_positional(module.backward)
    if required is None:
        return
    steps = [n for n in required[1:] if _LEARNING_RATE.match(n)]
    if len(required) > 1 and not steps:  # a learning rate is refused with its own adapter
        raise CannotAdapt(
            f"{_describe(module)}.backward needs {len(required)} arguments "
            f"({', '.join(required)}); the protocol's backward takes the upstream gradient alone "
            "(a backward that also takes a cache or a learning rate and updates its own weights "
            f"cannot be driven as it is). Otherwise {ADAPTER}"
        )
    signature = _signature(module.backward)
    if not required and signature is not None and not signature.parameters:
        raise CannotAdapt(
            f"{_describe(module)}.backward() takes no upstream gradient, and its forward takes "
            "one input: it is neither a layer (backward(grad)) nor a loss (forward(prediction, "
            f"target)); it cannot be driven as it is. Otherwise {ADAPTER}"
        )


def _refuse_fed_network(module: Any) -> None:
    """A loss built around the network (``LossMSE(model)``) hands its gradient to it: checked
    alone, it must be built around a :class:`~gradcheck.sink.GradientSink` instead."""
    name = fed_network(module)
    if name is None or not _needs_no_argument(module.backward):
        return
    raise CannotAdapt(
        f"{_describe(module)} holds a network in self.{name}, which its backward() would "
        "hand the gradient to: check the loss alone by building it around a stand-in that "
        f"keeps the gradient, {_describe(module)}(gradcheck.GradientSink()) (the command line "
        "derives it when you name the class alone)"
    )


def _is_target_first(module: Any) -> bool:
    """Whether a loss's forward names its target first: ``forward(self, target, prediction)``."""
    names = _required_positional(getattr(module, "forward", None))
    if not names or len(names) != 2:
        return False
    first, second = (n.lower() for n in names)
    return first in _TARGET_NAMES and second in _PREDICTION_NAMES and second not in _TARGET_NAMES


def _describe(module: Any) -> str:
    return type(module).__name__
