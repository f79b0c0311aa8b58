"""Tenants' canary markers: created on first use, looked up by every process's screen, rotated on request.

The gateway's screen (gateway/screening.py) calls these through the hooks incidents.apps registers."""

import secrets
import time

from django.db import IntegrityError, transaction
from django.utils import timezone

from gateway import screening
from incidents.models import Canary
from tenants.models import Tenant


def load_canaries() -> list[screening.Canary]:
    """Every tenant's markers, retired ones included, for the screen's automaton."""
    return [
        screening.Canary(token=token, owner=schema_name, kind=kind, canary_id=pk)
        for pk, token, kind, schema_name in Canary.objects.values_list(
            "pk", "token", "kind", "tenant__schema_name"
        )
    ]


def new_token() -> str:
    return screening.CANARY_PREFIX + secrets.token_hex(screening.CANARY_HEX_DIGITS // 2)


# (schema, kind) -> (token, when read). A marker rotated by another process is planted here until this expires;
# that is safe, since retired markers are still looked for.
_known: dict[tuple[str, str], tuple[str, float]] = {}
MARKER_CACHE_SECONDS = 300.0


def marker_for(schema_name: str, kind: str) -> str:
    """The tenant's active marker of this kind, created (and announced to every process) the first time."""
    cached = _known.get((schema_name, kind))
    if cached is not None and time.monotonic() - cached[1] < MARKER_CACHE_SECONDS:
        return cached[0]
    token = (
        Canary.objects.filter(tenant__schema_name=schema_name, kind=kind, retired_at__isnull=True)
        .values_list("token", flat=True)
        .first()
    )
    if token is None:
        tenant = Tenant.objects.filter(schema_name=schema_name).first()
        if tenant is None:
            return ""
        token = _create(tenant, kind)
    _known[(schema_name, kind)] = (token, time.monotonic())
    return token


def _create(tenant: Tenant, kind: str) -> str:
    try:
        with transaction.atomic():
            canary = Canary.objects.create(tenant=tenant, kind=kind, token=new_token())
    except IntegrityError:
        # Another process created it first: use theirs.
        return str(
            Canary.objects.filter(tenant=tenant, kind=kind, retired_at__isnull=True)
            .values_list("token", flat=True)
            .get()
        )
    transaction.on_commit(screening.announce_canary_change)
    return canary.token


def ensure_canaries(tenant: Tenant) -> list[str]:
    """Both markers of a tenant exist (they are normally created at the tenant's first model call)."""
    return [marker_for(tenant.schema_name, kind) for kind in Canary.Kind.values]


@transaction.atomic
def do_rotate_canaries(tenant: Tenant) -> int:
    """New markers for the tenant; the old ones are retired but still looked for. Other processes plant the new
    ones within their cache time (this process at once)."""
    retired = Canary.objects.filter(tenant=tenant, retired_at__isnull=True).update(retired_at=timezone.now())
    for kind in Canary.Kind.values:
        Canary.objects.create(tenant=tenant, kind=kind, token=new_token())
    for kind in Canary.Kind.values:
        _known.pop((tenant.schema_name, kind), None)
    transaction.on_commit(screening.announce_canary_change)
    return retired


def forget_known_markers() -> None:
    _known.clear()
