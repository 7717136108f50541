"""gradcheck: prove a hand-written backward right or wrong with finite differences.

>>> import torch, gradcheck
>>> report = gradcheck.check(torch.nn.Tanh())
>>> report.passed
True
"""

from gradcheck._adapt import is_loss
from gradcheck.checks import (
    ACCUMULATION,
    BACKWARD,
    CHECKS,
    DETERMINISM,
    FORWARD,
    FORWARD_DETERMINISM,
    GRAD_OUTPUT_MUTATION,
    GRADIENT_SHAPE,
    INPUT_GRADIENT,
    INPUT_MUTATION,
    LINEARITY,
    OUTPUT_MUTATION,
    OUTPUT_SHAPE,
    PARAMETER_GRADIENT,
    PARAMETERS,
    assert_gradients,
    check,
)
from gradcheck.inputs import default_shape, make_input, make_target
from gradcheck.report import CheckResult, GradcheckError, Report, TensorResult

__all__ = [
    "ACCUMULATION",
    "BACKWARD",
    "CHECKS",
    "CheckResult",
    "DETERMINISM",
    "FORWARD",
    "FORWARD_DETERMINISM",
    "GRADIENT_SHAPE",
    "GRAD_OUTPUT_MUTATION",
    "GradcheckError",
    "INPUT_GRADIENT",
    "INPUT_MUTATION",
    "LINEARITY",
    "OUTPUT_MUTATION",
    "OUTPUT_SHAPE",
    "PARAMETERS",
    "PARAMETER_GRADIENT",
    "Report",
    "TensorResult",
    "assert_gradients",
    "check",
    "default_shape",
    "is_loss",
    "make_input",
    "make_target",
]
