"""The benchmark runs against the same real processes as the tests: reuse their fixtures (stack, tenants)."""

from tests.conftest import *  # noqa: F403
