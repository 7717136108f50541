"""Hypothesis profiles shared by the unit tests and the conformance suites.

``dev`` (the default) explores fresh examples on every run; ``ci`` (chosen when ``CI`` is set, as
``.ci/run`` sets it) derandomizes, so a CI failure replays exactly. Neither has a deadline: these
machines are shared, and timing belongs in the benchmarks. Pick one with
``pytest --hypothesis-profile=dev``.
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
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# One thread: the test networks are tiny, and on a shared two-core machine a second thread costs
# far more in contention than it saves. Both frameworks share the setting, so comparisons hold.
import torch  # noqa: E402

torch.set_num_threads(1)
