"""Resolution: dotted names and files -> Python objects (importing a file runs it)."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
import traceback
import types
from collections.abc import Sequence
from typing import Any

from gradcheck._target_parse import TargetError

__all__ = [
    "getattr_chain",
    "import_dotted",
    "import_named",
    "load_file",
    "load_package",
    "lookup",
]

# Resolution: dotted names and files -> Python objects
# ---------------------------------------------------------------------------------------------


def import_named(module_name: str) -> types.ModuleType | None:
    """Import ``module_name``; None if it does not exist, TargetError if importing it fails
    (the message names the file and line that raised: often a package's ``__init__.py``)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        top = (error.name or "").split(".")[0]
        hint = f"; install it (pip install {_PIP_NAMES.get(top, top)})" if top else ""
        raise TargetError(
            f"importing {module_name!r} failed: {error}{_raised_at(error)}{hint}"
        ) from None
    except Exception as error:  # the user's module raised while importing
        raise TargetError(
            f"importing {module_name!r} failed: {type(error).__name__}: {error}{_raised_at(error)}"
        ) from None


def _raised_at(error: BaseException) -> str:
    """`` (raised at pkg/__init__.py:1)``: the last frame of the user's code in the traceback."""
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if "importlib" not in f.filename
        and not f.filename.startswith("<")
        and os.sep + "gradcheck" + os.sep not in f.filename
    ]
    if not frames:
        return ""
    last = frames[-1]
    try:
        shown = os.path.relpath(last.filename)
    except ValueError:
        shown = last.filename
    return f" (raised at {shown}:{last.lineno})"


def import_dotted(name: str) -> Any:
    """Import ``name``'s first part, then take each further part as an attribute or, failing
    that, a submodule: ``nnlite.Linear``, ``nnlite.linear.Linear``, ``torch.nn``."""
    head, *rest = name.split(".")
    obj = import_named(head)
    if obj is None:
        raise TargetError(
            f"no module named {head!r} (target {name!r}): install it, run from the folder that "
            "holds it, or name a file as 'path/to/file.py:Class'"
        )
    owner = head
    for attr in rest:
        if not hasattr(obj, attr) and isinstance(obj, types.ModuleType):
            submodule = import_named(f"{owner}.{attr}")
            if submodule is not None:
                obj, owner = submodule, f"{owner}.{attr}"
                continue
        obj = getattr_chain(obj, owner, [attr])
        owner = f"{owner}.{attr}"
    return obj


def getattr_chain(obj: Any, owner: str, rest: Sequence[str]) -> Any:
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


def load_file(path: str) -> types.ModuleType:
    """Import ``path`` the way ``python path`` would see its imports: its folder first on sys.path.

    The module is registered under its file stem (so its classes pickle and print sensibly) but not
    as ``__main__``: an ``if __name__ == "__main__":`` block in the file does not run.
    """
    if not os.path.isfile(path):
        raise TargetError(f"no such file {path!r}")
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    dotted = _package_name(path)
    if dotted is not None:  # inside a package: imported as part of it (relative imports work)
        try:
            return _load_package_file(path, dotted)
        except TargetError as error:
            # A package whose __init__.py fails to import: the file alone may still import.
            try:
                return _load_plain(path, folder)
            except TargetError:
                raise error from None
    return _load_plain(path, folder)


