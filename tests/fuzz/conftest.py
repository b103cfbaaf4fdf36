"""Hypothesis profiles for the fuzz targets (see tests/fuzz/harness.py for the helpers).

`ci` (the default, used by `./dev test`): few, derandomized examples per target so the whole
directory stays within seconds. `fuzz` (`./dev fuzz`, or SMF_FUZZ_PROFILE=fuzz): twenty times
as many examples per target (`harness.examples`), random seeds, statistics printed.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

_COMMON = {
    "database": None,  # no .hypothesis/ directory in the work tree
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    # Hypothesis' deadline is checked after an example ends; harness.bounded() interrupts a
    # real hang. Generous because up to eight test runs share two cores.
    "deadline": timedelta(seconds=5),
}
settings.register_profile("ci", max_examples=40, derandomize=True, **_COMMON)
settings.register_profile("fuzz", max_examples=800, derandomize=False, print_blob=True, **_COMMON)
settings.load_profile(os.environ.get("SMF_FUZZ_PROFILE", "ci"))
