"""Tests for gradcheck/_function_targets.py: ``layers.py:affine`` targets on the command line,
and the README's CS231n section kept true."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

import gradcheck
from gradcheck.cli import main
from gradcheck.targets import TargetError, resolve
from tests.gradcheck.corpus import numpy_layers as L

# -- targets -----------------------------------------------------------------------------------


@pytest.fixture
def layers(tmp_path: Path) -> Path:
    path = tmp_path / "layers.py"
    shutil.copy(Path(L.__file__), path)
    return path


def _names(spec: str) -> list[str]:
    file = spec.partition(".py")[0] + ".py:"
    return [t.name.removeprefix(file) for t in resolve(spec)]


def test_a_stem_finds_its_pair_and_the_naive_suffix(layers):
    assert _names(f"{layers}:affine") == ["affine_forward"]
    assert _names(f"{layers}:conv") == [
        "conv_forward_naive(conv_param={'stride': 1, 'pad': 1})",
        "conv_forward_naive(conv_param={'stride': 2, 'pad': 0})",
    ]
    assert _names(f"{layers}:affine_backward") == ["affine_forward"]


def test_a_pair_named_explicitly_and_a_backward_of_another_suffix(layers):
    assert _names(f"{layers}:affine_forward,affine_backward_bias_kept_2d") == [
        "affine_forward,affine_backward_bias_kept_2d"
    ]
    assert _names(f"{layers}:relu_backward_into_dout") == ["relu_forward,relu_backward_into_dout"]


def test_literal_keywords_in_the_target_replace_the_defaults(layers):
    (target,) = resolve(f'{layers}:conv(conv_param={{"stride": 1, "pad": 0}})')
    pair = target.build()
    assert pair.kwargs == {"conv_param": {"stride": 1, "pad": 0}}
    assert pair.notes == []


def test_a_whole_file_lists_every_pair_and_loss_in_order(layers):
    names = _names(str(layers))
    assert names[:3] == ["affine_forward", "relu_forward", "sigmoid_forward"]
    assert "batchnorm_forward(bn_param={'mode': 'train'})" in names
    assert (
        "batchnorm_forward,batchnorm_backward_missing_mean_terms(bn_param={'mode': 'train'})"
        in names
    )
    assert "softmax_loss" in names and "svm_loss" in names
    assert "svm_loss_sign_flipped" not in names  # not named like a loss: name it to check it
    assert "lstm_like_forward" in names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conv(1, 2)", "passes arguments by position"),
        ("conv(conv_param=open)", "is not a literal"),
        ("conv(conv_param={", "cannot parse the arguments"),
        ("affine_forward,", "name two functions"),
        ("affine_forward,nothing_backward", "the file has no function 'nothing_backward'"),
    ],
)
def test_bad_function_targets_are_refused_with_the_fix(layers, text, message):
    with pytest.raises(TargetError, match=message):
        resolve(f"{layers}:{text}")


def test_names_that_are_not_pairs_fall_through_to_class_resolution(tmp_path):
    path = tmp_path / "mixed.py"
    path.write_text(
        "import numpy as np\n\n"
        "def helper(x):\n    return x\n\n"
        "class ReLU:\n"
        "    def forward(self, x):\n        self.m = x > 0\n        return x * self.m\n"
        "    def backward(self, d):\n        return d * self.m\n\n"
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
        "def relu_backward(dout, x):\n    return dout * (x > 0)\n"
    )
    with pytest.raises(TargetError, match="helper is a function, not a module"):
        resolve(f"{path}:helper")
    with pytest.raises(TargetError, match="no module named 'nothing'"):
        resolve(f"{path}:nothing")
    assert _names(f"{path}:ReLU") == ["ReLU"]
    assert _names(str(path)) == ["ReLU", "relu_forward"]


def test_a_file_of_functions_only_with_all(tmp_path):
    path = tmp_path / "only.py"
    path.write_text(
        "import numpy as np\n__all__ = ['relu_forward', 'relu_backward']\n\n"
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
        "def relu_backward(dout, x):\n    return dout * (x > 0)\n"
    )
    assert _names(str(path)) == ["relu_forward"]
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(TargetError, match="exports no module classes"):
        resolve(str(empty))


def test_a_target_that_cannot_be_built_is_an_error_target(layers):
    (target,) = resolve(f"{layers}:lstm_like_forward,takes_three_arguments_backward")
    assert target.build is None and "must take (dout, cache)" in target.error


# -- the command line --------------------------------------------------------------------------


def test_cli_shapes_one_per_array_and_one_alone(layers, capsys):
    assert main([f"{layers}:affine", "--shape", "2,3", "--shape", "3,4", "--shape", "4"]) == 0
    assert main([f"{layers}:affine_forward,affine_backward_bias_kept_2d", "--shape", "2,3"]) == 1
    out = capsys.readouterr().out
    assert "b gradient has shape (1, 3), input has (3,)" in out


def test_cli_reports_the_empty_dx_of_the_unpadded_conv(layers, capsys):
    pair = "conv_forward_naive,conv_backward_naive_empty_without_padding"
    spec = f'{layers}:{pair}(conv_param={{"stride": 1, "pad": 0}})'
    assert main([spec]) == 1
    out = capsys.readouterr().out
    assert (
        "gradient_shape: x gradient has shape (2, 3, 0, 0), input has (2, 3, 5, 5); gradients "
        "not compared" in out
    )


def test_cli_guessed_shapes_that_do_not_fit_exit_2(layers, capsys):
    spec = f"{layers}:conv_forward_naive(conv_param={{'stride': 1, 'pad': 1}})"
    assert main([spec, "--shape", "2,3,4,4", "--shape", "1,1"]) == 2
    assert "cannot be checked" in capsys.readouterr().out
    assert main([spec, "--shape", "2,3,4,4", "--shape", "1,1", "--shape", "1"]) == 1
    assert "forward: forward raised ValueError" in capsys.readouterr().out


def test_more_target_forms(tmp_path, layers):
    (loss,) = resolve(f"{layers}:softmax_loss")
    assert loss.build().is_loss
    (bad,) = resolve(f"{layers}:affine(bogus=1)")
    assert "takes no argument 'bogus'" in bad.error
    path = tmp_path / "order.py"
    path.write_text(
        "import numpy as np\n\n"
        "def relu_backward(dout, x):\n    return dout * (x > 0)\n\n"
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
        "def lonely_forward(x):\n    return x, x\n"
    )
    assert _names(str(path)) == ["relu_forward"]
    with pytest.raises(TargetError, match="lonely_forward is a function, not a module"):
        resolve(f"{path}:lonely_forward")


# -- the README's CS231n section ---------------------------------------------------------------

README = (Path(gradcheck.__file__).parent / "README.md").read_text()
SECTION = README[
    README.index("## numpy modules and CS231n layers") : README.index("## pytest plugin")
]


def test_readme_check_functions_example_prints_what_the_readme_shows(capsys):
    code = SECTION.split("```python\n", 1)[1].split("```", 1)[0]
    shown = SECTION.split("prints\n\n```text\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "<README example>", "exec"), {})
    assert capsys.readouterr().out == shown


def test_readme_unpadded_conv_failure_is_what_the_cli_prints(tmp_path, capsys):
    folder = tmp_path / "cs231n"
    folder.mkdir()
    (folder / "layers.py").write_text(
        "from tests.gradcheck.corpus.numpy_layers import conv_forward_naive\n"
        "from tests.gradcheck.corpus.numpy_layers import (\n"
        "    conv_backward_naive_empty_without_padding as conv_backward_naive,\n)\n"
    )
    assert main([f"{folder / 'layers.py'}:conv"]) == 1
    out = capsys.readouterr().out.replace(f"{tmp_path}/", "")
    console = SECTION.split("$ python -m gradcheck cs231n/layers.py:conv\n", 1)[1]
    for line in console.split("...", 1)[0].splitlines()[2:]:
        assert line in out.splitlines()


def test_readme_commands_resolve_against_cs231n_style_layers(tmp_path, layers):
    folder = tmp_path / "cs231n"
    folder.mkdir()
    shutil.copy(layers, folder / "layers.py")
    commands = [
        line.split("| `python -m gradcheck ", 1)[1].rsplit("` |", 1)[0]
        for line in SECTION.splitlines()
        if line.startswith("| ")
        and "`python -m gradcheck cs231n/layers.py" in line
        or "`python -m gradcheck 'cs231n/layers.py" in line
    ]
    assert len(commands) >= 9
    for command in commands:
        for spec in shlex.split(command):
            if spec.startswith("cs231n/layers.py") and "spatial" not in spec:  # not in the corpus
                assert resolve(str(tmp_path / spec)), spec


def test_cli_target_class_gives_a_loss_of_any_name_integer_labels(tmp_path, capsys):
    path = tmp_path / "losses.py"
    path.write_text(
        "from tests.gradcheck.corpus.numpy_layers import softmax_loss\n\n"
        "def my_loss(x, y):\n    return softmax_loss(x, y)\n"
    )
    assert main([f"{path}:my_loss", "--shape", "6,4", "--target", "class"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_functions_with_their_derivative_beside_them_are_checked_as_pairs():
    from tests.gradcheck.corpus import derivatives

    targets = resolve(derivatives.__file__)
    verdicts = {t.name.rpartition(":")[2]: gradcheck.check(t.build()).passed for t in targets}
    assert verdicts == {
        "mse": True,
        "binary_cross_entropy": True,
        "mae_wrong": False,
        "sigmoid": True,
        "tanh_wrong": False,
    }
    (mse,) = resolve(f"{derivatives.__file__}:mse")
    notes = gradcheck.check(mse.build()).notes
    assert any("through mse() and mse_prime(), y_true (the target) first" in n for n in notes)
    (named,) = resolve(f"{derivatives.__file__}:sigmoid,sigmoid_derivative")
    assert gradcheck.check(named.build()).passed


def test_functions_on_tensors_get_tensors_and_d_prefixed_derivatives_are_found():
    from tests.gradcheck.corpus import torch_functions

    targets = resolve(torch_functions.__file__)
    verdicts = {t.name.rpartition(":")[2]: gradcheck.check(t.build()).passed for t in targets}
    assert verdicts == {"loss": True, "softplus": True}


def test_an_array_argument_given_as_a_list_literal_becomes_an_array(tmp_path, isolated_imports):
    path = tmp_path / "masked.py"
    path.write_text(
        "import numpy as np\n\n"
        "def masked_loss(x, y, mask):\n"
        "    d = (x - y) * mask\n"
        "    return np.sum(d**2) / x.shape[0], 2 * d * mask / x.shape[0]\n"
    )
    (target,) = resolve(f"{path}:masked_loss(mask=[[True, False, True], [False, True, True]])")
    report = gradcheck.check(target.build(), shape=[(2, 3), (2, 3)])
    assert report.passed, report


def test_a_name_whose_import_did_not_run_is_not_the_layer_s_bug(tmp_path, isolated_imports):
    path = tmp_path / "fast.py"
    path.write_text(
        "import numpy as np\n"
        "try:\n    from not_built_extension import col2im_fast\n"
        "except ImportError:\n    print('build the extension first')\n\n"
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n\n"
        "def relu_backward(dout, cache):\n    return col2im_fast(dout * (cache > 0))\n"
    )
    (target,) = resolve(str(path))
    report = gradcheck.check(target.build())
    assert report.unsupported is not None
    assert "imports it (from not_built_extension import col2im_fast)" in report.unsupported
