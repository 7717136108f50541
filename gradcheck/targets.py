"""Turn the command line's TARGET strings into modules to check.

A TARGET is one of::

    pkg.mod.Class                      # constructed with no arguments
    pkg.mod.Class(3, 4, bias=False)    # literal arguments, parsed with ``ast``, never evaluated
    pkg.Sequential(pkg.Linear(2, 3), pkg.Tanh())   # nested calls of other dotted names
    path/to/file.py:Class(args)        # a file, imported with its folder first on ``sys.path``
    path/to/file.py                    # every module class the file exports
    path/to/layers.py:affine           # a function pair, affine_forward and affine_backward
    pkg                                # every module and loss a package exports (its ``__all__``)

Nothing here evaluates user text: call arguments go through :func:`ast.literal_eval`, names are
resolved by import and attribute lookup, and the only things ever called are module classes
(a ``forward`` and a ``backward``, or a ``torch.nn.Module``), so ``os.system('...')`` is refused
rather than run. This file knows nothing about gradients; it only builds
:class:`Target` objects the CLI hands to :func:`gradcheck.check`.
"""

from __future__ import annotations

import inspect
import os
import pkgutil
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gradcheck._target_derive import (
    derive_arguments,
    is_abstract,
    is_model_wrapper,
    is_module_class,
    required_parameters,
)
from gradcheck._target_imports import import_dotted, load_file, load_package, lookup
from gradcheck._target_parse import Call, Items, TargetError, format_target, parse_target
from gradcheck.inputs import DEFAULT_FEATURES
from gradcheck.session import USER_ERRORS, exception_text

__all__ = [
    "Target",
    "TargetError",
    "derive_arguments",
    "is_abstract",
    "is_module_class",
    "resolve",
]


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


# Building
# ---------------------------------------------------------------------------------------------


