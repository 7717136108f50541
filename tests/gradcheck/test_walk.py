"""Folder and package walks as course projects lay them out: layers in sub-folders without an
``__init__.py`` (namespace packages) that import each other relatively, CS231n's function pairs
inside a package, and what a package prints at import shown once, not once per module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gradcheck
from gradcheck.cli import main
from gradcheck.targets import resolve

BASE = (
    "class Module:\n"
    "    def forward(self, *input):\n        raise NotImplementedError\n"
    "    def backward(self, *gradwrtoutput):\n        raise NotImplementedError\n"
)
TANH = (
    "import torch\nfrom .base import Module\n\n"
    "class Tanh(Module):\n"
    "    def forward(self, x):\n        self.y = torch.tanh(x)\n        return self.y\n"
    "    def backward(self, grad):\n        return grad * (1 - self.y{power})\n"
)
MSE = (
    "from ..layers.base import Module\n\n"
    "class MSE(Module):\n"
    "    def forward(self, prediction, target):\n"
    "        self.d = prediction - target\n        return (self.d**2).mean()\n"
    "    def backward(self):\n        return 2 * self.d / self.d.numel()\n"
)


def _project(root: Path, *, package: bool) -> Path:
    """``framework/`` (with an empty ``__init__.py`` when ``package``), its layers in
    ``layers/`` and its losses in ``losses/``, neither with an ``__init__.py``; the loss imports
    the base two levels up, the layer from its own folder."""
    framework = root / "framework"
    for folder in ("layers", "losses"):
        (framework / folder).mkdir(parents=True)
    if package:
        (framework / "__init__.py").write_text("")
    (framework / "layers" / "base.py").write_text(BASE)
    (framework / "layers" / "tanh.py").write_text(TANH.format(power="**2"))
    (framework / "layers" / "bad_tanh.py").write_text(
        TANH.format(power="").replace("Tanh", "BadTanh")
    )
    (framework / "losses" / "mse.py").write_text(MSE)
    return framework


def _names(targets) -> list[str]:
    return sorted(t.name for t in targets if not t.skipped)


@pytest.mark.parametrize("package", [True, False], ids=["empty-init", "no-init"])
def test_layers_in_sub_folders_without_init_are_found_and_checked(
    tmp_path, monkeypatch, isolated_imports, package
):
    _project(tmp_path, package=package)
    monkeypatch.chdir(tmp_path)
    targets = resolve("framework")
    assert not [t for t in targets if t.error], [t.error for t in targets if t.error]
    passed = {t.name: gradcheck.check(t.build()).passed for t in targets if not t.skipped}
    # package: dotted names; plain folders: file targets, imported as part of their folders
    expected = (
        {
            "framework.layers.bad_tanh.BadTanh": False,
            "framework.layers.tanh.Tanh": True,
            "framework.losses.mse.MSE": True,
        }
        if package
        else {
            "framework/layers/bad_tanh.py:BadTanh": False,
            "framework/layers/tanh.py:Tanh": True,
            "framework/losses/mse.py:MSE": True,
        }
    )
    assert passed == expected


def test_a_file_in_a_folder_without_init_keeps_its_relative_imports(
    tmp_path, monkeypatch, isolated_imports
):
    _project(tmp_path, package=False)
    monkeypatch.chdir(tmp_path)
    (loss,) = resolve("framework/losses/mse.py")
    assert loss.name == "framework/losses/mse.py:MSE"
    assert gradcheck.check(loss.build()).passed
    assert _names(resolve("framework/layers")) == [
        "framework/layers/bad_tanh.py:BadTanh",
        "framework/layers/tanh.py:Tanh",
    ]


def test_a_walk_skips_script_data_and_private_folders(tmp_path, monkeypatch, isolated_imports):
    framework = _project(tmp_path, package=True)
    for folder in ("tests", "data", "_private", "venv"):
        (framework / folder).mkdir()
        (framework / folder / "boom.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.chdir(tmp_path)
    targets = resolve("framework")
    assert not [t for t in targets if t.error]
    assert len(_names(targets)) == 3


PAIRS = (
    "import numpy as np\n\n"
    "def affine_forward(x, w, b):\n"
    "    out = x.reshape(x.shape[0], -1) @ w + b\n    return out, (x, w, b)\n\n"
    "def affine_backward(dout, cache):\n"
    "    x, w, b = cache\n"
    "    dx = (dout @ w.T).reshape(x.shape)\n"
    "    return dx, x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)\n\n"
    "def max_pool_forward_naive(x, pool_param):\n"
    "    ph, pw, s = pool_param['pool_height'], pool_param['pool_width'], pool_param['stride']\n"
    "    N, C, H, W = x.shape\n"
    "    assert (H - ph) % s == 0, 'Pool height mismatch'\n"
    "    Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s\n"
    "    out = np.zeros((N, C, Ho, Wo))\n"
    "    for i in range(Ho):\n"
    "        for j in range(Wo):\n"
    "            out[:, :, i, j] = x[:, :, i*s:i*s+ph, j*s:j*s+pw].max(axis=(2, 3))\n"
    "    return out, (x, pool_param)\n\n"
    "def max_pool_backward_naive(dout, cache):\n"
    "    x, pool_param = cache\n"
    "    ph, pw, s = pool_param['pool_height'], pool_param['pool_width'], pool_param['stride']\n"
    "    dx = np.zeros_like(x)\n"
    "    for i in range(dout.shape[2]):\n"
    "        for j in range(dout.shape[3]):\n"
    "            window = x[:, :, i*s:i*s+ph, j*s:j*s+pw]\n"
    "            top = window == window.max(axis=(2, 3), keepdims=True)\n"
    "            dx[:, :, i*s:i*s+ph, j*s:j*s+pw] += top * dout[:, :, i, j][:, :, None, None]\n"
    "    return dx\n"
)


def test_a_cs231n_package_walk_finds_the_function_pairs_of_its_files(
    tmp_path, monkeypatch, isolated_imports
):
    package = tmp_path / "cs231n"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(PAIRS)
    monkeypatch.chdir(tmp_path)
    targets = resolve("cs231n")
    names = [t.name.partition("(")[0] for t in targets]
    assert names == ["cs231n/layers.py:affine_forward", "cs231n/layers.py:max_pool_forward_naive"]
    reports = [gradcheck.check(t.build()) for t in targets]
    assert all(r.passed for r in reports), reports
    # A 2x2 pool of stride 2 refuses the guessed side 5; side 4 is drawn, and the report says so.
    assert any("first image side the layer took (it refused 5)" in n for n in reports[1].notes)


@pytest.mark.isolated
def test_what_a_package_prints_at_import_is_shown_once(tmp_path, monkeypatch, capsys):
    package = tmp_path / "chatty"
    package.mkdir()
    (package / "__init__.py").write_text("print('hello from chatty')\n")
    for name in ("one", "two", "three"):
        (package / f"{name}.py").write_text(
            TANH.format(power="**2")
            .replace(".base import Module", ".base import Module as M")
            .replace("class Tanh(Module)", f"class Tanh{name.title()}(M)")
        )
    (package / "base.py").write_text(BASE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    status = main(["chatty", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    outputs = [t.get("output", "") for t in document["targets"]]
    assert len(outputs) == 3
    assert sum("hello from chatty" in o for o in outputs) == 1
    assert "printed while importing chatty" in outputs[0]


def test_a_package_exporting_only_its_model_has_its_files_walked(
    tmp_path, monkeypatch, isolated_imports
):
    package = tmp_path / "project"
    package.mkdir()
    (package / "__init__.py").write_text("from .model import Model\n")
    (package / "model.py").write_text(
        "from .base import Module\nfrom .tanh import Tanh\n\n"
        "class Model:\n"
        "    def load_pretrained_model(self):\n        pass\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, g):\n        return g\n"
    )
    (package / "base.py").write_text(BASE)
    (package / "tanh.py").write_text(TANH.format(power="**2"))
    monkeypatch.chdir(tmp_path)
    assert _names(resolve("project")) == ["project.tanh.Tanh"]


def test_a_file_whose_package_init_fails_is_imported_alone(tmp_path, monkeypatch, isolated_imports):
    package = tmp_path / "work"
    package.mkdir()
    (package / "__init__.py").write_text("import torch.empty as empty\n")  # fails
    (package / "layers.py").write_text(
        "class Tanh:\n"
        "    def forward(self, x):\n        self.y = x.tanh()\n        return self.y\n"
        "    def backward(self, grad):\n        return grad * (1 - self.y**2)\n"
    )
    monkeypatch.chdir(tmp_path)
    (target,) = resolve("work/layers.py")
    assert gradcheck.check(target.build()).passed


def test_an_import_error_names_the_file_and_line_that_raised(
    tmp_path, monkeypatch, isolated_imports
):
    from gradcheck.targets import TargetError

    package = tmp_path / "work"
    package.mkdir()
    (package / "__init__.py").write_text("X = 1\nimport not_installed_anywhere\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError) as raised:
        resolve("work")
    assert "raised at work/__init__.py:2" in str(raised.value)


def test_a_missing_package_is_named_as_pip_knows_it(tmp_path, monkeypatch, isolated_imports):
    from gradcheck.targets import TargetError

    (tmp_path / "vision.py").write_text("import cv2\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TargetError, match="pip install opencv-python"):
        resolve("vision.py")


def test_a_template_stub_pair_is_not_implemented_rather_than_failed(tmp_path, isolated_imports):
    path = tmp_path / "layers.py"
    path.write_text(
        "def affine_forward(x, w, b):\n"
        "    out, cache = None, None\n"
        "    # TODO: implement the affine forward pass\n"
        "    return out, cache\n\n"
        "def affine_backward(dout, cache):\n"
        "    dx, dw, db = None, None, None\n"
        "    return dx, dw, db\n"
    )
    (target,) = resolve(f"{path}")
    report = gradcheck.check(target.build())
    assert report.unsupported is not None and "not implemented yet" in report.unsupported


def test_a_constructor_taking_star_args_says_what_to_pass(tmp_path, isolated_imports):
    path = tmp_path / "models.py"
    path.write_text(
        "class Linear:\n"
        "    def __init__(self, *model_params):\n"
        "        self.n_in, self.n_out = model_params[0], model_params[1]\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, g):\n        return g\n"
    )
    (target,) = resolve(str(path))
    assert "its constructor takes *model_params" in target.error
    assert "Linear(3, 4)" in target.error


def test_an_empty_container_is_shown_with_the_file_s_own_layers(tmp_path, isolated_imports):
    path = tmp_path / "net.py"
    path.write_text(
        "class Dense:\n"
        "    def __init__(self, n_in, n_out):\n        pass\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, g):\n        return g\n\n"
        "class Relu(Dense):\n"
        "    def __init__(self):\n        pass\n\n"
        "class Sequential:\n"
        "    def __init__(self, *layers):\n        self.layers = layers\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, g):\n        return g\n"
    )
    from gradcheck.targets import TargetError

    with pytest.raises(TargetError) as raised:
        resolve(f"{path}:Sequential")
    assert "Sequential(Dense(...), Relu(...))" in str(raised.value)
