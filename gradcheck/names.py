"""The names of the checks, in the order they run. No torch import: the CLI and the pytest
plugin read these without loading the checker."""

from __future__ import annotations

__all__ = [
    "ACCUMULATION",
    "BACKWARD",
    "CHECKS",
    "DETERMINISM",
    "FORWARD",
    "FORWARD_DETERMINISM",
    "GRADIENT_SHAPE",
    "GRAD_OUTPUT_MUTATION",
    "INPUT_GRADIENT",
    "INPUT_MUTATION",
    "LINEARITY",
    "OUTPUT_MUTATION",
    "OUTPUT_SHAPE",
    "PARAMETERS",
    "PARAMETER_GRADIENT",
    "ZERO_GRAD",
]

#: The module's parameters can be listed (``param()`` and its variants) as tensors.
PARAMETERS = "parameters"
#: forward runs and returns a finite floating tensor.
FORWARD = "forward"
#: The output has the expected dtype (float64 here) and shape (a loss: one value; a layer: the
#: batch dimension kept, ``out_features`` last when the module declares it).
OUTPUT_SHAPE = "output_shape"
#: Two forwards with torch's generator seeded alike return the same output.
FORWARD_DETERMINISM = "forward_determinism"
#: Neither forward nor backward changes the input tensors.
INPUT_MUTATION = "input_mutation"
#: backward runs and returns a tensor.
BACKWARD = "backward"
#: The input gradient has the input's shape and dtype; every parameter gradient its parameter's.
GRADIENT_SHAPE = "gradient_shape"
#: backward does not change the upstream gradient it receives.
GRAD_OUTPUT_MUTATION = "grad_output_mutation"
#: backward does not change the tensor forward returned.
OUTPUT_MUTATION = "output_mutation"
#: backward returns the same gradients twice for the same forward and upstream gradient.
DETERMINISM = "determinism"
#: backward is linear in its upstream gradient: ``b(2 g1 - g2 / 2) = 2 b(g1) - b(g2) / 2``.
LINEARITY = "linearity"
#: Parameter gradients add up over two backward calls (the course contract).
ACCUMULATION = "accumulation"
#: ``zero_grad()``, where the module has one, zeroes the gradient tensors in place.
ZERO_GRAD = "zero_grad"
#: The input gradient matches central differences.
INPUT_GRADIENT = "input_gradient"
#: Every parameter gradient matches central differences.
PARAMETER_GRADIENT = "parameter_gradient"

#: Every check, in the order they run.
CHECKS = (
    PARAMETERS,
    FORWARD,
    OUTPUT_SHAPE,
    FORWARD_DETERMINISM,
    INPUT_MUTATION,
    BACKWARD,
    GRADIENT_SHAPE,
    GRAD_OUTPUT_MUTATION,
    OUTPUT_MUTATION,
    DETERMINISM,
    LINEARITY,
    ACCUMULATION,
    INPUT_GRADIENT,
    PARAMETER_GRADIENT,
    # Last: a module's own zero_grad() may rebind what backward adds into, and no check after
    # it should judge a state the module would never be in between optimizer steps.
    ZERO_GRAD,
)
