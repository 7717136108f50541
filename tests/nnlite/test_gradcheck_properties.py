"""Every nnlite module and loss passes gradcheck for random shapes, values and hyperparameters.

Hypothesis profiles: ``dev`` (the default: 8 examples per test) and ``ci`` (15 examples,
derandomized so a CI run is reproducible); ``HYPOTHESIS_PROFILE=ci`` picks one, and so does a set
``CI`` variable.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import gradcheck
import nnlite
from gradcheck import strategies as gst

# "ci" is Hypothesis's own profile (derandomized, no deadline; loaded when CI is set) and "dev" is
# registered here with no deadline. The example counts are applied per test, not registered, so
# this file changes no other test's settings.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
EXAMPLES = {"dev": 8, "ci": 15}
PROFILE = settings(
    settings.get_profile(PROFILE_NAME), max_examples=EXAMPLES.get(PROFILE_NAME, EXAMPLES["dev"])
)

STRATEGIES = gst.module_strategies()
LOSSES = sorted(name for name in STRATEGIES if name.endswith("Loss"))
MODULES = sorted(name for name in STRATEGIES if name not in LOSSES)


@pytest.mark.parametrize("name", MODULES)
def test_module_passes_gradcheck_for_random_shapes_values_and_hyperparameters(name):
    @PROFILE
    @given(gst.cases(STRATEGIES[name]))
    def check(case):
        module, x = case
        gradcheck.assert_gradients(module, x)

    check()


@pytest.mark.parametrize("name", LOSSES)
def test_loss_passes_gradcheck_for_random_predictions_and_targets(name):
    @PROFILE
    @given(gst.loss_cases(STRATEGIES[name]))
    def check(case):
        loss, prediction, target = case
        gradcheck.assert_gradients(loss, prediction, target=target)

    check()


@PROFILE
@given(gst.cases(gst.activations(), kinks=()))
def test_activations_pass_gradcheck_with_inputs_anywhere_kinks_included(case):
    module, x = case
    gradcheck.assert_gradients(module, x)


@pytest.mark.parametrize(
    "module",
    # ELU with alpha=1 has slope 1 on both sides of 0: no kink there, so alpha=0.5.
    [nnlite.ReLU(), nnlite.LeakyReLU(0.1), nnlite.ELU(alpha=0.5)],
    ids=["ReLU", "LeakyReLU", "ELU"],
)
def test_activation_passes_gradcheck_with_inputs_exactly_at_its_kink(module):
    x = torch.tensor([[0.0, -1.0, 0.0], [0.5, 0.0, -0.0]], dtype=torch.float64)
    report = gradcheck.assert_gradients(module, x)
    assert report.kinks_skipped > 0


@PROFILE
@given(gst.cases(gst.architectures(max_layers=3), kinks=()))
def test_random_architectures_pass_gradcheck_with_unrestricted_inputs(case):
    model, x = case
    gradcheck.assert_gradients(model, x)


@PROFILE
@given(gst.cases(gst.architectures(dropout=False)))
def test_random_architectures_pass_gradcheck_in_eval_mode(case):
    model, x = case
    gradcheck.assert_gradients(model, x, train=False)


def test_every_module_and_loss_has_a_property_test():
    assert sorted(MODULES + LOSSES) == sorted(STRATEGIES)
    assert {"Linear", "Sequential", "Dropout"} <= set(MODULES)
    assert {"MSELoss", "BCELoss", "CrossEntropyLoss"} <= set(LOSSES)
