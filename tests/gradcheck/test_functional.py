"""Tests for gradcheck/functional.py: CS231n-style function pairs and functional losses, through
``check_functions`` and through the command line's ``layers.py:affine`` targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradcheck
from gradcheck.functional import FunctionPair, check_functions
from tests.gradcheck.corpus import numpy_layers as L

CONV = {"conv_param": {"stride": 1, "pad": 1}}
UNPADDED = {"conv_param": {"stride": 2, "pad": 0}}
POOL = {"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}
BN = {"bn_param": {"mode": "train"}}
DROPOUT = {"dropout_param": {"p": 0.6, "mode": "train"}}

# (id, forward, backward, keyword arguments and options)
CORRECT = [
    ("affine", L.affine_forward, L.affine_backward, {}),
    ("affine_3d_input", L.affine_forward, L.affine_backward, {"shape": [(2, 3, 2), (6, 4)]}),
    ("relu", L.relu_forward, L.relu_backward, {}),
    ("sigmoid", L.sigmoid_forward, L.sigmoid_backward, {}),
    ("tanh", L.tanh_forward, L.tanh_backward, {}),
    ("batchnorm_train", L.batchnorm_forward, L.batchnorm_backward, BN),
    ("batchnorm_alt", L.batchnorm_forward, L.batchnorm_backward_alt, BN),
    ("batchnorm_test", L.batchnorm_forward, L.batchnorm_backward, {"bn_param": {"mode": "test"}}),
    ("layernorm", L.layernorm_forward, L.layernorm_backward, {"ln_param": {}}),
    ("dropout_train", L.dropout_forward, L.dropout_backward, DROPOUT),
    (
        "dropout_test",
        L.dropout_forward,
        L.dropout_backward,
        {"dropout_param": {"p": 0.6, "mode": "test"}},
    ),
    ("conv_padded", L.conv_forward_naive, L.conv_backward_naive, CONV),
    ("conv_unpadded_strided", L.conv_forward_naive, L.conv_backward_naive, UNPADDED),
    ("max_pool", L.max_pool_forward_naive, L.max_pool_backward_naive, POOL),
    ("word_embedding_integer_indices", L.word_embedding_forward, L.word_embedding_backward, {}),
    ("softmax_loss_python_float", L.softmax_loss, None, {}),
    ("svm_loss_numpy_scalar", L.svm_loss, None, {}),
]

# (id, forward, backward, keyword arguments and options, the check that must fail)
BROKEN = [
    (
        "bias_gradient_2d",
        L.affine_forward,
        L.affine_backward_bias_kept_2d,
        {},
        gradcheck.GRADIENT_SHAPE,
    ),
    (
        "weight_gradient_transposed",
        L.affine_forward,
        L.affine_backward_weight_transposed,
        {"shape": [(4, 3), (3, 3), (3,)]},
        gradcheck.INPUT_GRADIENT,
    ),
    ("relu_writes_x", L.relu_forward_in_place, L.relu_backward, {}, gradcheck.INPUT_MUTATION),
    (
        "relu_writes_dout",
        L.relu_forward,
        L.relu_backward_into_dout,
        {},
        gradcheck.GRAD_OUTPUT_MUTATION,
    ),
    ("sigmoid_plus", L.sigmoid_forward, L.sigmoid_backward_plus, {}, gradcheck.INPUT_GRADIENT),
    (
        "tanh_missing_square",
        L.tanh_forward,
        L.tanh_backward_missing_square,
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "batchnorm_gradients_2d",
        L.batchnorm_forward,
        L.batchnorm_backward_gradients_kept_2d,
        BN,
        gradcheck.GRADIENT_SHAPE,
    ),
    (
        "batchnorm_missing_mean_terms",
        L.batchnorm_forward,
        L.batchnorm_backward_missing_mean_terms,
        BN,
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "layernorm_over_the_batch",
        L.layernorm_forward,
        L.layernorm_backward_over_the_batch,
        {"ln_param": {}},
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "dropout_private_generator",
        L.dropout_forward_private_generator,
        L.dropout_backward,
        DROPOUT,
        gradcheck.FORWARD_DETERMINISM,
    ),
    (
        "dropout_new_mask_in_backward",
        L.dropout_forward,
        L.dropout_backward_new_mask,
        DROPOUT,
        gradcheck.DETERMINISM,
    ),
    (
        "conv_empty_dx_without_padding",
        L.conv_forward_naive,
        L.conv_backward_naive_empty_without_padding,
        UNPADDED,
        gradcheck.GRADIENT_SHAPE,
    ),
    (
        "conv_weight_gradient_of_the_first_sample",
        L.conv_forward_naive,
        L.conv_backward_naive_first_sample_dw,
        UNPADDED,
        gradcheck.INPUT_GRADIENT,
    ),
    (
        "max_pool_spreads",
        L.max_pool_forward_naive,
        L.max_pool_backward_spread,
        POOL,
        gradcheck.INPUT_GRADIENT,
    ),
    ("softmax_not_averaged", L.softmax_loss_not_averaged, None, {}, gradcheck.INPUT_GRADIENT),
    (
        "word_embedding_repeated_words_overwrite",
        L.word_embedding_forward,
        L.word_embedding_backward_overwrites,
        {},
        gradcheck.INPUT_GRADIENT,
    ),
    ("svm_sign_flipped", L.svm_loss_sign_flipped, None, {}, gradcheck.INPUT_GRADIENT),
]


@pytest.mark.parametrize(
    ("forward", "backward", "options"), [c[1:] for c in CORRECT], ids=[c[0] for c in CORRECT]
)
def test_correct_pairs_and_losses_pass(forward, backward, options):
    report = check_functions(forward, backward, **options)
    assert report.checkable, report.unsupported
    assert report.passed, report


@pytest.mark.parametrize(
    ("forward", "backward", "options", "failing"),
    [c[1:] for c in BROKEN],
    ids=[c[0] for c in BROKEN],
)
def test_broken_pairs_are_flagged_by_the_right_check(forward, backward, options, failing):
    report = check_functions(forward, backward, **options)
    assert report.checkable, report.unsupported
    assert failing in [c.name for c in report.failures], report


def test_the_conv_with_padding_hides_the_empty_dx_bug():
    padded = check_functions(
        L.conv_forward_naive, L.conv_backward_naive_empty_without_padding, **CONV
    )
    assert padded.passed, padded


def test_a_2d_bias_gradient_names_both_shapes_even_with_right_values():
    report = check_functions(L.affine_forward, L.affine_backward_bias_kept_2d)
    (failure,) = report.failures
    assert failure.message == "b gradient has shape (1, 3), input has (3,); gradients not compared"


def test_the_gradients_are_named_after_the_forwards_parameters():
    report = check_functions(
        L.affine_forward, L.affine_backward_weight_transposed, shape=[(4, 3), (3, 3), (3,)]
    )
    failure = report[gradcheck.INPUT_GRADIENT]
    assert [t.tensor for t in failure.tensors if not t.passed] == ["w"]
    assert "for w" in failure.message


def test_arrays_passed_in_are_used_and_left_untouched():
    x = np.linspace(-1, 1, 8).reshape(2, 4)
    w = np.linspace(-2, 1, 12).reshape(4, 3)
    b = np.array([0.1, -0.2, 0.3])
    copies = [a.copy() for a in (x, w, b)]
    report = check_functions(L.affine_forward, L.affine_backward, x, w, b)
    assert report.passed, report
    assert report.options["input_shapes"] == [[2, 4], [4, 3], [3]]
    assert all(np.array_equal(a, c) for a, c in zip((x, w, b), copies, strict=True))


def test_a_param_dict_updated_by_design_is_not_an_input_mutation_and_mode_is_passed():
    bn_param = {"mode": "train"}
    seen = []

    def batchnorm_forward(x, gamma, beta, bn_param):
        seen.append(bn_param["mode"])
        return L.batchnorm_forward(x, gamma, beta, bn_param)

    report = check_functions(batchnorm_forward, L.batchnorm_backward, bn_param=bn_param)
    assert report.passed, report
    assert set(seen) == {"train"}
    assert bn_param == {"mode": "train"}  # each forward got its own copy


def test_kwargs_that_are_not_the_functions_go_to_check():
    report = check_functions(L.affine_forward, L.affine_backward, mode="fast", seed=3)
    assert report.passed, report
    assert report.options["mode"] == "fast" and report.options["seed"] == 3


def test_numpy_global_generator_is_left_as_the_caller_had_it():
    np.random.seed(123)
    state = np.random.get_state()
    check_functions(L.dropout_forward, L.dropout_backward, **DROPOUT)
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1]) and after[2:] == state[2:]


def test_a_softmax_loss_gets_class_labels_and_a_plain_loss_targets_like_x():
    report = check_functions(L.softmax_loss, None)
    assert report.passed, report
    assert report.options["input_shapes"] == [[4, 5], [4]]

    def l2_loss(x, y):
        return float(((x - y) ** 2).sum()), 2 * (x - y)

    assert check_functions(l2_loss, None).options["input_shapes"] == [[4, 5], [4, 5]]

    def bce_loss(p, y):
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum()), -(y / p - (1 - y) / (1 - p))

    assert check_functions(bce_loss, None).passed


@pytest.mark.parametrize(
    ("forward", "backward", "options", "message"),
    [
        (L.lstm_like_forward, L.lstm_like_backward, {}, "the forward returned 3 values"),
        (L.affine_forward, L.takes_three_arguments_backward, {}, "must take (dout, cache)"),
        (L.affine_forward, L.affine_backward, {"conv_param": {}, "bogus": 1}, None),
        (lambda x, y: (x, x), None, {}, "not one number"),
        (L.conv_forward_naive, L.conv_backward_naive, {}, "conv_param, which is not an array"),
        (L.conv_forward_naive, L.conv_backward_naive, CONV | {"shape": (2, 3)}, "guessed"),
        (lambda x, y, mask: (0.0, x), None, {}, "takes 3 array arguments (x, y, mask)"),
        ("affine_forward", None, {}, "the forward is a str, not a function"),
    ],
    ids=[
        "three_values",
        "backward_signature",
        "unknown_kwarg",
        "loss_not_scalar",
        "param_dict_missing",
        "guessed_shapes",
        "loss_arity",
        "not_callable",
    ],
)
def test_pairs_gradcheck_cannot_check_say_why(forward, backward, options, message):
    if message is None:
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            check_functions(forward, backward, **options)
        return
    report = check_functions(forward, backward, **options)
    assert not report.checkable
    assert message in report.unsupported


def test_guessed_shapes_that_fail_tell_the_flags_to_pass():
    def bilinear_forward(x, y):
        return x @ y, (x, y)

    report = check_functions(bilinear_forward, L.affine_backward, shape=(4, 5))
    assert "ValueError" in report.unsupported
    assert "on the shapes gradcheck guessed (x (4, 5), y (4, 5))" in report.unsupported
    assert "--shape 4,5 --shape 4,5" in report.unsupported


def test_a_forward_that_raises_on_the_users_shapes_is_a_failure():
    report = check_functions(L.affine_forward, L.affine_backward, shape=[(4, 5), (4, 3), (3,)])
    assert report.checkable
    assert report.failures[0].name == gradcheck.FORWARD
    assert "ValueError" in report.failures[0].message


def test_a_forward_that_stops_returning_pairs_is_a_forward_failure():
    calls = []

    def flaky_forward(x):
        calls.append(1)
        return (x, x) if len(calls) < 3 else x

    report = check_functions(flaky_forward, L.relu_backward)
    assert "not (out, cache)" in report.failures[0].message


def test_the_pair_has_no_mode_and_says_so():
    pair = FunctionPair(L.relu_forward, L.relu_backward)
    report = gradcheck.check(pair, train=False)
    assert report.passed, report
    assert any("no train/eval mode" in n for n in report.notes)
    assert repr(pair) == "relu_forward/relu_backward"
    assert pair.training is None and pair.params() == []


@pytest.mark.parametrize(
    ("stem", "names", "given", "expected"),
    [
        ("affine", ["x", "w", "b"], [], [(4, 5), (5, 3), (3,)]),
        ("affine", ["x", "w", "b"], [(2, 3, 2)], [(2, 3, 2), (6, 3), (3,)]),
        ("bias", ["x", "b"], [], [(4, 5), (5,)]),
        ("conv", ["x", "w", "b"], [], [(2, 3, 5, 5), (2, 3, 3, 3), (2,)]),
        ("spatial_batchnorm", ["x", "gamma", "beta"], [], [(2, 3, 5, 5), (3,), (3,)]),
        ("spatial_bias", ["x", "b"], [], [(2, 3, 5, 5), (3,)]),
        ("rnn_step", ["x", "prev_h", "Wx", "Wh", "b"], [], [(4, 5), (4, 3), (5, 3), (3, 3), (3,)]),
        ("rnn", ["x", "h0", "Wx", "Wh", "b"], [], [(2, 3, 5), (2, 3), (5, 3), (3, 3), (3,)]),
        ("scale", ["x", "mask"], [], [(4, 5), (4, 5)]),
        (
            "affine_bn_relu",
            ["x", "w", "b", "gamma", "beta"],
            [],
            [(4, 5), (5, 3), (3,), (3,), (3,)],
        ),
        (
            "conv_bn_relu",
            ["x", "w", "b", "gamma", "beta"],
            [],
            [(2, 3, 5, 5), (2, 3, 3, 3), (2,), (2,), (2,)],
        ),
        (
            "spatial_groupnorm",
            ["x", "gamma", "beta"],
            [],
            [(2, 6, 5, 5), (1, 6, 1, 1), (1, 6, 1, 1)],
        ),
        ("lstm", ["x", "h0", "Wx", "Wh", "b"], [], [(2, 3, 5), (2, 3), (5, 12), (3, 12), (12,)]),
    ],
)
def test_guessed_shapes_follow_the_names_and_the_first_array(stem, names, given, expected):
    args = ", ".join(names)
    namespace: dict = {}
    exec(f"def {stem}_forward({args}):\n    return x, None\n", namespace)
    pair = FunctionPair(namespace[f"{stem}_forward"], L.relu_backward)
    assert pair.input_names == names
    assert pair.input_shapes(given) == expected


def test_forwards_gradcheck_cannot_inspect_take_their_arrays_as_given():
    pair = FunctionPair(max, L.relu_backward)
    assert pair.input_names == []

    def keywords_forward(x, **options):
        return L.relu_forward(x)

    pair = FunctionPair(keywords_forward, L.relu_backward, kwargs={"anything": 1})
    assert gradcheck.check(pair).passed
    pair.train(False)
    pair.train(False)
    assert len(pair.notes) == 1


def test_an_embedding_gets_integer_indices_and_its_table_is_the_gradient_checked():
    report = check_functions(L.word_embedding_forward, L.word_embedding_backward)
    assert report.options["input_shapes"] == [[4, 3], [5, 3]]
    assert "x holds integer indices into W" in report.notes
    assert [t.tensor for t in report[gradcheck.INPUT_GRADIENT].tensors] == ["W"]
    pair = FunctionPair(L.word_embedding_forward, L.word_embedding_backward)
    assert gradcheck.check(pair).passed and gradcheck.check(pair).passed
    assert pair.notes == ["x holds integer indices into W"]


def _temporal_softmax_loss(x, y, mask):
    """CS231n's loss over time: scores (N, T, V), labels (N, T), a mask (N, T)."""
    N, T, V = x.shape
    flat, labels, keep = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    p = np.exp(flat - flat.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.sum(keep * np.log(p[np.arange(N * T), labels])) / N
    dx = p.copy()
    dx[np.arange(N * T), labels] -= 1
    return loss, (dx / N * keep[:, None]).reshape(N, T, V)


@pytest.mark.parametrize("shapes", [[(2, 3, 5)], [(2, 3, 5), (2, 3)]], ids=["scores", "labels"])
def test_a_temporal_loss_gets_labels_over_time_with_its_classes_last(shapes):
    mask = np.array([[True, True, False], [True, False, True]])
    report = gradcheck.check_functions(_temporal_softmax_loss, None, shape=shapes, mask=mask)
    assert report.passed, report


def test_a_loss_target_shape_picks_the_class_dim_it_leaves_out():
    from gradcheck.inputs import class_dim_for

    assert class_dim_for((2, 3, 5), (2, 3)) == 2
    assert class_dim_for((2, 5, 7), (2, 7)) == 1
    assert class_dim_for((4, 3), (4,)) == 1
    assert class_dim_for((4, 3), (5,)) is None
    labels = gradcheck.make_target(torch.zeros(2, 3, 5), kind="class", class_dim=-1)
    assert labels.shape == (2, 3) and int(labels.max()) < 5


def test_class_labels_that_fit_no_dim_of_the_prediction_are_refused_by_shape():
    with pytest.raises(ValueError, match=r"class labels of shape \(5,\) do not fit"):
        gradcheck.check(torch.nn.CrossEntropyLoss(), shape=[(4, 3), (5,)])
