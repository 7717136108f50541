"""Tests for gradcheck/targets.py: TARGET strings parsed, resolved and constructed safely."""

from __future__ import annotations

import abc
import importlib
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from gradcheck.targets import TargetError, derive_arguments, is_abstract, resolve

PROTOCOL_MODULES = """
import torch

from helpers import scale  # a sibling import: works only with the file's folder on sys.path

RAN_MAIN = False


class Base:
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError("subclasses implement backward")


class Tanh(Base):
    def forward(self, x):
        self.y = torch.tanh(x) * scale
        return self.y

    def backward(self, grad):
        return grad * (1 - self.y**2)

    def param(self):
        return []


class Lin(Base):
    def __init__(self, in_features, out_features):
        self.in_features = in_features
        self.w = torch.zeros(out_features, in_features)

    def forward(self, x):
        return x @ self.w.T

    def backward(self, grad):
        return grad @ self.w


class Seq(Base):
    def __init__(self, *modules):
        self.modules = modules

    def forward(self, x):
        for m in self.modules:
            x = m.forward(x)
        return x

    def backward(self, grad):
        for m in reversed(self.modules):
            grad = m.backward(grad)
        return grad


class Conv(Base):
    def __init__(self, vocabulary):
        self.vocabulary = vocabulary

    def forward(self, x):
        return x

    def backward(self, grad):
        return grad


class Optimizer:
    def step(self):
        pass


def helper():
    return 1


Linear = Lin
model = Tanh()

if __name__ == "__main__":
    RAN_MAIN = True
"""


@pytest.fixture
def user_file(tmp_path: Path, isolated_imports) -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "helpers.py").write_text("scale = 1.0\n")
    path = folder / "my_layers.py"
    path.write_text(PROTOCOL_MODULES)
    return path


@pytest.fixture
def user_package(tmp_path: Path, isolated_imports, monkeypatch) -> str:
    """A package laid out like nnlite, with an abstract base, an optimizer, a function, and a
    class whose constructor arguments cannot be guessed."""
    package = tmp_path / "mininn"
    package.mkdir()
    (package / "layers.py").write_text(
        PROTOCOL_MODULES.replace("from helpers import scale", "scale = 1.0")
    )
    (package / "__init__.py").write_text(
        "from mininn.layers import Base, Conv, Lin, Optimizer, Seq, Tanh, helper\n"
        "from mininn.layers import Lin as Linear\n"
        "__all__ = ['Base', 'Conv', 'Lin', 'Linear', 'Optimizer', 'Seq', 'Tanh', 'helper']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "mininn"


def only(spec: str, **options) -> object:
    (target,) = resolve(spec, **options)
    assert target.error is None and target.skipped is None
    return target.build()


# ------------------------------------------------------------------------------ dotted targets


def test_dotted_class_is_constructed_without_arguments():
    assert isinstance(only("torch.nn.Tanh"), torch.nn.Tanh)


def test_literal_positional_and_keyword_arguments_reach_the_constructor():
    layer = only("torch.nn.Linear(2, 3, bias=False)")
    assert (layer.in_features, layer.out_features, layer.bias) == (2, 3, None)


def test_nested_module_calls_build_a_container():
    model = only("torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())")
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh"]
    assert model[0].out_features == 3


def test_each_build_after_the_first_constructs_a_fresh_module():
    (target,) = resolve("torch.nn.Linear(2, 3)")
    assert target.build() is not target.build()


def test_target_name_is_the_normalised_call():
    (target,) = resolve("torch.nn.Linear( 2,3 ,bias = False )")
    assert target.name == "torch.nn.Linear(2, 3, bias=False)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            "torch.nn.Linear(2, x)",
            "'x' in target 'torch.nn.Linear(2, x)' is not a literal",
            id="name-argument",
        ),
        pytest.param(
            "torch.nn.Linear(2, 1 + len('ab'))", "is not a literal", id="expression-argument"
        ),
        pytest.param(
            "os.system('echo pwned')", "os.system is not a module class", id="function-call"
        ),
        pytest.param(
            "subprocess.Popen(['true'])",
            "subprocess.Popen is not a module class",
            id="non-module-class",
        ),
        pytest.param(
            "torch.nn.Linear(2, os.getpid())",
            "os.getpid is not a module class",
            id="nested-function-call",
        ),
        pytest.param("torch.nn.Linear(*sizes)", "*-arguments are not supported", id="star-args"),
        pytest.param(
            "torch.nn.Linear(**sizes)", "**-arguments are not supported", id="star-kwargs"
        ),
        pytest.param("torch.nn.Linear(2, 3).double()", "only dotted names", id="method-call"),
        pytest.param("lambda: 0", "only dotted names", id="lambda"),
        pytest.param("torch.nn.Linear(2,", "cannot parse target", id="syntax-error"),
        pytest.param(
            "no_such_package_xyz.Layer",
            "no module named 'no_such_package_xyz'",
            id="missing-module",
        ),
        pytest.param("torch.nn.Lineer", "did you mean 'torch.nn.Linear'", id="misspelt-class"),
        pytest.param("torch.optim.SGD", "torch.optim.SGD is not a module class", id="optimizer"),
        pytest.param("torch.nn.Module", "abstract base class", id="abstract-base"),
        pytest.param("torch.nn(3)", "is a module, not a class", id="called-package"),
        pytest.param(
            "torch.nn.Linear(2, -3)",
            "constructing torch.nn.Linear(2, -3) failed: RuntimeError",
            id="constructor-raises",
        ),
    ],
)
def test_bad_targets_are_refused_with_the_reason(spec, message):
    with pytest.raises(TargetError, match=None) as caught:
        resolve(spec)
    assert message in str(caught.value)