def _missing_arguments(
    name: str, cls: type, features: int, namespace: Any, prefix: str, channels: int | None = None
) -> str:
    """The message for a class named without the constructor arguments it requires."""
    required, _ = required_parameters(cls)
    derived = derive_arguments(cls, prefix, features, namespace, channels=channels)
    if derived is None:
        example = Call(name, tuple(Call(p.name.upper()) for p in required), called=True)
    else:
        example = Call(name, derived.args, derived.kwargs, called=True)
    return (
        f"{name} needs constructor arguments ({', '.join(p.name for p in required)}): pass them "
        f"in the target, e.g. '{format_target(example)}' (quote it in the shell)"
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
    if isinstance(value, Call):
        obj = lookup(value.name, namespace)
        if not is_module_class(obj):
            raise TargetError(
                f"{value.name} is not a module class: a target only ever calls classes with "
                "forward() and backward() (or torch.nn.Module subclasses), nothing else"
            )
        args = [_instantiate(a, namespace) for a in value.args]
        kwargs = {k: _instantiate(a, namespace) for k, a in value.kwargs}
        try:
            return obj(*args, **kwargs)
        except USER_ERRORS as error:  # its exceptions, and a sys.exit() from it
            raise TargetError(
                f"constructing {format_target(value)} failed: {exception_text(error)}"
                + _variadic_hint(obj, value, namespace)
            ) from None
    if isinstance(value, Items):
        return value.kind(_instantiate(item, namespace) for item in value.items)
    return value  # a literal


def _variadic_hint(cls: Any, call: Call, namespace: types.ModuleType | None) -> str:
    """For a class called with nothing whose constructor takes ``*args``: what to pass."""
    if call.args or call.kwargs:
        return ""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return ""
    star = next((p.name for p in parameters if p.kind == p.VAR_POSITIONAL), None)
    if star is None:
        return ""
    file = getattr(namespace, "__file__", None)
    label = f"{os.path.relpath(file)}:" if file else ""
    example = label + format_target(Call(call.name, (3, 4), called=True))
    return (
        f"; its constructor takes *{star}, which gradcheck cannot guess: pass them in the "
        f"target, e.g. '{example}' (quote it in the shell)"
    )


def _constructed(name: str, call: Call, namespace: types.ModuleType | None) -> Target:
    """Construct ``call`` now (so a failing constructor is a usage error, not a failed check);
    the first ``build()`` hands out this instance, later ones construct afresh."""
    first = [_instantiate(call, namespace)]

    def build() -> Any:
        return first.pop() if first else _instantiate(call, namespace)

    return Target(name, build=build)


def _single(
    call: Call,
    namespace: types.ModuleType | None,
    label: str,
    features: int,
    channels: int | None = None,
) -> Target:
    """One class, call or instance, shown as ``label`` followed by the call."""
    name = label + format_target(call)
    obj = lookup(call.name, namespace)
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
    required, container = required_parameters(obj)
    if required:
        owner = namespace or sys.modules.get(obj.__module__)
        prefix = "" if namespace is not None else call.name.rpartition(".")[0]
        raise TargetError(_missing_arguments(name, obj, features, owner, prefix, channels))
    if container:
        raise TargetError(_empty_container(name, namespace or sys.modules.get(obj.__module__)))
    return _constructed(name, Call(call.name, called=True), namespace)


def _empty_container(name: str, namespace: Any) -> str:
    """The message for a container named alone; its example holds two of the namespace's own
    layer classes (placeholders when it has none)."""
    own = name.rpartition(":")[2].rpartition(".")[2].partition("(")[0]
    layers = (
        [
            attr
            for attr, obj in vars(namespace).items()
            if attr != own
            and inspect.isclass(obj)
            and is_module_class(obj)
            and not is_abstract(obj)
            and not required_parameters(obj)[1]
        ]
        if namespace is not None
        else []
    )
    example = ", ".join(f"{attr}(...)" for attr in layers[:2]) or "Layer1(...), Layer2(...)"
    return (
        f"{name} is a container, and empty it checks nothing: name the layers it holds, e.g. "
        f"'{name}({example})' (quote it in the shell)"
    )


def _exports(module: types.ModuleType) -> list[str]:
    """The names a module exports: its ``__all__``, else the public classes it defines (a
    package: also those its top level imports from its own submodules)."""
    exported = getattr(module, "__all__", None)
    if exported is not None:
        return list(exported)
    own = module.__name__
    inside = own + "." if hasattr(module, "__path__") else None
    return [
        attr
        for attr, obj in vars(module).items()
        if not attr.startswith("_")
        and inspect.isclass(obj)
        and (obj.__module__ == own or (inside is not None and obj.__module__.startswith(inside)))
    ]


def _package(
    module: types.ModuleType,
    label: str,
    prefix: str,
    features: int,
    namespace: Any,
    channels: int | None = None,
) -> list[Target]:
    """Every module class ``module`` exports; ``label`` + call is how each is shown. A package
    that exports nothing (an empty ``__init__.py``) has its submodules' classes checked."""
    exported = _exports(module)
    if not exported and hasattr(module, "__path__") and label == "":
        found = _submodule_targets(module, prefix, features, channels)
        if found:
            return found
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
            targets.append(
                Target(
                    label + qualified, skipped="abstract base (forward or backward not implemented)"
                )
            )
            continue
        if is_model_wrapper(obj):
            targets.append(
                Target(label + qualified, skipped="a model (train/predict), not a layer")
            )
            continue
        call = derive_arguments(obj, prefix, features, module, attr=attr, channels=channels)
        if call is None:
            error = _missing_arguments(label + qualified, obj, features, module, prefix, channels)
            targets.append(Target(label + qualified, error=error))
            continue
        if required_parameters(obj)[1] and not call.args and not call.kwargs:
            error = _empty_container(label + qualified, module)
            targets.append(Target(label + qualified, error=error))
            continue
        name = label + (format_target(call) if call.args or call.kwargs else qualified)
        try:
            targets.append(_constructed(name, call, namespace))
        except TargetError as error:
            targets.append(Target(name, error=str(error)))
    if all(t.skipped for t in targets) and hasattr(module, "__path__") and label == "":
        # An __init__.py exporting only the project's Model: the layers are in its files.
        found = _submodule_targets(module, prefix, features, channels)
        if not all(t.skipped for t in found):
            return found
    if all(t.skipped for t in targets):
        raise TargetError(
            f"{label + prefix or module.__name__} exports no module classes (a class with "
            f"forward() and backward()) among {len(exported)} names; name a class instead, "
            "e.g. 'pkg.mod.Class'"
        )
    return targets


#: Module names of scripts, not layers: importing one runs it (a course project's test.py trains
#: the whole network at import). A folder or package walk skips them; name one to check it.
_SCRIPTS = frozenset(
    {
        "test",
        "tests",
        "train",
        "training",
        "main",
        "run",
        "plot",
        "plots",
        "demo",
        "demos",
        "experiment",
        "experiments",
        "visualize",
        "visualise",
        "visualization",
        "figures",
        "evaluate",
        "evaluation",
        "eval",
        "setup",
        "conftest",
        "__main__",
        "benchmark",
        "notebook",
    }
)
_SCRIPT = "a script, not layers: importing it would run it (name the file to check it anyway)"


def _is_script(name: str) -> bool:
    lower = name.lower()
    return lower in _SCRIPTS or lower.startswith(("test_", "run_", "plot_", "train_", "main_"))


#: Folders a walk never enters: tooling, data and environments, not layers.
_NOT_CODE = frozenset(
    {"build", "dist", "docs", "doc", "data", "datasets", "venv", "env", "site-packages"}
)
#: How deep a walk goes into nested folders (a symbolic link may loop).
_DEPTH = 4


def _subfolders(folders: Any, *, packages: bool) -> list[str]:
    """The names of the folders inside ``folders`` that a walk enters: those holding Python
    files without an ``__init__.py`` (namespace packages: ``others/`` beside an empty
    ``Miniproject_2/__init__.py``), and, with ``packages``, those with one."""
    names: set[str] = set()
    for folder in folders:
        try:
            entries = [e for e in os.scandir(folder) if e.is_dir()]
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if (
                not name.isidentifier()
                or name.startswith("_")
                or name.lower() in _NOT_CODE
                or _is_script(name)
            ):
                continue
            if os.path.isfile(os.path.join(entry.path, "__init__.py")):
                if packages:
                    names.add(name)
            elif any(f.endswith(".py") for f in os.listdir(entry.path)):
                names.add(name)
    return sorted(names)


def _submodule_targets(
    package: types.ModuleType, prefix: str, features: int, channels: int | None
) -> list[Target]:
    """The module classes and function pairs of each submodule of ``package``, in name order;
    sub-packages (with or without ``__init__.py``) are walked the same way."""
    from gradcheck._function_targets import file_targets

    children = {info.name for info in pkgutil.iter_modules(package.__path__)}
    if prefix.count(".") < _DEPTH:
        children.update(_subfolders(package.__path__, packages=False))
    targets: list[Target] = []
    for child in sorted(children):
        name = f"{prefix}.{child}"
        if _is_script(child):
            targets.append(Target(name, skipped=_SCRIPT))
            continue
        try:
            module = import_dotted(name)
        except TargetError as error:
            targets.append(Target(name, error=str(error)))
            continue
        file = getattr(module, "__file__", None)
        try:
            targets += _package(module, "", name, features, None, channels)
        except TargetError as error:
            if "exports no module classes" not in str(error):
                targets.append(Target(name, error=str(error)))
        if file is not None:  # a CS231n layers.py: its function pairs, as its file names them
            targets += file_targets(module, f"{os.path.relpath(file)}:")
    return targets


def _folder(path: str, features: int, channels: int | None, depth: int = 0) -> list[Target]:
    """A folder: a package (it has an ``__init__.py``) by its dotted name, else every ``.py``
    file in it, each as a file target, and its sub-folders the same way."""
    if os.path.isfile(os.path.join(path, "__init__.py")):
        package = load_package(path)
        return _package(package, "", package.__name__, features, None, channels)
    files = sorted(f for f in os.listdir(path) if f.endswith(".py"))
    scripts = [f for f in files if _is_script(f[:-3])]
    files = [f for f in files if f not in scripts]
    if not files and not _subfolders([path], packages=True):
        raise TargetError(f"folder {path!r} holds no .py file and no package to check")
    targets = [Target(os.path.normpath(os.path.join(path, f)), skipped=_SCRIPT) for f in scripts]
    folders = _subfolders([path], packages=True) if depth < _DEPTH else []
    for spec in [os.path.normpath(os.path.join(path, f)) for f in files + folders]:
        try:
            if spec.endswith(".py"):
                targets += resolve(spec, features=features, channels=channels)
            else:
                targets += _folder(spec, features, channels, depth + 1)
        except TargetError as error:
            if "exports no module classes" not in str(error) and "holds no .py" not in str(error):
                targets.append(Target(spec, error=str(error)))
    return targets


def resolve(
    spec: str, *, features: int = DEFAULT_FEATURES, channels: int | None = None
) -> list[Target]:
    """Resolve one TARGET string into the modules it names.

    Args:
        spec: the TARGET as typed on the command line.
        channels: the input's channel count C (dim 1 of an NCHW input), for ``in_channels``-like
            arguments. Default: ``features``.
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
    if os.path.isdir(spec):
        return _folder(spec, features, channels)
    path, sep, rest = spec.rpartition(".py:")
    if sep:
        module = load_file(path + ".py")
        from gradcheck._function_targets import function_targets

        functions = function_targets(rest, module, f"{path}.py:")
        if functions is not None:
            return functions
        return [_single(parse_target(rest, spec), module, f"{path}.py:", features, channels)]
    if spec.endswith(".py"):
        module = load_file(spec)
        from gradcheck._function_targets import file_targets

        functions = file_targets(module, f"{spec}:")
        try:
            classes = _package(module, f"{spec}:", "", features, module, channels)
        except TargetError:
            if functions:
                return functions
            raise
        checked = {t.name.partition("(")[0].split(",")[0] for t in functions}
        return [t for t in classes if not (t.skipped and t.name in checked)] + functions
    call = parse_target(spec, spec)
    if not call.called:
        obj = import_dotted(call.name)
        if isinstance(obj, types.ModuleType):
            return _package(obj, "", call.name, features, None, channels)
    return [_single(call, None, "", features, channels)]
