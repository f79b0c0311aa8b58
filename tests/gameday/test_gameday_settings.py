"""The rehearsal settings: fault hooks on only together with DEBUG, a short breaker cooldown. (Marked django_db
so that `pytest tests/gameday` alone still has pytest-django create the test database.)"""

import importlib

import pytest


@pytest.mark.django_db
def test_rehearsal_settings_enable_fault_hooks_only_with_debug() -> None:
    gameday = importlib.import_module("convosuite.settings.gameday")
    assert gameday.INCIDENT_FAULT_HOOKS and gameday.DEBUG
    assert gameday.GATEWAY_BREAKER_COOLDOWN_SECONDS <= 5
