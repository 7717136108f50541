"""Turn the command line's TARGET strings into modules to check.

A TARGET is one of::

    pkg.mod.Class                      # constructed with no arguments
    pkg.mod.Class(3, 4, bias=False)    # literal arguments, parsed with ``ast``, never evaluated
    pkg.Sequential(pkg.Linear(2, 3), pkg.Tanh())   # nested calls of other dotted names
    path/to/file.py:Class(args)        # a file, imported with its folder first on ``sys.path``
    path/to/file.py                    # every module class the file exports
    pkg                                # every module and loss a package exports (its ``__all__``)

Nothing here evaluates user text: call arguments go through :func:`ast.literal_eval`, names are
resolved by import and attribute lookup, and the only things ever called are module classes
(a ``forward`` and a ``backward``, or a ``torch.nn.Module``), so ``os.system('...')`` is refused
rather than run. This file knows nothing about gradients; it only builds
:class:`Target` objects the CLI hands to :func:`gradcheck.check`.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
import os
import sys
import textwrap
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gradcheck.inputs import DEFAULT_FEATURES

__all__ = [
    "Target",
    "TargetError",
    "derive_arguments",
    "is_abstract",
    "is_module_class",
    "resolve",
]


_IN_NAMES = frozenset({"in_features", "in_dim", "input_dim", "input_size", "n_in", "fan_in"})
_OUT_NAMES = frozenset({"out_features", "out_dim", "output_dim", "output_size", "n_out", "fan_out"})

_FORMS = (
    "expected 'pkg.mod.Class', 'pkg.mod.Class(literal, args)', 'path/to/file.py:Class', "
    "'path/to/file.py' or a package name such as 'nnlite'"
)


class TargetError(Exception):
    """A TARGET that cannot be parsed, imported or constructed (the CLI exits with status 2)."""


@dataclass
class Target:
    """A module to check, with the name it is shown under.

    Args:
        name: a TARGET string that rebuilds the same module, e.g. ``nnlite.Linear(3, 4)``.
        build: makes a fresh instance; an exception from it is the module's own.
        error: set instead of ``build`` when the target cannot be constructed; the reason.
        skipped: set instead of ``build`` for an export that is not checked (an abstract base,
            an optimizer, a function); the reason, shown with ``-v``.
    """

    name: str
    build: Callable[[], Any] | None = None
    error: str | None = None
    skipped: str | None = None


# ---------------------------------------------------------------------------------------------
# Parsing: TARGET text -> a small tree of dotted names, calls and literals (never evaluated)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """``name(*args, **kwargs)`` where every argument is a literal or another ``_Call``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    called: bool = False


def _dotted(node: ast.AST, spec: str) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise TargetError(
            f"cannot use {ast.unparse(node)!r} in target {spec!r}: only dotted names such as "
            "'pkg.mod.Class' can be called"
        )
    parts.append(node.id)
    return ".".join(reversed(parts))


def _argument(node: ast.AST, spec: str) -> Any:
    if isinstance(node, ast.Call):
        return _call(node, spec)
    if isinstance(node, ast.Starred):
        raise TargetError(f"*-arguments are not supported in target {spec!r}; write them out")
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise TargetError(
            f"argument {ast.unparse(node)!r} in target {spec!r} is not a literal: use numbers, "
            "strings, True/False/None, tuples, lists, dicts, or calls of dotted class names"
        ) from None


def _call(node: ast.AST, spec: str) -> _Call:
    if not isinstance(node, ast.Call):
        return _Call(_dotted(node, spec))
    args = tuple(_argument(arg, spec) for arg in node.args)
    kwargs = []
    for keyword in node.keywords:
        if keyword.arg is None:
            raise TargetError(f"**-arguments are not supported in target {spec!r}; write them out")
        kwargs.append((keyword.arg, _argument(keyword.value, spec)))
    return _Call(_dotted(node.func, spec), args, tuple(kwargs), called=True)


def _parse(text: str, spec: str) -> _Call:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise TargetError(f"cannot parse target {spec!r} ({error.msg}): {_FORMS}") from None
    return _call(tree.body, spec)


def _format(value: Any) -> str:
    if isinstance(value, _Call):
        if not value.called:
            return value.name
        parts = [_format(arg) for arg in value.args]
        parts += [f"{key}={_format(arg)}" for key, arg in value.kwargs]
        return f"{value.name}({', '.join(parts)})"
    return repr(value)


