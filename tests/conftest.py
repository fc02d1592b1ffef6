import os

from hypothesis import HealthCheck, settings

# Deterministic in CI so a red run can be reproduced; more examples on demand.
settings.register_profile(
    "default",
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")
