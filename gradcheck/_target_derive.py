"""Which classes are modules, which are abstract, and the constructor arguments package mode
derives for them (sizes from the input, a small network for a container)."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from gradcheck._target_parse import Call, Items
from gradcheck.sink import MODEL_NAMES

__all__ = [
    "derive_arguments",
    "is_abstract",
    "is_model_wrapper",
    "is_module_class",
    "required_parameters",
]

_IN_NAMES = frozenset(
    {
        "in_features",
        "in_feature",
        "in_dim",
        "input_dim",
        "input_size",
        "in_size",
        "n_in",
        "nb_in",
        "dim_in",
        "d_in",
        "fan_in",
        "nin",
        "num_inputs",
        "n_inputs",
        "input_features",
        "nb_input",
        "n_input",
        "input_dimension",
        "in_nodes",
        "size_in",
        "inputs",
        "input_units",
        "in_units",
    }
)
_OUT_NAMES = frozenset(
    {
        "out_features",
        "out_feature",
        "out_dim",
        "output_dim",
        "output_size",
        "out_size",
        "n_out",
        "nb_out",
        "dim_out",
        "d_out",
        "fan_out",
        "nout",
        "num_outputs",
        "n_outputs",
        "output_features",
        "nb_output",
        "n_output",
        "output_dimension",
        "out_nodes",
        "size_out",
        "outputs",
        "output_units",
        "out_units",
        "hidden_size",
        "units",
        "n_neurons",
        "num_neurons",
        "neurons",
        "n_units",
    }
)
_IN_CHANNELS = frozenset(
    {
        "in_channels",
        "in_channel",
        "in_ch",
        "input_channels",
        "c_in",
        "channels_in",
        "in_chans",
        "nb_in_channels",
        "n_in_channels",
        "ch_in",
        "inchannels",
    }
)
_OUT_CHANNELS = frozenset(
    {
        "out_channels",
        "out_channel",
        "out_ch",
        "output_channels",
        "c_out",
        "channels_out",
        "out_chans",
        "nb_out_channels",
        "n_out_channels",
        "ch_out",
        "outchannels",
    }
)
#: Other constructor parameters given a value that keeps a small NCHW input meaningful.
_FIXED = {
    "kernel_size": 3,
    "kernel": 3,
    "k": 3,
    "kernel_shape": 3,
    "ksize": 3,
    "filter_size": 3,
    "stride": 1,
    "padding": 1,
    "pad": 1,
    "dilation": 1,
    "groups": 1,
    "scale_factor": 2,
    "scale": 2,
    "factor": 2,
    "upscale_factor": 2,
    # Not torch's defaults: a slope of 0.01 or an alpha of 1 would hide a missing factor.
    "negative_slope": 0.1,
    "slope": 0.1,
    "leak": 0.1,
    "alpha": 0.5,
    "p": 0.5,
    "drop_prob": 0.5,
    "dropout": 0.5,
    "prob": 0.5,
    "rate": 0.5,
    # A layer named for printing: Linear("fc1", 3, 4).
    "name": "layer",
}
#: Constructor parameters that take one module to wrap (a skip connection, a residual block):
#: they get the package's activation, which keeps the shape.
_WRAPPED = frozenset(
    {"module", "layer", "block", "inner", "submodule", "sublayer", "net", "fn", "function"}
)
#: Methods a container is filled with after construction (``model.add(Linear(2, 3))``).
_ADDERS = ("add", "add_layer", "append")
#: Words in a class name that say it holds layers: only such a class taking ``*args`` (or
#: filled by ``add()``) is built as a container, not a ``TanH(*args)`` that ignores them.
_CONTAINER_WORDS = (
    "sequential",
    "seq",
    "container",
    "net",
    "model",
    "block",
    "chain",
    "stack",
    "compose",
    "layers",
    "list",
    "pipeline",
    "graph",
    "mlp",
)
#: Constructor parameters that take the list of layers of a container.
_LAYER_LISTS = frozenset(
    {
        "layers",
        "modules",
        "sequence",
        "seq",
        "children",
        "blocks",
        "layer_list",
        "module_list",
        "list_of_modules",
        "args",
        "components",
        "operations",
    }
)
#: The package's classes a container's derived chain is built from, most likely first.
_DENSE = ("Linear", "FullyConnected", "Dense", "FC", "LinearLayer", "Fully_Connected")
_CONV = ("Conv2d", "Conv2D", "Convolution", "Conv", "Convolution2d")
_ACTIVATIONS = ("Tanh", "ReLU", "Relu", "Sigmoid", "LeakyReLU")

# What counts as a module, and which are abstract
# ---------------------------------------------------------------------------------------------


def _is_torch_module_class(cls: type) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and issubclass(cls, torch.nn.Module)


def is_module_class(obj: Any) -> bool:
    """Whether ``obj`` is a class following the course protocol (or a ``torch.nn.Module``).

    A class with a ``forward`` and a ``backward`` qualifies, and so does a loss written as a value
    and a gradient method (``loss()`` and ``dloss()``, see :mod:`gradcheck._loss_pairs`);
    optimizers, schedulers, functions and sub-packages do not.
    """
    if not inspect.isclass(obj):
        return False
    if _is_torch_module_class(obj):
        return True
    from gradcheck._protocol import protocol_methods

    if protocol_methods(obj) is not None:  # forward and backward, or backprop() ...
        return True
    from gradcheck._loss_pairs import loss_pair  # a loss written as loss() and dloss()

    return loss_pair(obj) is not None


def _is_stub(function: Any) -> bool:
    """Whether ``function``'s whole body (past its docstring) is ``raise NotImplementedError``,
    ``pass``, ``...`` or a bare ``return``: a base class's placeholder, not an implementation."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return False
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return True
    if len(body) != 1:
        return False
    statement = body[0]
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return statement.value.value is Ellipsis
    if isinstance(statement, ast.Return):
        return statement.value is None or (
            isinstance(statement.value, ast.Constant) and statement.value.value is None
        )
    if not isinstance(statement, ast.Raise) or statement.exc is None:
        return False
    exc = statement.exc
    exc = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def is_abstract(cls: type) -> bool:
    """Whether ``cls`` is a base class rather than a module: abstract methods, or a ``forward``
    or ``backward`` (its own or inherited) whose whole body is ``raise NotImplementedError``,
    ``pass`` or ``...``."""
    if inspect.isabstract(cls):
        return True
    from gradcheck._loss_pairs import loss_pair

    # A loss written as loss_value() and loss_grad() under a base's placeholder forward and
    # backward is judged by its pair.
    methods: tuple[str | None, ...] = loss_pair(cls) or ("forward", "backward")
    return any(_is_stub(getattr(cls, method, None)) for method in methods if method)


