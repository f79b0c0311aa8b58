"""Test-only fault injection, for the incident rehearsals (`make gameday`, docs/playbooks/).

A rehearsal arms a fault in Redis; the next matching piece of work, in whichever worker process picks it up,
fires it once. The hooks are inert unless settings.INCIDENT_FAULT_HOOKS is on, and that setting is refused
when DEBUG is off (convosuite.apps checks it at start-up); production settings force it off. With the hooks
off, a hook costs one settings lookup.

Faults:
- "misroute": the model call of one chat reply of tenant A goes out for tenant B — the connection is switched
  to B's schema for the length of the call, as a dispatcher bug under load would do — so A's prompt (its
  system text, its knowledge passages) travels in B's call. The cross-tenant screen must stop it.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django_tenants.utils import schema_context


def check_fault_hooks_allowed() -> None:
    if settings.INCIDENT_FAULT_HOOKS and not settings.DEBUG:
        raise ImproperlyConfigured(
            "INCIDENT_FAULT_HOOKS is for rehearsals only and is refused when DEBUG is off."
        )


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _misroute_key(source_schema: str) -> str:
    return f"faults:{connection.settings_dict['NAME']}:misroute:{source_schema}"


def arm_misroute(source_schema: str, target_schema: str) -> None:
    """The next model call of a chat reply of source_schema goes out for target_schema (once). Arming is
    harmless where the hooks are off: nothing reads the key."""
    _redis().set(_misroute_key(source_schema), target_schema, ex=600)


def disarm_misroute(source_schema: str) -> None:
    _redis().delete(_misroute_key(source_schema))


@contextmanager
def model_call_tenant(tenant_schema: str) -> Iterator[str]:
    """The tenant a chat reply's model call is made for: tenant_schema, except under an armed "misroute"."""
    if not settings.INCIDENT_FAULT_HOOKS:
        yield tenant_schema
        return
    check_fault_hooks_allowed()
    target = _redis().getdel(_misroute_key(tenant_schema))
    if target is None:
        yield tenant_schema
        return
    target_schema = target.decode() if isinstance(target, bytes) else str(target)
    with schema_context(target_schema):
        yield target_schema