def test_function_named_in_a_target_is_never_called(tmp_path, isolated_imports, monkeypatch):
    marker = tmp_path / "called"
    (tmp_path / "side_effects.py").write_text(
        f"def touch(*args):\n    open({str(marker)!r}, 'w').close()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TargetError):
        resolve("torch.nn.Linear(2, side_effects.touch())")
    assert not marker.exists()


def test_class_needing_arguments_shows_how_to_pass_them():
    with pytest.raises(TargetError) as caught:
        resolve("torch.nn.Linear")
    message = str(caught.value)
    assert "needs constructor arguments (in_features, out_features)" in message
    assert "'torch.nn.Linear(3, 4)'" in message


def test_example_arguments_follow_the_requested_features():
    with pytest.raises(TargetError, match=r"'torch\.nn\.Linear\(5, 6\)'"):
        resolve("torch.nn.Linear", features=5)


def test_module_that_fails_to_import_reports_its_error(tmp_path, isolated_imports, monkeypatch):
    (tmp_path / "broken_mod.py").write_text("1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TargetError, match="importing 'broken_mod' failed: ZeroDivisionError"):
        resolve("broken_mod.Layer")


def test_missing_dependency_inside_a_module_is_named(tmp_path, isolated_imports, monkeypatch):
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TargetError, match="importing 'needs_dep' failed: No module named 'no_such"):
        resolve("needs_dep.Layer")


def test_submodules_not_imported_by_their_package_are_found(user_package, tmp_path):
    (tmp_path / "mininn" / "extra.py").write_text("from mininn.layers import Tanh as Extra\n")
    assert type(only("mininn.extra.Extra")).__name__ == "Tanh"


# --------------------------------------------------------------------------------- file targets


def test_file_class_is_imported_with_its_folder_first_on_sys_path(user_file):
    module = only(f"{user_file}:Tanh")
    assert type(module).__name__ == "Tanh"
    assert sys.path[0] == str(user_file.parent)


def test_file_is_not_run_as_main(user_file):
    module = only(f"{user_file}:Tanh")
    assert sys.modules[type(module).__module__].RAN_MAIN is False


def test_file_class_with_arguments_and_nested_file_classes(user_file):
    model = only(f"{user_file}:Seq(Lin(2, 3), Tanh())")
    assert [type(m).__name__ for m in model.modules] == ["Lin", "Tanh"]


def test_file_instance_is_checked_as_it_is(user_file):
    (target,) = resolve(f"{user_file}:model")
    assert target.build() is target.build()


def test_file_that_fails_to_import_reports_its_error(tmp_path, isolated_imports):
    (tmp_path / "broken_layers.py").write_text("raise ImportError('needs a GPU')\n")
    with pytest.raises(TargetError, match="broken_layers.py' failed: ImportError: needs a GPU"):
        resolve(f"{tmp_path / 'broken_layers.py'}:Tanh")


def test_files_with_the_same_name_in_two_folders_stay_apart(user_file, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "my_layers.py").write_text("import torch\n\n\nclass Tanh(torch.nn.Tanh):\n    pass\n")
    first, second = only(f"{user_file}:Tanh"), only(f"{other / 'my_layers.py'}:Tanh")
    assert not isinstance(second, type(first)) and isinstance(second, torch.nn.Tanh)


def test_file_object_that_is_not_a_module_is_refused(user_file):
    with pytest.raises(TargetError, match="my_layers.py:helper is a function, not a module"):
        resolve(f"{user_file}:helper")


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(TargetError, match="no such file"):
        resolve(f"{tmp_path / 'absent.py'}:Tanh")


def test_file_class_needing_arguments_shows_the_file_form(user_file):
    with pytest.raises(TargetError, match=rf"'{user_file}:Lin\(3, 4\)'"):
        resolve(f"{user_file}:Lin")


def test_whole_file_checks_its_concrete_module_classes(user_file):
    targets = resolve(str(user_file))
    by_name = {t.name.rpartition(":")[2]: t for t in targets}
    assert by_name["Base"].skipped.startswith("abstract base")
    assert by_name["Tanh"].build is not None
    assert "Lin(3, 4)" in by_name
    assert "Seq(Linear(3, 4), Tanh(), Linear(4, 3))" in by_name
    assert "needs constructor arguments (vocabulary)" in by_name["Conv"].error
    assert by_name["Optimizer"].skipped == "not a module class"
    assert not any(name.startswith(("helper", "Linear", "model")) for name in by_name)


# ------------------------------------------------------------------------------ package targets


def test_package_checks_every_exported_module_and_skips_the_rest(user_package):
    targets = {t.name: t for t in resolve(user_package)}
    assert set(targets) == {
        "mininn.Base",
        "mininn.Conv",
        "mininn.Lin(3, 4)",
        "mininn.Optimizer",
        "mininn.Seq(mininn.Linear(3, 4), mininn.Tanh(), mininn.Linear(4, 3))",
        "mininn.Tanh",
        "mininn.helper",
    }
    assert targets["mininn.Base"].skipped.startswith("abstract base")
    assert targets["mininn.Optimizer"].skipped == "not a module class"
    assert targets["mininn.helper"].skipped == "not a module class"
    assert "e.g. 'mininn.Conv(VOCABULARY)'" in targets["mininn.Conv"].error


def test_package_names_classes_as_exported(user_package, monkeypatch):
    package = importlib.import_module(user_package)
    monkeypatch.setattr(package, "__all__", ["Linear", "Tanh"])
    names = [t.name for t in resolve(user_package)]
    assert names == ["mininn.Linear(3, 4)", "mininn.Tanh"]


def test_package_derives_sizes_from_the_features(user_package):
    names = [t.name for t in resolve(user_package, features=2)]
    assert "mininn.Lin(2, 3)" in names


def test_derived_target_names_resolve_to_the_same_module(user_package):
    for target in resolve(user_package):
        if target.build is None:
            continue
        (again,) = resolve(target.name)
        assert again.name == target.name
        assert type(again.build()) is type(target.build())


def test_package_without_module_classes_is_refused():
    with pytest.raises(TargetError, match="exports no module classes"):
        resolve("json")


def test_nnlite_package_checks_every_module_and_loss():
    nnlite = pytest.importorskip("nnlite")
    if not hasattr(nnlite, "Linear"):
        pytest.skip("nnlite does not export its modules yet")
    targets = {t.name: t for t in resolve("nnlite")}
    checked = {name for name, t in targets.items() if t.build is not None}
    assert "nnlite.Linear(3, 4)" in checked
    assert "nnlite.Sequential(nnlite.Linear(3, 4), nnlite.Tanh(), nnlite.Linear(4, 3))" in checked
    assert {"nnlite.ReLU", "nnlite.MSELoss", "nnlite.BCELoss", "nnlite.CrossEntropyLoss"} <= checked
    assert targets["nnlite.Module"].skipped.startswith("abstract base")
    assert not [t.error for t in targets.values() if t.error]


# ------------------------------------------------------------------------ helpers and hints


def test_abstract_classes_are_recognised():
    class WithAbc(abc.ABC):
        @abc.abstractmethod
        def forward(self, x): ...

        def backward(self, grad):
            return grad

    class RaisesInForward:
        def forward(self, x):
            """Docstrings do not count."""
            raise NotImplementedError(f"{type(self).__name__} must implement forward")

        def backward(self, grad):
            return grad

    class Concrete:
        def forward(self, x):
            if x is None:
                raise NotImplementedError
            return x

        def backward(self, grad):
            return grad

    assert is_abstract(WithAbc)
    assert is_abstract(RaisesInForward)
    assert not is_abstract(Concrete)


def test_containers_get_no_chain_from_a_package_without_linear_and_tanh():
    class Chain:
        def __init__(self, *modules):
            pass

    assert derive_arguments(Chain, "pkg", 3, object()).args == ()


def test_sizes_are_not_guessed_for_unknown_parameters():
    class Conv:
        def __init__(self, in_features, vocabulary):
            pass

    assert derive_arguments(Conv, "pkg", 3, None) is None


def test_protocol_source_is_valid_python():
    compile(textwrap.dedent(PROTOCOL_MODULES), "my_layers.py", "exec")