# ---------------------------------------------------------------------------------------------
# Constructor arguments derived for package mode
# ---------------------------------------------------------------------------------------------


def required_parameters(cls: type) -> tuple[list[inspect.Parameter], bool]:
    """The constructor's required parameters, and whether it is a container: its name says it
    holds layers (``Sequential``, ``Net``, ``Block``, ...) and it takes ``*modules`` (with no
    ``**kwargs``: torch modules take ``*args, **kwargs`` only to pass them on) or is filled by
    ``add()``; or it takes one required list of layers (``layers``, ``modules``, ...)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return [], False
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    required = [p for p in parameters if p.default is p.empty and p.kind not in variadic]
    kinds = {p.kind for p in parameters}
    holds = any(word in cls.__name__.lower() for word in _CONTAINER_WORDS)
    container = _takes_layer_list(required) or (
        holds
        and (
            (
                inspect.Parameter.VAR_POSITIONAL in kinds
                and inspect.Parameter.VAR_KEYWORD not in kinds
            )
            or (
                not required
                and not _is_torch_module_class(cls)
                and any(callable(getattr(cls, m, None)) for m in _ADDERS)
            )
        )
    )
    return required, container


def is_model_wrapper(cls: type) -> bool:
    """Whether ``cls`` is a project's model (the course's ``Model`` with ``train`` and
    ``predict``, or ``load_pretrained_model``), not a layer: package mode skips it."""
    return callable(getattr(cls, "load_pretrained_model", None)) or (
        callable(getattr(cls, "predict", None)) and callable(getattr(cls, "train", None))
    )


def _takes_layer_list(required: list[inspect.Parameter]) -> bool:
    return len(required) == 1 and required[0].name.lower() in _LAYER_LISTS


def _first_class(namespace: Any, names: Sequence[str]) -> str | None:
    for name in names:
        if is_module_class(getattr(namespace, name, None)) and not is_abstract(
            getattr(namespace, name)
        ):
            return name
    return None


_SIZE_WORDS = frozenset(
    {
        "size",
        "dim",
        "dims",
        "features",
        "feature",
        "units",
        "neurons",
        "nodes",
        "channels",
        "channel",
        "ch",
        "nb",
        "n",
        "num",
        "number",
        "width",
        "layer",
        "len",
        "length",
        "count",
    }
)


def _side(name: str) -> str | None:
    """``"in"`` or ``"out"`` for a size spelled any other way: ``input_layer_size``,
    ``nb_of_inputs``, ``size_output``, ``num_in_units``; None for anything else."""
    words = set(name.replace("-", "_").split("_"))
    if not words & _SIZE_WORDS:
        return None
    ins = words & {"in", "input", "inputs"}
    outs = words & {"out", "output", "outputs"}
    if ins and not outs:
        return "in"
    if outs and not ins:
        return "out"
    return None


def _sized(
    cls: type, name: str, size_in: int, size_out: int, activation: Call | None = None
) -> Call | None:
    """``name(...)`` with every required parameter derived (and the sizes a constructor leaves
    at ``None`` by default, as keywords), or None when one cannot be."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return Call(name, (), called=True)
    args: list[Any] = []
    kwargs: list[tuple[str, Any]] = []
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        key = parameter.name.lower()
        if key in _IN_NAMES or key in _IN_CHANNELS or _side(key) == "in":
            value: Any = size_in
        elif key in _OUT_NAMES or key in _OUT_CHANNELS or _side(key) == "out":
            value = size_out
        elif key in _FIXED:
            value = _FIXED[key]
        elif key in MODEL_NAMES and _feeds_a_network(cls):
            value = Call("gradcheck.GradientSink", called=True)  # LossMSE(model)
        elif key in _WRAPPED and activation is not None:
            value = activation
        elif key == "inplace" and parameter.default is True:
            # torch's default: an in-place layer writes into its input by design.
            kwargs.append((parameter.name, False))
            continue
        elif parameter.default is parameter.empty:
            return None
        else:
            continue
        if parameter.default is parameter.empty:
            args.append(value)
        elif parameter.default is None and key not in _WRAPPED:
            kwargs.append((parameter.name, value))  # None would break it (None + None)
    return Call(name, tuple(args), tuple(kwargs), called=True)


