"""The package's public surface and its ground rules."""

import ast
import pathlib

import nnlite

ROOT = pathlib.Path(nnlite.__file__).parent


def test_all_is_sorted_and_complete():
    assert nnlite.__all__ == sorted(nnlite.__all__)
    assert all(hasattr(nnlite, name) for name in nnlite.__all__)
    classes = {name for name, value in vars(nnlite).items() if isinstance(value, type)}
    assert classes == {name for name in nnlite.__all__ if name[0].isupper()}
    assert {"data", "init", "optim", "training"} <= set(nnlite.__all__)


def test_nnlite_uses_no_torch_nn_autograd_optim_nor_requires_grad():
    """Reading ``x.requires_grad`` is the one use allowed: it is how nnlite detaches what it is
    given so that it never builds a graph. Setting it, in any spelling, is refused."""
    forbidden = ("torch.nn", "torch.autograd", "torch.optim")
    offenders = []
    for path in ROOT.rglob("*.py"):
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Attribute):
                if node.attr == "requires_grad" and isinstance(node.ctx, ast.Load):
                    continue
                names = [ast.unparse(node)]
            elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
                names = ["requires_grad=..."]
            else:
                continue
            for name in names:
                if (
                    any(name == f or name.startswith(f + ".") for f in forbidden)
                    or "requires_grad" in name
                ):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