def _load_plain(path: str, folder: str) -> types.ModuleType:
    """Import ``path`` as a top-level module, its folder first on ``sys.path``."""
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
    for attempt in range(2):
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            return module
        except ModuleNotFoundError as error:
            del sys.modules[name]
            above = _folder_holding(folder, error.name)
            if attempt == 0 and above is not None:
                sys.path.insert(1, above)  # `from module import Module`, module.py a folder up
                continue
            raise TargetError(_missing_module(path, error)) from None
        except Exception as error:
            del sys.modules[name]
            dotted = _namespace_name(path)
            if _relative_import_failed(error) and dotted is not None:
                # ``from .module import Module`` in a folder without ``__init__.py``: import
                # the file as part of that folder (a namespace package), as the dotted
                # target would.
                return _load_package_file(path, dotted)
            raise TargetError(
                f"importing {path!r} failed: {type(error).__name__}: {error}"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _relative_import_failed(error: Exception) -> bool:
    return isinstance(error, ImportError) and "relative import" in str(error)


def _namespace_name(path: str) -> str | None:
    """The dotted name of a file in folders without ``__init__.py``: from the working folder
    when the file is under it (``ee559_nn/modules/linear.py`` -> ``ee559_nn.modules.linear``),
    else its own folder's name and its stem; None when a part is not an identifier."""
    stem = os.path.splitext(path)[0]
    relative = os.path.relpath(stem, os.getcwd())
    parts = relative.split(os.sep)
    if relative.startswith(os.pardir) or len(parts) < 2:
        parts = stem.split(os.sep)[-2:]
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def _folder_holding(folder: str, name: str | None, levels: int = 3) -> str | None:
    """The nearest folder above ``folder`` holding module ``name`` (a file or a package)."""
    if not name:
        return None
    top = name.split(".")[0]
    for _ in range(levels):
        folder = os.path.dirname(folder)
        if os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isfile(
            os.path.join(folder, top, "__init__.py")
        ):
            return folder
    return None


#: pip's names for packages imported under another name.
_PIP_NAMES = {
    "cv2": "opencv-python",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "Crypto": "pycryptodome",
}


def _missing_module(path: str, error: ModuleNotFoundError) -> str:
    if not error.name:
        return f"importing {path!r} failed: {error}"
    top = error.name.split(".")[0]
    return (
        f"importing {path!r} failed: No module named {error.name!r}{_raised_at(error)}. Naming "
        f"a file imports it, and so runs its top-level imports: install {top!r} in this "
        f"environment (pip install {_PIP_NAMES.get(top, top)}), run from the folder its imports "
        "expect, or name the file that holds the layers alone"
    )


def _package_name(path: str) -> str | None:
    """``pkg.sub.layers`` for a file inside package folders (each with an ``__init__.py``)."""
    folder, stem = os.path.split(os.path.splitext(path)[0])
    parts = [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        if not package.isidentifier():
            return None
        parts.append(package)
    if len(parts) == 1 or not stem.isidentifier():
        return None
    return ".".join(reversed(parts))


def load_package(folder: str) -> types.ModuleType:
    """Import the package in ``folder`` (it has an ``__init__.py``) by its dotted name, the
    parent of its outermost package folder first on ``sys.path``."""
    init = os.path.join(os.path.abspath(folder), "__init__.py")
    dotted = _package_name(init)
    if dotted is None:
        raise TargetError(f"cannot import the package in {folder!r}: its name is not an identifier")
    return _load_package_file(init, dotted.removesuffix(".__init__"))


def _load_package_file(path: str, dotted: str) -> types.ModuleType:
    """Import a file that lives in a package by its dotted name, the package's parent folder
    first on ``sys.path``, so that its relative imports (``from .base import Module``) work."""
    root = os.path.dirname(path)
    # One folder up per dot, and one more for a package's own __init__.py.
    for _ in range(dotted.count(".") + (os.path.basename(path) == "__init__.py")):
        root = os.path.dirname(root)
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)
    existing = sys.modules.get(dotted)
    if existing is not None:
        if os.path.abspath(getattr(existing, "__file__", "") or "") == path:
            return existing
        raise TargetError(
            f"cannot import {path!r} as {dotted!r}: another module of that name is already "
            "imported; run gradcheck from a folder where the names do not clash"
        )
    module = import_named(dotted)
    if module is None:
        raise TargetError(f"cannot import {path!r} as {dotted!r}")
    return module


def lookup(name: str, namespace: types.ModuleType | None) -> Any:
    """Resolve a dotted name in a file's namespace first (file targets), else by import."""
    if namespace is not None:
        head, _, rest = name.partition(".")
        if hasattr(namespace, head):
            owner = os.path.basename(namespace.__file__ or namespace.__name__)
            return getattr_chain(
                getattr(namespace, head), f"{owner}:{head}", rest.split(".") if rest else []
            )
    return import_dotted(name)


# ---------------------------------------------------------------------------------------------
