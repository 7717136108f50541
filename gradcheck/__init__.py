"""gradcheck: prove a hand-written backward right or wrong with finite differences.

>>> import torch, gradcheck
>>> report = gradcheck.check(torch.nn.Tanh())
>>> report.passed
True

The names below are imported on first use (PEP 562), so ``import gradcheck`` alone does not
import torch: the pytest plugin stays cheap to load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradcheck._adapt import is_loss
    from gradcheck.checks import assert_gradients, check, default_tolerances
    from gradcheck.functional import check_functions
    from gradcheck.inputs import default_shape, make_input, make_target
    from gradcheck.names import (
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
        ZERO_GRAD,
    )
    from gradcheck.report import CheckResult, GradcheckError, Report, TensorResult
    from gradcheck.sink import GradientSink

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
    "CheckResult",
    "GradcheckError",
    "GradientSink",
    "Report",
    "TensorResult",
    "assert_gradients",
    "check",
    "check_functions",
    "default_shape",
    "default_tolerances",
    "is_loss",
    "make_input",
    "make_target",
]
__all__.sort()

_SOURCES = {
    "is_loss": "gradcheck._adapt",
    "check_functions": "gradcheck.functional",
    "default_shape": "gradcheck.inputs",
    "make_input": "gradcheck.inputs",
    "make_target": "gradcheck.inputs",
    "CheckResult": "gradcheck.report",
    "GradcheckError": "gradcheck.report",
    "Report": "gradcheck.report",
    "GradientSink": "gradcheck.sink",
    "TensorResult": "gradcheck.report",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")
    # The check names come from gradcheck.names, which imports no torch.
    source = "gradcheck.names" if name.isupper() else _SOURCES.get(name, "gradcheck.checks")
    value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