# ---------------------------------------------------------------------------------------------
# Resolution: dotted names and files -> Python objects
# ---------------------------------------------------------------------------------------------


def _import(module_name: str) -> types.ModuleType | None:
    """Import ``module_name``; None if it does not exist, TargetError if importing it fails."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise TargetError(f"importing {module_name!r} failed: {error}") from None
    except Exception as error:  # the user's module raised while importing
        raise TargetError(
            f"importing {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None


def _import_dotted(name: str) -> Any:
    """Import ``name``'s first part, then take each further part as an attribute or, failing
    that, a submodule: ``nnlite.Linear``, ``nnlite.linear.Linear``, ``torch.nn``."""
    head, *rest = name.split(".")
    obj = _import(head)
    if obj is None:
        raise TargetError(
            f"no module named {head!r} (target {name!r}): install it, run from the folder that "
            "holds it, or name a file as 'path/to/file.py:Class'"
        )
    owner = head
    for attr in rest:
        if not hasattr(obj, attr) and isinstance(obj, types.ModuleType):
            submodule = _import(f"{owner}.{attr}")
            if submodule is not None:
                obj, owner = submodule, f"{owner}.{attr}"
                continue
        obj = _getattr_chain(obj, owner, [attr])
        owner = f"{owner}.{attr}"
    return obj


def _getattr_chain(obj: Any, owner: str, rest: Sequence[str]) -> Any:
    for attr in rest:
        if not hasattr(obj, attr):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(attr, names, n=3)
            hint = (
                f"; did you mean {', '.join(repr(f'{owner}.{c}') for c in close)}?" if close else ""
            )
            raise TargetError(f"{owner!r} has no attribute {attr!r}{hint}")
        obj = getattr(obj, attr)
        owner = f"{owner}.{attr}"
    return obj


def _load_file(path: str) -> types.ModuleType:
    """Import ``path`` the way ``python path`` would see its imports: its folder first on sys.path.

    The module is registered under its file stem (so its classes pickle and print sensibly) but not
    as ``__main__``: an ``if __name__ == "__main__":`` block in the file does not run.
    """
    if not os.path.isfile(path):
        raise TargetError(f"no such file {path!r}")
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if sys.path[:1] != [folder]:
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(name)
    if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") == path:
        return existing
    if existing is not None or not name.isidentifier():
        name = f"_gradcheck_file_{abs(hash(path)):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot import {path!r}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise TargetError(f"importing {path!r} failed: {type(error).__name__}: {error}") from None
    return module


def _lookup(name: str, namespace: types.ModuleType | None) -> Any:
    """Resolve a dotted name in a file's namespace first (file targets), else by import."""
    if namespace is not None:
        head, _, rest = name.partition(".")
        if hasattr(namespace, head):
            owner = os.path.basename(namespace.__file__ or namespace.__name__)
            return _getattr_chain(
                getattr(namespace, head), f"{owner}:{head}", rest.split(".") if rest else []
            )
    return _import_dotted(name)


# ---------------------------------------------------------------------------------------------
# What counts as a module, and which are abstract
# ---------------------------------------------------------------------------------------------


def _is_torch_module_class(cls: type) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and issubclass(cls, torch.nn.Module)


def is_module_class(obj: Any) -> bool:
    """Whether ``obj`` is a class following the course protocol (or a ``torch.nn.Module``).

    A class with a ``forward`` and a ``backward`` qualifies; optimizers, schedulers, functions and
    sub-packages do not.
    """
    if not inspect.isclass(obj):
        return False
    if _is_torch_module_class(obj):
        return True
    return callable(getattr(obj, "forward", None)) and callable(getattr(obj, "backward", None))


