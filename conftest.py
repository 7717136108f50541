"""Hypothesis profiles shared by the unit tests and the conformance suites.

``ci`` (the default) derandomizes: the same examples on every run, so the test command gives the
same verdict every time and a CI failure replays exactly. ``dev`` explores fresh examples on
every run, to look for new counterexamples: ``pytest --hypothesis-profile=dev``, or
``HYPOTHESIS_PROFILE=dev``. Neither has a deadline: these machines are shared, and timing belongs
in the benchmarks.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One thread: the test networks are tiny, and on a shared two-core machine a second thread costs
# far more in contention than it saves. Both frameworks share the setting, so comparisons hold.
import torch  # noqa: E402

torch.set_num_threads(1)
