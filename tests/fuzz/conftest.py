"""Property-based fuzzing (Hypothesis): the request path, config overrides and table readers.

Two settings profiles: ``fast`` (the default: a few seconds per target, run by `make test`) and
``long`` (many more cases, run by `make test-all`, which sets ``LAPP_FUZZ=long``). Choose one
by hand with ``LAPP_FUZZ=long pytest tests/fuzz``. The Hypothesis example database is off (its
caches in ``.hypothesis/`` ignore themselves); a failure prints the example and the seed that
reproduce it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.serving.conftest import trained_run  # noqa: F401 - the tiny served model

COMMON = {
    "deadline": None,  # wall-clock per example is noisy on a shared machine; hangs hit the timeout
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "print_blob": True,
}
settings.register_profile("fast", max_examples=60, **COMMON)
settings.register_profile("long", max_examples=1000, **COMMON)
settings.load_profile(os.environ.get("LAPP_FUZZ", "fast"))


def examples(scale: float = 1.0) -> settings:
    """The loaded profile's number of examples, scaled for a costlier target."""
    return settings(max_examples=max(10, int(settings.default.max_examples * scale)))
