"""The incident rehearsals' web and worker processes (`make gameday`, tests/gameday/): the test settings, with
the test-only fault hooks on (which requires DEBUG) and a short circuit-breaker cooldown, so a rehearsal sees
the breaker open, half-open and close within seconds."""

from .test import *  # noqa: F403
from .test import env

DEBUG = True
INCIDENT_FAULT_HOOKS = True
GATEWAY_BREAKER_COOLDOWN_SECONDS = env.int("GATEWAY_BREAKER_COOLDOWN_SECONDS", default=3)