def _feeds_a_network(cls: type) -> bool:
    """Whether ``cls`` is a loss that feeds a network: ``backward(self)`` alone, or a name that
    says loss (``LossMSE``, ``CrossEntropy``) and a backward needing no argument."""
    from gradcheck._protocol import _LOSS_WORDS

    try:
        parameters = list(inspect.signature(cls.backward).parameters.values())[1:]
    except (AttributeError, TypeError, ValueError):
        return False
    if not parameters:
        return True
    return bool(_LOSS_WORDS.search(cls.__name__)) and all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters
    )


def _chain(prefix: str, namespace: Any, features: int, channels: int) -> list[Call] | None:
    """A small network of the package's own classes for a container to hold: dense layers and
    an activation, ``Linear(D, D + 1), Tanh(), Linear(D + 1, D)``, or, in a package of
    convolutions, ``Conv2d(C, C + 1, 3, ...), ReLU(), Conv2d(C + 1, C, 3, ...)``."""

    def qualify(attr: str) -> str:
        return f"{prefix}.{attr}" if prefix else attr

    activation = _first_class(namespace, _ACTIVATIONS)
    if activation is None or required_parameters(getattr(namespace, activation))[0]:
        return None
    for names, size in ((_DENSE, features), (_CONV, channels)):
        layer = _first_class(namespace, names)
        if layer is None:
            continue
        cls = getattr(namespace, layer)
        first = _sized(cls, qualify(layer), size, size + 1)
        last = _sized(cls, qualify(layer), size + 1, size)
        if first is not None and last is not None:
            return [first, Call(qualify(activation), called=True), last]
    return None


def derive_arguments(
    cls: type,
    prefix: str,
    features: int,
    namespace: Any,
    *,
    attr: str | None = None,
    channels: int | None = None,
) -> Call | None:
    """Constructor arguments for ``cls`` in package mode, or None when they cannot be derived.

    ``in_features``-like parameters (``in_dim``, ``n_in``, ``nb_in``, ``input_size``, ...) get
    the input's last dimension ``features``, ``out_features``-like ones ``features + 1`` (so a
    transposed gradient cannot hide in a square weight); ``in_channels``-like ones ``channels``
    and ``out_channels``-like ones ``channels + 1``; ``kernel_size`` 3, ``stride`` 1,
    ``padding`` 1, ``scale_factor`` 2. A container taking ``*modules`` (or one list of layers)
    gets a small chain of the package's own classes when it has them:
    ``Sequential(Linear(D, D + 1), Tanh(), Linear(D + 1, D))``, or one of convolutions. Any
    other required parameter is not guessed.

    Args:
        cls: the class to construct.
        prefix: how the package is spelled in target names, e.g. ``nnlite``; empty for names
            looked up in a file's namespace.
        features: the input's last dimension D.
        namespace: the package, where the chain's classes are looked up.
        attr: the name the package exports ``cls`` under. Default: ``cls.__name__``.
        channels: the input's channel count C. Default: ``features``.
    """
    name = f"{prefix}.{attr or cls.__name__}" if prefix else attr or cls.__name__
    channels = features if channels is None else channels
    required, container = required_parameters(cls)
    if container:
        chain = _chain(prefix, namespace, features, channels)
        if _takes_layer_list(required):
            return None if chain is None else Call(name, (Items(tuple(chain), list),), called=True)
        if not required:
            return Call(name, tuple(chain or ()), called=True)
        # Sequential(name, *layers): the required arguments derived, then the layers.
        sized = _sized(cls, name, features, features + 1)
        if sized is None or chain is None:
            return None
        return Call(name, sized.args + tuple(chain), sized.kwargs, called=True)
    try:
        names = {p.lower() for p in inspect.signature(cls).parameters}
    except (TypeError, ValueError):
        names = set()
    conv = bool(names & (_IN_CHANNELS | _OUT_CHANNELS))
    size = channels if conv else features
    activation = _first_class(namespace, _ACTIVATIONS)
    wrapped = None
    if activation is not None and not required_parameters(getattr(namespace, activation))[0]:
        wrapped = Call(f"{prefix}.{activation}" if prefix else activation, called=True)
    return _sized(cls, name, size, size + 1, wrapped)


# ---------------------------------------------------------------------------------------------
