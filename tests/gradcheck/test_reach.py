"""A whole file of course-project layers checked in one command, with no adapter: constructor
arguments derived, NCHW inputs drawn, containers built, relative imports followed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gradcheck
from gradcheck.cli import main
from gradcheck.targets import TargetError, resolve
from tests.gradcheck.corpus import images

IMAGES = str(Path(images.__file__))


def _verdicts(capsys, *argv: str) -> tuple[int, dict[str, dict]]:
    status = main([*argv, "--json"])
    document = json.loads(capsys.readouterr().out)
    return status, {t["target"].rpartition(".py:")[2]: t for t in document["targets"]}


def test_a_file_of_nchw_layers_is_checked_with_derived_arguments(capsys, isolated_imports):
    status, targets = _verdicts(capsys, IMAGES)
    assert status == 1  # the broken ones fail; nothing is left uncheckable
    expected = {
        "Conv2d(3, 4, 3)": "pass",
        "Conv(channels_in=3, channels_out=4)": "pass",
        "NearestUpsampling(2)": "pass",
        "LeakyReLU(0.1)": "pass",
        "SkipConnection(ReLU())": "pass",
        "ReLU": "pass",
        "Sigmoid": "pass",
        "MSE": "pass",
        "Sequential([Conv2d(3, 4, 3), ReLU(), Conv2d(4, 3, 3)])": "pass",
        "Conv2dWeightGradientFromFirstSample(3, 4, 3)": "fail",
        "NearestUpsamplingAverages(2)": "fail",
        "MSEPerSample": "fail",
        "LeakyReLUIgnoresUpstream(0.1)": "fail",
        "SkipConnectionAddsInPlace(ReLU())": "fail",
        "Module": "skipped",
    }
    assert {name: t["status"] for name, t in targets.items()} == expected


def test_nchw_inputs_are_drawn_for_modules_with_in_channels(capsys, isolated_imports):
    _, targets = _verdicts(capsys, IMAGES)
    report = targets["Conv2d(3, 4, 3)"]["report"]
    assert report["options"]["input_shapes"] == [[2, 3, 6, 6]]


@pytest.mark.parametrize(
    ("module", "check"),
    [
        (images.Conv2dWeightGradientFromFirstSample(3, 4, 3), gradcheck.PARAMETER_GRADIENT),
        (images.NearestUpsamplingAverages(2), gradcheck.INPUT_GRADIENT),
        (images.MSEPerSample(), gradcheck.INPUT_GRADIENT),
        (images.LeakyReLUIgnoresUpstream(0.1), gradcheck.LINEARITY),
        (images.SkipConnectionAddsInPlace(images.ReLU()), gradcheck.GRAD_OUTPUT_MUTATION),
    ],
    ids=[
        "conv_weight_gradient_batch_1_only",
        "upsampling_averages",
        "mse_scaled_by_numel",
        "leaky_relu_ignores_upstream",
        "skip_connection_adds_into_upstream",
    ],
)
def test_each_bug_of_the_image_projects_is_flagged(module, check):
    report = gradcheck.check(module)
    assert check in [c.name for c in report.failures], str(report)


def test_the_conv_weight_bug_is_invisible_at_batch_1():
    module = images.Conv2dWeightGradientFromFirstSample(3, 4, 3)
    assert gradcheck.check(module, shape=(1, 3, 6, 6)).passed


def test_a_layer_whose_backward_refuses_a_2d_input_gets_an_nchw_batch_and_a_note():
    report = gradcheck.check(images.SkipConnection(images.ReLU()))
    assert report.passed, str(report)
    assert report.options["input_shapes"] == [[2, 3, 6, 6]]
    assert any("an NCHW batch (2, 3, 6, 6) was drawn instead" in note for note in report.notes)


def test_a_base_whose_backward_is_pass_is_skipped_as_abstract():
    from gradcheck.targets import is_abstract

    class Base:
        def forward(self, x):
            return x

        def backward(self, grad):
            pass

    class Model(Base):
        pass

    assert is_abstract(Base) and is_abstract(Model)


def test_padding_and_stride_reach_the_check():
    report = gradcheck.check(images.Conv2d(2, 3, 3, stride=2, padding=1), shape=(2, 2, 7, 7))
    assert report.passed, str(report)


def test_channels_come_from_an_nchw_shape(isolated_imports):
    names = [t.name.rpartition(":")[2] for t in resolve(IMAGES, features=8, channels=5)]
    assert "Conv2d(5, 6, 3)" in names


def test_a_sequential_taking_a_list_is_built_from_the_target(isolated_imports):
    (target,) = resolve(f"{IMAGES}:Sequential([Conv2d(3, 2, 3, padding=1), Sigmoid()])")
    model = target.build()
    assert [type(m).__name__ for m in model.modules] == ["Conv2d", "Sigmoid"]
    assert gradcheck.check(model).passed


def test_a_file_inside_a_package_keeps_its_relative_imports(tmp_path, isolated_imports):
    package = tmp_path / "project" / "framework"
    package.mkdir(parents=True)
    (tmp_path / "project" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "class Module:\n"
        "    def forward(self, *input):\n        raise NotImplementedError\n"
        "    def backward(self, *gradwrtoutput):\n        raise NotImplementedError\n"
        "    def param(self):\n        return []\n"
    )
    (package / "activations.py").write_text(
        "import torch\nfrom .base import Module\n\n"
        "class Tanh(Module):\n"
        "    def forward(self, *input):\n"
        "        self.y = torch.tanh(input[0])\n"
        "        return self.y\n"
        "    def backward(self, *gradwrtoutput):\n"
        "        return gradwrtoutput[0] * (1 - self.y**2)\n"
    )
    targets = {t.name.rpartition(":")[2]: t for t in resolve(str(package / "activations.py"))}
    assert set(targets) == {"Tanh"}  # the base it imports is not its own
    assert gradcheck.check(targets["Tanh"].build()).passed


def test_a_package_without_all_exports_the_classes_its_top_level_imports(
    tmp_path, isolated_imports, monkeypatch
):
    package = tmp_path / "tinynet"
    package.mkdir()
    (package / "layers.py").write_text(
        "import torch\n\n"
        "class Tanh:\n"
        "    def forward(self, x):\n        self.y = torch.tanh(x)\n        return self.y\n"
        "    def backward(self, grad):\n        return grad * (1 - self.y**2)\n"
    )
    (package / "__init__.py").write_text("from .layers import Tanh\nfrom torch import Tensor\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [t.name for t in resolve("tinynet")] == ["tinynet.Tanh"]


def test_size_spellings_are_derived(isolated_imports):
    class Dense:
        def __init__(self, dim_in, dim_out):
            self.w = torch.zeros(dim_in, dim_out)

        def forward(self, x):
            return x @ self.w

        def backward(self, grad):
            return grad @ self.w.T

    from gradcheck.targets import derive_arguments

    assert derive_arguments(Dense, "", 3, None).args == (3, 4)


def test_an_empty_container_is_refused_with_the_layers_to_name(tmp_path, isolated_imports):
    path = tmp_path / "seq.py"
    path.write_text(
        "class Sequential:\n"
        "    def __init__(self, *layers):\n        self.layers = layers\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, grad):\n        return grad\n"
    )
    (target,) = resolve(str(path))
    assert "is a container, and empty it checks nothing" in target.error
    with pytest.raises(TargetError, match="name the layers it holds"):
        resolve(f"{path}:Sequential")


def _write_layer_package(root: Path) -> Path:
    package = root / "project" / "others"
    package.mkdir(parents=True)
    (root / "project" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")  # exports nothing: its submodules hold the layers
    (package / "base.py").write_text(
        "class Module:\n"
        "    def forward(self, *input):\n        raise NotImplementedError\n"
        "    def backward(self, *gradwrtoutput):\n        raise NotImplementedError\n"
    )
    (package / "tanh.py").write_text(
        "import torch\nfrom .base import Module\n\n"
        "class Tanh(Module):\n"
        "    def forward(self, x):\n        self.y = torch.tanh(x)\n        return self.y\n"
        "    def backward(self, grad):\n        return grad * (1 - self.y**2)\n"
    )
    return package


def test_a_package_folder_that_exports_nothing_has_its_submodules_checked(
    tmp_path, isolated_imports
):
    package = _write_layer_package(tmp_path)
    targets = resolve(str(package))
    # base.py holds only an abstract base: nothing of it to check, nothing to report.
    assert [t.name for t in targets] == ["project.others.tanh.Tanh"]
    assert gradcheck.check(targets[0].build()).passed


def test_a_plain_folder_has_each_of_its_files_checked(tmp_path, isolated_imports):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "layers.py").write_text(
        "import torch\n\n"
        "class Tanh:\n"
        "    def forward(self, x):\n        self.y = torch.tanh(x)\n        return self.y\n"
        "    def backward(self, grad):\n        return grad * (1 - self.y)\n"
    )
    (folder / "train.py").write_text("EPOCHS = 3\n")
    script, target = resolve(str(folder))
    assert script.name.endswith("train.py") and script.skipped.startswith("a script, not layers")
    assert target.name.endswith("layers.py:Tanh")
    assert not gradcheck.check(target.build()).passed


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(TargetError, match="holds no .py file"):
        resolve(str(tmp_path))


def test_a_sibling_module_one_folder_up_is_found(tmp_path, isolated_imports):
    (tmp_path / "module.py").write_text(
        "class Module:\n"
        "    def forward(self, *input):\n        raise NotImplementedError\n"
        "    def backward(self, *gradwrtoutput):\n        raise NotImplementedError\n"
    )
    (tmp_path / "activation").mkdir()
    (tmp_path / "activation" / "tanh.py").write_text(
        "import torch\nfrom module import Module\n\n"
        "class Tanh(Module):\n"
        "    def forward(self, x):\n        self.y = torch.tanh(x)\n        return self.y\n"
        "    def backward(self, grad):\n        return grad * (1 - self.y**2)\n"
    )
    names = [t.name.rpartition(":")[2] for t in resolve(str(tmp_path / "activation" / "tanh.py"))]
    assert names == ["Tanh"]


def test_a_missing_third_party_import_says_what_to_install(tmp_path, isolated_imports):
    path = tmp_path / "model.py"
    path.write_text("import torchvisionx\n")
    with pytest.raises(TargetError, match="No module named 'torchvisionx'.*install 'torchvisionx'"):
        resolve(str(path))


def test_package_mode_skips_the_projects_model_and_refuses_an_add_container(
    tmp_path, isolated_imports
):
    path = tmp_path / "net.py"
    path.write_text(
        "class Model:\n"
        "    def train(self, train_input, train_target, num_epochs):\n        pass\n"
        "    def predict(self, test_input):\n        return test_input\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, grad):\n        return grad\n\n"
        "class Network:\n"
        "    def __init__(self):\n        self.layers = []\n"
        "    def add(self, layer):\n        self.layers.append(layer)\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, grad):\n        return grad\n"
    )
    targets = {t.name.rpartition(":")[2]: t for t in resolve(str(path))}
    assert targets["Model"].skipped == "a model (train/predict), not a layer"
    assert "is a container, and empty it checks nothing" in targets["Network"].error


def test_sizes_defaulting_to_none_are_derived_as_keywords():
    class Up:
        def __init__(self, scale_factor=None, kernel_size=None):
            self.scale_factor, self.kernel_size = scale_factor, kernel_size

        def forward(self, x):
            return x

        def backward(self, grad):
            return grad

    from gradcheck.targets import derive_arguments

    assert derive_arguments(Up, "", 3, None).kwargs == (("scale_factor", 2), ("kernel_size", 3))


def test_only_classes_named_for_holding_layers_are_built_as_containers():
    from gradcheck.targets import derive_arguments

    class Base:
        def add_module(self, name, module):
            pass

        def forward(self, x):
            return x

        def backward(self, grad):
            return grad

    class ReLU(Base):
        pass

    class TanH(Base):
        def __init__(self, *args):
            pass

    class Linear(Base):
        def __init__(self, in_features, out_features):
            pass

    class Tanh(Base):
        pass

    class LossMSE(Base):
        def __init__(self, model):
            self.model = model

    namespace = type("namespace", (), {"Linear": Linear, "Tanh": Tanh, "ReLU": ReLU})
    assert derive_arguments(ReLU, "", 3, namespace).args == ()
    assert derive_arguments(TanH, "", 3, namespace).args == ()
    assert derive_arguments(LossMSE, "", 3, namespace) is None


def test_a_layer_returning_nothing_for_a_2d_input_gets_an_nchw_batch():
    class Upsample:
        def forward(self, x):
            if x.dim() != 4:
                return None
            return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

        def backward(self, grad):
            n, c, h, w = grad.shape
            return grad.view(n, c, h // 2, 2, w // 2, 2).sum((3, 5))

    report = gradcheck.check(Upsample())
    assert report.passed, str(report)
    assert report.options["input_shapes"] == [[2, 3, 6, 6]]


def test_a_package_walk_skips_scripts_that_would_run_at_import(tmp_path, isolated_imports):
    package = _write_layer_package(tmp_path)
    (package / "plot.py").write_text("raise SystemExit('this trains a network at import')\n")
    names = {t.name: t for t in resolve(str(package))}
    assert names["project.others.plot"].skipped.startswith("a script, not layers")
    assert "project.others.tanh.Tanh" in names


def test_a_container_with_a_required_name_gets_its_layers_too():
    from gradcheck.targets import derive_arguments

    class Linear:
        def __init__(self, in_features, out_features):
            pass

        def forward(self, x):
            return x

        def backward(self, grad):
            return grad

    class Tanh(Linear):
        def __init__(self):
            pass

    class Sequential(Tanh):
        def __init__(self, name, *layers):
            self.layers = layers

    namespace = type("namespace", (), {"Linear": Linear, "Tanh": Tanh})
    call = derive_arguments(Sequential, "", 3, namespace)
    assert call.args[0] == "layer" and len(call.args) == 4