def _only_raises_not_implemented(function: Any) -> bool:
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    if not tree.body or not isinstance(tree.body[0], ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc
    exc = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def is_abstract(cls: type) -> bool:
    """Whether ``cls`` is a base class rather than a module: abstract methods, or a ``forward``
    or ``backward`` whose whole body is ``raise NotImplementedError``."""
    if inspect.isabstract(cls):
        return True
    return any(
        _only_raises_not_implemented(getattr(cls, method, None))
        for method in ("forward", "backward")
    )


# ---------------------------------------------------------------------------------------------
# Constructor arguments derived for package mode
# ---------------------------------------------------------------------------------------------


def _required(cls: type) -> tuple[list[inspect.Parameter], bool]:
    """The constructor's required parameters, and whether it is a container: it takes
    ``*modules`` (a var-positional parameter) and no ``**kwargs`` (torch modules take
    ``*args, **kwargs`` only to pass them on)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return [], False
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    required = [p for p in parameters if p.default is p.empty and p.kind not in variadic]
    kinds = {p.kind for p in parameters}
    container = (
        inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD not in kinds
    )
    return required, container


def derive_arguments(
    cls: type, prefix: str, features: int, namespace: Any, *, attr: str | None = None
) -> _Call | None:
    """Constructor arguments for ``cls`` in package mode, or None when they cannot be derived.

    ``in_features``-like parameters get the input's last dimension ``features``, ``out_features``-
    like ones ``features + 1`` (so a transposed gradient cannot hide in a square weight). A
    container taking ``*modules`` gets a small chain of the package's own ``Linear`` and ``Tanh``
    when it has them: ``Sequential(Linear(D, D + 1), Tanh(), Linear(D + 1, D))``. Any other
    required parameter is not guessed.

    Args:
        cls: the class to construct.
        prefix: how the package is spelled in target names, e.g. ``nnlite``; empty for names
            looked up in a file's namespace.
        features: the input's last dimension D.
        namespace: the package, where ``Linear`` and ``Tanh`` are looked up for chains.
        attr: the name the package exports ``cls`` under. Default: ``cls.__name__``.
    """

    def qualify(attr: str) -> str:
        return f"{prefix}.{attr}" if prefix else attr

    required, container = _required(cls)
    hidden = features + 1
    args: list[Any] = []
    for parameter in required:
        if parameter.name in _IN_NAMES:
            args.append(features)
        elif parameter.name in _OUT_NAMES:
            args.append(hidden)
        else:
            return None
    linear, tanh = getattr(namespace, "Linear", None), getattr(namespace, "Tanh", None)
    if container and not required and is_module_class(linear) and is_module_class(tanh):
        args = [
            _Call(qualify("Linear"), (features, hidden), called=True),
            _Call(qualify("Tanh"), called=True),
            _Call(qualify("Linear"), (hidden, features), called=True),
        ]
    return _Call(qualify(attr or cls.__name__), tuple(args), called=True)


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def _missing_arguments(name: str, cls: type, features: int, namespace: Any, prefix: str) -> str:
    """The message for a class named without the constructor arguments it requires."""
    required, _ = _required(cls)
    derived = derive_arguments(cls, prefix, features, namespace)
    if derived is None:
        example = _Call(name, tuple(_Call(p.name.upper()) for p in required), called=True)
    else:
        example = _Call(name, derived.args, derived.kwargs, called=True)
    return (
        f"{name} needs constructor arguments ({', '.join(p.name for p in required)}): pass them "
        f"in the target, e.g. '{_format(example)}' (quote it in the shell)"
    )


def _is_module_like(obj: Any) -> bool:
    return not inspect.isclass(obj) and is_module_class(type(obj))


def _not_a_module(name: str, obj: Any) -> TargetError:
    return TargetError(
        f"{name} is a {type(obj).__name__}, not a module: a target needs forward() and backward() "
        "methods (or must be a torch.nn.Module)"
    )


def _instantiate(value: Any, namespace: types.ModuleType | None) -> Any:
    """Turn a parsed argument tree into objects: calls of module classes are resolved and
    made; anything else that is called is refused."""
    if isinstance(value, _Call):
        obj = _lookup(value.name, namespace)
        if not is_module_class(obj):
            raise TargetError(
                f"{value.name} is not a module class: a target only ever calls classes with "
                "forward() and backward() (or torch.nn.Module subclasses), nothing else"
            )
        args = [_instantiate(a, namespace) for a in value.args]
        kwargs = {k: _instantiate(a, namespace) for k, a in value.kwargs}
        try:
            return obj(*args, **kwargs)
        except Exception as error:
            raise TargetError(
                f"constructing {_format(value)} failed: {type(error).__name__}: {error}"
            ) from None
    return value  # a literal: containers of calls do not parse (see _argument)


def _constructed(name: str, call: _Call, namespace: types.ModuleType | None) -> Target:
    """Construct ``call`` now (so a failing constructor is a usage error, not a failed check);
    the first ``build()`` hands out this instance, later ones construct afresh."""
    first = [_instantiate(call, namespace)]

    def build() -> Any:
        return first.pop() if first else _instantiate(call, namespace)

    return Target(name, build=build)


def _single(call: _Call, namespace: types.ModuleType | None, label: str, features: int) -> Target:
    """One class, call or instance, shown as ``label`` followed by the call."""
    name = label + _format(call)
    obj = _lookup(call.name, namespace)
    if isinstance(obj, types.ModuleType):
        raise TargetError(
            f"{name} is a module, not a class: name the package alone or a class in it"
        )
    if call.called:
        return _constructed(name, call, namespace)
    if not inspect.isclass(obj):
        if not _is_module_like(obj):
            raise _not_a_module(name, obj)
        return Target(name, build=lambda: obj)
    if not is_module_class(obj):
        raise TargetError(
            f"{name} is not a module class: a target needs forward() and backward() methods "
            "(or must be a torch.nn.Module)"
        )
    if is_abstract(obj):
        raise TargetError(f"{name} is an abstract base class: name one of its subclasses")
    if _required(obj)[0]:
        owner = namespace or sys.modules.get(obj.__module__)
        prefix = "" if namespace is not None else call.name.rpartition(".")[0]
        raise TargetError(_missing_arguments(name, obj, features, owner, prefix))
    return _constructed(name, _Call(call.name, called=True), namespace)


def _exports(module: types.ModuleType) -> list[str]:
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return list(exported)
    return [
        attr
        for attr, obj in vars(module).items()
        if not attr.startswith("_") and inspect.isclass(obj) and obj.__module__ == module.__name__
    ]


def _package(
    module: types.ModuleType, label: str, prefix: str, features: int, namespace: Any
) -> list[Target]:
    """Every module class ``module`` exports; ``label`` + call is how each is shown."""
    exported = _exports(module)
    targets: list[Target] = []
    seen: set[int] = set()
    for attr in exported:
        obj = getattr(module, attr, None)
        if inspect.isclass(obj) and id(obj) in seen:
            continue  # an alias of a class already listed
        seen.add(id(obj))
        qualified = f"{prefix}.{attr}" if prefix else attr
        if not is_module_class(obj):
            targets.append(Target(label + qualified, skipped="not a module class"))
            continue
        if is_abstract(obj):
            targets.append(Target(label + qualified, skipped="abstract base"))
            continue
        call = derive_arguments(obj, prefix, features, module, attr=attr)
        if call is None:
            error = _missing_arguments(label + qualified, obj, features, module, prefix)
            targets.append(Target(label + qualified, error=error))
            continue
        name = label + (_format(call) if call.args or call.kwargs else qualified)
        try:
            targets.append(_constructed(name, call, namespace))
        except TargetError as error:
            targets.append(Target(name, error=str(error)))
    if all(t.skipped for t in targets):
        raise TargetError(
            f"{label + prefix or module.__name__} exports no module classes (a class with "
            f"forward() and backward()) among {len(exported)} names; name a class instead, "
            "e.g. 'pkg.mod.Class'"
        )
    return targets


def resolve(spec: str, *, features: int = DEFAULT_FEATURES) -> list[Target]:
    """Resolve one TARGET string into the modules it names.

    Args:
        spec: the TARGET as typed on the command line.
        features: the input's last dimension D, used to derive constructor arguments in package
            mode and in the example shown when arguments are missing.

    Returns:
        One :class:`Target` for a class, call or instance; one per export for a package, module
        or file (those that cannot be constructed carry ``error``, those not checked ``skipped``).

    Raises:
        TargetError: the spec cannot be parsed, imported or constructed; the message says why
            and how to fix it.
    """
    spec = spec.strip()
    path, sep, rest = spec.rpartition(".py:")
    if sep:
        module = _load_file(path + ".py")
        return [_single(_parse(rest, spec), module, f"{path}.py:", features)]
    if spec.endswith(".py"):
        module = _load_file(spec)
        return _package(module, f"{spec}:", "", features, module)
    call = _parse(spec, spec)
    if not call.called:
        obj = _import_dotted(call.name)
        if isinstance(obj, types.ModuleType):
            return _package(obj, "", call.name, features, None)
    return [_single(call, None, "", features)]
