"""nnlite and torch.nn trained side by side, epoch by epoch, compared to the bit.

:class:`Config` describes a run; :class:`SideBySide` builds the nnlite network and its torch.nn
twin, trains both on the same batches with the same dropout masks, and raises
:class:`ConformanceError` at the first difference. ``python -m conformance`` reproduces the
seeds' experiments in both frameworks.
"""

from conformance.compare import Bound, ConformanceError
from conformance.harness import History, SideBySide, run
from conformance.spec import Config

__all__ = ["Bound", "Config", "ConformanceError", "History", "SideBySide", "run"]
